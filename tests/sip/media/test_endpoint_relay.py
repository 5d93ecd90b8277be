"""The relay fast path between two real RTP endpoints (sip.media.EndpointRelay) on 127.0.0.1.

A caller peer and an agent peer (plain UDP sockets) talk through two :class:`sip.rtp.RtpEndpoint`
in relay mode: nothing reaches the endpoints' sessions (no jitter buffer, no decoding), a lost
packet does not hold up the next one, same-law legs transcode nothing, and the streams go back to
the sessions (same SSRC, next sequence number) when the relay stops.
"""

from __future__ import annotations

import asyncio

from sip.media import DtmfReceived as RelayedDtmf
from sip.media import LegConfig, LegSide, MediaEvent, PeerLatched, Relay
from sip.media.aio import RELAY_COUNTERS, EndpointRelay
from sip.media.relay import TAP_LIMIT
from sip.rtp import AudioReceived, Codec, RtpPacket, SessionConfig
from sip.rtp.aio import RtpEndpoint

Addr = tuple[str, int]
HOST = "127.0.0.1"


class Peer(asyncio.DatagramProtocol):
    """A phone's RTP socket: keeps what it receives with the arrival time."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[float, RtpPacket]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.received.put_nowait((asyncio.get_running_loop().time(), RtpPacket.parse(data)))

    @property
    def addr(self) -> Addr:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def send(self, to: RtpEndpoint, seq: int, *, pt: int = 0, ssrc: int = 0x1111, payload: bytes = b"\xff" * 160,
             ) -> None:
        assert self.transport is not None
        packet = RtpPacket(payload_type=pt, sequence_number=seq, timestamp=160 * seq, ssrc=ssrc, payload=payload)
        self.transport.sendto(packet.serialize(), (HOST, to.local_port))

    async def next(self, limit: float = 2.0) -> tuple[float, RtpPacket]:
        async with asyncio.timeout(limit):
            return await self.received.get()


async def peer() -> Peer:
    _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(Peer, local_addr=(HOST, 0))
    return protocol


async def pair(codec_b: Codec = Codec.PCMU) -> tuple[Peer, Peer, RtpEndpoint, RtpEndpoint]:
    caller, agent = await peer(), await peer()
    a = await RtpEndpoint.open(SessionConfig(codec=Codec.PCMU, payload_type=0, rtcp_interval=None), host=HOST,
                               remote=caller.addr, rtcp=False)
    b = await RtpEndpoint.open(SessionConfig(codec=codec_b, payload_type=int(codec_b), rtcp_interval=None),
                               host=HOST, remote=agent.addr, rtcp=False)
    return caller, agent, a, b


def relayed_ts(relay: EndpointRelay) -> int:
    """The timestamp of the last packet the relay sent to the agent."""
    return relay.relay.position(LegSide.B)[1]


def close(*things: RtpEndpoint | Peer) -> None:
    for thing in things:
        if isinstance(thing, Peer):
            assert thing.transport is not None
            thing.transport.close()
        else:
            thing.close()


async def test_a_lost_packet_does_not_hold_up_the_next_and_nothing_is_decoded() -> None:
    caller, agent, a, b = await pair()
    relay = EndpointRelay(a, b)
    try:
        for seq in range(5):
            caller.send(a, seq)
        got = [(await agent.next())[1].sequence_number for _ in range(5)]
        first = got[0]
        assert got == [(first + k) & 0xFFFF for k in range(5)]
        # seq 5 is lost; 6 must come through at once (a depth-3 jitter buffer would hold it for 3 more packets)
        sent_at = asyncio.get_running_loop().time()
        caller.send(a, 6)
        arrived, packet = await agent.next(limit=0.5)
        assert packet.sequence_number == (first + 6) & 0xFFFF  # the gap is kept, not renumbered
        assert arrived - sent_at < 0.1
        assert packet.ssrc == b.session.ssrc  # the agent leg keeps the session's SSRC
        stats = relay.relay.stats[LegSide.A]
        assert (stats.forwarded, stats.transcoded) == (6, 0)  # same law: no transcoding
        assert relay.relay.loss(LegSide.A) == (7, 1)  # from the sequence numbers (RFC 3550 A.3)
        # nothing went through the sessions: no jitter buffer, no decoding, no audio events
        assert a.session.stats.packets_received == 0 and a.events.empty() and b.events.empty()
        # ... but the session's RTP timeout sees the traffic
        assert a.session.get_timer() is not None and a.session.get_timer() >= sent_at + 29.0  # type: ignore[operator]
    finally:
        relay.stop()
        close(a, b, caller, agent)


async def test_legs_of_different_laws_are_transcoded_and_counted() -> None:
    caller, agent, a, b = await pair(Codec.PCMA)
    before = RELAY_COUNTERS.transcoded
    relay = EndpointRelay(a, b)
    try:
        caller.send(a, 1)
        _, packet = await agent.next()
        assert (packet.payload_type, packet.payload) == (8, b"\xd5" * 160)  # μ-law 0 as A-law 0
        assert relay.relay.stats[LegSide.A].transcoded == 1
    finally:
        relay.stop()
        close(a, b, caller, agent)
    assert RELAY_COUNTERS.transcoded == before + 1


async def test_stop_gives_the_stream_back_to_the_session_in_sequence() -> None:
    caller, agent, a, b = await pair()
    relay = EndpointRelay(a, b)
    try:
        for seq in range(3):
            caller.send(a, seq)
        relayed = [(await agent.next())[1] for _ in range(3)]
        relay.stop()
        assert not a.diverted and not b.diverted
        b.send_pcm(bytes(320))  # the mixer's path sends through the session again
        _, own = await agent.next()
        assert own.ssrc == relayed[-1].ssrc and own.sequence_number == (relayed[-1].sequence_number + 1) & 0xFFFF
        caller.send(a, 3)  # and the session receives again
        async with asyncio.timeout(2):
            while not isinstance(await a.events.get(), AudioReceived):
                pass
    finally:
        relay.stop()
        close(a, b, caller, agent)


async def test_latching_dtmf_and_the_recording_tap() -> None:
    caller, agent, a, b = await pair()
    events: list[MediaEvent] = []
    relay = EndpointRelay(a, b, on_event=events.append, tap=True)
    moved = await peer()
    try:
        caller.send(a, 1)
        await agent.next()
        moved.send(a, 2)  # the same stream from another address: not the caller, dropped
        caller.send(a, 3)
        assert (await agent.next())[1].timestamp - relayed_ts(relay) == 0
        assert relay.relay.stats[LegSide.A].dropped == 1
        moved.send(a, 50, ssrc=0x2222)  # a new stream from a new address: the caller moved (latched)
        await agent.next()
        agent.send(b, 1)
        _, back = await moved.next()
        assert back.ssrc == a.session.ssrc and a.session.remote == moved.addr
        agent.send(b, 2, pt=101, payload=bytes([5, 0x80, 0, 160]))  # RFC 4733 end of "5", agent side
        await moved.next()  # forwarded to the caller, at its new address
        assert [type(e) for e in events] == [PeerLatched, RelayedDtmf]
        assert isinstance(events[1], RelayedDtmf) and (events[1].side, events[1].digit) == (LegSide.B, "5")
        tapped = relay.drain_tap()
        assert [(f.channel.name, f.codec) for f in tapped] == [("CALLER", Codec.PCMU)] * 3 + [("AGENT", Codec.PCMU)]
    finally:
        relay.stop()
        close(a, b, caller, agent, moved)


def test_the_recording_tap_is_bounded_when_nobody_drains_it() -> None:
    relay = Relay(LegConfig(codec=Codec.PCMU), LegConfig(codec=Codec.PCMU), tap=True)
    for seq in range(TAP_LIMIT + 5):
        packet = RtpPacket(payload_type=0, sequence_number=seq, timestamp=160 * seq, ssrc=1, payload=b"\xff" * 160)
        assert relay.forward(LegSide.A, packet.serialize(), seq * 0.02) is not None  # relayed all the same
    assert len(relay.drain_tap()) == TAP_LIMIT and relay.stats[LegSide.A].tap_dropped == 5
    relay.forward(LegSide.A, RtpPacket(payload_type=0, sequence_number=9999, timestamp=0, ssrc=1,
                                       payload=b"\xff").serialize(), 30.0)
    assert len(relay.drain_tap()) == 1  # drained: kept again
