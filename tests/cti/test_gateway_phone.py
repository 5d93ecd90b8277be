"""The browser phone's commands on the WebSocket (cti.gateway.phone) over real sockets, against a recording fake of the
node's phones: only an agent's own page drives its phone, the arguments are checked, a slow ``phone_on`` does not hold
up the connection's other commands, refusals keep their codes, and the phone is released when its connection ends."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from cti.errors import ControlError
from cti.events.bus import Bus
from cti.gateway import add_gateway_routes
from cti.gateway.phone import MAX_SDP_CHARS
from cti.tokens import Role, TokenIssuer
from tests.cti.test_gateway_fake import FakeControl
from tests.cti.test_gateway_ws import OPERATOR_TOKEN, Client


class FakePhones:
    """Records every command and release; ``phone_on`` waits for ``gate`` (ICE gathering, say)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str, dict[str, Any]]] = []
        self.released: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def command(self, agent_id: str, owner: int, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append((agent_id, owner, name, dict(args)))
        if name == "phone_on":
            await self.gate.wait()
            return {"sdp": "v=0 answer", "state": "ready", "phone_id": "p-1"}
        if name == "phone_answer":
            raise ControlError("no_call", "nothing is ringing")
        return {"state": "ready", "phone_id": "p-1"}

    def release(self, owner: int) -> None:
        self.released.append(owner)


class Node:
    def __init__(self, url: str, http: aiohttp.ClientSession, tokens: TokenIssuer, phones: FakePhones) -> None:
        self.url, self.http, self.tokens, self.phones = url, http, tokens, phones

    async def connect(self, role: Role, subject: str) -> Client:
        token = self.tokens.issue(role, subject).token
        client = Client(await self.http.ws_connect(f"{self.url}/ws?token={token}", protocols=("cti.json",)))
        assert (await client.recv())["type"] == "hello"
        return client


async def _serve(phones: FakePhones | None) -> AsyncIterator[Node]:
    tokens = TokenIssuer(b"k" * 32, ttl_s=600, clock=time.time)
    app = web.Application()
    add_gateway_routes(app, control=FakeControl(), bus=Bus(validate_schemas=True), tokens=tokens,
                       operator_token=OPERATOR_TOKEN, node="cti-t", phones=phones)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    async with aiohttp.ClientSession() as http:
        yield Node(f"http://127.0.0.1:{runner.addresses[0][1]}", http, tokens, phones or FakePhones())
    await runner.cleanup()


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async for served in _serve(FakePhones()):
        yield served


async def test_phone_on_answers_with_the_nodes_sdp_and_the_phone_is_released_with_the_connection(node: Node) -> None:
    page = await node.connect(Role.AGENT, "a1")
    reply = await page.command("phone_on", sdp="v=0 offer", auto_answer=True)
    assert reply["ok"] and reply["data"] == {"sdp": "v=0 answer", "state": "ready", "phone_id": "p-1"}
    agent, owner, name, args = node.phones.calls[0]
    assert (agent, name, args) == ("a1", "phone_on", {"sdp": "v=0 offer", "auto_answer": True})
    assert (await page.command("phone_hangup"))["data"]["state"] == "ready"
    refused = await page.command("phone_answer")
    assert refused["ok"] is False and refused["error"]["code"] == "no_call"  # the node's code, as it is
    await page.ws.close()
    for _ in range(50):
        if node.phones.released:
            break
        await asyncio.sleep(0.02)
    assert node.phones.released == [owner]


async def test_a_slow_phone_on_does_not_hold_up_the_connection(node: Node) -> None:
    page = await node.connect(Role.AGENT, "a1")
    node.phones.gate.clear()
    await page.ws.send_str(json.dumps({"type": "command", "id": "on", "command": "phone_on", "args": {"sdp": "x"}}))
    ready = await page.command("login", ready=True)  # answered while phone_on waits
    assert ready["ok"], ready
    node.phones.gate.set()
    reply = await page.recv()
    assert (reply["id"], reply["ok"], reply["data"]["state"]) == ("on", True, "ready")


@pytest.mark.parametrize(("args", "code"), [
    ({}, "bad_args"),
    ({"sdp": ""}, "bad_args"),
    ({"sdp": "x" * (MAX_SDP_CHARS + 1)}, "bad_args"),
    ({"sdp": "v=0", "auto_answer": "yes"}, "bad_args"),
    ({"sdp": "v=0", "agent_id": "a2"}, "forbidden"),  # an agent drives its own phone only
])
async def test_bad_phone_on_is_refused_before_the_node_sees_it(node: Node, args: dict[str, Any], code: str) -> None:
    page = await node.connect(Role.AGENT, "a1")
    reply = await page.command("phone_on", **args)
    assert reply["ok"] is False and reply["error"]["code"] == code, reply
    assert node.phones.calls == []


@pytest.mark.parametrize("role", [Role.SUPERVISOR, Role.OPERATOR])
async def test_only_an_agents_own_page_drives_a_phone(node: Node, role: Role) -> None:
    console = await node.connect(role, "s1" if role is Role.SUPERVISOR else "operator")
    reply = await console.command("phone_on", sdp="v=0", agent_id="a1")
    assert reply["ok"] is False and reply["error"]["code"] == "forbidden"
    assert node.phones.calls == []


async def test_a_node_without_browser_phones_says_so() -> None:
    async for bare in _serve(None):
        page = await bare.connect(Role.AGENT, "a1")
        reply = await page.command("phone_on", sdp="v=0")
        assert reply["ok"] is False and reply["error"]["code"] == "unknown_command"
