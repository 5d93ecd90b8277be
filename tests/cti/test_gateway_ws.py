"""The WebSocket gateway over real sockets on 127.0.0.1: login, hello, screen pops, commands, visibility,
forbidden actions, bad frames, msgpack, token refusal, reconnect, slow consumers, token expiry."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgpack
import pytest
from aiohttp import web

from cti.events.bus import Bus
from cti.events.registry import Envelope
from cti.gateway import GATEWAY_KEY, GatewaySettings, add_gateway_routes
from cti.gateway.session import site_info
from cti.tokens import Role, TokenIssuer
from tests.cti.test_gateway_fake import FakeControl

OPERATOR_TOKEN = "op-token-0123456789"
SCREEN_POP = {"call_id": "c1", "agent_id": "a1", "queue": "sales", "caller_number": "+15550001",
              "caller_name": "Ann", "dialled_number": "100", "wait_seconds": 12.5, "ivr_inputs": {"menu": "1"},
              "crm": {"account": "42", "tier": "gold"}, "vip": True, "recording_serial": "R-000001"}


@dataclass
class Server:
    url: str
    bus: Bus
    control: FakeControl
    tokens: TokenIssuer
    app: web.Application
    http: aiohttp.ClientSession

    def token(self, role: Role, subject: str, ttl_s: float | None = None) -> str:
        return self.tokens.issue(role, subject, ttl_s=ttl_s).token

    def publish(self, type_: str, **data: Any) -> None:
        self.bus.publish(Envelope.new(type_, data, node="test", now=time.time()))

    async def connect(self, role: Role, subject: str, *, protocol: str = "cti.json") -> Client:
        ws = await self.http.ws_connect(f"{self.url}/ws?token={self.token(role, subject)}", protocols=(protocol,))
        return Client(ws)


class Client:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = 0

    async def recv(self, within: float = 1.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            msg = await self.ws.receive()
        if msg.type is aiohttp.WSMsgType.TEXT:
            decoded = json.loads(msg.data)
        elif msg.type is aiohttp.WSMsgType.BINARY:
            decoded = msgpack.unpackb(msg.data, raw=False)
        else:
            raise AssertionError(f"unexpected {msg.type} {msg.data!r} {msg.extra!r}")
        assert isinstance(decoded, dict)
        return decoded

    async def command(self, name: str, **args: Any) -> dict[str, Any]:
        self.ids += 1
        await self.ws.send_str(json.dumps({"type": "command", "id": f"r{self.ids}", "command": name, "args": args}))
        reply = await self.recv()
        assert reply["type"] == "reply" and reply["id"] == f"r{self.ids}", reply
        return reply


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    control, bus = FakeControl(), Bus(validate_schemas=True)
    tokens = TokenIssuer(b"k" * 32, ttl_s=600, clock=time.time)
    app = web.Application()
    add_gateway_routes(app, control=control, bus=bus, tokens=tokens, operator_token=OPERATOR_TOKEN, node="cti-t",
                       settings=GatewaySettings(slow_consumer_timeout_s=0.3, send_queue_size=4,
                                                subscription_size=8, close_timeout_s=0.3),
                       site=site_info("Asia/Shanghai", ("lunch", "coaching"), ("sale", "no_sale"),
                                      pause_reason_labels={"coaching": {"en": "Coaching", "zh-CN": "辅导"}}))
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as http:
        yield Server(f"http://127.0.0.1:{port}", bus, control, tokens, app, http)
    await runner.cleanup()


def state_changed(agent_id: str, state: str, previous: str, reason: str | None = None) -> dict[str, Any]:
    return {"agent_id": agent_id, "state": state, "previous_state": previous, "reason": reason, "call_id": None,
            "wrap_up_s": None}


async def test_login_token_then_hello_with_state(server: Server) -> None:
    server.control.login("a1", ready=False)
    async with server.http.post(f"{server.url}/auth/login", json={"role": "agent", "id": "a1",
                                                                 "password": "pw-a1"}) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["role"] == "agent" and body["subject"] == "a1" and body["expires_at"] > time.time()
    async with server.http.ws_connect(f"{server.url}/ws", headers={"Authorization": f"Bearer {body['token']}"}) as ws:
        hello = await Client(ws).recv()
    assert hello["type"] == "hello"
    data = hello["data"]
    assert (data["role"], data["subject"], data["node"], data["call"]) == ("agent", "a1", "cti-t", None)
    assert data["state"]["state"] == "paused" and data["state"]["since"] == 2000.0
    assert data["state"]["time_in_state_s"] > 0
    assert data["site"] == {"timezone": "Asia/Shanghai", "pause_reasons": ["lunch", "coaching"],
                            "dispositions": ["sale", "no_sale"],
                            "pause_reason_labels": {"coaching": {"en": "Coaching", "zh-CN": "辅导"}},
                            "disposition_labels": {}}


async def test_wrong_password_401_and_rate_limit_429(server: Server) -> None:
    bad = {"role": "agent", "id": "a1", "password": "nope"}
    for _ in range(5):
        async with server.http.post(f"{server.url}/auth/login", json=bad) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "bad_credentials"
    good = {"role": "agent", "id": "a1", "password": "pw-a1"}
    async with server.http.post(f"{server.url}/auth/login", json=good) as resp:
        assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
        assert (await resp.json())["error"]["code"] == "too_many_attempts"


async def test_supervisor_login_and_operator_issued_tokens(server: Server) -> None:
    login = {"role": "supervisor", "id": "s1", "password": "pw-s1"}
    async with server.http.post(f"{server.url}/auth/login", json=login) as resp:
        assert resp.status == 200 and (await resp.json())["role"] == "supervisor"
    url = f"{server.url}/api/v1/tokens"
    async with server.http.post(url, json={"role": "agent", "subject": "a1"}) as resp:
        assert resp.status == 401
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    async with server.http.post(url, json={"role": "agent", "subject": "zz"}, headers=headers) as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "unknown_agent"
    async with server.http.post(url, json={"role": "operator", "subject": "ops", "ttl_s": 30},
                                headers=headers) as resp:
        assert resp.status == 201
        issued = await resp.json()
    assert issued["expires_at"] == pytest.approx(time.time() + 30, abs=2)
    async with server.http.ws_connect(f"{server.url}/ws?token={issued['token']}") as ws:
        hello = await Client(ws).recv()
    assert hello["data"]["role"] == "operator" and len(hello["data"]["agents"]) == 3


@pytest.mark.parametrize("token", [None, "garbage", "a.b", "expired"])
async def test_bad_or_missing_token_is_401_before_upgrade(server: Server, token: str | None) -> None:
    if token == "expired":
        token = server.token(Role.AGENT, "a1", ttl_s=0.01)
        await asyncio.sleep(0.02)
    url = f"{server.url}/ws" + ("" if token is None else f"?token={token}")
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await server.http.ws_connect(url)
    assert err.value.status == 401


async def test_screen_pop_reaches_its_agent_only(server: Server) -> None:
    a1 = await server.connect(Role.AGENT, "a1")
    a2 = await server.connect(Role.AGENT, "a2", protocol="cti.msgpack")
    await a1.recv(), await a2.recv()
    server.publish("call.offered", **SCREEN_POP)
    server.publish("agent.state_changed", **state_changed("a2", "paused", "available", "lunch"))
    pop = await a1.recv()
    assert pop["type"] == "call.offered" and pop["node"] == "test" and pop["data"] == SCREEN_POP
    nxt = await a2.recv()  # a2's own event arrives, a1's screen pop never did
    assert nxt["type"] == "agent.state_changed" and nxt["data"]["agent_id"] == "a2"


async def test_agent_state_commands_seen_by_supervisor_within_1s(server: Server) -> None:
    server.control.login("a1", ready=True)
    agent, sup = await server.connect(Role.AGENT, "a1"), await server.connect(Role.SUPERVISOR, "s1")
    await agent.recv()
    sup_hello = (await sup.recv())["data"]
    assert {a["agent_id"] for a in sup_hello["agents"]} == {"a1", "a2"}
    assert [q["queue"] for q in sup_hello["queues"]] == ["sales"]

    reply = await agent.command("not_ready", reason="break")
    assert reply["ok"] and reply["data"]["state"] == "paused" and reply["data"]["reason"] == "break"
    started = time.monotonic()
    server.publish("agent.state_changed", **state_changed("a1", "paused", "available", "break"))
    seen = await sup.recv(within=1.0)
    assert seen["type"] == "agent.state_changed" and seen["data"]["state"] == "paused"
    assert time.monotonic() - started < 1.0
    assert (await agent.recv())["data"]["state"] == "paused"

    assert (await agent.command("ready"))["data"]["state"] == "available"
    server.control.agents["a1"]["state"] = "wrap_up"
    reply = await agent.command("end_wrap_up", disposition="sale")
    assert reply["ok"] and reply["data"]["state"] == "available"
    assert server.control.actions[-3:] == [("not_ready", "a1", "break"), ("ready", "a1"),
                                           ("end_wrap_up", "a1", "sale")]
    refused = await agent.command("end_wrap_up", disposition="sale")  # ControlError passes through
    assert refused["ok"] is False and refused["error"]["code"] == "acd.transition_illegal"


async def test_call_commands_on_own_call_and_queue_stats_push(server: Server) -> None:
    server.control.put_call("c1", "a1", "sales")
    agent, sup = await server.connect(Role.AGENT, "a1"), await server.connect(Role.SUPERVISOR, "s1")
    await agent.recv(), await sup.recv()
    for name, args in (("hold", {}), ("resume", {}), ("transfer", {"target": "support"}), ("hangup", {})):
        assert (await agent.command(name, call_id="c1", **args))["ok"]
    assert server.control.actions == [("hold", "c1", True), ("hold", "c1", False), ("transfer", "c1", "support"),
                                      ("hangup", "c1")]
    server.publish("queue.stats", **server.control.queue_snapshot("support"))
    server.publish("queue.stats", **server.control.queue_snapshot("sales"))
    stats = await sup.recv()
    assert stats["type"] == "queue.stats" and stats["data"]["queue"] == "sales"
    snap = await sup.command("snapshot")
    assert {a["agent_id"] for a in snap["data"]["agents"]} == {"a1", "a2"}
    assert all(isinstance(a["time_in_state_s"], float) for a in snap["data"]["agents"])
    assert [c["call_id"] for c in snap["data"]["calls"]] == ["c1"]


FORBIDDEN = {
    "agent subscribes to another agent": (Role.AGENT, "a1", "subscribe", {"agents": ["a2"]}),
    "agent commands another agent": (Role.AGENT, "a1", "not_ready", {"agent_id": "a2", "reason": "x"}),
    "agent issues a supervisor-only command": (Role.AGENT, "a1", "snapshot", {}),
    "agent hangs up another agent's call": (Role.AGENT, "a1", "hangup", {"call_id": "c3"}),
    "supervisor of another team logs an agent out": (Role.SUPERVISOR, "s2", "logout", {"agent_id": "a1"}),
    "supervisor of another team sets not-ready": (Role.SUPERVISOR, "s2", "not_ready",
                                                  {"agent_id": "a1", "reason": "x"}),
    "supervisor subscribes outside its queues": (Role.SUPERVISOR, "s1", "subscribe", {"queues": ["support"]}),
}


@pytest.mark.parametrize("case", list(FORBIDDEN), ids=list(FORBIDDEN))
async def test_forbidden_and_connection_stays_usable(server: Server, case: str) -> None:
    role, subject, name, args = FORBIDDEN[case]
    server.control.login("a1", ready=True)
    server.control.put_call("c3", "a3", "support")
    client = await server.connect(role, subject)
    await client.recv()
    reply = await client.command(name, **args)
    assert reply["ok"] is False and reply["error"]["code"] == "forbidden", reply
    assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]
    assert not any(action[0] in {name, "hangup"} for action in server.control.actions)
    target = {"agent_id": {"s1": "a1", "s2": "a3"}[subject]} if role is Role.SUPERVISOR else {}
    assert (await client.command("not_ready", reason="still here", **target))["ok"]


async def test_supervisor_acts_on_its_team_and_narrows(server: Server) -> None:
    server.control.login("a1", ready=True)
    sup = await server.connect(Role.SUPERVISOR, "s1")
    await sup.recv()
    assert (await sup.command("not_ready", agent_id="a1", reason="coaching"))["data"]["reason"] == "coaching"
    assert (await sup.command("logout", agent_id="a1"))["data"]["state"] == "logged_out"
    missing = await sup.command("logout")
    assert missing["error"]["code"] == "bad_args"
    narrowed = await sup.command("subscribe", agents=["a2"])
    assert narrowed["data"] == {"agents": ["a2"], "queues": ["sales"]}
    server.publish("agent.state_changed", **state_changed("a1", "paused", "available"))
    server.publish("agent.state_changed", **state_changed("a2", "paused", "available"))
    assert (await sup.recv())["data"]["agent_id"] == "a2"


BAD_FRAMES: list[tuple[str | bytes, str, str]] = [
    ("not json", "error", "bad_frame"),
    ("[1, 2]", "error", "bad_frame"),
    (b"\xc1\xc1", "error", "bad_frame"),
    (json.dumps({"type": "command", "command": "ready"}), "error", "bad_frame"),
    (json.dumps({"type": "command", "id": "x", "command": "fly"}), "reply", "unknown_command"),
    (json.dumps({"type": "command", "id": "x", "command": "not_ready"}), "reply", "bad_args"),
    (json.dumps({"type": "command", "id": "x", "command": "not_ready", "args": {"reason": 5}}), "reply", "bad_args"),
    (json.dumps({"type": "command", "id": "x", "command": "ready", "args": []}), "reply", "bad_args"),
    (json.dumps({"type": "command", "id": "x"}), "reply", "bad_frame"),
    (json.dumps({"type": "chat", "id": "x"}), "reply", "unknown_type"),
    (msgpack.packb({"type": "command", "id": 7, "command": "teleport", "args": {}}), "reply", "unknown_command"),
]


async def test_bad_frames_get_an_answer_and_the_connection_stays_up(server: Server) -> None:
    server.control.login("a1", ready=True)
    client = await server.connect(Role.AGENT, "a1")
    await client.recv()
    for raw, kind, code in BAD_FRAMES:
        await (client.ws.send_str(raw) if isinstance(raw, str) else client.ws.send_bytes(raw))
        answer = await client.recv()
        assert answer["type"] == kind and answer["error"]["code"] == code, (raw, answer)
        if kind == "reply":
            assert answer["ok"] is False
    assert (await client.command("ready"))["ok"]


async def test_msgpack_encoding_end_to_end(server: Server) -> None:
    server.control.login("a1", ready=True)
    client = await server.connect(Role.AGENT, "a1", protocol="cti.msgpack")
    assert client.ws.protocol == "cti.msgpack"
    hello = await client.ws.receive()
    assert hello.type is aiohttp.WSMsgType.BINARY and msgpack.unpackb(hello.data)["type"] == "hello"
    await client.ws.send_bytes(msgpack.packb({"type": "command", "id": 1, "command": "not_ready",
                                              "args": {"reason": "lunch"}}))
    reply = await client.ws.receive()
    assert reply.type is aiohttp.WSMsgType.BINARY
    assert msgpack.unpackb(reply.data)["data"]["reason"] == "lunch"
    server.publish("call.offered", **SCREEN_POP)
    event = await client.ws.receive()
    assert event.type is aiohttp.WSMsgType.BINARY
    assert Envelope.from_msgpack(event.data).data == SCREEN_POP


async def test_reconnect_gets_current_state_and_call_without_replay(server: Server) -> None:
    server.control.login("a1", ready=True)
    first = await server.connect(Role.AGENT, "a1")
    assert (await first.recv())["data"]["call"] is None
    await first.ws.close()
    server.publish("call.offered", **SCREEN_POP)  # happens while disconnected: not replayed
    call = server.control.put_call("c1", "a1", "sales")
    again = await server.connect(Role.AGENT, "a1")
    hello = (await again.recv())["data"]
    assert hello["state"]["state"] == "on_call" and hello["state"]["call_id"] == "c1" and hello["call"] == call
    with pytest.raises(TimeoutError):
        await again.recv(within=0.2)


async def test_slow_consumer_is_disconnected_and_counted(server: Server) -> None:
    gateway = server.app[GATEWAY_KEY]
    reader = await server.connect(Role.OPERATOR, "ops")
    await reader.recv()
    assert gateway.stats().connections == {"agent": 0, "supervisor": 0, "operator": 1}
    blob = {"blob": "x" * 60_000}
    async with asyncio.timeout(10):
        while gateway.stats().slow_disconnects == 0:  # the client never reads
            server.publish("call.offered", **{**SCREEN_POP, "crm": blob})
            await asyncio.sleep(0.005)
    assert gateway.stats().connections["operator"] == 0 and gateway.stats().events_dropped > 0


async def test_connection_closes_when_the_token_expires(server: Server) -> None:
    token = server.token(Role.AGENT, "a1", ttl_s=0.3)
    async with server.http.ws_connect(f"{server.url}/ws?token={token}") as ws:
        assert (await Client(ws).recv())["type"] == "hello"
        async with asyncio.timeout(2):
            closing = await ws.receive()
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4001


def raised(alert_id: str, queue: str | None) -> Envelope:
    return Envelope.new("alert.raised", {"alert_id": alert_id, "kind": "vip_in_queue", "severity": "warning",
                                         "message": "VIP caller waiting", "queue": queue, "call_id": "c9",
                                         "agent_id": None}, node="cti-t", now=time.time())


async def test_alert_ack_is_shared_between_supervisors_and_hello_lists_active_alerts(server: Server) -> None:
    server.control.supervisors["s3"] = ("pw-s3", frozenset({"sales"}), frozenset({"t1"}))
    s1, s3, s2 = [await server.connect(Role.SUPERVISOR, s) for s in ("s1", "s3", "s2")]
    for sup in (s1, s3, s2):
        assert (await sup.recv())["data"]["alerts"] == []
    server.bus.publish(raised("al-1", "sales"))
    server.bus.publish(raised("al-2", "support"))
    assert (await s1.recv())["data"]["alert_id"] == "al-1"
    assert (await s3.recv())["data"]["alert_id"] == "al-1"
    assert (await s2.recv())["data"]["alert_id"] == "al-2"

    late = await server.connect(Role.SUPERVISOR, "s3")  # a console opened after the alert sees it in hello
    alerts = (await late.recv())["data"]["alerts"]
    assert [(a["alert_id"], a["queue"], a["severity"]) for a in alerts] == [("al-1", "sales", "warning")]
    assert isinstance(alerts[0]["raised_at"], float)
    assert [a["alert_id"] for a in (await s2.command("snapshot"))["data"]["alerts"]] == ["al-2"]

    refused = await s2.command("alert_ack", alert_id="al-1")  # not one of s2's queues
    assert refused["ok"] is False and refused["error"]["code"] == "unknown_alert"
    assert (await s1.command("alert_ack", alert_id="nope"))["error"]["code"] == "unknown_alert"
    assert (await s1.command("alert_ack"))["error"]["code"] == "bad_args"
    agent = await server.connect(Role.AGENT, "a1")
    await agent.recv()
    assert (await agent.command("alert_ack", alert_id="al-1"))["error"]["code"] == "forbidden"

    reply = await s1.command("alert_ack", alert_id="al-1")
    assert reply["ok"] and reply["data"]["by"] == "s1" and reply["data"]["alert_id"] == "al-1"
    for sup in (s1, s3, late):
        event = await sup.recv()
        assert event["type"] == "alert.acknowledged"
        assert event["data"] == {"alert_id": "al-1", "by": "s1", "at": reply["data"]["at"], "queue": "sales"}
    again = await s3.command("alert_ack", alert_id="al-1")  # the first acknowledgement wins; no second event
    assert again["ok"] and again["data"]["by"] == "s1"
    with pytest.raises(TimeoutError):
        await s3.recv(within=0.3)
    with pytest.raises(TimeoutError):
        await s2.recv(within=0.1)  # support's supervisor does not hear about sales' alert

    fresh = await server.connect(Role.SUPERVISOR, "s1")
    assert (await fresh.recv())["data"]["alerts"] == []  # acknowledged: no longer in hello
    server.bus.publish(Envelope.new("alert.cleared", {"alert_id": "al-2", "kind": "vip_in_queue", "reason": "answered"},
                                    node="cti-t", now=time.time()))
    await s2.recv()
    assert (await s2.command("snapshot"))["data"]["alerts"] == []
