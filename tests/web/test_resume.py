"""The agent desktop resumes its WebSocket with ?since=<seq> after a drop (docs/websocket.md, cti/web/js/conn.js).

Chromium's WebSocket to the node goes through Playwright's WebSocket routing, which lets the test drop the page's
connection and hold its reconnections while the agent's state changes through the admin API. When the page gets
through again it must ask for ``since`` = the last seq it saw, the node must answer ``hello`` with ``resumed: true``
and replay the change, and the page must show it.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from typing import Any

import pytest

from tests.support.procs import ServerProcess
from tests.support.sipp import HOST, OPERATOR_TOKEN
from tests.web.conftest import needs_browser
from tests.web.test_browser import new_page, sign_in

pytestmark = [pytest.mark.interop, needs_browser, pytest.mark.timeout(90)]


def _not_ready(server: ServerProcess, agent: str, reason: str) -> None:
    request = urllib.request.Request(f"http://{HOST}:{server.http_port}/api/v1/agents/{agent}/not-ready",
                                     data=json.dumps({"reason": reason}).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {OPERATOR_TOKEN}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5):
        pass


def test_agent_page_resumes_with_since_and_shows_what_it_missed(browser: Any, web_server: ServerProcess) -> None:
    from playwright.sync_api import expect

    page = new_page(browser, locale="en-GB")
    connections: list[dict[str, Any]] = []
    hold = {"on": False}

    def route(ws: Any) -> None:
        record: dict[str, Any] = {"url": ws.url, "frames": [], "route": ws, "held": hold["on"]}
        connections.append(record)
        if hold["on"]:
            ws.close()  # the node is "away": the page tries again later
            return
        server = ws.connect_to_server()
        ws.on_message(lambda message: server.send(message))

        def down(message: Any) -> None:
            record["frames"].append(json.loads(message))
            ws.send(message)

        server.on_message(down)

    page.route_web_socket(re.compile(r"/ws\?"), route)
    try:
        sign_in(page, f"http://{HOST}:{web_server.http_port}/agent", "Agent ID", "1002", "demo1002")
        state = page.get_by_role("region", name="My state")
        page.get_by_role("button", name="Log in ready").click()
        expect(state.get_by_role("button", name="Not ready")).to_be_visible()
        first = connections[-1]
        assert "since=" not in first["url"] and first["frames"][0]["type"] == "hello"
        # the button may show from the API's answer before the event arrives: the drop must come after the event,
        # or the resumed connection rightly replays it first
        deadline = time.monotonic() + 10
        while not any(f.get("type") == "agent.state_changed" and f["data"].get("state") == "available"
                      for f in first["frames"]) and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        last_seq = max(f.get("seq") or f.get("data", {}).get("seq") or 0 for f in first["frames"])

        hold["on"] = True
        first["route"].close()  # the connection drops
        deadline = time.monotonic() + 10
        while not any(c["held"] for c in connections) and time.monotonic() < deadline:
            page.wait_for_timeout(50)  # the page tries to come back and is held off
        _not_ready(web_server, "1002", "lunch")  # happens while the page is away
        hold["on"] = False

        # paused: the state panel offers to change the reason (its "Not ready" button is gone)
        expect(state.get_by_role("button", name="Change reason")).to_be_visible(timeout=15_000)
        back = next(c for c in connections if not c["held"] and c is not first)
        assert f"since={last_seq}" in back["url"], back["url"]
        hello, replayed = back["frames"][0], back["frames"][1]
        assert hello["type"] == "hello" and hello["data"]["resumed"] is True, hello
        assert replayed["type"] == "agent.state_changed" and replayed["seq"] > last_seq, replayed
        assert (replayed["data"]["state"], replayed["data"]["reason"]) == ("paused", "lunch")
        expect(page.get_by_role("status").first).to_have_text("Connected")
        assert page.js_errors == []
    finally:
        page.context.close()
