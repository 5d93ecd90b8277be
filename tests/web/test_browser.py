"""The three pages in headless Chromium against a real node, with SIPp as the carrier and the phones.

One `cti serve --demo` for the module; the tests run in order and share the agent's and the supervisor's pages
(each its own browser context), as a person would keep them open:

1. agent 1003 signs in on /agent, goes ready; a SIPp carrier calls 100 and presses 2; the screen pop shows the
   caller number and the IVR input; the SIPp phone answers; the supervisor sees 1003 "On call" within 1 s of the
   agent's page and clicks Monitor: its SIPp phone gets the INVITE; the agent hangs up from the page (the carrier
   gets the BYE), picks a disposition; the CDR carries it.
2. a notice sent from the console reaches the agent's page; the agent marks it read; the receipt comes back.
3. /wallboard: the waiting count rises as calls queue (VIP first: a console opened after its alert sees it, and
   sees the other console's acknowledgement) and the tile turns amber, then red.
4. zh-CN: the pages in Simplified Chinese, by the browser's language and by the switch.

Elements are found by role and accessible name, as a person finds them.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.procs import ServerProcess
from tests.support.sipp import HOST, OPERATOR_TOKEN, SippRunner
from tests.web.conftest import SITE_ZONE, VIEWPORT, needs_browser, needs_sipp

pytestmark = [pytest.mark.interop, needs_browser, needs_sipp, pytest.mark.timeout(120)]

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
WARN_RGB, CRIT_RGB = "rgb(255, 221, 0)", "rgb(212, 53, 28)"  # --warn, --crit in app.css


def base(server: ServerProcess) -> str:
    return f"http://{HOST}:{server.http_port}"


def sign_in(page: Any, url: str, id_label: str, ident: str, password: str, submit: str = "Sign in") -> None:
    page.goto(url)
    page.get_by_label(id_label).fill(ident)
    page.get_by_label(re.compile("^(Password|密码)$")).fill(password)
    page.get_by_role("button", name=submit).click()


def new_page(browser: Any, **options: Any) -> Any:
    context = browser.new_context(viewport=VIEWPORT, **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # checked at the end of each test
    return page


@pytest.fixture(scope="module")
def agent_page(browser: Any, web_server: ServerProcess) -> Iterator[Any]:
    page = new_page(browser, locale="en-GB")
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def sup_page(browser: Any, web_server: ServerProcess) -> Iterator[Any]:
    page = new_page(browser, locale="en-GB")
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def media_sink() -> Iterator[int]:
    """A UDP port for the supervisor phone's SDP (the server's RTP lands there, unread)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        yield int(sock.getsockname()[1])


def agent_row(page: Any, name: str, panel: str = "Agents") -> Any:
    """The agent's row in the console's agent grid."""
    grid = page.get_by_role("region", name=panel, exact=True)
    return grid.get_by_role("row").filter(has=page.get_by_role("rowheader", name=re.compile(name)))


