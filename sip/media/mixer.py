"""Pure N-party audio mixer with per-listener "hears whom" rules and supervisor presets.

Each 20 ms tick, :meth:`Mixer.mix` takes the latest frame pushed for every participant
(silence for a participant that sent nothing since the last tick) and returns, for each
listener, the sum of the frames of the participants it hears, never its own. Sums use
``audioop.add``, which saturates at the 16-bit limits; with more than two sources the
sources are added in the order participants were added, clipping after each step.

Presets (``MixMode``), for a call with a caller, an agent and optionally a supervisor:

=========  ======================  =====================  ======================
mode       caller hears            agent hears            supervisor hears
=========  ======================  =====================  ======================
BRIDGE     agent                   caller                 (no supervisor)
MONITOR    agent                   caller                 caller + agent
WHISPER    agent                   caller + supervisor    caller + agent
BARGE      agent + supervisor      caller + supervisor    caller + agent
=========  ======================  =====================  ======================

In MONITOR nobody hears the supervisor; in WHISPER only the agent does. The rules of a
live mixer can be changed between two ticks (:meth:`Mixer.set_mode`, :meth:`Mixer.set_hears`)
without recreating it; participants keep their queued frames.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from enum import Enum

from sip.media.events import ParticipantId
from sip.media.frames import SAMPLE_WIDTH, SILENCE_FRAME, check_frame

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


class MixMode(Enum):
    """Supervision presets; see the table in the module docstring."""

    BRIDGE = "bridge"
    MONITOR = "monitor"
    WHISPER = "whisper"
    BARGE = "barge"


def mode_rules(
    mode: MixMode, *, caller: ParticipantId, agent: ParticipantId, supervisor: ParticipantId | None = None
) -> dict[ParticipantId, frozenset[ParticipantId]]:
    """Return the "hears whom" rules of a preset.

    Raises:
        ValueError: MONITOR, WHISPER or BARGE without a supervisor, or duplicate participants.
    """
    parties = [caller, agent] + ([supervisor] if supervisor is not None else [])
    if len(set(parties)) != len(parties):
        raise ValueError("caller, agent and supervisor must be distinct participants")
    rules = {caller: frozenset({agent}), agent: frozenset({caller})}
    if mode is MixMode.BRIDGE:
        if supervisor is not None:
            rules[supervisor] = frozenset()
        return rules
    if supervisor is None:
        raise ValueError(f"mode {mode.value} needs a supervisor")
    rules[supervisor] = frozenset({caller, agent})
    if mode is MixMode.WHISPER:
        rules[agent] = frozenset({caller, supervisor})
    elif mode is MixMode.BARGE:
        rules[caller] = frozenset({agent, supervisor})
        rules[agent] = frozenset({caller, supervisor})
    return rules


class Mixer:
    """Mixes one 20 ms frame per participant per tick according to "hears whom" rules."""

    def __init__(self, participants: Iterable[ParticipantId] = ()) -> None:
        self._order: list[ParticipantId] = []
        self._hears: dict[ParticipantId, tuple[ParticipantId, ...]] = {}
        self._latest: dict[ParticipantId, bytes] = {}
        for pid in participants:
            self.add(pid)

    @property
    def participants(self) -> tuple[ParticipantId, ...]:
        """Participants in the order they were added (the summing order)."""
        return tuple(self._order)

    def hears(self, listener: ParticipantId) -> frozenset[ParticipantId]:
        """Return whom ``listener`` currently hears.

        Raises:
            KeyError: ``listener`` is not a participant.
        """
        return frozenset(self._hears[listener])

    def add(self, pid: ParticipantId, hears: Iterable[ParticipantId] = ()) -> None:
        """Add a participant who hears ``hears`` (nobody by default) and whom nobody hears yet.

        Raises:
            ValueError: ``pid`` is already a participant.
        """
        if pid in self._hears:
            raise ValueError(f"participant {pid!r} already in the mixer")
        self._order.append(pid)
        self._hears[pid] = ()
        self.set_hears(pid, hears)

    def remove(self, pid: ParticipantId) -> None:
        """Remove a participant; nobody hears it any more. Unknown ids are ignored."""
        if pid not in self._hears:
            return
        self._order.remove(pid)
        del self._hears[pid]
        self._latest.pop(pid, None)
        for listener, sources in self._hears.items():
            if pid in sources:
                self._hears[listener] = tuple(s for s in sources if s != pid)

    def set_hears(self, listener: ParticipantId, sources: Iterable[ParticipantId]) -> None:
        """Set whom ``listener`` hears; the listener itself is always excluded.

        Raises:
            KeyError: ``listener`` or one of ``sources`` is not a participant.
        """
        if listener not in self._hears:
            raise KeyError(listener)
        wanted = set(sources)
        unknown = wanted - self._hears.keys()
        if unknown:
            raise KeyError(f"unknown participants: {sorted(unknown)}")
        self._hears[listener] = tuple(p for p in self._order if p in wanted and p != listener)

    def set_rules(self, rules: Mapping[ParticipantId, Iterable[ParticipantId]]) -> None:
        """Replace the rules of every listener named in ``rules`` (others are unchanged).

        Raises:
            KeyError: a listener or source is not a participant; nothing is changed then.
        """
        known = self._hears.keys()
        frozen = {listener: frozenset(sources) for listener, sources in rules.items()}
        for listener, sources in frozen.items():
            if listener not in known or not sources <= known:
                raise KeyError(f"rule for {listener!r} names unknown participants")
        for listener, sources in frozen.items():
            self.set_hears(listener, sources)

    def set_mode(
        self,
        mode: MixMode,
        *,
        caller: ParticipantId,
        agent: ParticipantId,
        supervisor: ParticipantId | None = None,
    ) -> None:
        """Apply a preset to the named participants of a live mixer (they must already be added).

        Raises:
            ValueError: see :func:`mode_rules`.
            KeyError: a named participant is not in the mixer.
        """
        self.set_rules(mode_rules(mode, caller=caller, agent=agent, supervisor=supervisor))

    def push(self, pid: ParticipantId, frame: bytes) -> None:
        """Queue ``pid``'s frame for the next tick (a newer frame replaces an older one).

        Raises:
            KeyError: ``pid`` is not a participant.
            FrameSizeError: ``frame`` is not one 20 ms frame.
        """
        if pid not in self._hears:
            raise KeyError(pid)
        self._latest[pid] = check_frame(frame)

    def mix(self) -> dict[ParticipantId, bytes]:
        """Run one tick: return each listener's frame and clear the queued frames."""
        latest, self._latest = self._latest, {}
        out: dict[ParticipantId, bytes] = {}
        for listener, sources in self._hears.items():
            acc: bytes | None = None
            for source in sources:
                frame = latest.get(source)
                if frame is None:
                    continue
                acc = frame if acc is None else audioop.add(acc, frame, SAMPLE_WIDTH)
            out[listener] = SILENCE_FRAME if acc is None else acc
        return out
