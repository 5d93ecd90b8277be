"""A call's media with an SRTP leg (cti.call.media.CallMedia, cti.call.srtp) over real sockets: the caller is on SIP
over TLS with SDES keys, the agent on plain RTP. The relay unprotects what the caller sends and protects
what it gets; the IVR's prompts are protected; the recording holds plaintext. And the policy's refusals."""

from __future__ import annotations

import asyncio
import wave
from array import array
from pathlib import Path
from typing import Any

import pytest

from cti.call.media import CallMedia
from cti.call.srtp import SrtpPolicy
from sip import (
    RTP_AVP,
    RTP_SAVP,
    CryptoAttribute,
    SdpNegotiationError,
    SessionDescription,
    SrtpKeys,
    SrtpRequiredError,
    build_offer,
    negotiate,
    new_crypto,
)
from sip.media import RecordingInfo, sine_tone
from sip.media.aio import PromptCache
from sip.rtp import Codec, PortAllocator, RtpPacket, SrtpTransform
from sip.rtp.g711 import encode
from sip.sdes import crypto_attributes

HOST = "127.0.0.1"


class Phone(asyncio.DatagramProtocol):
    """A phone's RTP socket, with SRTP when given keys."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.srtp: SrtpTransform | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, port: int, seq: int, payload: bytes) -> None:
        assert self.transport is not None
        data = RtpPacket(payload_type=0, sequence_number=seq, timestamp=160 * seq, ssrc=0x5151,
                         payload=payload).serialize()
        self.transport.sendto(data if self.srtp is None else self.srtp.protect(data), (HOST, port))

    async def next(self) -> tuple[bytes, RtpPacket]:
        """The next RTP packet: as on the wire, and as read (unprotected on an SRTP phone)."""
        async with asyncio.timeout(2):
            while True:
                wire = await self.received.get()
                if 200 <= wire[1] <= 204:
                    continue  # RTCP
                return wire, RtpPacket.parse(wire if self.srtp is None else self.srtp.unprotect(wire))


async def _phone() -> Phone:
    _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(Phone, local_addr=(HOST, 0))
    return protocol



async def _agent_offer(media: CallMedia, *args: Any) -> SessionDescription:
    """Our offer to an agent's phone, its port made the call's agent leg (what the call does)."""
    body = media.use_agent(await media.open_agent(*args))
    assert body is not None
    return SessionDescription.parse(body)

def _media(policy: SrtpPolicy = SrtpPolicy.OPTIONAL) -> CallMedia:
    return CallMedia(host=HOST, ports=PortAllocator(47000, 47999), prompts=PromptCache(), rtp_timeout=30,
                     on_digit=lambda _: None, on_timeout=lambda _: None, srtp=policy)


async def test_srtp_caller_and_plain_agent_are_relayed_and_recorded_in_plaintext(tmp_path: Path) -> None:
    caller, agent = await _phone(), await _phone()
    mine = new_crypto(tag=3)
    media = _media()
    try:
        offer = build_offer(HOST, caller.port, (Codec.PCMU,), crypto=mine, proto=RTP_SAVP)
        answer = SessionDescription.parse(await media.answer_caller(offer.serialize().encode(), "TLS"))
        theirs = crypto_attributes(answer.media[0])
        assert answer.media[0].proto == RTP_SAVP and [c.tag for c in theirs] == [3]
        caller.srtp = SrtpTransform(SrtpKeys(local=mine.key, remote=theirs[0].key))
        agent_offer = await _agent_offer(media, "UDP")
        assert agent_offer.media[0].attribute("crypto") is None  # never a key over plain SIP
        media.agent_answered(negotiate(agent_offer, (Codec.PCMU,), HOST, agent.port).sdp.serialize().encode())
        assert media.caller is not None and media.agent is not None
        a, b = media.caller.endpoint.local_port, media.agent.endpoint.local_port

        prompt = encode(Codec.PCMU, sine_tone(300, 0.02))  # the IVR (the session) sends over SRTP
        media.caller.endpoint.send_pcm(sine_tone(300, 0.02))
        wire, packet = await caller.next()
        assert packet.payload == prompt and prompt not in wire and len(wire) == 12 + 160 + 10

        media.bridge()
        await media.start_recording(tmp_path, RecordingInfo(serial="20260101-T-000002",  # type: ignore[arg-type]
                                                            call_id="c2", started_at="2026-01-01T00:00:00Z"))
        hello, hi = encode(Codec.PCMU, sine_tone(400, 0.02)), encode(Codec.PCMU, sine_tone(800, 0.02))
        for seq in range(1, 6):
            caller.send(a, seq, hello)
            agent.send(b, seq, hi)
            wire, packet = await agent.next()
            assert packet.payload == hello and len(wire) == 172  # unprotected by the relay
            wire, packet = await caller.next()
            assert packet.payload == hi and hi not in wire  # protected by the relay
        caller.srtp, keyed = None, caller.srtp
        caller.send(a, 6, b"\x00" * 160)  # a plaintext packet on the SRTP leg: refused, not relayed
        caller.srtp = keyed
        caller.send(a, 7, hello)
        wire, packet = await agent.next()
        assert packet.payload == hello  # 7 is the next the agent gets: the plaintext 6 was dropped
        assert media.caller.endpoint.srtp is not None and media.caller.endpoint.srtp.refused == 1
    finally:
        path = await media.close()
        for phone in (caller, agent):
            assert phone.transport is not None
            phone.transport.close()
    assert path is not None
    with wave.open(str(path)) as wav:
        frames = array("h", wav.readframes(wav.getnframes()))
    assert max(frames[0::2]) > 1000 and max(frames[1::2]) > 1000  # both channels hold plaintext audio


async def test_the_policy_refuses_what_it_must() -> None:
    media = _media(SrtpPolicy.MANDATORY)
    key = CryptoAttribute(tag=1, key=bytes(30))
    try:
        with pytest.raises(SrtpRequiredError):  # plain RTP on a TLS leg where SRTP is mandatory
            await media.answer_caller(build_offer(HOST, 4000, (Codec.PCMU,)).serialize().encode(), "TLS")
        with pytest.raises(SdpNegotiationError):  # keys over plain SIP are never taken
            await media.answer_caller(build_offer(HOST, 4000, (Codec.PCMU,), crypto=key, proto=RTP_SAVP)
                                      .serialize().encode(), "UDP")
        assert media.caller is None  # refused before a port was taken
        offer = await _agent_offer(media, "TLS")
        assert offer.media[0].proto == RTP_SAVP and offer.media[0].attribute("crypto")
        offer = await _agent_offer(media, "TLS", SrtpPolicy.OPTIONAL)
        assert offer.media[0].proto == RTP_AVP and offer.media[0].attribute("crypto")  # best effort
        offer = await _agent_offer(media, "TLS", SrtpPolicy.OFF)
        assert offer.media[0].attribute("crypto") is None
    finally:
        await media.close()
