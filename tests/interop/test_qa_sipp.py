"""QA over calls made through SIPp against `cti serve --demo`: three calls to agent 1003 (carrier and agent
phones are SIPp), then a rule "each agent's 2nd call lasting over 2 s" picks exactly the 2nd one and says
"insufficient calls" for agent 1001; `cti qa verify --db` agrees; the real recording plays for its agent (login
token) and is refused (403) to another agent.

The rule is published and closed by a QA service with a hand-stepped clock on the node's own database (a node
refuses to publish a rule for a day already begun), while the node keeps running, in a process of its own with a
time limit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cti.qa.service import QaService
from cti.store import open_store
from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import HOST, OPERATOR_TOKEN, SippRunner, agent_login_ready, sipp_ready

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180),
              pytest.mark.skipif(not sipp_ready(), reason="sipp (Debian sip-tester) or its pcaps are not installed")]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    workdir = tmp_path / "server"
    workdir.mkdir()
    with run_server(workdir) as srv:
        yield srv


def _http(server: ServerProcess, method: str, path: str, body: Any = None, token: str = OPERATOR_TOKEN
          ) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://{HOST}:{server.http_port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _legs(server: ServerProcess) -> list[sqlite3.Row]:
    with contextlib.closing(sqlite3.connect(server.data_dir / "cti.sqlite3")) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM queue_legs WHERE outcome = 'answered' AND recording_serial IS NOT NULL "
                          "ORDER BY t_answer").fetchall()


def _call(server: ServerProcess, sipps: SippRunner, n: int) -> None:
    target = f"{HOST}:{server.sip_port}"
    agent = sipps.agent(target, "1003", "agent_answer.xml", timeout=40)
    assert agent.wait_for_message("SIP/2.0 200", 10), agent.report()
    if n == 0:
        agent_login_ready(server.http_port, "1003")
    carrier = sipps.carrier(target, digit="2", talk_ms=3000, timeout=40, name=f"carrier{n}")
    assert carrier.wait(50) == 0, carrier.report()
    assert agent.wait(15) == 0, agent.report()
    deadline = time.monotonic() + 10
    while len(_legs(server)) < n + 1:  # the node's writer stores the leg right after the call
        assert time.monotonic() < deadline, "the call's queue leg was not stored"
        time.sleep(0.1)
    status, body = _http(server, "POST", "/api/v1/agents/1003/end-wrap-up", {})
    assert status == 200, body
    # The leg's wrap-up time (acw_s, a sampling input) is stored once the wrap-up ends: a sample closed before
    # that would be verified later against different inputs (docs/qa.md, "When to close").
    deadline = time.monotonic() + 10
    while _legs(server)[n]["acw_s"] <= 0:
        assert time.monotonic() < deadline, "the leg's wrap-up time was not stored"
        time.sleep(0.1)


async def _sample(db: Path, day: dt.date) -> tuple[dict[str, Any], dict[str, Any]]:
    store = await open_store(db)
    try:
        midnight = dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()
        clock = [midnight - 3600]
        qa = QaService(store, zone="UTC", clock=lambda: clock[0])
        await qa.publish_rule({
            "rule_id": "QA-SIPP-1", "period": {"start": day.isoformat(), "end": day.isoformat()},
            "scope": {"agents": ["1001", "1003"]}, "filter": {"field": "talk_s", "op": ">", "value": 2},
            "select": {"method": "nth", "n": 2}}, actor="operator")
        clock[0] = midnight + 86400 + 60
        closed = await qa.close_rule("QA-SIPP-1", actor="operator")
        return closed, await qa.verify("QA-SIPP-1")
    finally:
        await store.close()


def _sample_apart(db: Path, day: dt.date) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`_sample` in a process of its own, bounded: a store that never answered would otherwise hold this
    process (its event loop waiting on a database thread) where no test timeout can reach it."""
    script = ("import asyncio, datetime, json, sys; from pathlib import Path; "
              "from tests.interop.test_qa_sipp import _sample; "
              "print(json.dumps(asyncio.run(_sample(Path(sys.argv[1]), datetime.date.fromisoformat(sys.argv[2])))))")
    done = subprocess.run([sys.executable, "-c", script, str(db), day.isoformat()], capture_output=True, text=True,
                          timeout=90, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stdout + done.stderr
    closed, verdict = json.loads(done.stdout.strip().splitlines()[-1])
    return closed, verdict


def test_the_second_call_through_sipp_is_sampled_and_plays_for_its_agent_only(server: ServerProcess,
                                                                              sipps: SippRunner) -> None:
    for n in range(3):
        _call(server, sipps, n)
    legs = _legs(server)
    assert [leg["agent_id"] for leg in legs] == ["1003"] * 3 and all(leg["talk_s"] > 2 for leg in legs)
    days = {dt.datetime.fromtimestamp(leg["t_answer"], dt.UTC).date() for leg in legs}
    if len(days) > 1:
        pytest.skip("the calls straddled midnight UTC")
    closed, verdict = _sample_apart(server.data_dir / "cti.sqlite3", days.pop())
    picked = {s["agent_id"]: (s["recording_serial"], s["reason"]) for s in closed["samples"]}
    assert picked == {"1001": (None, "insufficient_calls"), "1003": (legs[1]["recording_serial"], "nth:2")}
    assert verdict["match"] is True
    audit = subprocess.run([sys.executable, "-m", "cti", "qa", "verify", "QA-SIPP-1", "--db",
                            str(server.data_dir / "cti.sqlite3")], capture_output=True, text=True, timeout=60)
    assert audit.returncode == 0 and "MATCH" in audit.stdout, audit.stdout + audit.stderr

    serial = legs[1]["recording_serial"]
    status, body = _http(server, "POST", "/auth/login", {"role": "agent", "id": "1003", "password": "demo1003"})
    assert status == 200, body
    own = json.loads(body)["token"]
    status, audio = _http(server, "GET", f"/api/v1/qa/recordings/{serial}/audio?channel=caller", token=own)
    assert status == 200 and audio[:4] == b"RIFF" and len(audio) > 44 + 2 * 8000 * 2  # over 2 s of caller audio
    status, body = _http(server, "POST", "/auth/login", {"role": "agent", "id": "1001", "password": "demo1001"})
    other = json.loads(body)["token"]
    status, body = _http(server, "GET", f"/api/v1/qa/recordings/{serial}/audio", token=other)
    assert status == 403 and json.loads(body)["error"]["code"] == "qa.forbidden"
