"""The asyncio RTP endpoint over real UDP sockets on 127.0.0.1 (port 0 and allocated ports)."""

from __future__ import annotations

import asyncio
import struct

import pytest

from sip.rtp import (
    AudioReceived,
    DtmfReceived,
    PeerAddressLearned,
    PortAllocator,
    RtcpReceived,
    RtpEvent,
    SessionConfig,
    StreamTimedOut,
)
from sip.rtp.aio import RtpEndpoint

FRAME = struct.pack("<160h", *([3000, -3000] * 80))


async def next_of(endpoint: RtpEndpoint, kind: type[RtpEvent], limit: float = 2.0) -> RtpEvent:
    async with asyncio.timeout(limit):
        while True:
            event = await endpoint.events.get()
            if isinstance(event, kind):
                return event


async def test_two_endpoints_exchange_audio_and_learn_addresses() -> None:
    config = SessionConfig(rtcp_interval=None, timeout=None)
    async with await RtpEndpoint.open(config) as a, await RtpEndpoint.open(config) as b:
        # a knows b's address (from SDP); b was told a wrong one and must learn a's real one.
        a.session.remote = b.local_address
        b.session.remote = ("127.0.0.1", 9)
        a.send_pcm(FRAME)
        learned = await next_of(b, PeerAddressLearned)
        assert isinstance(learned, PeerAddressLearned) and learned.addr == a.local_address
        audio = await next_of(b, AudioReceived)
        assert isinstance(audio, AudioReceived) and len(audio.pcm or b"") == 320
        b.send_pcm(FRAME)  # goes to the learned address
        back = await next_of(a, AudioReceived)
        assert isinstance(back, AudioReceived)
        b.send_dtmf("9", duration=0.06)
        digit = await next_of(a, DtmfReceived)
        assert isinstance(digit, DtmfReceived) and digit.digit == "9"


async def test_rtp_timeout_fires_with_a_short_value() -> None:
    config = SessionConfig(rtcp_interval=None, timeout=0.15)
    loop = asyncio.get_running_loop()
    async with await RtpEndpoint.open(config) as endpoint:
        started = loop.time()
        event = await next_of(endpoint, StreamTimedOut, limit=2.0)
        assert isinstance(event, StreamTimedOut) and event.silence >= 0.15
        assert loop.time() - started < 1.0


async def test_allocated_ports_bind_rtp_and_rtcp_and_are_released() -> None:
    ports = PortAllocator(40000, 40100)
    seen: list[RtpEvent] = []
    got_rtcp = asyncio.Event()

    def on_event(event: RtpEvent) -> None:
        seen.append(event)
        if isinstance(event, RtcpReceived):
            got_rtcp.set()

    config = SessionConfig(rtcp_interval=0.05, timeout=None)
    async with await RtpEndpoint.open(config, allocator=ports, on_event=on_event) as a:
        assert a.local_port % 2 == 0 and ports.in_use == {a.local_port}
        async with await RtpEndpoint.open(config, allocator=ports, remote=a.local_address) as b:
            b.send_pcm(FRAME)
            async with asyncio.timeout(2):
                await got_rtcp.wait()
            assert any(isinstance(e, AudioReceived) for e in seen)
    assert ports.in_use == frozenset()


async def test_close_is_idempotent() -> None:
    endpoint = await RtpEndpoint.open(SessionConfig(rtcp_interval=None))
    endpoint.close()
    endpoint.close()
    assert endpoint.closed


@pytest.mark.parametrize("host", ["::1"])
async def test_ipv6_loopback(host: str) -> None:
    config = SessionConfig(rtcp_interval=None, timeout=None)
    try:
        a = await RtpEndpoint.open(config, host=host)
    except OSError:
        pytest.skip("no IPv6 loopback")
    async with a, await RtpEndpoint.open(config, host=host, remote=a.local_address) as b:
        b.send_pcm(FRAME)
        assert isinstance(await next_of(a, AudioReceived), AudioReceived)


async def test_a_block_of_ports_held_by_another_process_is_jumped_over() -> None:
    """Another process (a second server given the same range) holds the first 40 pairs: calls still get ports.
    Walking on pair by pair, 16 attempts would all fail on the block."""
    import socket

    low, high = 41000, 41200
    held = []
    for port in range(low, low + 80):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        held.append(sock)
    try:
        ports = PortAllocator(low, high)
        config = SessionConfig(timeout=None)
        opened = [await RtpEndpoint.open(config, allocator=ports) for _ in range(10)]
        assert all(e.local_port >= low + 80 for e in opened)
        for endpoint in opened:
            endpoint.close()
    finally:
        for sock in held:
            sock.close()