def cdr_disposition(server: ServerProcess, call_id: str) -> str | None:
    with sqlite3.connect(server.data_dir / "cti.sqlite3", timeout=5) as db:
        row = db.execute("SELECT disposition FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    return None if row is None else row[0]


def assert_site_clock(shown: str) -> None:
    """``shown`` (HH:MM:SS) is the time now in the site's zone (config node.timezone), not the machine's."""
    now = dt.datetime.now(ZoneInfo(SITE_ZONE))
    h, m, s = (int(x) for x in shown.split(":"))
    gap = abs((now.hour * 3600 + now.minute * 60 + now.second) - (h * 3600 + m * 60 + s)) % 86400
    assert min(gap, 86400 - gap) < 120, (shown, now.isoformat())


def seed_earlier_call(server: ServerProcess, caller: str, *, ago_s: float, disposition: str) -> None:
    """A finished call of ``caller`` in the node's CDRs, as an earlier day would have left it."""
    t = time.time() - ago_s
    with sqlite3.connect(server.data_dir / "cti.sqlite3", timeout=5) as db:
        db.execute("INSERT INTO calls (call_id, node, t_arrived, caller_number, t_answered, t_ended, disposition, "
                   "final_agent, final_queue, ivr_inputs, crm_data, vip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   ("earlier-1", "demo", t, caller, t + 8, t + 128, disposition, "1002", "support", "{}", "{}", False))


def contacts_status(page: Any, server: ServerProcess, call_id: str, agent_id: str, password: str) -> int:
    """The status of the previous-contacts route for ``call_id`` with ``agent_id``'s login token."""
    token = page.request.post(f"{base(server)}/auth/login", data={"role": "agent", "id": agent_id,
                                                                  "password": password}).json()["token"]
    response = page.request.get(f"{base(server)}/api/v1/calls/{call_id}/contacts",
                                headers={"Authorization": f"Bearer {token}"})
    return int(response.status)


def test_agent_takes_a_call_supervisor_monitors_it(web_server: ServerProcess, sipps: SippRunner, agent_page: Any,
                                                   sup_page: Any, media_sink: int, shots: Path) -> None:
    from playwright.sync_api import expect

    target = f"{HOST}:{web_server.sip_port}"
    phone = sipps.agent(target, "1003", "agent_answer.xml", "-set", "ring_ms", "1500", timeout=60)
    sup_phone = sipps.agent(target, "sup1", "supervisor_answer.xml", "-key", "rtp_ip", HOST,
                            "-key", "rtp_port", str(media_sink), password="demosup1", timeout=60)
    assert phone.wait_for_message("SIP/2.0 200", 10), phone.report()
    assert sup_phone.wait_for_message("SIP/2.0 200", 10), sup_phone.report()

    agent = agent_page
    sign_in(agent, f"{base(web_server)}/agent", "Agent ID", "1003", "demo1003")
    state = agent.get_by_role("region", name="My state")
    expect(state).to_contain_text("Logged out")
    agent.get_by_role("button", name="Log in ready").click()
    expect(state).to_contain_text("Ready")
    reasons = agent.get_by_label("Not ready reason").locator("option")
    expect(reasons).to_have_text(["Break", "Lunch", "Coaching"])  # hello's site.pause_reasons (config desk)
    expect(agent.get_by_role("status").first).to_have_text("Connected")

    sup = sup_page
    sign_in(sup, f"{base(web_server)}/supervisor", "Supervisor ID", "sup1", "demosup1")
    carol = agent_row(sup, "Carol Support")
    expect(carol).to_contain_text("Ready")

    seed_earlier_call(web_server, "5551234", ago_s=3 * 86400, disposition="billing")  # the caller called before
    carrier = sipps.start("carrier", str(SCENARIOS / "carrier_until_bye.xml"), "-s", "100", "-key", "caller",
                          "5551234", "-key", "dtmf_pcap", "/usr/share/sip-tester/dtmf_2833_2.pcap",
                          remote=target, timeout=60)
    pop = agent.get_by_role("region", name="Caller details")
    expect(pop).to_contain_text("5551234", timeout=20_000)
    ivr = pop.get_by_role("table", name="IVR answers")
    expect(ivr.get_by_role("row", name=re.compile("menu_choice"))).to_contain_text("2")
    expect(pop).to_contain_text("support")
    earlier = pop.get_by_role("table", name="Last contacts")  # GET /api/v1/calls/{id}/contacts with 1003's token
    expect(earlier.get_by_role("row").filter(has_text="Billing question")).to_contain_text("support")
    expect(earlier.get_by_role("row")).to_have_count(2)  # the header and the one earlier call, not this one

    expect(state).to_contain_text("On call", timeout=10_000)
    seen_by_agent = time.monotonic()
    expect(carol).to_contain_text("On call", timeout=1_000)  # the same event: the console within 1 s
    lag = time.monotonic() - seen_by_agent
    expect(pop).to_contain_text("Connected")
    live_call = _last_call_id(web_server)
    assert contacts_status(agent, web_server, live_call, "1003", "demo1003") == 200
    assert contacts_status(agent, web_server, live_call, "1001", "demo1001") == 403  # not this agent's call
    agent.screenshot(path=str(shots / "agent.png"))

    calls = sup.get_by_role("region", name="Live calls")
    call_row = calls.get_by_role("row").filter(has_text="5551234")
    call_row.get_by_role("button", name=re.compile("^Monitor")).click()
    assert sup_phone.wait_for_message("INVITE sip:", 10), sup_phone.report()
    expect(call_row).to_contain_text("You are monitoring", timeout=10_000)
    sup.screenshot(path=str(shots / "supervisor.png"))

    agent.get_by_role("button", name="Hang up").click()
    assert carrier.wait(15) == 0, carrier.report()  # it ends only on the server's BYE
    assert "BYE sip:" in carrier.messages()
    expect(state).to_contain_text("Wrap-up")
    left = agent.get_by_role("timer", name="Time left")  # support's wrap_up_s: 30, from agent.state_changed
    expect(left).to_contain_text(re.compile(r"0:(30|2\d)"))
    first_left = left.inner_text()
    expect(left).not_to_have_text(first_left, timeout=3_000)  # it counts down
    agent.screenshot(path=str(shots / "agent-wrap-up.png"))
    expect(agent.get_by_label("Disposition").locator("option")).to_have_text(
        ["Choose a disposition", "Resolved", "Billing question", "callback"])  # hello's site.dispositions
    ended_at = agent.get_by_text(re.compile(r"^Call ended at \d\d:\d\d:\d\d")).inner_text()
    assert_site_clock(ended_at[-8:])
    agent.get_by_role("button", name="Finish wrap-up").click()
    expect(agent.get_by_role("alert")).to_contain_text("Choose a disposition")  # the page asks, nothing sent
    agent.get_by_label("Disposition").select_option(label="Resolved")
    agent.get_by_label("Notes").fill("Asked for a refund; call back Tuesday.")
    agent.get_by_role("button", name="Finish wrap-up").click()
    expect(state).to_contain_text("Ready")
    call_id = _last_call_id(web_server)
    for _ in range(50):
        if cdr_disposition(web_server, call_id) == "resolved":
            break
        time.sleep(0.1)
    assert cdr_disposition(web_server, call_id) == "resolved"
    with sqlite3.connect(web_server.data_dir / "cti.sqlite3", timeout=5) as db:
        notes = db.execute("SELECT wrap_up_notes FROM calls WHERE call_id = ?", (call_id,)).fetchone()[0]
    assert notes == "Asked for a refund; call back Tuesday."
    expect(carol).to_contain_text("Ready")
    assert phone.wait(10) == 0, phone.report()
    print(f"console saw on_call {lag * 1000:.0f} ms after the agent's page")
    assert agent.js_errors == [] and sup.js_errors == []


def _last_call_id(server: ServerProcess) -> str:
    with sqlite3.connect(server.data_dir / "cti.sqlite3", timeout=5) as db:
        row = db.execute("SELECT call_id FROM calls ORDER BY t_arrived DESC LIMIT 1").fetchone()
    assert row is not None, "no CDR"
    return str(row[0])


def test_notice_from_the_console_is_read_on_the_desktop(web_server: ServerProcess, agent_page: Any,
                                                         sup_page: Any) -> None:
    from playwright.sync_api import expect

    agent, sup = agent_page, sup_page
    sup.get_by_label("Message").fill("Team briefing at 15:00 in room 2")
    sup.get_by_role("button", name="Send notice").click()
    notice = agent.get_by_role("region", name="Notices").get_by_role("listitem").filter(has_text="Team briefing")
    expect(notice).to_contain_text("From sup1")
    sent = sup.get_by_role("region", name="Broadcast a notice").get_by_role("article").filter(has_text="Team briefing")
    receipt = sent.get_by_role("row").filter(has=sup.get_by_role("rowheader", name="Carol Support"))
    expect(receipt).to_be_visible(timeout=5_000)  # delivered (notice_receipts)
    expect(receipt.get_by_role("cell").nth(1)).to_have_text("—")  # not read yet
    notice.get_by_role("button", name="Mark as read").click()
    expect(notice).to_contain_text("Read")
    expect(receipt.get_by_role("cell").nth(1)).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))  # notice.read came back
    assert agent.js_errors == [] and sup.js_errors == []


