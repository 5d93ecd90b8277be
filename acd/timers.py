"""Timer names and the router's single timer heap (the aioquic ``get_timer`` shape).

The router never reads a clock: each timer is a deadline in the caller's time base. Entries are
never removed when they become moot (an answered offer, a call that left); the router checks on
expiry that the object is still in the state the timer was armed for, and ``get_timer`` drops
such dead entries from the top so the adapter does not wake up for nothing.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TimerId(enum.Enum):
    """The ACD's timers."""

    RING = "ring"  # ring timeout of one offer (QueueConfig.ring_timeout_s)
    WRAP_UP = "wrap_up"  # after-call work auto-timeout (QueueConfig.wrap_up_s)
    OVERFLOW = "overflow"  # next overflow/escalation rule of a call (OverflowRule.after_s)
    MAX_WAIT = "max_wait"  # maximum time in queue (QueueConfig.max_wait_s)
    OFFER_DELAY = "offer_delay"  # a ready agent's no-answer/reject/busy delay ends (AgentConfig.*_delay_s)


class TimerHeap(Generic[T]):
    """Deadlines with a payload, earliest first; ties keep insertion order."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerId, T]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def arm(self, deadline: float, timer: TimerId, ref: T) -> None:
        """Add a deadline."""
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, timer, ref))

    def earliest(self, live: Callable[[float, TimerId, T], bool]) -> float | None:
        """The earliest live deadline; dead entries found on top are discarded."""
        heap = self._heap
        while heap:
            deadline, _, timer, ref = heap[0]
            if live(deadline, timer, ref):
                return deadline
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float) -> tuple[float, TimerId, T] | None:
        """Remove and return the earliest entry due at ``now``, or None."""
        if self._heap and self._heap[0][0] <= now:
            deadline, _, timer, ref = heapq.heappop(self._heap)
            return deadline, timer, ref
        return None
