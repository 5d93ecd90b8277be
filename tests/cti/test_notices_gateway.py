"""Notices over the real WebSocket gateway on 127.0.0.1: a late agent gets the notice in hello, read receipts reach
the supervisor, agents cannot broadcast."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from cti.events.bus import Bus
from cti.floor.notices import NoticeService
from cti.gateway import GATEWAY_KEY, GatewaySettings, Session, add_gateway_routes
from cti.gateway.frames import Encoding
from cti.tokens import Principal, Role, TokenIssuer
from tests.cti.test_gateway_fake import FakeControl
from tests.cti.test_gateway_ws import Server


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    control, bus = FakeControl(), Bus(validate_schemas=True)
    tokens = TokenIssuer(b"k" * 32, ttl_s=600, clock=time.time)
    app = web.Application()
    add_gateway_routes(app, control=control, bus=bus, tokens=tokens, operator_token=None, node="cti-t",
                       settings=GatewaySettings(close_timeout_s=0.3))
    gateway, notices = app[GATEWAY_KEY], NoticeService(bus, "cti-t")

    def open_session(principal: Principal, protocol: str | None) -> Session:  # what ws.py will pass once wired
        return Session(principal, control=control, node="cti-t", encoding=Encoding.from_protocol(protocol),
                       notices=notices)

    monkeypatch.setattr(gateway, "open_session", open_session)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    async with aiohttp.ClientSession() as http:
        yield Server(f"http://127.0.0.1:{runner.addresses[0][1]}", bus, control, tokens, app, http)
    await runner.cleanup()


async def test_live_notice_late_agent_hello_and_read_receipt(server: Server) -> None:
    server.control.login("a1", ready=True)
    server.control.login("a2", ready=True)
    sup = await server.connect(Role.SUPERVISOR, "s1")
    assert (await sup.recv())["data"]["notices"] == []
    a1 = await server.connect(Role.AGENT, "a1")
    assert (await a1.recv())["data"]["notices"] == []

    reply = await sup.command("broadcast", text="system slow, apologise", priority="urgent", expires_in_s=300)
    assert reply["ok"] and reply["data"]["audience"] == ["sales"] and reply["data"]["require_ack"] is False
    notice_id = reply["data"]["notice_id"]
    assert (await sup.recv())["type"] == "notice.broadcast"  # the sender sees its own notice
    live = await a1.recv()
    assert live["type"] == "notice.broadcast" and live["data"]["text"] == "system slow, apologise"
    assert live["data"]["priority"] == "urgent"

    a2 = await server.connect(Role.AGENT, "a2")  # connects later: the notice comes in hello
    hello = await a2.recv()
    assert [n["notice_id"] for n in hello["data"]["notices"]] == [notice_id]

    read = await a2.command("notice_read", notice_id=notice_id)
    assert read["ok"] and read["data"]["agent_id"] == "a2" and read["data"]["read_at"] is not None
    receipt = await sup.recv()
    assert receipt["type"] == "notice.read" and receipt["data"]["agent_id"] == "a2"
    assert receipt["data"]["notice_id"] == notice_id

    receipts = await sup.command("notice_receipts", notice_id=notice_id)
    by_agent = {r["agent_id"]: r for r in receipts["data"]["receipts"]}
    assert by_agent["a1"]["delivered_at"] is not None and by_agent["a1"]["read_at"] is None
    assert by_agent["a2"]["read_at"] is not None

    a2_again = await server.connect(Role.AGENT, "a2")  # read already: not pending on reconnect
    assert (await a2_again.recv())["data"]["notices"] == []
    for client in (sup, a1, a2, a2_again):
        await client.ws.close()


async def test_agent_cannot_broadcast_and_other_queues_do_not_get_it(server: Server) -> None:
    server.control.login("a1", ready=True)
    server.control.login("a3", ready=True)
    a1 = await server.connect(Role.AGENT, "a1")
    await a1.recv()
    refused = await a1.command("broadcast", text="free pizza")
    assert not refused["ok"] and refused["error"]["code"] == "forbidden"
    receipts = await a1.command("notice_receipts", notice_id="n-x")
    assert not receipts["ok"] and receipts["error"]["code"] == "forbidden"
    sup = await server.connect(Role.SUPERVISOR, "s1")
    await sup.recv()
    sent = await sup.command("broadcast", text="sales only")
    assert sent["ok"]
    a3 = await server.connect(Role.AGENT, "a3")  # serves support: not in the audience
    assert (await a3.recv())["data"]["notices"] == []
    for client in (a1, sup, a3):
        await client.ws.close()