def test_wallboard_counts_queued_calls_with_threshold_colours_and_vip_alert(
        browser: Any, web_server: ServerProcess, sipps: SippRunner, agent_page: Any, sup_page: Any,
        shots: Path) -> None:
    from playwright.sync_api import expect

    agent, sup = agent_page, sup_page
    agent.get_by_label("Not ready reason").select_option(label="Lunch")
    agent.get_by_role("button", name="Not ready").click()
    expect(agent_row(sup, "Carol Support")).to_contain_text("Not ready · Lunch")

    board = new_page(browser, locale="en-GB")  # a TV: a long-lived supervisor token in the URL fragment
    token = board.request.post(f"{base(web_server)}/api/v1/tokens", data={"role": "supervisor", "subject": "sup1",
                                "ttl_s": 86400}, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).json()["token"]
    board.goto(f"{base(web_server)}/wallboard?queue=support&waiting_warn=1&waiting_crit=2#token={token}")
    expect(board.get_by_role("banner")).to_contain_text("sup1")
    assert "token" not in board.url  # taken out of the address bar
    waiting = board.get_by_role("group", name="Waiting")
    expect(waiting).to_contain_text("0")
    expect(waiting).to_contain_text("OK")
    expect(board.get_by_role("heading", name="sales")).to_have_count(0)  # ?queue=support
    # the call of the first test was answered in support: its wait is the queue's ASA (asa_seconds), no note
    asa = board.get_by_role("group", name="ASA")
    expect(asa).to_contain_text(re.compile(r"\d+:\d\d"))
    expect(asa).not_to_contain_text("no calls yet")
    queues = sup.get_by_role("region", name="Queues")
    support_row = queues.get_by_role("row").filter(has=sup.get_by_role("rowheader", name="support"))
    expect(support_row.get_by_role("cell").nth(3)).to_have_text(re.compile(r"^\d+:\d\d$"))
    expect(queues).not_to_contain_text("Not available yet")

    target = f"{HOST}:{web_server.sip_port}"
    vip = sipps.carrier(target, digit="2", caller="1000", hangup_ms=12_000, name="vip-carrier")
    expect(waiting).to_contain_text("1", timeout=15_000)
    expect(waiting).to_contain_text("Warning")
    expect(waiting).to_have_css("background-color", WARN_RGB)  # retried: the board re-renders on every update

    alert = sup.get_by_role("region", name="Alerts").get_by_role("listitem").filter(has_text="VIP caller")
    expect(alert).to_contain_text("Warning")
    # a second console opened after the alert was raised gets it from hello, then the first one's acknowledgement
    other = new_page(browser, locale="en-GB")
    other.goto(f"{base(web_server)}/supervisor#token={token}")
    other_alert = other.get_by_role("region", name="Alerts").get_by_role("listitem").filter(has_text="VIP caller")
    expect(other_alert.get_by_role("button", name=re.compile("^Acknowledge"))).to_be_visible()
    alert.get_by_role("button", name=re.compile("^Acknowledge")).click()
    expect(alert).to_contain_text("Acknowledged by sup1")
    expect(other_alert).to_contain_text("Acknowledged by sup1")
    expect(other_alert.get_by_role("button", name=re.compile("^Acknowledge"))).to_have_count(0)
    assert other.js_errors == []
    other.context.close()

    second = sipps.carrier(target, digit="2", caller="5557001", hangup_ms=6_000, name="second-carrier")
    expect(waiting).to_contain_text("2", timeout=15_000)
    expect(waiting).to_contain_text("Critical")
    expect(waiting).to_have_css("background-color", CRIT_RGB)
    expect(board.get_by_role("list", name="Agents by state").get_by_role("listitem")
           .filter(has_text="Not ready")).to_contain_text("1")
    queued = sup.get_by_role("region", name="Live calls").get_by_role("row").filter(has_text="5557001")
    expect(queued).to_contain_text("Waiting")  # the caller's number comes from call.queued
    board.screenshot(path=str(shots / "wallboard.png"))
    sup.screenshot(path=str(shots / "supervisor-queue.png"))
    for carrier in (second, vip):  # they hang up while queued (abandoned)
        assert carrier.wait(20) == 0, carrier.report()
    expect(waiting).to_contain_text("0", timeout=5_000)
    assert board.js_errors == [] and sup.js_errors == [] and agent.js_errors == []
    board.context.close()


