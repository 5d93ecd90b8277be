"""FINAL (domain.md §4.2): an evaluation settles once its filing window has closed with no appeal open — the
node's finaliser, an appeal ending after the window, the audit trail, the event, the score report counting FINAL
only, and the site's holidays lengthening the window. On a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cti.events.registry import Envelope, validate
from cti.store import Store
from tests.cti.qa.fixtures import QaApp, qa_app
from tests.cti.qa.test_api_qa import _evaluate, _form

NOW = 1_780_000_000.0  # Friday 2026-05-29 04:26:40 in Asia/Shanghai
SHANGHAI = ZoneInfo("Asia/Shanghai")
A1, B2, A3 = "20260603-qa-0001", "20260603-qa-0002", "20260603-qa-0003"


@pytest.fixture
async def qa(store: Store, tmp_path: Path) -> AsyncIterator[QaApp]:
    async for app in qa_app(store, tmp_path, NOW, holidays=frozenset({dt.date(2026, 6, 1)})):  # a Monday
        yield app
        for type_, data in app.events:
            validate(Envelope.new(type_, data, node="n", now=NOW), strict=True)


async def test_evaluations_settle_when_the_window_closes(qa: QaApp) -> None:
    assert qa.service is not None
    await _form(qa)
    untouched = (await _evaluate(qa, serial=A1))["evaluation_id"]
    appealed = (await _evaluate(qa, "supervisor:sup2", serial=A3))["evaluation_id"]
    acknowledged = (await _evaluate(qa, "supervisor:sup3", serial=B2))["evaluation_id"]
    status, body = await qa.call("agent:1002", "GET", f"/api/v1/qa/evaluations/{acknowledged}")
    # 3 working days from Friday: not Sat, Sun, nor Monday 1 June (a holiday): Tue, Wed, Thu 4 June, same time
    deadline = dt.datetime(2026, 6, 4, 4, 26, 40, tzinfo=SHANGHAI).timestamp()
    assert status == 200 and body["appeal_deadline"] == deadline
    assert (await qa.call("agent:1002", "POST", f"/api/v1/qa/evaluations/{acknowledged}/acknowledge"))[0] == 200
    status, body = await qa.call("agent:1001", "POST", f"/api/v1/qa/evaluations/{appealed}/appeal",
                                 {"item_ids": ["answer"], "reason": "the tariff was current"})
    assert status == 200 and body["state"] == "appealed"
    status, report = await qa.call("supervisor:sup1", "GET", "/api/v1/qa/scores/report")
    assert status == 200 and report["counts"] == "final"
    assert report["agents"]["1001"] | {"provisional_mean": None} == {
        "final": 0, "mean": None, "provisional": 2, "provisional_mean": None}
    assert (await qa.call("agent:1001", "GET", "/api/v1/qa/scores/report"))[0] == 403

    assert await qa.service.finalise_due(deadline) == []  # the window is still open at its last second
    assert await qa.service.finalise_due(deadline + 1) == [untouched, acknowledged]  # the appealed one waits
    finalised = [(t, d) for t, d in qa.events if t == "qa.evaluation.finalised"]
    assert [(d["evaluation_id"], d["previous_state"]) for _, d in finalised] == [
        (untouched, "published"), (acknowledged, "acknowledged")]
    assert await qa.service.finalise_due(deadline + 2) == []  # once only
    status, body = await qa.call("agent:1002", "GET", f"/api/v1/qa/evaluations/{acknowledged}")
    assert body["state"] == "final"
    assert [(a["action"], a["actor"]) for a in body["audit"]] == [
        ("published", "sup3"), ("acknowledge", "1002"), ("finalise", "node")]
    assert body["audit"][-1]["at"] == deadline + 1 and body["audit"][-1]["detail"]["to"] == "final"
    status, body = await qa.call("agent:1001", "POST", f"/api/v1/qa/evaluations/{untouched}/acknowledge")
    assert status == 409 and body["error"]["code"] == "qa.bad_transition"  # FINAL takes no action

    # the appeal is refused after the window: FINAL at once, in the same step
    qa.clock.now = deadline + 60
    status, body = await qa.call("operator", "POST", f"/api/v1/qa/evaluations/{appealed}/appeal/admission",
                                 {"admit": False, "reason": "the recording shows last month's tariff"})
    assert status == 200 and body["state"] == "final", body
    assert [a["action"] for a in body["audit"]] == ["published", "file", "refuse", "finalise"]
    assert qa.events[-1][0] == "qa.evaluation.finalised"
    assert qa.events[-1][1]["previous_state"] == "confirmed" and qa.events[-1][1]["evaluation_id"] == appealed

    status, report = await qa.call("operator", "GET", "/api/v1/qa/scores/report")
    assert report["agents"]["1001"]["final"] == 2 and report["agents"]["1001"]["provisional"] == 0
    assert report["agents"]["1002"]["final"] == 1 and report["evaluators"]["sup2"]["final"] == 1
    assert report["agents"]["1001"]["mean"] == round(body["total"], 2)  # both 1001's scores are the same form answers


async def test_an_appeal_decided_within_the_window_settles_at_its_close(qa: QaApp) -> None:
    assert qa.service is not None
    await _form(qa)
    eid = (await _evaluate(qa, "supervisor:sup2", serial=A3))["evaluation_id"]
    assert (await qa.call("agent:1001", "POST", f"/api/v1/qa/evaluations/{eid}/appeal",
                          {"item_ids": ["answer"], "reason": "the tariff was current"}))[0] == 200
    status, body = await qa.call("agent:1001", "POST", f"/api/v1/qa/evaluations/{eid}/withdraw")
    assert status == 200 and body["state"] == "acknowledged"  # within the window: not FINAL yet
    deadline = body["appeal_deadline"]
    assert await qa.service.finalise_due(deadline - 1) == []
    assert await qa.service.finalise_due(deadline + 1) == [eid]
