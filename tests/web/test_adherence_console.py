"""The adherence column of the supervisor console, end to end: a real `cti serve` (demo config, tolerance 0 so the
alert comes one second after the deviation starts), a schedule imported through the admin API, the agent logged in
during its planned break, headless Chromium on /supervisor, and a private Mosquitto that must get the same event.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.interop.test_mqtt import Broker
from tests.support.procs import run_server
from tests.support.sipp import HOST, OPERATOR_TOKEN
from tests.web.conftest import demo_config, needs_browser
from tests.web.test_browser import agent_row, base, new_page, sign_in

pytestmark = [pytest.mark.interop, needs_browser, pytest.mark.timeout(120)]

TOKEN = OPERATOR_TOKEN
SITE = ZoneInfo("Asia/Shanghai")


def api(port: int, method: str, path: str, body: bytes | None = None, content_type: str = "application/json") -> Any:
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=body, method=method,
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
    return json.loads(text) if text else None


def test_console_shows_an_adherence_exception_and_mqtt_carries_it(browser: Any, tmp_path: Path,
                                                                 shots: Path) -> None:
    from playwright.sync_api import expect

    broker = Broker(tmp_path)
    broker.start()
    config_path = demo_config(tmp_path)
    config = yaml.safe_load(config_path.read_text())
    config["node"] = {**config.get("node", {}), "timezone": "Asia/Shanghai"}
    config["adherence"] = {"tolerance_min": 0}
    config["mqtt"] = {"enabled": True, "host": HOST, "port": broker.port, "prefix": "cti"}
    config_path.write_text(yaml.safe_dump(config))
    sub = subprocess.Popen(["mosquitto_sub", "-h", HOST, "-p", str(broker.port), "-C", "1", "-W", "60",
                            "-t", "cti/+/adherence/exception"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with run_server(tmp_path, config=config_path) as server:
            now = dt.datetime.now(SITE).replace(second=0, microsecond=0)
            day = now.date().isoformat()

            def hhmm(delta_min: int) -> str:
                return (now + dt.timedelta(minutes=delta_min)).strftime("%H:%M")

            # a shift around now (kept inside one local day) with the break planned right now
            start, end = max(-60, -now.hour * 60 - now.minute), min(120, 24 * 60 - 1 - now.hour * 60 - now.minute)
            csv = (f"agent,date,start,end,activity\n1001,{day},{hhmm(start)},{hhmm(end)},shift\n"
                   f"1001,{day},{hhmm(max(start, -5))},{hhmm(min(end, 30))},break\n")
            done = api(server.http_port, "POST", "/api/v1/schedules/import?name=today.csv", csv.encode(), "text/csv")
            assert done["imported"] == 2

            page = new_page(browser, locale="en-GB")
            sign_in(page, f"{base(server)}/supervisor", "Supervisor ID", "sup1", "demosup1")
            alice = agent_row(page, "Alice Sales")
            expect(alice).to_contain_text("no exception")
            header = page.get_by_role("region", name="Agents", exact=True).get_by_role("columnheader",
                                                                                       name="Adherence")
            expect(header).to_be_visible()

            api(server.http_port, "POST", "/api/v1/agents/1001/login", json.dumps({"ready": True}).encode())
            expect(alice).to_contain_text("Out of adherence", timeout=10_000)
            expect(alice).to_contain_text("planned break")
            page.screenshot(path=str(shots / "supervisor-adherence.png"))
            # a console that connects now gets it in its hello
            late = new_page(browser, locale="en-GB")
            sign_in(late, f"{base(server)}/supervisor", "Supervisor ID", "sup1", "demosup1")
            expect(agent_row(late, "Alice Sales")).to_contain_text("Out of adherence")
            live = api(server.http_port, "GET", "/api/v1/adherence/live")
            assert [(a["agent_id"], a["verdict"], a["exception"]) for a in live["agents"]] == [("1001", "out", True)]

            api(server.http_port, "POST", "/api/v1/agents/1001/not-ready", json.dumps({"reason": "break"}).encode())
            expect(alice).to_contain_text("no exception", timeout=10_000)
            assert page.js_errors == [] and late.js_errors == []
            late.context.close()
            page.context.close()
        out, err = sub.communicate(timeout=30)
        assert sub.returncode == 0, err
        message = json.loads(out)
        assert message["type"] == "adherence.exception"
        assert message["data"]["agent_id"] == "1001"
        assert message["data"]["activity"] == "break" and message["data"]["state"] == "available"
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
        broker.stop()
