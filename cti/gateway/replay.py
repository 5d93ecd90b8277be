"""The gateway's replay window: the node's recent events by ``seq``, for clients that reconnect with ``?since=``.

:class:`ReplayLog` is sans-I/O: the dispatcher appends each envelope it hands out (in bus order, so ``seq`` goes up by
one), and a reconnecting client asks for everything after the last ``seq`` it saw. The window is bounded by a number
of events and an age (the envelope's ``ts`` against the ``now`` passed in). The answer is exact or nothing: when
the window no longer holds every event after ``since`` (too old, or the dispatcher itself lost events to its bus
queue's drop-oldest bound), :meth:`ReplayLog.since` returns ``None`` and the client must take a fresh snapshot
(docs/websocket.md, "Resuming with since").
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

from cti.events.registry import Envelope

__all__ = ["ReplayLog", "ReplayWindow"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayWindow:
    """What the window holds: every event with ``first_seq <= seq <= last_seq`` (empty when first > last)."""

    first_seq: int
    last_seq: int


class ReplayLog:
    """The last ``max_events`` events of at most ``max_age_s`` seconds, contiguous in ``seq``.

    ``last_seq`` is the bus's last sequence number when the log starts (nothing after it is missed yet).
    """

    def __init__(self, *, last_seq: int, max_events: int = 100_000, max_age_s: float = 600.0) -> None:
        if max_events < 1 or max_age_s <= 0:
            raise ValueError("the replay window needs max_events >= 1 and max_age_s > 0")
        self.max_events = max_events
        self.max_age_s = max_age_s
        self._events: deque[Envelope] = deque()
        self._first = last_seq + 1  # the seq of _events[0], or the next one expected when empty
        self._last = last_seq
        self.gaps = 0

    @property
    def last_seq(self) -> int:
        """The seq of the last event appended (or the starting point)."""
        return self._last

    def window(self) -> ReplayWindow:
        return ReplayWindow(first_seq=self._first, last_seq=self._last)

    def append(self, envelope: Envelope, now: float) -> None:
        """Remember ``envelope`` (it must carry a ``seq``). A jump in ``seq`` empties the window first: the events in
        between were lost before they reached the gateway, so no replay may span them.

        Raises:
            ValueError: the envelope has no ``seq``, or one not after the last.
        """
        seq = envelope.seq
        if seq is None or seq <= self._last:
            raise ValueError(f"replay log: seq {seq} after {self._last}")
        if seq != self._last + 1:
            self._events.clear()
            self._first = seq
            self.gaps += 1
        self._events.append(envelope)
        self._last = seq
        if len(self._events) > self.max_events:
            self._events.popleft()
            self._first += 1
        self._expire(now)

    def _expire(self, now: float) -> None:
        oldest = now - self.max_age_s
        while self._events and self._events[0].ts < oldest:
            self._events.popleft()
            self._first += 1

    def since(self, seq: int, now: float) -> list[Envelope] | None:
        """Every event after ``seq``, oldest first; ``None`` when the window cannot give all of them (``seq`` is
        older than the window, or newer than anything this node published in this run)."""
        self._expire(now)
        if seq > self._last or seq + 1 < self._first:
            return None
        return list(itertools.islice(self._events, seq + 1 - self._first, None))
