"""One clock for the node: monotonic readings, and wall-clock times derived from them.

Every time a record holds (CDR milestones, queue legs, agent states) is
``monotonic reading + offset``, with the offset taken once when the node starts. Two readings
taken in order can never come out in the other order, whatever NTP does to the system clock
meanwhile, so the milestones of one call are always in order (docs/reliability.md). The ACD runs
on the same monotonic readings (its ``now``), so converting its event times is one addition.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class NodeClock:
    """``monotonic()`` for deadlines and ordering; ``wall()`` for what records and events say.

    ``monotonic`` and ``wall`` are injectable so that state machines and records are tested on a
    clock stepped by hand.
    """

    __slots__ = ("_monotonic", "_offset")

    def __init__(self, monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._monotonic = monotonic
        self._offset = wall() - monotonic()

    def monotonic(self) -> float:
        """Seconds on the node's monotonic clock."""
        return self._monotonic()

    def wall(self, reading: float | None = None) -> float:
        """UTC epoch seconds of a monotonic ``reading`` (now when None)."""
        return (self._monotonic() if reading is None else reading) + self._offset

    @property
    def offset(self) -> float:
        """What is added to a monotonic reading to give epoch seconds."""
        return self._offset