def test_pages_in_simplified_chinese(browser: Any, web_server: ServerProcess, shots: Path) -> None:
    from playwright.sync_api import expect

    page = new_page(browser, locale="zh-CN")  # the browser's language decides
    page.goto(f"{base(web_server)}/agent")
    expect(page).to_have_title("坐席工作台")
    paint = page.evaluate("() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null")
    print(f"/agent first contentful paint {paint:.0f} ms")
    assert paint is not None and paint < 1000, paint
    expect(page.get_by_role("heading", name="坐席工作台")).to_be_visible()
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert").filter(has_text="出现问题")).to_contain_text("请输入账号和密码")
    sign_in(page, f"{base(web_server)}/agent", "坐席工号", "1004", "demo1004", submit="登录")
    expect(page.get_by_role("region", name="我的状态")).to_contain_text("已签出")
    page.get_by_role("button", name="签入并就绪").click()
    expect(page.get_by_role("region", name="我的状态")).to_contain_text("就绪")
    expect(page.get_by_role("button", name="未就绪")).to_be_visible()
    # config desk.pause_reasons' labels in the page's language: 午休 replaces the page's own 午餐, 辅导 is configured
    expect(page.get_by_label("未就绪原因").locator("option")).to_have_text(["休息", "午休", "辅导"])
    expect(page.get_by_role("button", name="签出")).to_be_visible()
    expect(page.get_by_role("status").first).to_have_text("已连接")
    page.screenshot(path=str(shots / "agent-zh-CN.png"))

    sign_in(page, f"{base(web_server)}/supervisor", "班长账号", "sup1", "demosup1", submit="登录")
    for heading in ("队列", "坐席", "实时通话", "告警", "广播通知"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(agent_row(page, "Dave VIP", panel="坐席")).to_contain_text("就绪")
    expect(page.get_by_role("button", name="发送通知")).to_be_visible()

    page.goto(f"{base(web_server)}/wallboard")  # this tab is signed in as sup1 already
    expect(page).to_have_title("大屏看板")
    expect(page.get_by_role("group", name="排队数").first).to_be_visible()
    expect(page.get_by_role("group", name="服务水平").first).to_be_visible()

    english = new_page(browser, locale="en-GB")  # and the switch, on an English page
    english.goto(f"{base(web_server)}/")
    expect(english.get_by_role("link", name="Agent desktop")).to_be_visible()
    english.get_by_label("Language").select_option("zh-CN")
    expect(english.get_by_role("link", name="坐席工作台")).to_be_visible()
    expect(english.locator("html")).to_have_attribute("lang", "zh-CN")

    english.goto(f"{base(web_server)}/agent?lang=en")  # keyboard only: the ID field has the focus on arrival
    english.keyboard.type("1001")
    english.keyboard.press("Tab")
    english.keyboard.type("demo1001")
    english.keyboard.press("Enter")
    login_ready = english.get_by_role("button", name="Log in ready")
    expect(login_ready).to_be_visible()
    login_ready.focus()
    english.keyboard.press("Enter")
    expect(english.get_by_role("region", name="My state")).to_contain_text("Ready")
    assert page.js_errors == [] and english.js_errors == []
    page.context.close()
    english.context.close()
