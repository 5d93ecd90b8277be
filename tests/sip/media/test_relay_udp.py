"""UdpRelay over real UDP sockets on 127.0.0.1 between two fake peers."""

from __future__ import annotations

import asyncio

from sip.media.aio import UdpRelay
from sip.media.events import DtmfReceived, LegSide, PeerLatched
from sip.media.recorder import Channel
from sip.media.relay import LegConfig, Relay
from sip.rtp.g711 import Codec
from sip.rtp.packet import RtpPacket

Addr = tuple[str, int]


class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.received.put_nowait(data)


async def peer() -> tuple[asyncio.DatagramTransport, Peer]:
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))


async def test_relays_both_ways_between_two_fake_peers() -> None:
    caller_t, caller = await peer()
    agent_t, agent = await peer()
    agent_addr = agent_t.get_extra_info("sockname")[:2]
    relay = Relay(
        LegConfig(codec=Codec.PCMU, ssrc=1, initial_seq=0, initial_ts=0, channel=Channel.CALLER),
        LegConfig(codec=Codec.PCMA, ssrc=2, initial_seq=0, initial_ts=0, channel=Channel.AGENT),
    )
    udp = await UdpRelay.open(relay, local_a=("127.0.0.1", 0), local_b=("127.0.0.1", 0), remote_b=agent_addr)
    try:
        for k in range(20):
            pkt = RtpPacket(payload_type=0, sequence_number=k, timestamp=160 * k, ssrc=9, payload=b"\xff" * 160)
            caller_t.sendto(pkt.serialize(), udp.local_addr(LegSide.A))
        async with asyncio.timeout(5):
            got = [RtpPacket.parse(await agent.received.get()) for _ in range(20)]
        assert sorted(p.sequence_number for p in got) == list(range(20))
        assert {(p.payload_type, p.ssrc, p.payload) for p in got} == {(8, 2, b"\xd5" * 160)}  # μ-law 0 → A-law 0

        event = RtpPacket(payload_type=101, sequence_number=1, timestamp=0, ssrc=5, payload=bytes([3, 0x8A, 0, 160]))
        agent_t.sendto(event.serialize(), udp.local_addr(LegSide.B))
        async with asyncio.timeout(5):
            back = RtpPacket.parse(await caller.received.get())
            events = [await udp.events.get() for _ in range(2)]
        assert back.payload_type == 101 and back.ssrc == 1  # caller leg latched from its first packet
        assert isinstance(events[0], PeerLatched) and events[0].side is LegSide.A
        assert events[0].addr == caller_t.get_extra_info("sockname")[:2]
        # leg B's remote was known from its SDP and the agent sent from it: no latch event
        assert isinstance(events[1], DtmfReceived)
        assert (events[1].side, events[1].digit, events[1].duration) == (LegSide.B, "3", 160)
        assert udp.events.empty()
        assert relay.stats[LegSide.A].forwarded == 20
    finally:
        udp.close()
        caller_t.close()
        agent_t.close()
