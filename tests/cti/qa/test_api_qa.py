"""The QA routes over HTTP on a real store (SQLite and PostgreSQL): evaluations, appeals, calibration, playback
authorisation and the library, with agent, supervisor and operator tokens."""

from __future__ import annotations

import re
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from cti.events.registry import Envelope, validate
from cti.http.openapi import QA_PATHS
from cti.qa.routes import add_qa_routes
from cti.store import Store
from tests.cti.qa.fixtures import LEFT, RATE, RIGHT, QaApp, qa_app
from tests.cti.qa.test_scoring import FORM, full

NOW = 1_780_000_000.0
A1, B2 = "20260603-qa-0001", "20260603-qa-0002"  # agent 1001 (sales, team blue); agent 1002 (support, team red)


@pytest.fixture
async def qa(store: Store, tmp_path: Path) -> AsyncIterator[QaApp]:
    async for app in qa_app(store, tmp_path, NOW):
        yield app
        for type_, data in app.events:  # every qa.* event fits its registered schema exactly
            validate(Envelope.new(type_, data, node="n", now=NOW), strict=True)


async def _form(qa: QaApp) -> None:
    status, body = await qa.call("supervisor:sup1", "POST", "/api/v1/qa/forms", {"form": FORM})
    assert status == 201, body


async def _evaluate(qa: QaApp, who: str = "supervisor:sup1", serial: str = A1, **extra: Any) -> dict[str, Any]:
    status, body = await qa.call(who, "POST", "/api/v1/qa/evaluations", {
        "recording_serial": serial, "form_id": "INBOUND-STD",
        "scores": full(answer={"points": 4, "comment": "wrong tariff quoted"}), **extra})
    assert status == 201, body
    return body


def test_the_routes_are_the_documented_ones() -> None:
    app = web.Application()
    add_qa_routes(app, service=None, evaluations=None, library=None, tokens=None,  # type: ignore[arg-type]
                  operator_token=None)
    routes = {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
              if r.method != "HEAD" and r.resource is not None}
    assert routes == {(m, p) for p, ops in QA_PATHS.items() for m in ops}


