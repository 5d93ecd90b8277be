"""Resuming with ?since=<seq>: the replay window (pure) and the gateway over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest

from cti.events.registry import Envelope
from cti.gateway import GATEWAY_KEY
from cti.gateway.replay import ReplayLog
from cti.tokens import Role
from tests.cti.test_gateway_ws import Client, Server, server, state_changed

__all__ = ["server"]  # the fixture, shared with test_gateway_ws


def env(seq: int, ts: float = 100.0) -> Envelope:
    return Envelope(type="call.reason", id=f"e{seq}", ts=ts, node="n", data={}, seq=seq)


def test_replay_log_gives_exactly_the_events_after_since() -> None:
    log = ReplayLog(last_seq=9, max_events=100, max_age_s=60)
    assert log.since(9, 100.0) == [] and log.since(8, 100.0) is None and log.since(10, 100.0) is None
    for seq in range(10, 20):
        log.append(env(seq), 100.0)
    assert [e.seq for e in log.since(14, 100.0) or []] == [15, 16, 17, 18, 19]
    assert [e.seq for e in log.since(9, 100.0) or []] == list(range(10, 20))
    assert log.since(19, 100.0) == []
    assert log.since(8, 100.0) is None  # seq 9 was published before the log started
    assert log.since(20, 100.0) is None  # a seq this run never reached (another run, another node)


def test_replay_log_bounds_count_and_age_and_never_spans_a_gap() -> None:
    log = ReplayLog(last_seq=0, max_events=5, max_age_s=60)
    for seq in range(1, 11):
        log.append(env(seq, ts=float(seq)), 10.0)
    assert log.window().first_seq == 6 and log.since(4, 10.0) is None
    assert [e.seq for e in log.since(5, 10.0) or []] == [6, 7, 8, 9, 10]
    assert log.since(6, 67.5) is None  # events 6 and 7 are older than 60 s at 67.5 s
    assert [e.seq for e in log.since(7, 67.5) or []] == [8, 9, 10]
    log.append(env(13, ts=69.0), 69.0)  # 11 and 12 never reached the gateway
    assert log.gaps == 1 and log.since(10, 69.0) is None and log.since(11, 69.0) is None
    assert [e.seq for e in log.since(12, 69.0) or []] == [13]
    with pytest.raises(ValueError):
        log.append(env(13), 69.0)


async def test_agent_resumes_with_exactly_the_missed_events_it_may_see(server: Server) -> None:
    server.control.login("a1", ready=True)
    agent = await server.connect(Role.AGENT, "a1")
    hello = await agent.recv()
    assert hello["type"] == "hello" and hello["data"]["resumed"] is False
    assert hello["data"]["seq"] == server.bus.last_seq
    server.publish("agent.state_changed", **state_changed("a1", "paused", "available", "lunch"))
    seen = await agent.recv()
    await agent.ws.close()
    # While it is away: 6 events for a1 (more than its send queue of 4 holds), others it may not see.
    missed = []
    for n in range(6):
        server.publish("agent.state_changed", **state_changed("a2", "paused", "available", f"r{n}"))
        missed.append(server.bus.publish(Envelope.new("agent.state_changed", state_changed(
            "a1", "available" if n % 2 else "paused", "paused" if n % 2 else "available", f"x{n}"),
            node="test", now=time.time())).seq)
        await asyncio.sleep(0.01)  # the dispatcher keeps up (its bus queue holds 8 here)
    ws = await server.http.ws_connect(f"{server.url}/ws?token={server.token(Role.AGENT, 'a1')}&since={seen['seq']}")
    back = Client(ws)
    hello = await back.recv()
    assert hello["type"] == "hello" and hello["data"]["resumed"] is True
    assert hello["data"]["seq"] == server.bus.last_seq
    replayed = [await back.recv() for _ in missed]
    assert [f["seq"] for f in replayed] == missed
    assert all(f["data"]["agent_id"] == "a1" for f in replayed)  # nothing of a2's
    server.publish("agent.state_changed", **state_changed("a1", "paused", "available", "live"))
    live = await back.recv()
    assert live["data"]["reason"] == "live" and live["seq"] == server.bus.last_seq
    await back.ws.close()
    stats = server.app[GATEWAY_KEY].stats()
    assert (stats.resumed, stats.replayed, stats.resyncs) == (1, 6, 0)


async def test_since_outside_the_window_gets_hello_then_resync(server: Server) -> None:
    server.control.login("a1", ready=True)
    for n in range(3):  # events of long ago: past the window's 600 s as soon as they are in
        server.bus.publish(Envelope.new("agent.state_changed", state_changed("a1", "paused", "available", f"{n}"),
                                        node="test", now=time.time() - 700))
    for since in (1, server.bus.last_seq + 5):
        ws = await server.http.ws_connect(f"{server.url}/ws?token={server.token(Role.OPERATOR, 'op')}&since={since}")
        client = Client(ws)
        hello, resync = await client.recv(), await client.recv()
        assert hello["type"] == "hello" and hello["data"]["resumed"] is False
        window = server.app[GATEWAY_KEY].replay.window()
        assert resync == {"type": "resync", "data": {"since": since, "first_seq": window.first_seq,
                                                     "last_seq": server.bus.last_seq}}
        await ws.close()
    assert server.app[GATEWAY_KEY].stats().resyncs == 2


@pytest.mark.parametrize("since", ["-1", "x", "1.5", "99999999999999999999", "", "١"])
async def test_bad_since_is_refused_before_the_upgrade(server: Server, since: str) -> None:
    url = f"{server.url}/ws?token={server.token(Role.OPERATOR, 'op')}&since={since}"
    async with server.http.get(url) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "bad_args"


async def test_events_the_gateway_lost_to_its_bus_queue_mean_resync_not_a_partial_replay(server: Server) -> None:
    server.control.login("a1", ready=True)
    since = server.bus.last_seq
    for n in range(12):  # without yielding: the gateway's bus queue (8 here) drops the oldest four
        server.publish("agent.state_changed", **state_changed("a1", "paused", "available", f"{n}"))
    ws = await server.http.ws_connect(f"{server.url}/ws?token={server.token(Role.AGENT, 'a1')}&since={since}")
    client = Client(ws)
    hello, resync = await client.recv(), await client.recv()
    assert hello["data"]["resumed"] is False and resync["type"] == "resync"
    await ws.close()
    assert server.app[GATEWAY_KEY].replay.gaps == 1
