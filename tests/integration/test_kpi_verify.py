"""The live "today" figures and the records agree (`cti kpi verify`): SIPp calls through `cti serve --demo`
with a short and a longer abandon, a blind transfer from support to sales, answers and wrap-ups; then the
same check after a restart on the same database (today is rebuilt from the records, not started at zero)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import OPERATOR_TOKEN, SippRunner, agent_login_ready, sipp_ready

pytestmark = [pytest.mark.interop, pytest.mark.skipif(not sipp_ready(), reason="sipp is not installed")]


def cti(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CTI_URL": f"http://127.0.0.1:{server.http_port}", "CTI_TOKEN": OPERATOR_TOKEN}
    return subprocess.run([sys.executable, "-m", "cti", *args], capture_output=True, text=True, env=env, timeout=60)


def api(server: ServerProcess, method: str, path: str) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{server.http_port}{path}", method=method,
                                     data=b"{}" if method == "POST" else None,
                                     headers={"Authorization": f"Bearer {OPERATOR_TOKEN}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        body = answer.read()
    return json.loads(body) if body else None


def live(server: ServerProcess) -> dict[str, dict[str, Any]]:
    return {q["queue"]: q for q in api(server, "GET", "/api/v1/queues")["queues"]}


def settle(server: ServerProcess, offered: int) -> None:
    """Wait until the live tally shows ``offered`` calls and the writer had time to commit (50 ms linger)."""
    deadline = time.monotonic() + 10
    while sum(q["offered"] for q in live(server).values()) < offered and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)


def test_live_figures_match_the_records_after_calls_and_after_a_restart(tmp_path: Path) -> None:
    sipps = SippRunner(tmp_path / "sipp")
    data = tmp_path / "var"
    try:
        with run_server(tmp_path, data_dir=data) as server:
            target = f"127.0.0.1:{server.sip_port}"
            # A caller hangs up during the greeting (its digit is not heard): an IVR abandon, no queue leg.
            quitter = sipps.carrier(target, digit="9", greeting_ms=500, hangup_ms=300, caller="5550009", name="ivr")
            assert quitter.wait(30) == 0, quitter.report()
            # Nobody is ready: both callers wait in support and hang up (one short abandon, one after ~6 s).
            short = sipps.carrier(target, digit="2", hangup_ms=300, caller="5550001", name="short")
            longer = sipps.carrier(target, digit="2", hangup_ms=6500, caller="5550002", name="longer")
            assert short.wait(30) == 0, short.report()
            assert longer.wait(30) == 0, longer.report()
            # 1003 answers a support call and transfers it (REFER) to sales, where 1001 answers.
            first = sipps.agent(target, "1003", "agent_answer_refer.xml", "-key", "refer_to", "sales",
                                "-set", "talk_ms", "1500", timeout=40)
            second = sipps.agent(target, "1001", "agent_answer.xml", timeout=40)
            assert first.wait_for_message("SIP/2.0 200", 10) and second.wait_for_message("SIP/2.0 200", 10)
            agent_login_ready(server.http_port, "1003")
            agent_login_ready(server.http_port, "1001")
            caller = sipps.carrier(target, digit="2", caller="5550003", talk_ms=6000, timeout=40, name="transfer")
            assert first.wait(30) == 0, first.report()
            assert caller.wait(40) == 0, caller.report()
            assert second.wait(15) == 0, second.report()
            for agent in ("1003", "1001"):  # wrap-ups ended by hand (the demo's last 30 s)
                api(server, "POST", f"/api/v1/agents/{agent}/end-wrap-up")
            settle(server, offered=4)
            figures = live(server)
            assert (figures["support"]["offered"], figures["support"]["abandoned"]) == (3, 2)
            assert (figures["sales"]["offered"], figures["sales"]["answered"]) == (1, 1)
            checked = cti(server, "kpi", "verify")
            assert checked.returncode == 0, checked.stdout + checked.stderr
            assert "0 differences" in checked.stdout
            shown = cti(server, "report", "queues", "--from", time.strftime("%Y-%m-%d"), "--to",
                        time.strftime("%Y-%m-%d"), "--interval", "30m")
            assert shown.returncode == 0, shown.stderr
            print(shown.stdout)
            report = json.loads(cti(server, "report", "queues", "--from", time.strftime("%Y-%m-%d"), "--to",
                                    time.strftime("%Y-%m-%d"), "--interval", "day", "--json").stdout)
            support = next(r for r in report["rows"] if r["group"] == "support" and r["interval"] == "total")
            assert support["figures"]["transfers"] == 1 and support["figures"]["handled"] == 1
            assert support["figures"]["avg_acw_s"] > 0  # the wrap-up reached the leg (AHT = talk + hold + ACW)
            csv = cti(server, "report", "agents", "--from", "today", "--to", "today", "--interval", "day", "--csv")
            lines = csv.stdout.splitlines()
            assert csv.returncode == 0 and lines[0].startswith("group,interval,state_s.")
            assert sum(1 for line in lines if line.startswith("1003,total,")) == 1
        with run_server(tmp_path, data_dir=data, log_name="server2.log") as again:
            assert live(again)["support"]["offered"] == 3 and live(again)["sales"]["answered"] == 1
            rechecked = cti(again, "kpi", "verify")
            assert rechecked.returncode == 0, rechecked.stdout + rechecked.stderr
            past = cti(again, "kpi", "verify", "--date", "2000-01-01")  # replayed from that day's (no) legs
            assert past.returncode == 0 and "replayed from the day's legs" in past.stdout, past.stdout + past.stderr
            print(checked.stdout + past.stdout)
            future = cti(again, "kpi", "verify", "--date", "2100-01-01")
            assert future.returncode == 2 and "after the site's today" in future.stderr
            ivr = cti(again, "report", "ivr", "--from", "today", "--to", "today", "--interval", "day")
            assert ivr.returncode == 0, ivr.stderr
            print(ivr.stdout)
            figures = json.loads(cti(again, "report", "ivr", "--from", "today", "--to", "today", "--interval", "day",
                                     "--json").stdout)
            main = next(r for r in figures["rows"] if r["group"] == "100" and r["interval"] == "total")
            assert main["flow"] == "main" and main["figures"]["to_queue"] == 3  # three callers, four legs
            assert main["figures"]["offered"] == 4 and main["figures"]["ivr_abandoned"] == 1
            patience = cti(again, "staffing", "--calls", "100", "--aht-s", "180", "--model", "erlang-a",
                           "--patience-from-records", "--from", "today", "--to", "today", "--queue", "support",
                           "--what-if", "1")
            assert patience.returncode == 0 and "patience from the records" in patience.stdout, patience.stderr
            print(patience.stdout)
            refused = cti(again, "report", "queues", "--from", "2026-12-07", "--to", "2026-12-01")
            assert refused.returncode == 2 and "from must be before to" in refused.stderr
    finally:
        sipps.stop_all()
