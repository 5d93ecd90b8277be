"""The supervisor console's "Today by half hour" panel in headless Chromium: the chart (SVG from the report route,
read with the supervisor's own token) shows today's calls, the figure can be changed by its label, and each queue's
gap to its targets is listed with a word, not colour alone. A real `cti serve` with SIPp calls (an abandon and an
answered call); the screenshot goes to the screenshots folder (docs/web-report.png is one)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import SippRunner, agent_login_ready

from .conftest import demo_config, needs_browser, needs_sipp
from .test_browser import HOST, base, new_page, sign_in

pytestmark = [pytest.mark.interop, needs_browser, needs_sipp]


@pytest.fixture(scope="module")
def report_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("report-server")
    path = demo_config(tmp)
    config = yaml.safe_load(path.read_text())
    config["reports"] = {"queue_targets": {"support": {"aht_s": 300, "abandon_rate": 0.05, "asa_s": 15}}}
    path.write_text(yaml.safe_dump(config))
    with run_server(tmp, config=path) as server:
        yield server


def test_console_shows_todays_chart_and_target_gaps(browser: Any, report_server: ServerProcess,
                                                     sipps: SippRunner, shots: Path) -> None:
    target = f"{HOST}:{report_server.sip_port}"
    gone = sipps.carrier(target, digit="2", hangup_ms=7000, caller="5550111", name="abandon")  # not short
    assert gone.wait(30) == 0, gone.report()
    phone = sipps.agent(target, "1003", "agent_answer.xml", timeout=40)
    assert phone.wait_for_message("SIP/2.0 200", 10), phone.report()
    agent_login_ready(report_server.http_port, "1003")
    caller = sipps.carrier(target, digit="2", caller="5550112", talk_ms=2000, timeout=40, name="answered")
    assert caller.wait(40) == 0, caller.report()
    assert phone.wait(15) == 0, phone.report()

    page = new_page(browser, locale="en-GB")
    sign_in(page, f"{base(report_server)}/supervisor", "Supervisor ID", "sup1", "demosup1")
    region = page.get_by_role("region", name="Today by half hour")
    chart = region.get_by_role("img", name=re.compile("^Service level per interval"))
    chart.wait_for(timeout=10000)
    page.wait_for_function("() => document.querySelector('img.report-chart')?.naturalWidth > 0", timeout=10000)
    gaps = region.get_by_role("table", name="Today against the targets")
    support_sl = gaps.get_by_role("row", name=re.compile(r"^support Service level"))
    support_sl.wait_for(timeout=10000)
    # the abandon (within T) is ignored by the default formula (abandons_after_t_negative): 1 of 1 met
    assert re.search(r"≥ 80%\s+100%\s+\+20%\s+Met", support_sl.inner_text())
    abandon = gaps.get_by_role("row", name=re.compile(r"^support Abandon rate"))
    assert re.search(r"≤ 5%\s+50%\s+\+45%\s+Missed", abandon.inner_text())
    region.get_by_label("Figure").select_option(label="Offered")
    region.get_by_role("img", name=re.compile("^Offered per interval")).wait_for(timeout=10000)
    region.get_by_label("Figure").select_option(label="Service level")
    chart.wait_for(timeout=10000)
    region.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "supervisor-report.png"), full_page=True)
    assert page.js_errors == []
