"""A bridged call's media (cti.call.media.CallMedia) over real sockets: same-law legs take the relay fast path.

The caller and the agent are plain UDP sockets that negotiate PCMU with the call's endpoints through
real SDP; once bridged, a packet after a lost one reaches the other side at once (no jitter buffer),
nothing is transcoded, and the recording still gets both channels (decoded in its thread).
"""

from __future__ import annotations

import asyncio
import wave
from array import array
from pathlib import Path

from cti.call.media import CallMedia
from sip import SessionDescription, build_offer, negotiate
from sip.media import RecordingInfo, sine_tone
from sip.media.aio import RELAY_COUNTERS, PromptCache
from sip.rtp import Codec, PortAllocator
from sip.rtp.g711 import encode
from tests.sip.media.test_endpoint_relay import HOST, peer


async def test_bridged_same_law_legs_are_relayed_without_delay_or_transcoding_and_recorded(tmp_path: Path) -> None:
    caller, agent = await peer(), await peer()
    digits: list[str] = []
    media = CallMedia(host=HOST, ports=PortAllocator(46000, 46999), prompts=PromptCache(), rtp_timeout=30,
                      on_digit=digits.append, on_timeout=lambda _: None)
    before = (RELAY_COUNTERS.forwarded, RELAY_COUNTERS.transcoded, RELAY_COUNTERS.lost)
    try:
        await media.answer_caller(build_offer(HOST, caller.addr[1], (Codec.PCMU, Codec.PCMA)).serialize().encode())
        body = media.use_agent(await media.open_agent())
        assert body is not None
        offer = SessionDescription.parse(body)
        media.agent_answered(negotiate(offer, (Codec.PCMU,), HOST, agent.addr[1]).sdp.serialize().encode())
        assert media.caller is not None and media.agent is not None
        media.bridge()
        await media.start_recording(tmp_path, RecordingInfo(serial="20260101-T-000001",  # type: ignore[arg-type]
                                                            call_id="c1", started_at="2026-01-01T00:00:00Z"))
        a, b = media.caller.endpoint, media.agent.endpoint
        hello = encode(Codec.PCMU, sine_tone(400, 0.02))
        for seq in range(5):
            caller.send(a, seq, payload=hello)
            agent.send(b, seq, payload=hello, ssrc=0x3333)
        for side in (agent, caller):
            for _ in range(5):
                await side.next()
        sent_at = asyncio.get_running_loop().time()
        caller.send(a, 6, payload=hello)  # 5 was lost
        arrived, packet = await agent.next(limit=0.5)
        assert arrived - sent_at < 0.1 and packet.payload == hello
        caller.send(a, 7, pt=101, payload=bytes([9, 0x80, 0, 160]))  # the caller's RFC 4733 "9"
        _, event = await agent.next()
        assert event.payload_type == 101 and digits == ["9"]  # passed to the agent, and surfaced
    finally:
        path = await media.close()
        for side in (caller, agent):
            assert side.transport is not None
            side.transport.close()
    forwarded, transcoded, lost = (now - then for now, then in zip(
        (RELAY_COUNTERS.forwarded, RELAY_COUNTERS.transcoded, RELAY_COUNTERS.lost), before, strict=True))
    assert (forwarded, transcoded, lost) == (12, 0, 1)
    assert path is not None
    with wave.open(str(path)) as wav:
        samples = array("h", wav.readframes(wav.getnframes()))
    left, right = samples[0::2], samples[1::2]
    assert max(left) > 5000 and max(right) > 5000  # both channels recorded off the relay's tap


