"""Browser phone benchmark: what one web phone's audio costs the node (docs/web.md, "Browser phone").

1. Per 20 ms frame, each piece of the bridge (cti/phone/media.py) and of aiortc's G.711 codec, against the node's
   own G.711 encode + decode of a frame (audioop, the reference: what a relayed call already pays per frame).
2. A whole web phone's media for ``SECONDS``: two aiortc peer connections on loopback in this process, the "node"
   one sending :class:`CallAudio` (fed 20 ms frames, as the call's RTP would) and reading the "page" track through
   :func:`pump_from_page` into a frame counter, the "page" one sending a 20 ms paced track back. The process CPU
   time over the wall time is the cost of BOTH ends (ICE, DTLS-SRTP, RTP, G.711 both ways, twice); one web phone
   in the node is about half of it. Reference in the same run: the idle loop for the same time.

Run: ``python tests/bench/bench_webphone.py`` (not collected by pytest; about 15 s).
"""

from __future__ import annotations

import asyncio
import fractions
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiortc import RTCPeerConnection, RTCRtpSender  # noqa: E402
from aiortc.codecs import get_decoder, get_encoder  # noqa: E402
from aiortc.rtcrtpparameters import RTCRtpCodecParameters  # noqa: E402
from av import AudioFrame, AudioResampler  # noqa: E402

from cti.phone.media import CallAudio, pump_from_page  # noqa: E402
from cti.phone.state import FRAME_BYTES, Reframer  # noqa: E402
from sip.rtp.g711 import Codec, decode, encode  # noqa: E402
from tests.support.tone import tone_pcm  # noqa: E402

SECONDS = 10.0
PCM = tone_pcm(1000, 0.02)
PCMU = RTCRtpCodecParameters(mimeType="audio/PCMU", clockRate=8000, channels=1, payloadType=0)


def _frame(pcm: bytes, pts: int) -> AudioFrame:
    frame = AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
    frame.planes[0].update(pcm)
    frame.sample_rate = 8000
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, 8000)
    return frame


def per_frame() -> None:
    n = 20_000
    encoder, decoder = get_encoder(PCMU), get_decoder(PCMU)
    payloads, _ = encoder.encode(_frame(PCM, 0))
    resampler, reframer = AudioResampler(format="s16", layout="mono", rate=8000), Reframer()

    def bridge_in() -> None:  # what pump_from_page does with one decoded frame
        for out in resampler.resample(_frame(PCM, 0)):
            reframer.push(bytes(out.planes[0])[: out.samples * 2])
        for _ in reframer.frames():
            pass

    pieces = {
        "reference: node G.711 encode + decode (audioop)": lambda: decode(Codec.PCMU, encode(Codec.PCMU, PCM)),
        "bridge: AudioFrame built (CallAudio.recv)": lambda: _frame(PCM, 0),
        "bridge: resample + reframe (pump_from_page)": bridge_in,
        "aiortc: PCMU encode of a frame": lambda: encoder.encode(_frame(PCM, 0)),
        "aiortc: PCMU decode of a packet": lambda: decoder.decode(_encoded(payloads[0])),
    }
    for name, fn in pieces.items():
        seconds = timeit.timeit(fn, number=n)
        print(f"{name:52s} {seconds / n * 1e6:7.1f} µs/frame")
    assert len(PCM) == FRAME_BYTES


def _encoded(payload: bytes) -> object:
    from aiortc.jitterbuffer import JitterFrame

    return JitterFrame(data=payload, timestamp=0)


class Paced(CallAudio):
    """The page's microphone: a 20 ms paced tone."""

    async def recv(self) -> AudioFrame:
        self.push(PCM)
        return await super().recv()


def _cpu_since(cpu: float, wall: float) -> float:
    return (time.process_time() - cpu) / (asyncio.get_running_loop().time() - wall)


async def whole_phone() -> None:
    loop = asyncio.get_running_loop()
    cpu, wall = time.process_time(), loop.time()
    await asyncio.sleep(SECONDS / 2)
    idle = _cpu_since(cpu, wall)

    node, page = RTCPeerConnection(), RTCPeerConnection()
    node_audio = CallAudio()
    received = [0]
    tasks: set[asyncio.Task[None]] = set()

    @node.on("track")
    def on_track(track: object) -> None:
        task = loop.create_task(pump_from_page(track, lambda pcm: received.__setitem__(0, received[0] + 1)),  # type: ignore[arg-type]
                                name="bench-pump")
        tasks.add(task)

    @page.on("track")
    def on_page_track(track: object) -> None:
        async def drain() -> None:
            while True:
                await track.recv()  # type: ignore[attr-defined]
        tasks.add(loop.create_task(drain(), name="bench-page-drain"))

    mic = Paced()
    transceiver = page.addTransceiver(mic, direction="sendrecv")
    transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("audio").codecs
                                     if c.mimeType == "audio/PCMU"])
    await page.setLocalDescription(await page.createOffer())
    node_t = node.addTransceiver(node_audio, direction="sendrecv")
    node_t.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == "audio/PCMU"])
    await node.setRemoteDescription(page.localDescription)
    await node.setLocalDescription(await node.createAnswer())
    await page.setRemoteDescription(node.localDescription)

    async def feed() -> None:  # the call's RTP into the bridge, 20 ms at a time
        while True:
            node_audio.push(PCM)
            await asyncio.sleep(0.02)
    connected = asyncio.Event()
    node.on("connectionstatechange", lambda: connected.set() if node.connectionState == "connected" else None)
    async with asyncio.timeout(10):
        await connected.wait()
    await asyncio.sleep(1.0)
    cpu, wall = time.process_time(), loop.time()
    await asyncio.sleep(SECONDS / 2)  # the phone is on, no call: nothing is sent either way
    on_idle = _cpu_since(cpu, wall)
    node_audio.start()
    mic.start()
    tasks.add(loop.create_task(feed(), name="bench-feed"))
    await asyncio.sleep(1.0)
    cpu, wall, before = time.process_time(), loop.time(), received[0]
    await asyncio.sleep(SECONDS)
    busy = _cpu_since(cpu, wall)
    frames = received[0] - before
    for task in tasks:
        task.cancel()
    await node.close()
    await page.close()
    print(f"idle loop (reference)                                {idle * 100:6.2f} % of a core")
    print(f"phone on, no call, both ends                         {on_idle * 100:6.2f} % of a core")
    print(f"one web phone, both ends (node + page peer)          {busy * 100:6.2f} % of a core; "
          f"{frames / SECONDS:.0f} frames/s reached the bridge (50 expected)")
    print(f"so one web phone in the node is about                {(busy - idle) / 2 * 100:6.2f} % of a core")


if __name__ == "__main__":
    per_frame()
    asyncio.run(whole_phone())
