"""The gateway's replay window: the node's recent events by ``seq``, for clients that reconnect with ``?since=``.

:class:`ReplayLog` is sans-I/O: the dispatcher appends each envelope it hands out (in bus order, so ``seq`` goes up by
one), and a reconnecting client asks for everything after the last ``seq`` it saw. The window is bounded by a number
of events, an age (the envelope's ``ts`` against the ``now`` passed in) and a number of bytes. The answer is exact
or nothing: when the window no longer holds every event after ``since`` (too old, or the dispatcher itself lost
events to its bus queue's drop-oldest bound), :meth:`ReplayLog.since` returns ``None`` and the client must take a
fresh snapshot (docs/websocket.md, "Resuming with since").

**What an event costs.** The log keeps no envelope objects. Each event is kept once, as the compact JSON text frame
the gateway sends anyway (``seq`` included), plus the three facts the gateway needs before it decodes a frame: its
``ts`` (for the age bound), its ``type`` and its ``agent_id`` (who the event may concern; both shared strings). Frames
are gathered in blocks of :data:`BLOCK_EVENTS` (or :data:`_BLOCK_RAW_BYTES` of frames); a full block is sealed:
its frames compressed in one zlib pass (events of the same few shapes compress well: JSON keys and ids repeat) and
let go. One pass at the seal costs less than feeding a stream frame by frame (measured: 1.4 against 1.9 µs a frame,
and the stream's 256 KiB of state was no longer in the CPU's caches by the next event of a loaded node); it holds
the loop about 0.2 ms a block (at most ~1 ms for 128 KiB of frames). A sealed event costs its compressed share plus
:data:`EVENT_OVERHEAD` bytes of bookkeeping, the open block its frames; :attr:`ReplayLog.nbytes` is that account,
and ``max_bytes`` bounds it.
Figures: ``python tests/bench/bench_replay_window.py`` and docs/websocket.md.
"""

from __future__ import annotations

import zlib
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, NamedTuple

from cti.events.registry import Envelope, EnvelopeError

__all__ = ["BLOCK_EVENTS", "EVENT_OVERHEAD", "ReplayLog", "ReplayWindow", "ReplayedEvent"]

BLOCK_EVENTS: Final = 128
"""Events per compressed block (a block of call events compresses about 7:1)."""

_BLOCK_RAW_BYTES: Final = 128 * 1024
"""A block is also sealed once its frames reach this many bytes (a few very large events)."""

EVENT_OVERHEAD: Final = 8 + 8 + 8 + 4
"""Bytes of bookkeeping per event in a sealed block: its ``ts`` (float64), two shared references, one offset."""

_BLOCK_OVERHEAD: Final = 700
"""Bytes of one block's own objects (the block, its arrays and tuples, the compressed bytes' header)."""

_ZLIB_LEVEL: Final = 6
_NAMES_MAX: Final = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayWindow:
    """What the window holds: every event with ``first_seq <= seq <= last_seq`` (empty when first > last)."""

    first_seq: int
    last_seq: int


class ReplayedEvent(NamedTuple):
    """One event of the window: its ``seq``, ``ts``, ``type``, ``agent_id`` (``None`` when it names none) and its
    JSON frame (UTF-8 bytes; empty when the event could not be encoded, so no client ever got it)."""

    seq: int
    ts: float
    type: str
    agent_id: str | None
    frame: bytes

    def envelope(self) -> Envelope:
        """The event decoded back into its envelope (``seq`` included).

        Raises:
            EnvelopeError: the frame is empty (the event could not be encoded when it was published).
        """
        if not self.frame:
            raise EnvelopeError(f"event {self.seq} ({self.type}) could not be encoded; it is not replayed")
        return Envelope.from_json(self.frame)


class _Block:
    """Consecutive events from ``first_seq``: open (frames kept as they are) or sealed (one zlib stream)."""

    __slots__ = ("agent_ids", "compressed", "ends", "first_seq", "frames", "nbytes", "raw_bytes", "ts", "types")

    def __init__(self, first_seq: int) -> None:
        self.first_seq = first_seq
        self.ts = array("d")
        self.types: list[str] | tuple[str, ...] = []
        self.agent_ids: list[str | None] | tuple[str | None, ...] = []
        self.frames: list[bytes] | None = []
        self.raw_bytes = 0
        self.compressed = b""  # sealed: the frames, compressed
        self.ends = array("I")
        self.nbytes = _BLOCK_OVERHEAD

    def __len__(self) -> int:
        return len(self.ts)

    def add(self, ts: float, type_: str, agent_id: str | None, frame: bytes) -> int:
        """Append one event to this open block; the bytes it adds to the account."""
        assert self.frames is not None and isinstance(self.types, list) and isinstance(self.agent_ids, list)
        self.ts.append(ts)
        self.types.append(type_)
        self.agent_ids.append(agent_id)
        self.frames.append(frame)
        self.raw_bytes += len(frame)
        self.ends.append(self.raw_bytes)
        cost = len(frame) + 33 + EVENT_OVERHEAD  # an open block holds each frame as its own bytes object
        self.nbytes += cost
        return cost

    def seal(self) -> int:
        """Compress the frames and let them go; the change in the account (negative)."""
        assert self.frames is not None
        before = self.nbytes
        self.compressed = zlib.compress(b"".join(self.frames), _ZLIB_LEVEL)
        self.frames = None
        self.types, self.agent_ids = tuple(self.types), tuple(self.agent_ids)
        self.nbytes = _BLOCK_OVERHEAD + len(self.compressed) + EVENT_OVERHEAD * len(self.ts)
        return self.nbytes - before

    def events(self, start: int) -> Iterator[ReplayedEvent]:
        """The events of this block from index ``start`` on."""
        if self.frames is not None:
            frames: list[bytes] = self.frames
        else:
            data = zlib.decompress(self.compressed)
            frames = [data[(self.ends[i - 1] if i else 0):self.ends[i]] for i in range(len(self.ends))]
        for i in range(start, len(self.ts)):
            yield ReplayedEvent(self.first_seq + i, self.ts[i], self.types[i], self.agent_ids[i], frames[i])


