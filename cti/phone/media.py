"""The browser phone's media bridge: the node's RTP (G.711, :class:`sip.rtp.aio.RtpEndpoint`) on one side, the
page's WebRTC peer connection (aiortc: ICE, DTLS-SRTP, its own codecs) on the other.

- node → page: :class:`CallAudio` is the peer connection's outgoing track. The RTP endpoint's decoded frames are
  pushed into it; while a call is up (:meth:`CallAudio.start` .. :meth:`CallAudio.pause`) aiortc pulls one 20 ms
  frame every 20 ms (paced by the loop's clock), silence when none is waiting. Between calls it sends nothing (the
  sender waits; ICE consent checks keep the path open), so an idle phone costs next to nothing. At most
  ``max_frames`` wait (older ones are dropped: the bridge never builds up delay).
- page → node: :func:`pump_from_page` reads the page's track, resamples every frame to 8 kHz mono 16-bit (a no-op
  for G.711, which the phone negotiates first; Opus at 48 kHz if a page offers nothing else), cuts it into 20 ms
  frames and hands each to ``sink`` (the call's RTP endpoint, or nowhere between calls). It must run for as long
  as the track lives: aiortc queues received frames without bound until they are read.

CPU: a G.711 frame is decoded and encoded by aiortc (in its codec worker) and by the RTP session; the resampler
passes 8 kHz mono through. docs/web.md ("Browser phone") has the figures.
"""

from __future__ import annotations

import asyncio
import fractions
from collections import deque
from collections.abc import Callable

import structlog
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, AudioResampler

from cti.phone.state import FRAME_BYTES, Reframer

__all__ = ["SAMPLE_RATE", "CallAudio", "pump_from_page"]

log = structlog.get_logger(__name__)

SAMPLE_RATE = 8000
_SAMPLES = FRAME_BYTES // 2
_SILENCE = bytes(FRAME_BYTES)
_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


class CallAudio(MediaStreamTrack):
    """The audio the page hears: frames pushed from the call's RTP, paced at 20 ms, silence in between."""

    kind = "audio"

    def __init__(self, *, max_frames: int = 10) -> None:
        super().__init__()
        self._frames: deque[bytes] = deque(maxlen=max_frames)
        self._reframer = Reframer()
        self._pts = 0
        self._start: float | None = None
        self._live = asyncio.Event()
        self.frames_sent = 0
        self.frames_pushed = 0

    def start(self) -> None:
        """A call is up: send a frame every 20 ms."""
        self._live.set()

    def pause(self) -> None:
        """The call ended: send nothing until the next one (what waits is dropped)."""
        self._live.clear()
        self._frames.clear()

    def push(self, pcm: bytes) -> None:
        """Queue decoded PCM from the call (any length; cut into 20 ms frames)."""
        self._reframer.push(pcm)
        for frame in self._reframer.frames():
            self._frames.append(frame)
            self.frames_pushed += 1

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if not self._live.is_set():
            await self._live.wait()
            self._start = None  # the clock starts again with the call; the timestamps go on where they were
        if self._start is None:
            self._start = loop.time() - self._pts / SAMPLE_RATE
        wait = self._start + self._pts / SAMPLE_RATE - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -0.2:  # the loop was stalled: start the clock again rather than send a burst
            self._start = loop.time() - self._pts / SAMPLE_RATE
        pcm = self._frames.popleft() if self._frames else _SILENCE
        frame = AudioFrame(format="s16", layout="mono", samples=_SAMPLES)
        frame.planes[0].update(pcm)
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = _TIME_BASE
        self._pts += _SAMPLES
        self.frames_sent += 1
        return frame


async def pump_from_page(track: MediaStreamTrack, sink: Callable[[bytes], None]) -> None:
    """Read the page's audio until its track ends; every 20 ms of 8 kHz mono PCM goes to ``sink``."""
    resampler = AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    reframer = Reframer()
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        assert isinstance(frame, AudioFrame)
        for out in resampler.resample(frame):
            reframer.push(bytes(out.planes[0])[: out.samples * 2])
        for pcm in reframer.frames():
            sink(pcm)
