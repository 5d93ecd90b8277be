"""The QA pages in headless Chromium against a real `cti serve --demo`:

1. /qa/evaluate: supervisor sup1 signs in, sees the sample a closed rule assigned to it, opens it (the recording
   plays through the authorised range route, channel selectable), fills the scorecard side by side and submits;
2. /qa/mine: agent 1001 signs in, sees the new evaluation, opens it and appeals one item with a reason; the
   operator (as team leader) admits it and opines through the API, sup1 (evaluator seat) and sup2 (supervisor seat)
   record their opinions on /qa/evaluate, and the agent's page is told at once (qa.appeal.decided on
   the WebSocket) and shows the corrected score;
3. the agent's page in Simplified Chinese.

The node's database is prepared before it starts: a recording index row and WAV per call, the queue legs of a past
day, a scorecard form and a sampling rule published before that day and closed after it (the node cannot be made to
publish a rule for a day already past). Elements are found by role and accessible name.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from acd import AgentId, CallId, QueueId
from cti.qa.appeals import Actor
from cti.qa.evaluations import EvaluationService
from cti.qa.service import QaService
from cti.store import LegId, LegOutcome, QueueLeg, Recording, RecordingSerial, open_store
from tests.cti.qa.fixtures import write_wav
from tests.cti.qa.synthetic import at
from tests.cti.qa.test_scoring import FORM, full
from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import HOST, OPERATOR_TOKEN
from tests.web.conftest import VIEWPORT, demo_config, needs_browser

pytestmark = [needs_browser, pytest.mark.timeout(120)]

SERIALS = {"20260603-s1-0001": "1001", "20260603-s1-0002": "1001", "20260603-s1-0003": "1002"}
RULE = {"rule_id": "QA-DEMO-1", "version": 1, "period": {"start": "2026-06-03", "end": "2026-06-03"},
        "select": {"method": "nth", "n": 1}, "form_id": "INBOUND-STD", "form_version": 1,
        "assign": {"method": "round_robin", "evaluators": ["sup1"]}}


async def _prepare(data_dir: Path) -> None:
    store = await open_store(data_dir / "cti.sqlite3")
    try:
        for i, (serial, agent) in enumerate(SERIALS.items()):
            wav = data_dir / "recordings" / f"{serial}.wav"
            write_wav(wav, 3.0)
            answer = at(f"{11 + i}:00")
            await store.save_recording(Recording(serial=RecordingSerial(serial), call_id=CallId(f"c{i}"),
                                                 path=str(wav), started=answer, ended=answer + 3, duration_s=3.0,
                                                 agent_id=AgentId(agent), queue_id=QueueId("sales")))
            await store.save_queue_leg(QueueLeg(leg_id=LegId(f"l{i}"), call_id=CallId(f"c{i}"),
                                                queue_id=QueueId("sales"), t_enter_queue=answer - 5,
                                                outcome=LegOutcome.ANSWERED, t_answer=answer, agent_id=AgentId(agent),
                                                t_end=answer + 240, talk_s=240.0,
                                                recording_serial=RecordingSerial(serial)))
        clock = [at("00:00") - 86400]
        qa = QaService(store, zone="UTC", clock=lambda: clock[0])
        await EvaluationService(qa).publish_form(FORM, Actor(role="operator", subject="operator"))
        await qa.publish_rule(RULE, actor="operator")
        clock[0] = at("00:00") + 2 * 86400
        await qa.close_rule(RULE["rule_id"], actor="operator")
        # an evaluation whose appeal window closed months ago: the node's finaliser makes it FINAL when it starts
        await EvaluationService(qa).submit(Actor(role="operator", subject="operator"),
                                           recording_serial="20260603-s1-0002", form_id="INBOUND-STD",
                                           form_version=1, scores=full())
    finally:
        await store.close()


@pytest.fixture(scope="module")
def qa_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("qa-web")
    with ThreadPoolExecutor(1) as worker:  # Playwright's loop may be running in this thread already
        worker.submit(asyncio.run, _prepare(tmp / "var")).result(timeout=60)
    config = demo_config(tmp)
    demo = yaml.safe_load(config.read_text())  # a second supervisor of the queue for the appeal panel's third seat
    demo["supervisors"].append({"id": "sup2", "name": "Sue Second", "password": "demosup2", "queues": ["sales"],
                                "teams": []})
    config.write_text(yaml.safe_dump(demo))
    with run_server(tmp, config=config, data_dir=tmp / "var") as server:
        yield server


def _base(server: ServerProcess) -> str:
    return f"http://{HOST}:{server.http_port}"


def _page(browser: Any, **options: Any) -> Any:
    page = browser.new_context(viewport=VIEWPORT, **options).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    return page


def _sign_in(page: Any, url: str, id_label: str, ident: str, password: str) -> None:
    page.goto(url)
    page.get_by_label(id_label).fill(ident)
    page.get_by_label(re.compile("^(Password|密码)$")).fill(password)
    page.get_by_role("button", name=re.compile("^(Sign in|登录)$")).click()


def _api(server: ServerProcess, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(f"{_base(server)}/api/v1/qa{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {OPERATOR_TOKEN}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as answer:
        return json.loads(answer.read())


def test_evaluate_appeal_and_decision_in_the_browser(browser: Any, qa_server: ServerProcess, shots: Path) -> None:
    from playwright.sync_api import expect

    sup = _page(browser, locale="en-GB")
    _sign_in(sup, f"{_base(qa_server)}/qa/evaluate", "Supervisor ID", "sup1", "demosup1")
    assigned = sup.get_by_role("region", name="Assigned samples")
    expect(assigned.get_by_role("cell", name="20260603-s1-0001", exact=True)).to_be_visible(timeout=10_000)
    expect(assigned.get_by_role("cell", name="20260603-s1-0003", exact=True)).to_be_visible()
    assigned.get_by_role("button", name="Open 20260603-s1-0001").click()
    audio = sup.get_by_label("Recording 20260603-s1-0001")
    expect(audio).to_be_visible()
    sup.wait_for_function("() => document.querySelector('#qa-audio').readyState >= 1", timeout=10_000)
    assert sup.evaluate("document.querySelector('#qa-audio').duration") == pytest.approx(3.0, abs=0.05)
    sup.get_by_label("Channel").select_option("agent")
    sup.wait_for_function("() => document.querySelector('#qa-audio').src.includes('channel=agent')")

    card = sup.get_by_role("region", name="Scorecard")
    card.get_by_role("radiogroup", name="Greets with the company name").get_by_label("Yes").check()
    card.get_by_label("Not applicable").first.check()
    card.get_by_label("Points (0–10)").fill("4")
    card.get_by_label("Comment (Correct answer)").fill("wrong tariff quoted")
    card.get_by_role("radiogroup", name="No data disclosed to a third party").get_by_label("Yes").check()
    card.get_by_label("Points (0–4)").fill("4")
    card.get_by_role("button", name="Submit evaluation").click()
    # evaluation 1 is the one prepared before the node started
    expect(card.get_by_role("status")).to_have_text(re.compile(r"^Evaluation 2 submitted: 67\.3 points\.$"))
    sup.evaluate("window.scrollTo(0, 0)")
    sup.screenshot(path=str(shots / "qa-evaluate.png"))

    agent = _page(browser, locale="en-GB")
    _sign_in(agent, f"{_base(qa_server)}/qa/mine", "Agent ID", "1001", "demo1001")
    mine = agent.get_by_role("region", name="My evaluations")
    mine.get_by_role("button", name="Open 20260603-s1-0001").click()
    detail = agent.get_by_role("region", name="Evaluation")
    expect(detail.get_by_role("row", name="Correct answer 4 / 10 wrong tariff quoted")).to_be_visible()
    detail.get_by_role("group", name="Items you disagree with").get_by_label("Correct answer").check()
    detail.get_by_label("Reason").fill("the tariff I quoted is the current one")
    detail.get_by_role("button", name="Send appeal").click()
    expect(detail.get_by_text("Appealed", exact=True).first).to_be_visible()

    # the operator stands in for the team leader (sup1 leads team blue but scored the call): admits, then opines
    evaluation = _api(qa_server, "GET", "/evaluations?agent_id=1001")["evaluations"][0]
    eid = evaluation["evaluation_id"]
    _api(qa_server, "POST", f"/evaluations/{eid}/appeal/admission", {"admit": True})
    expect(detail.get_by_text("Appeal 1: admitted; the panel decides")).to_be_visible()
    _api(qa_server, "POST", f"/evaluations/{eid}/appeal/opinions", {
        "verdict": "overturn", "points": {"answer": {"points": 10, "comment": "tariff confirmed"}},
        "comment": "tariff confirmed"})
    # the evaluator's seat on its page: the same overturn
    appeals = sup.get_by_role("region", name="Appeals")
    expect(appeals.get_by_text("team leader (operator): Overturn — tariff confirmed")).to_be_visible(timeout=10_000)
    appeals.get_by_label("Verdict").select_option("overturn")
    appeals.get_by_label("Proposed points for answer").fill("10")
    appeals.get_by_label("Comment or reason").fill("tariff confirmed")
    appeals.get_by_role("button", name="Record my opinion").click()
    expect(appeals.get_by_text("evaluator (sup1): Overturn — tariff confirmed")).to_be_visible()
    # the supervisor seat (sup2) upholds: outvoted, the majority overturns
    sup2 = _page(browser, locale="en-GB")
    _sign_in(sup2, f"{_base(qa_server)}/qa/evaluate", "Supervisor ID", "sup2", "demosup2")
    panel2 = sup2.get_by_role("region", name="Appeals")
    panel2.get_by_label("Verdict").select_option("uphold")
    panel2.get_by_label("Comment or reason").fill("the old tariff applied")
    panel2.get_by_role("button", name="Record my opinion").click()
    expect(panel2.get_by_text("No open appeal you can act on.")).to_be_visible()
    expect(agent.get_by_role("alert")).to_have_text("Your appeal was decided: overturned. Score now 100.")
    expect(detail.get_by_text("Corrected", exact=True).first).to_be_visible()
    expect(detail.get_by_text("Appeal 1: overturned")).to_be_visible()
    expect(detail.get_by_role("listitem").filter(has_text="Admitted to the panel — operator")).to_be_visible()
    assert sup2.js_errors == []
    sup2.context.close()
    agent.screenshot(path=str(shots / "qa-mine.png"))

    # the agent's token cannot fetch another agent's recording
    token = agent.evaluate("JSON.parse(sessionStorage.getItem('cti.session.agent')).token")
    status = agent.evaluate(f"fetch('/api/v1/qa/recordings/20260603-s1-0003/audio?token={token}')"
                            ".then((r) => r.status)")
    assert status == 403
    assert sup.js_errors == [] and agent.js_errors == []
    sup.context.close()
    agent.context.close()


def test_agent_page_in_simplified_chinese(browser: Any, qa_server: ServerProcess, shots: Path) -> None:
    from playwright.sync_api import expect

    agent = _page(browser, locale="zh-CN")
    _sign_in(agent, f"{_base(qa_server)}/qa/mine", "坐席工号", "1001", "demo1001")
    expect(agent.get_by_role("heading", name="我的评分")).to_be_visible(timeout=10_000)
    agent.get_by_role("button", name="打开 20260603-s1-0001").click()
    expect(agent.get_by_role("heading", name="记录")).to_be_visible()
    # the prepared evaluation, settled by the node's finaliser when it started: FINAL, and the step in the history
    mine = agent.get_by_role("region", name="我的评分")
    expect(mine.get_by_role("row").filter(has_text="20260603-s1-0002")).to_contain_text("已定稿")
    mine.get_by_role("button", name="打开 20260603-s1-0002").click()
    expect(agent.get_by_role("listitem").filter(has_text="定稿：申述期已过 — node")).to_be_visible()
    agent.screenshot(path=str(shots / "qa-mine-zh.png"))
    assert agent.js_errors == []
    agent.context.close()
