"""Resuming with ?since=<seq>: the replay window (pure) and the gateway over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest

from cti.events.registry import Envelope, EnvelopeError
from cti.gateway import GATEWAY_KEY
from cti.gateway.replay import BLOCK_EVENTS, ReplayLog
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


def call_event(seq: int, ts: float = 100.0, **data: object) -> Envelope:
    return Envelope(type="call.offered", id=f"01J{seq:023d}", ts=ts, node="n", seq=seq,
                    data={"call_id": f"{seq * 7919:x}@127.0.0.1", "agent_id": f"{3000 + seq % 50}", "queue": "sales",
                          "wait_seconds": seq / 1000, **data})


def test_replay_log_gives_back_the_exact_frames_from_sealed_and_open_blocks() -> None:
    log = ReplayLog(last_seq=0, max_events=10_000, max_age_s=60)
    sent = [call_event(seq) for seq in range(1, 20 * BLOCK_EVENTS + 10)]  # 20 sealed blocks and an open one
    for envelope in sent:
        log.append(envelope, 100.0)
    for since in (0, 5, BLOCK_EVENTS - 1, BLOCK_EVENTS, 2 * BLOCK_EVENTS + 3, len(sent) - 3, len(sent)):
        replayed = log.since(since, 100.0)
        assert replayed is not None
        assert [e.frame for e in replayed] == [e.to_json() for e in sent[since:]]
        assert [e.seq for e in replayed] == [e.seq for e in sent[since:]]
    first = (log.since(0, 100.0) or [])[0]
    assert (first.type, first.agent_id, first.ts) == ("call.offered", "3001", 100.0)
    back = first.envelope()
    assert back == sent[0] and back.seq == 1
    # Kept compressed: far less than the frames themselves, the open block's frames included.
    assert log.nbytes < sum(len(e.to_json()) for e in sent) / 3


def test_replay_log_is_bounded_by_bytes() -> None:
    log = ReplayLog(last_seq=0, max_events=100_000, max_age_s=600, max_bytes=200_000)
    for seq in range(1, 60 * BLOCK_EVENTS):
        log.append(call_event(seq), 100.0)
        assert log.nbytes <= 200_000
    window = log.window()
    assert window.last_seq == 60 * BLOCK_EVENTS - 1 and 30 * BLOCK_EVENTS < window.first_seq < 55 * BLOCK_EVENTS
    assert log.since(window.first_seq - 2, 100.0) is None
    replayed = log.since(window.first_seq - 1, 100.0) or []
    assert [e.seq for e in replayed] == list(range(window.first_seq, window.last_seq + 1))
    assert [e.frame for e in replayed] == [call_event(e.seq).to_json() for e in replayed]


def test_an_event_that_cannot_be_encoded_keeps_its_seq_but_is_never_replayed() -> None:
    log = ReplayLog(last_seq=0, max_events=100, max_age_s=60)
    log.append(call_event(1), 100.0)
    log.append(call_event(2, wait_seconds=float("nan")), 100.0)  # JSON cannot carry NaN
    log.append(call_event(3), 100.0)
    replayed = log.since(0, 100.0) or []
    assert [(e.seq, bool(e.frame)) for e in replayed] == [(1, True), (2, False), (3, True)]
    with pytest.raises(EnvelopeError):
        replayed[1].envelope()


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


@pytest.mark.parametrize("protocol", ["cti.json", "cti.msgpack"])
async def test_resume_over_many_compressed_blocks_gives_every_event_once(server: Server, protocol: str) -> None:
    server.control.login("a1", ready=True)
    since = server.bus.last_seq
    published = []
    for n in range(3 * BLOCK_EVENTS + 5):
        envelope = server.bus.publish(Envelope.new("agent.state_changed", state_changed(
            "a1", "available" if n % 2 else "paused", "paused" if n % 2 else "available", f"r{n}"),
            node="test", now=time.time()))
        published.append(envelope.seq)
        if n % 4 == 3:
            await asyncio.sleep(0)  # the dispatcher keeps up (its bus queue holds 8 here)
    await asyncio.sleep(0.05)
    ws = await server.http.ws_connect(f"{server.url}/ws?token={server.token(Role.OPERATOR, 'op')}&since={since}",
                                      protocols=(protocol,))
    client = Client(ws)
    hello = await client.recv()
    assert hello["data"]["resumed"] is True
    replayed = [await client.recv() for _ in published]
    assert [f["seq"] for f in replayed] == published
    assert [f["data"]["reason"] for f in replayed] == [f"r{n}" for n in range(len(published))]
    await ws.close()


async def test_an_agent_resuming_gets_broadcasts_but_nothing_about_other_agents(server: Server) -> None:
    server.control.login("a1", ready=True)
    agent = await server.connect(Role.AGENT, "a1")
    since = (await agent.recv())["data"]["seq"]
    await agent.ws.close()
    server.publish("agent.state_changed", **state_changed("a2", "paused", "available", "not yours"))
    server.publish("notice.broadcast", notice_id="n1", sender="sup", text="fire drill", audience=["*"],
                   expires_at=None, priority="info", require_ack=False)
    server.publish("queue.stats", queue="sales", waiting=1, longest_wait_seconds=3.0, agents_logged_in=1,
                   agents_available=0, agents_busy=1, agents_offering=0, offered=1, answered=1, abandoned=0,
                   service_level=1.0, asa_seconds=1.0, window_seconds=900)  # never sent to agents, live or replayed
    server.publish("agent.state_changed", **state_changed("a1", "paused", "available", "yours"))
    await asyncio.sleep(0.05)
    ws = await server.http.ws_connect(f"{server.url}/ws?token={server.token(Role.AGENT, 'a1')}&since={since}")
    back = Client(ws)
    assert (await back.recv())["data"]["resumed"] is True
    replayed = [await back.recv(), await back.recv()]
    assert [f["type"] for f in replayed] == ["notice.broadcast", "agent.state_changed"]
    assert replayed[1]["data"]["reason"] == "yours"
    with pytest.raises(TimeoutError):
        await back.recv(within=0.2)
    await ws.close()
