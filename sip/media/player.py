"""Sans-I/O prompt player: which 20 ms PCM frames are due at ``now``.

The player never reads a clock and never sleeps. Its driver (an asyncio adapter or the
RTP session) calls ``get_timer()``, arms one ``call_at`` for it, and on expiry calls
``handle_timer(now)``, which returns the frames to send, each with its index ``k`` so
the RTP timestamp can be ``base + k * 160`` (RFC 3550 §5.1: the timestamp reflects the
sampling instant, so a skipped frame shows up as a timestamp jump, not as drift).

Pacing rule (see docs/media-mixing.md): frame ``k`` is due at ``start + k * 0.02``, with
``start`` the ``now`` passed to :meth:`Player.play`. If the driver is late, up to
``max_burst`` overdue frames (default 3 = 60 ms) are returned at once to catch up;
older overdue frames are skipped and counted. The schedule is never shifted.

``stop()`` takes effect at once: no further frames, and a :class:`PlaybackStopped`
event (reason ``REQUESTED``/``BARGE_IN``/``REPLACED``) instead of :class:`PlaybackFinished`.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import structlog

from sip.media.events import MediaEvent, PlaybackFinished, PlaybackStopped, StopReason
from sip.media.frames import FRAME_BYTES, SAMPLE_RATE, SAMPLE_WIDTH, FrameClock, sine_tone

log = structlog.get_logger(__name__)

DTMF_DIGITS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True, slots=True, kw_only=True)
class Prompt:
    """Loaded audio: 8 kHz 16-bit mono PCM (see :func:`sip.media.prompts.load_wav`)."""

    name: str
    pcm: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence:
    """``duration`` seconds of silence."""

    duration: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Tone:
    """A sine tone of ``frequency`` Hz for ``duration`` seconds at ``amplitude`` of full scale."""

    frequency: float
    duration: float
    amplitude: float = 0.5


PlayItem = Prompt | Silence | Tone


@dataclass(frozen=True, slots=True, kw_only=True)
class DueFrame:
    """One frame to send: index ``k`` since the start of the playback, its due time, its PCM."""

    index: int
    due: float
    pcm: bytes


class PlayerState(Enum):
    """Life cycle of one :class:`Player`."""

    IDLE = "idle"
    PLAYING = "playing"
    DRAINING = "draining"  # last frame handed out, waiting for its end time
    FINISHED = "finished"
    STOPPED = "stopped"


def _item_pcm(item: PlayItem) -> bytes:
    match item:
        case Prompt(pcm=pcm):
            return pcm
        case Silence(duration=duration):
            return bytes(round(duration * SAMPLE_RATE) * SAMPLE_WIDTH)
        case Tone(frequency=frequency, duration=duration, amplitude=amplitude):
            return sine_tone(frequency, duration, amplitude)


class Player:
    """Plays a sequence of prompts, tones and silences as paced 20 ms frames."""

    def __init__(self, *, max_burst: int = 3) -> None:
        if max_burst < 1:
            raise ValueError("max_burst must be at least 1")
        self._max_burst = max_burst
        self._state = PlayerState.IDLE
        self._clock: FrameClock | None = None
        self._pcm: list[bytes] = []
        self._starts: list[int] = []  # first frame index of each item
        self._total = 0
        self._played = 0
        self._barge_in = False
        self._events: deque[MediaEvent] = deque()

    @property
    def state(self) -> PlayerState:
        """Current state."""
        return self._state

    @property
    def total_frames(self) -> int:
        """Number of frames in the current playback."""
        return self._total

    def play(self, items: Sequence[PlayItem], now: float, *, barge_in: bool = True) -> None:
        """Start playing ``items`` back to back; frame 0 is due at ``now``.

        A playback already running is stopped first (``PlaybackStopped(reason=REPLACED)``).
        Each item starts on a frame boundary; a partial last frame is padded with silence.
        """
        if self._state in (PlayerState.PLAYING, PlayerState.DRAINING):
            self._stop(now, StopReason.REPLACED, None)
        self._pcm = [_item_pcm(item) for item in items]
        self._starts = []
        total = 0
        for pcm in self._pcm:
            self._starts.append(total)
            total += -(-len(pcm) // FRAME_BYTES)
        self._total = total
        self._played = 0
        self._barge_in = barge_in
        self._clock = FrameClock(start=now, max_burst=self._max_burst)
        self._set_state(PlayerState.PLAYING if total else PlayerState.DRAINING, now)

    def get_timer(self) -> float | None:
        """Return when :meth:`handle_timer` must next be called, or ``None`` when idle."""
        if self._clock is None or self._state not in (PlayerState.PLAYING, PlayerState.DRAINING):
            return None
        if self._state is PlayerState.DRAINING:
            return self._clock.due_time(self._total)
        return self._clock.next_due()

    def handle_timer(self, now: float) -> list[DueFrame]:
        """Return the frames due at ``now`` (catching up or skipping per the pacing rule)."""
        clock = self._clock
        if clock is None or self._state not in (PlayerState.PLAYING, PlayerState.DRAINING):
            return []
        frames: list[DueFrame] = []
        if self._state is PlayerState.PLAYING:
            for index in clock.due(now, self._total):
                frames.append(DueFrame(index=index, due=clock.due_time(index), pcm=self._frame(index)))
            self._played += len(frames)
            if clock.next_index >= self._total:
                self._set_state(PlayerState.DRAINING, now)
        end = clock.due_time(self._total)
        if self._state is PlayerState.DRAINING and now >= end - 1e-9:
            self._events.append(
                PlaybackFinished(at=now, frames_played=self._played, frames_skipped=self._total - self._played)
            )
            self._set_state(PlayerState.FINISHED, now)
        return frames

    def stop(self, now: float) -> None:
        """Stop at once; emits ``PlaybackStopped(reason=REQUESTED)`` if something was playing."""
        if self._state in (PlayerState.PLAYING, PlayerState.DRAINING):
            self._stop(now, StopReason.REQUESTED, None)

    def handle_dtmf(self, digit: str, now: float) -> bool:
        """Barge-in: stop the playback on a DTMF digit if it was started with ``barge_in``.

        Returns ``True`` when the digit stopped the playback.
        """
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        if self._barge_in and self._state is PlayerState.PLAYING:
            self._stop(now, StopReason.BARGE_IN, digit)
            return True
        return False

    def next_event(self) -> MediaEvent | None:
        """Pop the next event, or ``None``."""
        return self._events.popleft() if self._events else None

    def _frame(self, index: int) -> bytes:
        item = bisect.bisect_right(self._starts, index) - 1
        pcm = self._pcm[item]
        offset = (index - self._starts[item]) * FRAME_BYTES
        frame = pcm[offset : offset + FRAME_BYTES]
        if len(frame) < FRAME_BYTES:
            frame += bytes(FRAME_BYTES - len(frame))
        return frame

    def _stop(self, now: float, reason: StopReason, digit: str | None) -> None:
        reached = min(self._clock.next_index, self._total) if self._clock is not None else 0
        skipped = reached - self._played
        self._events.append(
            PlaybackStopped(at=now, reason=reason, frames_played=self._played, frames_skipped=skipped, digit=digit)
        )
        self._set_state(PlayerState.STOPPED, now)

    def _set_state(self, state: PlayerState, now: float) -> None:
        if state is not self._state:
            log.debug("media.player.state_changed", old=self._state.value, new=state.value, now=now)
            self._state = state


__all__ = ["DTMF_DIGITS", "DueFrame", "PlayItem", "Player", "PlayerState", "Prompt", "Silence", "Tone"]
