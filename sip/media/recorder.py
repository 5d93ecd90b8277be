"""Call recorder: two mono legs → one time-aligned stereo WAV, written off the event loop.

Channel layout: the **caller is the left channel, the agent the right** (see
:mod:`sip.media.recfiles` for the files, the sidecar and the crash rule).

The core is :class:`StereoAssembler`, pure and synchronous. Each leg's audio is placed at
a *position* in samples since the recording started; a frame that never arrived leaves
silence, so both channels stay aligned in time whatever each leg lost. Positions of RTP
audio come from :class:`LegTimeline`: the first packet of a stream (per SSRC) is anchored
at its arrival time, later packets are placed by their RTP timestamp (RFC 3550 §5.1: the
timestamp "reflects the sampling instant"), so network jitter does not smear the audio.

:class:`sip.media.aio.Recording` is the asyncio adapter: on the loop it only queues audio; a worker
thread decodes G.711, assembles, interleaves and writes.
"""

from __future__ import annotations

import warnings
from enum import Enum
from typing import NamedTuple, Protocol

import structlog

from sip.media.errors import RecordingError
from sip.media.frames import SAMPLE_RATE, SAMPLE_WIDTH
from sip.rtp.g711 import Codec

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


__all__ = ["MAX_PENDING", "Channel", "LegTimeline", "RecordingError", "StereoAssembler", "TapFrame", "TapSource"]
