"""CTI layer end to end: SIPp calls, the agent's WebSocket gets the screen pop, supervisors watch.

A real `cti serve` with a flow that looks the caller up in a CRM (a small aiohttp server of this
test), a SIPp carrier and a SIPp agent phone, and two real WebSocket clients (agent 1003 and
supervisor sup1) logged in through /auth/login.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import OPERATOR_TOKEN, SippRunner, sipp_ready

pytestmark = [pytest.mark.interop, pytest.mark.skipif(not sipp_ready(), reason="sipp is not installed")]
REPO = Path(__file__).resolve().parents[2]

FLOW = """
flows:
  main:
    start: crm
    nodes:
      crm:
        type: lookup
        url: "http://127.0.0.1:{port}/customers/{{caller}}"
        timeout: 2
        result:
          customer_name: customer.name
          tier: customer.tier
        next: menu
        on_error: menu
      menu:
        type: menu
        prompts: [main_menu]
        options: {{"1": sales, "2": support}}
        timeout: 5
        retries: 2
        invalid_prompts: [invalid]
        no_input_prompts: [no_input]
        on_failure: support
        store: menu_choice
      sales: {{type: queue, queue: sales}}
      support: {{type: queue, queue: support}}
"""


@pytest.fixture
async def crm() -> AsyncIterator[int]:
    async def customer(request: web.Request) -> web.Response:
        number = request.match_info["number"]
        return web.json_response({"customer": {"name": "Ada Lovelace", "tier": "gold", "number": number}})

    app = web.Application()
    app.router.add_get("/customers/{number}", customer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield int(port)
    await runner.cleanup()


def _config(tmp: Path, crm_port: int) -> Path:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    flows = tmp / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(FLOW.format(port=crm_port))
    config["flows_dir"] = str(flows)
    config["prompts_dir"] = str(REPO / "config" / "prompts")
    # wrap-up long enough to end it by hand; no hard limits (their exit flows are the demo's, not in this flow set)
    limits = ("max_wait_s", "on_max_wait", "max_size", "on_full")
    config["queues"] = [{k: v for k, v in dict(q, wrap_up_s=120).items() if k not in limits} for q in config["queues"]]
    path = tmp / "cti.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def _login(http: aiohttp.ClientSession, base: str, role: str, ident: str, password: str) -> str:
    async with http.post(f"{base}/auth/login", json={"role": role, "id": ident, "password": password}) as resp:
        assert resp.status == 200, await resp.text()
        token: str = (await resp.json())["token"]
        return token


async def _next(ws: aiohttp.ClientWebSocketResponse, want: Any, limit_s: float) -> dict[str, Any]:
    """The next frame for which ``want(frame)`` is true (others are skipped)."""
    async with asyncio.timeout(limit_s):
        while True:
            frame: dict[str, Any] = json.loads((await ws.receive()).data)
            if want(frame):
                return frame


def _cdr_wrap_up(server: ServerProcess, call_id: str) -> tuple[str | None, str | None] | None:
    with sqlite3.connect(server.data_dir / "cti.sqlite3", timeout=5) as db:
        row = db.execute("SELECT disposition, wrap_up_notes FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    return None if row is None else (row[0], row[1])


def _cdr_serial(server: ServerProcess, call_id: str) -> str | None:
    with sqlite3.connect(server.data_dir / "cti.sqlite3", timeout=5) as db:
        row = db.execute("SELECT recording_serial FROM queue_legs WHERE call_id = ? AND recording_serial IS NOT NULL",
                         (call_id,)).fetchone()
    return None if row is None else str(row[0])


async def _command(ws: aiohttp.ClientWebSocketResponse, ident: str, command: str, **args: Any) -> dict[str, Any]:
    await ws.send_str(json.dumps({"type": "command", "id": ident, "command": command, "args": args}))
    return await _next(ws, lambda f: f.get("type") == "reply" and f.get("id") == ident, 5)


async def test_agent_gets_screen_pop_and_drives_its_state_supervisor_sees_it(crm: int, tmp_path: Path) -> None:
    config = _config(tmp_path, crm)
    sipps = SippRunner(tmp_path / "sipp")
    with run_server(tmp_path, config=config) as server:
        try:
            await _scenario(server, sipps)
        finally:
            await asyncio.to_thread(sipps.stop_all)


async def _scenario(server: ServerProcess, sipps: SippRunner) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    target = f"127.0.0.1:{server.sip_port}"
    agent_phone = sipps.agent(target, "1003", "agent_answer.xml", timeout=60)
    assert await asyncio.to_thread(agent_phone.wait_for_message, "SIP/2.0 200", 10)
    async with aiohttp.ClientSession() as http:
        agent_token = await _login(http, base, "agent", "1003", "demo1003")
        sup_token = await _login(http, base, "supervisor", "sup1", "demosup1")
        agent = await http.ws_connect(f"{base}/ws?token={agent_token}")
        sup = await http.ws_connect(f"{base}/ws?token={sup_token}")
        hello = await _next(agent, lambda f: f["type"] == "hello", 5)
        assert hello["data"]["subject"] == "1003"
        await _next(sup, lambda f: f["type"] == "hello", 5)
        async with http.post(f"{base}/api/v1/tokens", json={"role": "operator", "subject": "ops"},
                             headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}) as resp:
            assert resp.status == 201, await resp.text()
            ops_token = (await resp.json())["token"]
        ops = await http.ws_connect(f"{base}/ws?token={ops_token}")  # an operator sees the IVR's events too
        await _next(ops, lambda f: f["type"] == "hello", 5)
        assert (await _command(agent, "1", "login", ready=True))["ok"]
        logged_in = await _next(sup, lambda f: f.get("type") == "agent.logged_in", 5)
        assert logged_in["data"]["agent_id"] == "1003" and logged_in["data"]["by"] == "user"
        assert "support" in logged_in["data"]["queues"] and logged_in["data"]["device"].startswith("sip:")

        carrier = sipps.carrier(target, digit="2", caller="5551234", talk_ms=3000, timeout=40)
        pop = await _next(agent, lambda f: f.get("type") == "call.offered", 20)
        data = pop["data"]
        assert (data["agent_id"], data["queue"], data["caller_number"]) == ("1003", "support", "5551234")
        assert data["dialled_number"] == "100" and data["ivr_inputs"].get("menu_choice") == "2"
        assert data["crm"]["customer"]["name"] == "Ada Lovelace" or data["ivr_inputs"].get("customer_name") \
            == "Ada Lovelace"
        assert data["ivr_inputs"].get("tier") == "gold"
        answer = await _next(ops, lambda f: f.get("type") == "call.ivr_input"
                             and f["data"]["call_id"] == data["call_id"], 5)  # sent when the caller pressed 2
        assert (answer["data"]["node"], answer["data"]["digits"], answer["data"]["result"]) == ("menu", "2", "accepted")
        answered = await _next(agent, lambda f: f.get("type") == "call.answered", 20)
        serial = answered["data"]["recording_serial"]  # the recording starts at the answer: its serial is known
        assert serial, answered
        assert await asyncio.to_thread(carrier.wait, 40) == 0, carrier.report()
        for _ in range(50):
            stored = await asyncio.to_thread(_cdr_serial, server, str(data["call_id"]))
            if stored is not None:
                break
            await asyncio.sleep(0.1)
        assert stored == serial  # the serial the agent was shown is the recording's

        wrap = await _next(agent, lambda f: f.get("type") == "agent.state_changed"
                           and f["data"]["state"] == "wrap_up", 10)
        assert wrap["data"]["wrap_up_s"] == 120  # the queue's wrap_up_s (this test's config): the countdown
        long_notes = await _command(agent, "2a", "end_wrap_up", disposition="billing", notes="x" * 2001)
        assert not long_notes["ok"] and long_notes["error"]["code"] == "notes_too_long"  # still in wrap-up:
        reply = await _command(agent, "2", "end_wrap_up", disposition="billing", notes="  Asked for a refund.\n")
        assert reply["ok"], reply
        for _ in range(50):  # the CDR is rewritten with the disposition and the notes
            cdr = await asyncio.to_thread(_cdr_wrap_up, server, str(pop["data"]["call_id"]))
            if cdr == ("billing", "Asked for a refund."):
                break
            await asyncio.sleep(0.1)
        assert cdr == ("billing", "Asked for a refund.")
        sent = time.monotonic()
        assert (await _command(agent, "3", "not_ready", reason="break"))["ok"]
        seen = await _next(sup, lambda f: f.get("type") == "agent.state_changed"
                           and f["data"]["agent_id"] == "1003" and f["data"]["state"] == "paused", 5)
        assert time.monotonic() - sent < 1.0, "the supervisor saw the state change too late"
        assert seen["data"]["reason"] == "break"
        assert (await _command(agent, "4", "ready"))["ok"]
        await _next(sup, lambda f: f.get("type") == "agent.state_changed"
                    and f["data"]["agent_id"] == "1003" and f["data"]["state"] == "available", 5)
        forbidden = await _command(agent, "5", "not_ready", agent_id="1002", reason="break")
        assert not forbidden["ok"] and forbidden["error"]["code"] == "forbidden"
        assert (await _command(agent, "6", "logout"))["ok"]
        logged_out = await _next(sup, lambda f: f.get("type") == "agent.logged_out", 5)
        assert logged_out["data"] == {"agent_id": "1003", "reason": "user"}
        await agent.close()
        await sup.close()
        await ops.close()