async def test_evaluation_appeal_and_decision(qa: QaApp) -> None:
    bad = {**FORM, "version": 2, "sections": [dict(FORM["sections"][0], weight=30), *FORM["sections"][1:]]}
    status, body = await qa.call("supervisor:sup1", "POST", "/api/v1/qa/forms", {"form": bad})
    assert status == 400 and body["error"]["code"] == "qa.form_invalid"
    assert "sections: the weights add up to 110, not 100" in body["error"]["problems"]
    await _form(qa)
    status, body = await qa.call("agent:1001", "POST", "/api/v1/qa/forms", {"form": {**FORM, "version": 3}})
    assert status == 403
    status, body = await qa.call("supervisor:sup3", "POST", "/api/v1/qa/evaluations", {
        "recording_serial": A1, "form_id": "INBOUND-STD", "scores": full()})
    assert status == 403 and body["error"]["code"] == "qa.forbidden"  # not sup3's queue nor team
    evaluation = await _evaluate(qa)
    eid = evaluation["evaluation_id"]
    assert evaluation["state"] == "published" and evaluation["revision"] == 1
    assert qa.events[-1][0] == "qa.evaluation.published" and qa.events[-1][1]["agent_id"] == "1001"

    status, mine = await qa.call("agent:1001", "GET", "/api/v1/qa/evaluations")
    assert status == 200 and [e["evaluation_id"] for e in mine["evaluations"]] == [eid]
    assert (await qa.call("agent:1002", "GET", f"/api/v1/qa/evaluations/{eid}"))[0] == 404
    assert (await qa.call("agent:1002", "GET", "/api/v1/qa/evaluations"))[1]["evaluations"] == []
    assert (await qa.call(None, "GET", "/api/v1/qa/evaluations"))[0] == 401

    status, body = await qa.call("agent:1001", "POST", f"/api/v1/qa/evaluations/{eid}/appeal",
                                 {"item_ids": ["answer"], "reason": ""})
    assert status == 400 and body["error"]["code"] == "qa.reason_required"
    qa.clock.now += 3600
    status, body = await qa.call("agent:1001", "POST", f"/api/v1/qa/evaluations/{eid}/appeal",
                                 {"item_ids": ["answer"], "reason": "the tariff I quoted was the current one"})
    assert status == 200 and body["state"] == "appealed", body
    assert body["appeals"][0]["state"] == "filed" and body["appeals"][0]["filed_at"] == NOW + 3600
    # the team leader admits: sup1 scored it (and leads team blue too) so may not; sup3 leads another team
    status, body = await qa.call("supervisor:sup1", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/admission",
                                 {"admit": True})
    assert status == 403 and body["error"]["code"] == "qa.leader_is_evaluator"
    status, body = await qa.call("supervisor:sup2", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/opinions",
                                 {"verdict": "uphold"})
    assert status == 409 and body["error"]["code"] == "qa.bad_transition"  # no panel before the admission
    qa.clock.now += 60
    status, body = await qa.call("supervisor:sup2", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/admission",
                                 {"admit": True})
    assert status == 200, body
    appeal = body["appeals"][0]
    assert appeal["state"] == "accepted_by_leader" and appeal["leader"] == "sup2"
    assert appeal["decision_deadline"] == NOW + 3660 + 5 * 86400 + 2 * 86400  # 5 working days, a weekend between
    assert qa.events[-1][0] == "qa.appeal.admitted"
    # the panel: the evaluator (sup1) proposes an overturn, the leader (sup2) upholds; no decision yet
    status, body = await qa.call("supervisor:sup1", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/opinions",
                                 {"verdict": "overturn", "points": {"answer": {"points": 10}}, "comment": "ok"})
    assert status == 200 and body["appeals"][0]["state"] == "under_review" and body["state"] == "appealed", body
    status, body = await qa.call("supervisor:sup1", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/opinions",
                                 {"verdict": "uphold"})
    assert status == 403 and body["error"]["code"] == "qa.seat_taken"
    status, body = await qa.call("supervisor:sup2", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/opinions",
                                 {"verdict": "partial", "points": {"greet": {"points": 5}}})
    assert status == 400 and body["error"]["code"] == "qa.bad_points"  # greet was not appealed
    status, body = await qa.call("supervisor:sup2", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/opinions",
                                 {"verdict": "partial", "points": {"answer": {"points": 99}}})
    assert status == 400 and body["error"]["code"] == "qa.scores_invalid", body  # outside the item's range
    status, body = await qa.call("supervisor:sup2", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/opinions",
                                 {"verdict": "partial", "points": {"answer": {"points": 8, "comment": "half"}}})
    assert status == 200 and [o["seat"] for o in body["appeals"][0]["opinions"]] == ["evaluator", "leader"], body
    qa.clock.now += 60
    # the supervisor seat (the operator here) sides with the evaluator: a majority overturn
    status, body = await qa.call("operator", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/opinions",
                                 {"verdict": "overturn", "points": {"answer": {"points": 10}}})
    assert status == 200, body
    assert body["state"] == "corrected" and body["revision"] == 2 and body["total"] == 100.0
    assert [r["result"]["total"] for r in body["revisions"]][0] < 100.0  # the original revision is kept
    assert body["appeals"][0] | {"decided_at": None} == body["appeals"][0] | {
        "state": "overturned", "reviewer": "operator", "decision_rule": "majority", "decided_at": None}
    assert qa.events[-1][0] == "qa.appeal.decided" and qa.events[-1][1]["outcome"] == "overturned"
    assert [t for t, _ in qa.events[-4:]] == ["qa.appeal.opinion"] * 3 + ["qa.appeal.decided"]

    status, seen = await qa.call("agent:1001", "GET", f"/api/v1/qa/evaluations/{eid}")
    steps = [(a["action"], a["actor"], a["at"]) for a in seen["audit"]]
    assert steps == [("published", "sup1", NOW), ("file", "1001", NOW + 3600), ("admit", "sup2", NOW + 3660),
                     ("opinion", "sup1", NOW + 3660), ("opinion", "sup2", NOW + 3660),
                     ("opinion", "operator", NOW + 3720)]
    assert [a["action"] for a in seen["appeals"][0]["audit"]] == ["file", "admit", "opinion", "opinion", "opinion"]
    status, body = await qa.call("agent:1001", "POST", f"/api/v1/qa/evaluations/{eid}/appeal",
                                 {"item_ids": ["greet"], "reason": "again"})
    assert status == 409 and body["error"]["code"] == "qa.bad_transition"
    status, report = await qa.call("supervisor:sup2", "GET", "/api/v1/qa/appeals/report")
    assert report["agents"]["1001"]["overturned"] == 1 and report["evaluators"]["sup1"]["overturn_rate"] == 1.0
    assert (await qa.call("agent:1001", "GET", "/api/v1/qa/appeals/report"))[0] == 403


