"""Call recorder: two mono legs → one time-aligned stereo WAV, written off the event loop.

Channel layout: the **caller is the left channel, the agent the right** (see
:mod:`sip.media.recfiles` for the files, the sidecar and the crash rule).

The core is :class:`StereoAssembler`, pure and synchronous. Each leg's audio is placed at
a *position* in samples since the recording started; a frame that never arrived leaves
silence, so both channels stay aligned in time whatever each leg lost. Positions of RTP
audio come from :class:`LegTimeline`: the first packet of a stream (per SSRC) is anchored
at its arrival time, later packets are placed by their RTP timestamp (RFC 3550 §5.1: the
timestamp "reflects the sampling instant"), so network jitter does not smear the audio.

:class:`Recording` is the asyncio adapter. On the loop it only appends to a list
(``push_pcm``/``push_tap``); :meth:`Recording.flush` hands the batch to a worker thread
(``asyncio.to_thread``) which decodes G.711, assembles, interleaves and writes. Flushes
are serialised by a lock, so the thread-side state is never touched concurrently.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import NamedTuple, Protocol

import structlog

from sip.media.errors import RecordingError
from sip.media.events import RecordingSerial
from sip.media.frames import SAMPLE_RATE, SAMPLE_WIDTH
from sip.media.recfiles import RecordingInfo, WavPartWriter
from sip.rtp.g711 import Codec, decode

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

log = structlog.get_logger(__name__)

MAX_PENDING = 2000
"""Frames a recording queues for its thread at most (10 s of both channels at 20 ms); past that (the
thread does not get the CPU to keep up) audio is dropped and counted, leaving silence in the file,
rather than memory growing without bound."""


class Channel(Enum):
    """Stereo channel of a recording: CALLER is left (0), AGENT is right (1)."""

    CALLER = 0
    AGENT = 1


class TapFrame(NamedTuple):
    """One encoded RTP payload copied off a relay for the recorder (decoded later, in a thread).

    A named tuple, not a frozen dataclass: the relay makes one per recorded packet on the
    event loop (100 a second per call), and a tuple is built several times faster.
    """

    channel: Channel
    codec: Codec
    ssrc: int
    timestamp: int
    payload: bytes
    at: float
    """Arrival time (the relay's ``now``)."""


class TapSource(Protocol):
    """Anything that hands out tapped frames (a :class:`sip.media.relay.Relay`)."""

    def drain_tap(self) -> list[TapFrame]:
        """Return and forget the frames tapped since the last call."""
        ...


class LegTimeline:
    """Maps one leg's RTP timestamps to sample positions in the recording.

    The first packet of a stream is anchored at its arrival position; later ones are
    placed by timestamp difference (mod 2**32). A new SSRC, or a packet whose placement
    is more than ``max_skew`` samples away from its arrival position (a timestamp reset,
    a long hold), re-anchors on arrival.
    """

    def __init__(self, *, max_skew: int = SAMPLE_RATE) -> None:
        self._max_skew = max_skew
        self._ssrc: int | None = None
        self._ts0 = 0
        self._pos0 = 0

    def position(self, *, ssrc: int, timestamp: int, arrival: int) -> int:
        """Return the sample position of a packet that arrived at sample position ``arrival``."""
        if ssrc == self._ssrc:
            delta = (timestamp - self._ts0) & 0xFFFFFFFF
            if delta >= 0x80000000:
                delta -= 0x100000000
            pos = self._pos0 + delta
            if abs(pos - arrival) <= self._max_skew:
                return pos
        self._ssrc, self._ts0, self._pos0 = ssrc, timestamp, arrival
        return arrival


class StereoAssembler:
    """Places mono PCM of two channels by sample position and emits interleaved stereo.

    ``drain()`` emits everything up to ``hold`` samples behind the most advanced channel
    (so a late packet of the other leg still finds its place); ``drain(final=True)``
    emits everything. Audio placed before what was already emitted is dropped and
    counted in :attr:`late_samples`.
    """

    def __init__(self, *, hold: int = SAMPLE_RATE // 5) -> None:
        self._hold = hold
        self._base = 0  # position of the first sample not yet emitted
        self._bufs = {Channel.CALLER: bytearray(), Channel.AGENT: bytearray()}
        self.late_samples = 0

    @property
    def emitted(self) -> int:
        """Stereo samples emitted so far."""
        return self._base

    def push(self, channel: Channel, pcm: bytes, position: int) -> None:
        """Place 16-bit mono ``pcm`` of ``channel`` starting at sample ``position``."""
        if position < self._base:
            cut = min(len(pcm) // SAMPLE_WIDTH, self._base - position)
            self.late_samples += cut
            pcm = pcm[cut * SAMPLE_WIDTH :]
            position = self._base
        if not pcm:
            return
        buf = self._bufs[channel]
        offset = (position - self._base) * SAMPLE_WIDTH
        if offset > len(buf):
            buf.extend(bytes(offset - len(buf)))
        buf[offset : offset + len(pcm)] = pcm

    def drain(self, *, final: bool = False) -> bytes:
        """Return interleaved stereo 16-bit PCM (left = caller) that is ready to be written."""
        ahead = max(len(b) for b in self._bufs.values()) // SAMPLE_WIDTH
        count = ahead if final else ahead - self._hold
        if count <= 0:
            return b""
        size = count * SAMPLE_WIDTH
        mono: list[bytes] = []
        for channel in (Channel.CALLER, Channel.AGENT):
            buf = self._bufs[channel]
            chunk = bytes(buf[:size])
            del buf[:size]
            mono.append(chunk + bytes(size - len(chunk)))
        self._base += count
        left = audioop.tostereo(mono[0], SAMPLE_WIDTH, 1, 0)
        right = audioop.tostereo(mono[1], SAMPLE_WIDTH, 0, 1)
        return audioop.add(left, right, SAMPLE_WIDTH)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Pcm:
    channel: Channel
    pcm: bytes
    position: int


class Recording:
    """One call's recording: cheap pushes on the loop, decoding and writing in a thread.

    Use ``rec = await Recording.open(...)``, then ``push_pcm``/``push_tap`` as audio
    flows, ``await rec.flush()`` periodically (or run :meth:`run` in the call's
    TaskGroup), and ``await rec.close(ended_at)`` at hang-up.
    """

    def __init__(self, writer: WavPartWriter, info: RecordingInfo, clock_start: float, hold: int) -> None:
        self._writer = writer
        self._info = info
        self._clock_start = clock_start
        self._assembler = StereoAssembler(hold=hold)
        self._timelines = {Channel.CALLER: LegTimeline(), Channel.AGENT: LegTimeline()}
        self._pending: list[TapFrame | _Pcm] = []
        self._lock = asyncio.Lock()
        self._closed = asyncio.Event()
        self._taps: list[TapSource] = []
        self.dropped = 0
        """Frames dropped because :data:`MAX_PENDING` were waiting for the thread."""
        self.path: Path | None = None

    @classmethod
    async def open(
        cls, directory: str | os.PathLike[str], info: RecordingInfo, *, clock_start: float, hold: float = 0.2
    ) -> Recording:
        """Create the part files in a worker thread. ``clock_start`` is the loop time of position 0.

        Raises:
            RecordingError: the files cannot be created.
        """
        writer = await asyncio.to_thread(WavPartWriter, directory, info)
        log.info("media.recording.started", serial=info.serial, call_id=info.call_id)
        return cls(writer, info, clock_start, round(hold * SAMPLE_RATE))

    @property
    def serial(self) -> RecordingSerial:
        """The recording's serial."""
        return self._info.serial

    def position(self, now: float) -> int:
        """Sample position of loop time ``now``."""
        return round((now - self._clock_start) * SAMPLE_RATE)

    def push_pcm(self, channel: Channel, pcm: bytes, now: float) -> None:
        """Queue mono PCM of ``channel`` that started at loop time ``now``."""
        if len(self._pending) < MAX_PENDING:
            self._pending.append(_Pcm(channel=channel, pcm=pcm, position=self.position(now)))
        else:
            self._overflow(1)

    def push_tap(self, frames: list[TapFrame]) -> None:
        """Queue frames tapped off a relay (decoded in the flush thread)."""
        room = MAX_PENDING - len(self._pending)
        self._pending.extend(frames[:max(room, 0)])
        if len(frames) > room:
            self._overflow(len(frames) - max(room, 0))

    def _overflow(self, frames: int) -> None:
        if not self.dropped:
            log.warning("media.recording.overflowed", serial=self._info.serial, pending=len(self._pending))
        self.dropped += frames

    def add_tap(self, tap: TapSource) -> None:
        """Pull tapped frames from ``tap`` at every flush of :meth:`run` and at :meth:`close`."""
        self._taps.append(tap)

    def _pull_taps(self) -> None:
        for tap in self._taps:
            self.push_tap(tap.drain_tap())

    async def flush(self) -> None:
        """Decode, assemble and write what is queued, in a worker thread.

        Raises:
            RecordingError: the write failed.
        """
        async with self._lock:
            batch, self._pending = self._pending, []
            if batch:
                await asyncio.to_thread(self._process, batch, False)

    async def close(self, ended_at: str) -> Path:
        """Write everything, finalise the files (rename) and return the WAV path.

        Raises:
            RecordingError: the recording cannot be finalised.
        """
        async with self._lock:
            self._pull_taps()
            self._taps.clear()
            batch, self._pending = self._pending, []
            await asyncio.to_thread(self._process, batch, True)
            self.path = await asyncio.to_thread(self._writer.finalize, ended_at)
        self._closed.set()
        log.info("media.recording.finished", serial=self._info.serial, samples=self._writer.samples,
                 dropped_frames=self.dropped)
        return self.path

    async def run(self, tap: TapSource | None = None, *, interval: float = 0.5) -> None:
        """Flush every ``interval`` seconds (pulling from ``tap`` first) until :meth:`close`."""
        while not self._closed.is_set():
            try:
                async with asyncio.timeout(interval):
                    await self._closed.wait()
            except TimeoutError:
                pass
            if self._closed.is_set():
                return
            if tap is not None:
                self.push_tap(tap.drain_tap())
            self._pull_taps()
            await self.flush()

    def _process(self, batch: list[TapFrame | _Pcm], final: bool) -> None:
        """Thread body: decode, place, interleave, write."""
        for item in batch:
            match item:
                case TapFrame():
                    pcm = decode(item.codec, item.payload)
                    pos = self._timelines[item.channel].position(
                        ssrc=item.ssrc, timestamp=item.timestamp, arrival=self.position(item.at)
                    )
                    self._assembler.push(item.channel, pcm, pos)
                case _Pcm():
                    self._assembler.push(item.channel, item.pcm, item.position)
        stereo = self._assembler.drain(final=final)
        if stereo:
            self._writer.write(stereo)

    async def abort(self) -> None:
        """Drop the recording and delete its part files."""
        async with self._lock:
            self._pending = []
            await asyncio.to_thread(self._writer.abort)
        self._closed.set()


__all__ = ["Channel", "LegTimeline", "Recording", "RecordingError", "StereoAssembler", "TapFrame", "TapSource"]