class ReplayLog:
    """The last ``max_events`` events of at most ``max_age_s`` seconds and ``max_bytes`` bytes, contiguous in ``seq``.

    ``last_seq`` is the bus's last sequence number when the log starts (nothing after it is missed yet).
    """

    def __init__(self, *, last_seq: int, max_events: int = 100_000, max_age_s: float = 600.0,
                 max_bytes: int = 16 * 2**20) -> None:
        if max_events < 1 or max_age_s <= 0 or max_bytes < 1:
            raise ValueError("the replay window needs max_events >= 1, max_age_s > 0 and max_bytes >= 1")
        self.max_events = max_events
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self._blocks: deque[_Block] = deque()
        self._first = last_seq + 1  # the oldest seq in the window, or the next one expected when empty
        self._last = last_seq
        self._nbytes = 0
        self._names: dict[str, str] = {}  # one shared copy of each type and agent id
        self.gaps = 0

    @property
    def last_seq(self) -> int:
        """The seq of the last event appended (or the starting point)."""
        return self._last

    @property
    def nbytes(self) -> int:
        """What the window holds, in bytes (compressed frames and bookkeeping)."""
        return self._nbytes

    def __len__(self) -> int:
        return self._last - self._first + 1

    def window(self) -> ReplayWindow:
        return ReplayWindow(first_seq=self._first, last_seq=self._last)

    def _shared(self, name: str) -> str:
        kept = self._names.get(name)
        if kept is None:
            if len(self._names) >= _NAMES_MAX:
                self._names.clear()
            kept = self._names[name] = name
        return kept

    def append(self, envelope: Envelope, now: float, frame: bytes | None = None) -> None:
        """Remember ``envelope`` (it must carry a ``seq``), as ``frame`` (its JSON encoding, ``envelope.to_json()``;
        encoded here when not given). A jump in ``seq`` empties the window first: the events in between were lost
        before they reached the gateway, so no replay may span them. An envelope that cannot be encoded is kept as
        an empty frame (its ``seq`` stays in the window; no client can be sent it, live or replayed).

        Raises:
            ValueError: the envelope has no ``seq``, or one not after the last.
        """
        seq = envelope.seq
        if seq is None or seq <= self._last:
            raise ValueError(f"replay log: seq {seq} after {self._last}")
        if frame is None:
            try:
                frame = envelope.to_json()
            except EnvelopeError:
                frame = b""
        if seq != self._last + 1:
            self._blocks.clear()
            self._nbytes = 0
            self._first = seq
            self.gaps += 1
        block = self._blocks[-1] if self._blocks else None
        if block is None or block.frames is None:
            block = _Block(seq)
            self._blocks.append(block)
            self._nbytes += block.nbytes
        agent_id = envelope.data.get("agent_id")
        self._nbytes += block.add(envelope.ts, self._shared(envelope.type),
                                  self._shared(agent_id) if isinstance(agent_id, str) else None, frame)
        self._last = seq
        if len(block) >= BLOCK_EVENTS or block.raw_bytes >= _BLOCK_RAW_BYTES:
            self._nbytes += block.seal()
        self._expire(now)

    def _expire(self, now: float) -> None:
        """Drop events past the count, age and byte bounds (a block goes once none of its events is left)."""
        oldest = now - self.max_age_s
        first = max(self._first, self._last + 1 - self.max_events)
        while self._blocks:
            block = self._blocks[0]
            end = block.first_seq + len(block)  # one past the block's last seq
            while first < end and block.ts[first - block.first_seq] < oldest:
                first += 1
            if first < end and (self._nbytes <= self.max_bytes or len(self._blocks) == 1):
                break
            first = max(first, end)
            self._blocks.popleft()
            self._nbytes -= block.nbytes
        if not self._blocks:
            first = self._last + 1
        self._first = first

    def since(self, seq: int, now: float) -> list[ReplayedEvent] | None:
        """Every event after ``seq``, oldest first; ``None`` when the window cannot give all of them (``seq`` is
        older than the window, or newer than anything this node published in this run)."""
        self._expire(now)
        if seq > self._last or seq + 1 < self._first:
            return None
        out: list[ReplayedEvent] = []
        for block in self._blocks:
            end = block.first_seq + len(block)
            if end <= seq + 1:
                continue
            out.extend(block.events(max(0, seq + 1 - block.first_seq)))
        return out