async def test_a_refused_appeal_and_the_item_once(qa: QaApp) -> None:
    await _form(qa)
    eid = (await _evaluate(qa))["evaluation_id"]
    status, body = await qa.call("agent:1001", "POST", f"/api/v1/qa/evaluations/{eid}/appeal",
                                 {"item_ids": ["answer"], "reason": "the tariff was current"})
    assert status == 200
    status, body = await qa.call("supervisor:sup2", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/admission",
                                 {"admit": False})
    assert status == 400 and body["error"]["code"] == "qa.reason_required"
    status, body = await qa.call("supervisor:sup2", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/admission",
                                 {"admit": False, "reason": "the recording shows last month's tariff"})
    assert status == 200 and body["state"] == "confirmed" and body["appeals"][0]["state"] == "rejected_by_leader"
    assert qa.events[-1][0] == "qa.appeal.refused" and body["revision"] == 1
    status, body = await qa.call("agent:1001", "POST", f"/api/v1/qa/evaluations/{eid}/appeal",
                                 {"item_ids": ["answer"], "reason": "please"})
    assert status == 409 and body["error"]["code"] == "qa.bad_transition"  # terminal


async def test_a_tie_the_deadline_and_the_casting_supervisor(qa: QaApp) -> None:
    await _form(qa)
    eid = (await _evaluate(qa))["evaluation_id"]
    assert (await qa.call("agent:1001", "POST", f"/api/v1/qa/evaluations/{eid}/appeal",
                          {"item_ids": ["answer"], "reason": "the tariff was current"}))[0] == 200
    status, body = await qa.call("operator", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/admission",
                                 {"admit": True})  # the operator may stand in for the team leader
    deadline = body["appeals"][0]["decision_deadline"]
    status, body = await qa.call("supervisor:sup2", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/opinions",
                                 {"verdict": "partial", "points": {"answer": {"points": 7, "comment": "partly"}}})
    assert status == 200 and body["appeals"][0]["opinions"][0]["seat"] == "supervisor"
    status, body = await qa.call("supervisor:sup2", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/decision")
    assert status == 409 and body["error"]["code"] == "qa.decision_not_due"
    qa.clock.now = deadline + 1
    status, body = await qa.call("supervisor:sup1", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/opinions",
                                 {"verdict": "uphold"})
    assert status == 409 and body["error"]["code"] == "qa.decision_deadline_passed"
    status, body = await qa.call("supervisor:sup1", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/decision")
    assert status == 403
    status, body = await qa.call("supervisor:sup2", "POST", f"/api/v1/qa/evaluations/{eid}/appeal/decision")
    assert status == 200, body
    # decided after the filing window: corrected, then FINAL in the same step
    assert body["state"] == "final" and body["appeals"][0]["state"] == "partial"
    assert [(a["action"], a["detail"]["to"]) for a in body["audit"][-2:]] == [("decide", "corrected"),
                                                                             ("finalise", "final")]
    assert body["appeals"][0]["decision_rule"] == "overdue" and body["revision"] == 2
    assert qa.events[-2][1]["rule"] == "overdue" and qa.events[-1][0] == "qa.evaluation.finalised"


async def test_appeal_window_and_acknowledgement(qa: QaApp) -> None:
    await _form(qa)
    first = await _evaluate(qa)
    eid = first["evaluation_id"]
    eid2 = (await _evaluate(qa, serial="20260603-qa-0003"))["evaluation_id"]
    # published early on a Friday (Asia/Shanghai): 3 working days end the next Wednesday, same time
    assert first["appeal_deadline"] == NOW + 5 * 86400
    qa.clock.now = first["appeal_deadline"] + 1
    status, body = await qa.call("agent:1001", "POST", f"/api/v1/qa/evaluations/{eid}/appeal",
                                 {"item_ids": ["answer"], "reason": "late"})
    assert status == 409 and body["error"]["code"] == "qa.appeal_window_closed"
    status, body = await qa.call("agent:1001", "POST", f"/api/v1/qa/evaluations/{eid2}/acknowledge")
    assert status == 200 and body["state"] == "final"  # acknowledged after the window: settled at once
    assert [a["action"] for a in body["audit"]] == ["published", "acknowledge", "finalise"]


async def test_blind_calibration_report(qa: QaApp) -> None:
    await _form(qa)
    for who, points in (("supervisor:sup1", 8), ("supervisor:sup2", 8), ("operator", 2)):
        status, body = await qa.call(who, "POST", "/api/v1/qa/evaluations", {
            "recording_serial": A1, "form_id": "INBOUND-STD", "calibration": True,
            "scores": full(answer={"points": points, "comment": "c"})})
        assert status == 201 and body["state"] == "calibration"
        if who == "supervisor:sup1":
            status, body = await qa.call("supervisor:sup2", "GET", f"/api/v1/qa/calibration/{A1}")
            assert status == 403 and body["error"]["code"] == "qa.calibration_blind"
    status, report = await qa.call("supervisor:sup1", "GET", f"/api/v1/qa/calibration/{A1}?tolerance=5")
    assert status == 200 and report["flagged"] == ["operator"] and report["items"]["answer"]["spread"] == 6.0
    assert (await qa.call("agent:1001", "GET", "/api/v1/qa/evaluations"))[1]["evaluations"] == []  # never shown
    assert (await qa.call("supervisor:sup1", "GET", f"/api/v1/qa/calibration/{A1}?tolerance=x"))[0] == 400


def _samples(wav: bytes) -> list[tuple[int, ...]]:
    channels = struct.unpack_from("<H", wav, 22)[0]
    body = wav[44:]
    return list(struct.iter_unpack("<" + "h" * channels, body))


async def test_playback_is_authorised_ranged_and_logged(qa: QaApp, tmp_path: Path) -> None:
    path = f"/api/v1/qa/recordings/{A1}/audio"
    status, whole = await qa.call("agent:1001", "GET", path)
    assert status == 200 and len(whole) == 44 + 2 * RATE * 4 and whole[:4] == b"RIFF"
    async with qa.client.get(path, headers={**qa.auth("agent:1001"), "Range": "bytes=40-99"}) as r:
        assert r.status == 206 and r.headers["Content-Range"] == f"bytes 40-99/{len(whole)}"
        assert await r.read() == whole[40:100]
    token = qa.tokens.issue(__import__("cti.tokens").tokens.Role.AGENT, "1001").token
    async with qa.client.get(f"{path}?channel=caller&token={token}") as r:  # the <audio> element's way
        mono = await r.read()
        assert r.status == 200 and set(_samples(mono)) == {(LEFT,)}
    status, agent_side = await qa.call("supervisor:sup1", "GET", f"{path}?channel=agent")
    assert status == 200 and set(_samples(agent_side)) == {(RIGHT,)} and len(agent_side) == 44 + 2 * RATE * 2
    status, body = await qa.call("agent:1001", "GET", f"/api/v1/qa/recordings/{B2}/audio")
    assert status == 403 and body["error"]["code"] == "qa.forbidden"  # another agent's recording
    assert (await qa.call("supervisor:sup1", "GET", f"/api/v1/qa/recordings/{B2}/audio"))[0] == 403
    assert (await qa.call("operator", "GET", f"/api/v1/qa/recordings/{B2}/audio"))[0] == 200
    status, body = await qa.call("agent:1001", "GET", path, headers={"Range": f"bytes={len(whole)}-"})
    assert status == 416
    assert (await qa.call(None, "GET", path))[0] == 401
    for evil in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "20260603-qa-0001.wav%00"):
        assert (await qa.call("operator", "GET", f"/api/v1/qa/recordings/{evil}/audio"))[0] in (404,)
    # an index row pointing out of the recordings directory is never served
    from acd import AgentId, CallId, QueueId
    from cti.store import Recording, RecordingSerial
    outside = tmp_path / "outside.wav"
    outside.write_bytes(whole)
    await qa.store.save_recording(Recording(serial=RecordingSerial("20260603-qa-0009"), call_id=CallId("c9"),
                                            path=str(outside), started=NOW, agent_id=AgentId("1001"),
                                            queue_id=QueueId("sales")))
    assert (await qa.call("operator", "GET", "/api/v1/qa/recordings/20260603-qa-0009/audio"))[0] == 404
    async with qa.store.transaction() as tx:
        rows = await tx.executor.fetch_all(  # type: ignore[attr-defined]
            "SELECT recording_serial, actor, channel, range_start, range_end, status FROM qa_playbacks "
            "ORDER BY row_id")
    logged = [tuple(r) for r in rows]
    assert (A1, "agent:1001", "both", 40, 99, 206) in logged
    assert (B2, "agent:1001", "both", None, None, 403) in logged
    assert (A1, "supervisor:sup1", "agent", None, None, 200) in logged


async def test_library_nominate_review_redact_view_retire(qa: QaApp) -> None:
    status, body = await qa.call("agent:1001", "POST", "/api/v1/qa/library", {
        "recording_serial": B2, "reason": "great call", "tags": ["empathy"]})
    assert status == 403
    status, entry = await qa.call("agent:1001", "POST", "/api/v1/qa/library", {
        "recording_serial": A1, "reason": "calmed an angry caller", "tags": ["empathy"]})
    assert status == 201 and entry["state"] == "nominated"
    eid = entry["entry_id"]
    assert (await qa.call("agent:1002", "GET", f"/api/v1/qa/library/{eid}"))[0] == 404  # not published yet
    review = {"approve": True, "note": "listen to the first minute", "tags": ["empathy", "billing"],
              "redactions": [[0.5, 1.0]], "comment": "ok"}
    assert (await qa.call("agent:1002", "POST", f"/api/v1/qa/library/{eid}/review", review))[0] == 403
    status, body = await qa.call("supervisor:sup1", "POST", f"/api/v1/qa/library/{eid}/review",
                                 {**review, "redactions": [[1.0, 0.5]]})
    assert status == 400 and body["error"]["code"] == "qa.bad_redactions"
    status, body = await qa.call("supervisor:sup1", "POST", f"/api/v1/qa/library/{eid}/review", review)
    assert status == 200 and body["state"] == "published" and body["redactions"] == [[0.5, 1.0]]
    assert qa.notices and A1 in qa.notices[0] and qa.events[-1][0] == "qa.library.published"
    status, listed = await qa.call("agent:1002", "GET", "/api/v1/qa/library")
    assert [e["entry_id"] for e in listed["entries"]] == [eid]
    status, audio = await qa.call("agent:1002", "GET", f"/api/v1/qa/library/{eid}/audio")
    assert status == 200
    samples = _samples(audio)
    assert samples[int(0.5 * RATE) - 1] == (LEFT, RIGHT) and samples[int(0.5 * RATE)] == (0, 0)
    assert samples[int(1.0 * RATE) - 1] == (0, 0) and samples[int(1.0 * RATE)] == (LEFT, RIGHT)
    async with qa.client.get(f"/api/v1/qa/library/{eid}/audio",
                             headers={**qa.auth("agent:1002"), "Range": f"bytes={44 + 4 * 4000}-{44 + 4 * 4001 - 1}"}
                             ) as r:
        assert r.status == 206 and await r.read() == b"\0\0\0\0"  # the redacted span, by range too
    assert (await qa.call("agent:1002", "GET", f"/api/v1/qa/library/{eid}"))[1]["views"] == 2
    status, body = await qa.call("supervisor:sup2", "POST", f"/api/v1/qa/library/{eid}/retire", {"reason": "old"})
    assert status == 200 and body["state"] == "retired"
    assert (await qa.call("agent:1002", "GET", f"/api/v1/qa/library/{eid}"))[0] == 404
    status, body = await qa.call("supervisor:sup2", "POST", f"/api/v1/qa/library/{eid}/retire", {"reason": "x"})
    assert status == 409


async def test_cli_over_the_api(qa: QaApp, tmp_path: Path) -> None:
    import asyncio
    import json

    from click.testing import CliRunner

    from cti.cli import main
    from tests.cti.qa.fixtures import OPERATOR_TOKEN

    url = str(qa.client.make_url("")).rstrip("/")

    async def cti(*args: str, token: str = OPERATOR_TOKEN) -> Any:
        return await asyncio.to_thread(CliRunner().invoke, main, [*args, "--url", url, "--token", token])

    form = tmp_path / "form.json"
    form.write_text(json.dumps(FORM))
    published = await cti("qa", "form", "publish", str(form))
    assert published.exit_code == 0 and "form INBOUND-STD version 1 published" in published.output
    again = await cti("qa", "form", "publish", str(form))
    assert again.exit_code == 1 and "qa.form_published" in again.output
    form.write_text(json.dumps({**FORM, "version": 2, "sections": FORM["sections"][:2]}))
    refused = await cti("qa", "form", "publish", str(form))
    assert refused.exit_code == 2 and f"{form}: sections: the weights add up to 80, not 100" in refused.output
    await _evaluate(qa)
    agent_token = qa.auth("agent:1001")["Authorization"].removeprefix("Bearer ")
    mine = await cti("qa", "evaluations", "--json", token=agent_token)
    assert mine.exit_code == 0 and [e["agent_id"] for e in json.loads(mine.output)["evaluations"]] == ["1001"]
    report = await cti("qa", "appeals", token=agent_token)
    assert report.exit_code == 1 and "qa.forbidden" in report.output
    eid = json.loads(mine.output)["evaluations"][0]["evaluation_id"]
    assert (await qa.call("agent:1001", "POST", f"/api/v1/qa/evaluations/{eid}/appeal",
                          {"item_ids": ["answer"], "reason": "the tariff was current"}))[0] == 200
    sup1 = qa.auth("supervisor:sup1")["Authorization"].removeprefix("Bearer ")
    refused = await cti("qa", "admit", str(eid), token=sup1)
    assert refused.exit_code == 1 and "qa.leader_is_evaluator" in refused.output
    admitted = await cti("qa", "admit", str(eid))  # the operator as team leader
    assert admitted.exit_code == 0 and "accepted_by_leader" in admitted.output, admitted.output
    bad = await cti("qa", "opinion", str(eid), "--verdict", "partial", "--points", "[1]")
    assert bad.exit_code == 2 and "an object of item id to answer" in bad.output
    opined = await cti("qa", "opinion", str(eid), "--verdict", "uphold", "--comment", "the score stands")
    assert opined.exit_code == 0 and "leader:uphold" in opined.output and "under_review" in opined.output
    report = await cti("qa", "appeals")
    assert report.exit_code == 0 and "UNDER_REVIEW" in report.output and "OVERTURNED" in report.output
    shown = await cti("qa", "evaluation", str(eid), token=agent_token)
    assert shown.exit_code == 0, shown.output
    assert re.search(r"file\s+1001\s+published -> appealed", shown.output), shown.output
    assert "evaluation 1: appealed" in shown.output and "appeal deadline  2026-06-02 20:26:40 UTC" in shown.output
    scores = await cti("qa", "scores")
    assert scores.exit_code == 0 and re.search(r"1001\s+0\s+-\s+1\s+67\.27", scores.output), scores.output
