"""Schedules and adherence through the admin API and the ``cti`` CLI, on a real store (SQLite and PostgreSQL).

The worked example of domain.md §3.3 goes in as a CSV file, agent states and an approved exception, and comes out
of ``GET /api/v1/adherence/report`` and ``cti adherence report`` to the digit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from acd import AgentId, AgentState, CallId, QueueId
from cti.adherence.reports import ReportOptions
from cti.adherence.routes import AdherenceApi
from cti.adherence.service import AdherenceService
from cti.cli.adherence import adherence, schedules
from cti.events.bus import Bus
from cti.http.api import build_app
from cti.store import LegId, LegOutcome, QueueLeg, Store
from tests.cti.test_api import TOKEN, Client, FakeControl, FakeMetrics, _client, call

SH = ZoneInfo("Asia/Shanghai")  # the site: schedules and report days are in its time
DAY = "2026-05-09"

WORKED_CSV = f"""agent,date,start,end,activity,note
1001,{DAY},09:00,12:00,shift,the worked example of domain.md 3.3
1001,{DAY},10:30,10:45,break,
1001,{DAY},11:30,12:00,meeting,
1002,{DAY},09:00,12:00,shift,always there
"""


def at(hhmm: str, day: str = DAY) -> float:
    return dt.datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=SH).timestamp()


WORKED_STATES = [("08:57", AgentState.AVAILABLE, None), ("09:10", AgentState.ON_CALL, None),
                 ("09:40", AgentState.PAUSED, "personal"), ("09:52", AgentState.ON_CALL, None),
                 ("10:33", AgentState.PAUSED, "break"), ("10:52", AgentState.AVAILABLE, None),
                 ("11:05", AgentState.PAUSED, "coaching"), ("11:20", AgentState.AVAILABLE, None),
                 ("11:32", AgentState.PAUSED, "meeting"), ("11:58", AgentState.LOGGED_OUT, None)]


@pytest.fixture
async def api(store: Store) -> AsyncIterator[tuple[Client, AdherenceService]]:
    clock = [at("12:30")]
    service = AdherenceService(Bus(), store, "node-a", clock=lambda: clock[0])
    ctx = AdherenceApi(service=service, zone=SH, report_max_days=31, agents=lambda: ["1001", "1002", "1003"],
                       options=ReportOptions(zone=SH, sl_thresholds={"sales": 20.0}))
    app = build_app(FakeControl(), token=TOKEN, node="node-a", metrics=FakeMetrics(), adherence=ctx)
    async for client in _client(app):
        yield client, service


async def cli(group: Any, client: Client, *args: str) -> Result:
    """The CLI runs its own event loop: run it in a thread while this loop serves the API."""
    url = str(client.make_url("/"))
    return await asyncio.to_thread(CliRunner().invoke, group, [*args, "--url", url, "--token", TOKEN])


async def test_without_a_store_the_routes_answer_501() -> None:
    app = build_app(FakeControl(), token=TOKEN, node="n", metrics=FakeMetrics())
    async for client in _client(app):
        status, body = await call(client, "GET", "/api/v1/adherence/live")
        assert status == 501 and body["error"]["code"] == "not_available"


async def test_a_bad_file_is_refused_with_file_line_reason_and_nothing_stored(
        api: tuple[Client, AdherenceService], tmp_path: Path) -> None:
    client, _ = api
    bad = tmp_path / "week.csv"
    bad.write_text(WORKED_CSV + f"1002,{DAY},11:50,12:30,lunch,\n1003,{DAY},25:00,26:00,shift,\n")
    result = await cli(schedules, client, "import", str(bad))
    assert result.exit_code == 1
    assert "week.csv:6: lunch of 1002" in result.output and "outside the agent's shifts" in result.output
    assert "week.csv:7: start must be HH:MM, got '25:00'" in result.output
    status, body = await call(client, "GET", f"/api/v1/schedules?from={DAY}")
    assert status == 200 and body["entries"] == []
    status, body = await call(client, "POST", "/api/v1/schedules/import?name=x.csv", raw="agent,date\n")
    assert status == 400 and body["error"]["code"] == "adherence.import_invalid"
    assert body["error"]["problems"] == [{"file": "x.csv", "line": 1, "reason": body["error"]["problems"][0]
                                          ["reason"]}]


async def test_entries_are_edited_through_the_api(api: tuple[Client, AdherenceService], tmp_path: Path) -> None:
    client, _ = api
    (tmp_path / "day.csv").write_text(WORKED_CSV)
    result = await cli(schedules, client, "import", str(tmp_path / "day.csv"))
    assert result.exit_code == 0, result.output
    assert "day.csv: 4 entries for 2 agents imported (0 replaced)" in result.output
    lunch = {"agent_id": "1002", "activity": "lunch", "start": f"{DAY}T11:00", "end": f"{DAY}T11:30"}
    status, entry = await call(client, "POST", "/api/v1/schedules", lunch)
    assert status == 201 and entry["start"] == f"{DAY}T11:00:00+08:00" and entry["start_ts"] == at("11:00")
    status, body = await call(client, "POST", "/api/v1/schedules", {**lunch, "start": f"{DAY}T11:15"})
    assert status == 400 and body["error"]["code"] == "adherence.schedule_invalid" and "overlaps" in \
        body["error"]["message"]
    status, body = await call(client, "POST", "/api/v1/schedules", {**lunch, "agent_id": "1009"})
    assert status == 400 and "unknown agent '1009'" in body["error"]["message"]
    status, body = await call(client, "POST", "/api/v1/schedules/import?name=typo.csv",
                              raw=f"agent,date,start,end,activity\n1O01,{DAY},09:00,12:00,shift\n")
    assert status == 400 and body["error"]["problems"] == [
        {"file": "typo.csv", "line": 2, "reason": "unknown agent '1O01' (not an agent of this node)"}]
    status, body = await call(client, "POST", "/api/v1/schedules", {**lunch, "colour": "red"})
    assert status == 400 and body["error"]["code"] == "unknown_field"
    status, moved = await call(client, "PUT", f"/api/v1/schedules/{entry['entry_id']}",
                               {**lunch, "start": "2026-05-09T03:10:00+00:00", "end": f"{DAY}T11:40"})
    assert status == 200 and moved["start"] == f"{DAY}T11:10:00+08:00"
    status, _ = await call(client, "DELETE", f"/api/v1/schedules/{entry['entry_id']}")
    assert status == 204
    status, body = await call(client, "DELETE", f"/api/v1/schedules/{entry['entry_id']}")
    assert status == 404
    result = await cli(schedules, client, "list", "--from", DAY)
    assert result.exit_code == 0 and result.output.count("\n") == 5  # header + 4 entries


async def test_report_ranges_are_checked(api: tuple[Client, AdherenceService]) -> None:
    client, _ = api
    status, body = await call(client, "GET", "/api/v1/adherence/report?from=2026-05-09&to=2026-05-08")
    assert status == 400 and body["error"]["code"] == "adherence.range_invalid" and "after" in body["error"]["message"]
    status, body = await call(client, "GET", "/api/v1/adherence/report?from=2026-01-01&to=2026-03-01")
    assert status == 400 and "at most 31" in body["error"]["message"]
    status, body = await call(client, "GET", "/api/v1/adherence/report?from=yesterday")
    assert status == 400 and body["error"]["code"] == "bad_parameter"
    status, body = await call(client, "GET", "/api/v1/adherence/report?from=2026-05-09&team=x")
    assert status == 400 and body["error"]["code"] == "unknown_parameter"
    status, body = await call(client, "GET", "/api/v1/adherence/report?from=2026-05-09", headers={})
    assert status == 401


async def test_the_worked_example_through_api_and_cli(api: tuple[Client, AdherenceService], store: Store,
                                                      tmp_path: Path) -> None:
    client, service = api
    (tmp_path / "day.csv").write_text(WORKED_CSV)
    assert (await cli(schedules, client, "import", str(tmp_path / "day.csv"))).exit_code == 0
    for hhmm, state, reason in WORKED_STATES:
        await store.record_agent_state(AgentId("1001"), state, at(hhmm), reason)
    await store.record_agent_state(AgentId("1002"), AgentState.AVAILABLE, at("08:55"))
    await store.record_agent_state(AgentId("1002"), AgentState.LOGGED_OUT, at("12:01"))
    # gaming: 1003 logs in for 4 minutes around 08:58 three days running, and never works its (absent) shift
    for day in ("2026-05-07", "2026-05-08", DAY):
        await store.record_agent_state(AgentId("1003"), AgentState.AVAILABLE, at("08:58", day))
        await store.record_agent_state(AgentId("1003"), AgentState.LOGGED_OUT, at("09:02", day))
    # four calls that missed the service level while 1001 was on a personal break (09:40-09:52)
    for n in range(4):
        await store.save_queue_leg(QueueLeg(
            leg_id=LegId(f"c{n}-0"), call_id=CallId(f"c{n}"), queue_id=QueueId("sales"), t_enter_queue=at("09:45"),
            outcome=LegOutcome.ANSWERED, t_answer=at("09:46"), agent_id=AgentId("1002")))
    result = await cli(adherence, client, "approve", "--agent", "1001", "--from", f"{DAY}T11:05",
                       "--to", f"{DAY}T11:20", "--reason", "coaching", "--by", "sup1")
    assert result.exit_code == 0 and "approved exception" in result.output
    status, report = await call(client, "GET", f"/api/v1/adherence/report?from={DAY}")
    assert status == 200
    row = next(r for r in report["days"] if r["agent_id"] == "1001")
    assert (f"{row['adherence']:.4f}", f"{row['raw_adherence']:.4f}", f"{row['conformance']:.4f}") == \
        ("0.9222", "0.7722", "0.7852")
    assert row["out_s"] == 14 * 60 and row["exceptions"] == 2 and row["approved_exceptions"] == 1
    assert [s["start"] for s in row["segments"]][:2] == [f"{DAY}T09:40:00+08:00", f"{DAY}T10:30:00+08:00"]
    perfect = next(r for r in report["days"] if r["agent_id"] == "1002")
    assert perfect["adherence"] == 1.0 and perfect["exceptions"] == 0
    km = report["key_minority"]
    assert km["missed_calls"] == 4 and km["minority"] == ["1001"]
    assert km["agents"][0] == {"agent_id": "1001", "sl_cost_calls": 0.8, "share_of_cost": 1.0}  # 4 x 12/60 min
    result = await cli(adherence, client, "report", "--from", DAY)
    assert result.exit_code == 0, result.output
    assert "1001   2026-05-09  92.22%     77.22%   78.52%       14.0     2           1" in result.output
    assert "key minority (80% of the cost): 1001" in result.output
    status, three = await call(client, "GET", "/api/v1/adherence/report?from=2026-05-07&to=2026-05-09")
    assert [g["agent_id"] for g in three["gaming"]] == ["1003"] and three["gaming"][0]["repeats"] == 3
    await service.reload()
    status, live = await call(client, "GET", "/api/v1/adherence/live")
    assert status == 200 and {a["agent_id"] for a in live["agents"]} == {"1001", "1002"}
