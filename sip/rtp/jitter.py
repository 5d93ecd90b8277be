"""A small reordering jitter buffer keyed on the extended sequence number (RFC 3550 §A.1 idea).

Packets go in with :meth:`JitterBuffer.push` in arrival order and come out in sequence order
with :meth:`JitterBuffer.pop`. The 16-bit sequence number is unwrapped to an extended
sequence number relative to the highest one seen, so 65535 → 0 is just "the next packet".
A packet older than the playout point is *late* and dropped; one already held is a
*duplicate* and dropped. A missing packet is waited for until ``depth`` later packets are
held, then counted as *lost* and skipped. No clock: the caller decides when to pop.
"""

from __future__ import annotations

import enum
from typing import Generic, TypeVar

__all__ = ["JitterBuffer", "PushResult", "SequenceUnwrapper"]

T = TypeVar("T")
SEQ_MOD = 1 << 16


class PushResult(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"
    RESET = "reset"  # a jump too large to bridge: the buffer restarted at this packet


class SequenceUnwrapper:
    """Turn 16-bit sequence numbers into extended ones, choosing the value nearest the highest seen."""

    def __init__(self) -> None:
        self.highest: int | None = None

    def unwrap(self, seq: int) -> int:
        if self.highest is None:
            self.highest = seq
            return seq
        delta = (seq - self.highest + SEQ_MOD // 2) % SEQ_MOD - SEQ_MOD // 2
        extended = self.highest + delta
        self.highest = max(self.highest, extended)
        return extended

    def reset(self, seq: int) -> None:
        self.highest = seq


class JitterBuffer(Generic[T]):
    """Reorder items (RTP packets, usually) by sequence number.

    ``depth``: how many newer packets may wait behind a gap before the gap is declared lost.
    ``capacity``: a jump of more than this many packets resets the buffer (a restarted source).
    """

    def __init__(self, depth: int = 3, capacity: int = 64) -> None:
        if depth < 0 or capacity <= depth:
            raise ValueError("need 0 <= depth < capacity")
        self.depth = depth
        self.capacity = capacity
        self._unwrapper = SequenceUnwrapper()
        self._items: dict[int, T] = {}
        self._next: int | None = None
        self.lost = 0
        self.late = 0
        self.duplicates = 0
        self.resets = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def next_sequence(self) -> int | None:
        """The extended sequence number the buffer plays out next."""
        return self._next

    def push(self, seq: int, item: T) -> PushResult:
        """Add ``item`` carrying 16-bit sequence number ``seq``."""
        ext = self._unwrapper.unwrap(seq % SEQ_MOD)
        if self._next is None:
            self._next = ext
        if ext < self._next:
            if self._next - ext > self.capacity:
                return self._reset(seq, item)
            self.late += 1
            return PushResult.LATE
        if ext - self._next > self.capacity:
            return self._reset(seq, item)
        if ext in self._items:
            self.duplicates += 1
            return PushResult.DUPLICATE
        self._items[ext] = item
        return PushResult.ACCEPTED

    def _reset(self, seq: int, item: T) -> PushResult:
        self._items.clear()
        self._unwrapper.reset(seq % SEQ_MOD)
        self._next = seq % SEQ_MOD
        self._items[self._next] = item
        self.resets += 1
        return PushResult.RESET

    def pop(self) -> T | None:
        """The next item in order, if it is here or the gap before it is given up; else None."""
        if self._next is None or not self._items:
            return None
        if self._next not in self._items:
            if len(self._items) <= self.depth:
                return None
            first = min(self._items)
            self.lost += first - self._next
            self._next = first
        item = self._items.pop(self._next)
        self._next += 1
        return item

    def drain(self) -> list[T]:
        """Everything held, in order, skipping (and counting) the gaps."""
        out: list[T] = []
        while self._items and self._next is not None:
            first = min(self._items)
            self.lost += first - self._next
            self._next = first + 1
            out.append(self._items.pop(first))
        return out
