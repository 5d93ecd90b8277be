"""``GET /api/v1/reports/{kind}`` on the real admin application over a SQLite store: JSON, CSV, SVG, and the
400s of a bad request (from after to, a range over the maximum, unknown interval/format/figure/parameter)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from config.schema import ServerConfig
from cti.cli.staffing import staffing
from cti.http.api import build_app
from cti.http.openapi import REPORT_PATHS
from cti.reports.routes import add_report_routes
from cti.reports.worker import ReportWorkers
from cti.store import open_store
from cti.tokens import Role, TokenIssuer
from tests.cti.test_api import AUTH, TOKEN, FakeControl, FakeMetrics

from .legs import leg

Client = TestClient[web.Request, web.Application]
TOKENS = TokenIssuer(b"k" * 32, ttl_s=600, clock=lambda: NINE)
ZONE = ZoneInfo("Asia/Shanghai")
NINE = dt.datetime(2026, 12, 7, 9, 0, tzinfo=ZONE).timestamp()


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def workers() -> AsyncIterator[ReportWorkers]:
    """One pair of report worker processes for the module (each test's store is a new file in the job)."""
    shared = ReportWorkers()
    try:
        yield shared
    finally:
        await shared.close()


@pytest_asyncio.fixture(loop_scope="module")
async def api(tmp_path: Path, workers: ReportWorkers) -> AsyncIterator[Client]:
    store = await open_store(tmp_path / "cti.sqlite3")
    for one in (leg("sales", at=NINE, answered=12.0, talk=60.0), leg("sales", at=NINE + 40, abandoned=30.0),
                leg("sales", at=NINE + 1900, answered=25.0, talk=30.0)):
        await store.save_queue_leg(one)
    await store.save_queue_leg(leg("support", at=NINE, answered=1.0))
    config = ServerConfig.model_validate({"node": {"timezone": "Asia/Shanghai"},
                                          "queues": [{"name": "sales"}, {"name": "support"}],
                                          "supervisors": [{"id": "sup1", "password": "secret1", "queues": ["sales"]}],
                                          "reports": {"max_range_days": 31,
                                                      "queue_targets": {"sales": {"abandon_rate": 0.05}}}})
    app = build_app(FakeControl(), token=TOKEN, node="n", metrics=FakeMetrics())
    add_report_routes(app, store_target=tmp_path / "cti.sqlite3", config=config, clock=lambda: NINE + 7200,
                      tokens=TOKENS, workers=workers)
    client: Client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await store.close()


async def _get(api: Client, path: str) -> tuple[int, Any, str]:
    async with api.get(path, headers=AUTH) as response:
        text = await response.text()
        data = await response.json() if response.content_type == "application/json" else None
        return response.status, data, text


async def test_json_report_per_half_hour_in_the_site_zone(api: Client) -> None:
    status, body, _ = await _get(api, "/api/v1/reports/queues?from=2026-12-07&to=2026-12-07&interval=30m")
    assert status == 200 and body["timezone"] == "Asia/Shanghai" and body["from"] == "2026-12-07T00:00:00+08:00"
    rows = {r["interval"]: r for r in body["rows"] if r["group"] == "sales"}
    assert len(rows) == 49  # 48 half hours and the total
    nine = rows["2026-12-07T09:00+08:00"]["figures"]
    assert (nine["offered"], nine["answered"], nine["abandoned"], nine["service_level"]) == (2, 1, 1, 0.5)
    assert rows["2026-12-07T09:30+08:00"]["figures"]["service_level"] == 0.0  # 25 s > 20 s
    total = rows["total"]
    assert total["figures"]["offered"] == 3 and total["figures"]["service_level"] == pytest.approx(1 / 3)
    assert total["targets"]["service_level"] == {"target": 0.8, "actual": pytest.approx(1 / 3),
                                                 "gap": pytest.approx(1 / 3 - 0.8), "met": False,
                                                 "direction": "at_least"}
    assert total["targets"]["abandon_rate"]["met"] is False
    assert rows["2026-12-07T10:00+08:00"]["figures"]["service_level"] is None  # no calls: null, not 0 or 100 %


async def test_csv_and_svg(api: Client) -> None:
    status, _, text = await _get(api, "/api/v1/reports/queues?from=2026-12-07&to=2026-12-07&interval=60m&format=csv")
    lines = text.splitlines()
    assert status == 200 and lines[0].startswith("group,interval,offered,")
    assert len(lines) == 1 + 2 * 25 and "gap.service_level" in lines[0]  # two queues, 24 hours + total
    status, _, svg = await _get(api, "/api/v1/reports/queues?from=2026-12-07&to=2026-12-07&interval=60m"
                                     "&format=svg&figure=service_level")
    assert status == 200
    root = ET.fromstring(svg)
    assert root.get("role") == "img" and "Service level" in (root.get("aria-label") or "")
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "sales" in texts and "target 80%" in texts


@pytest.mark.parametrize(("query", "field", "words"), [
    ("from=2026-12-08&to=2026-12-07", "from", "from must be before to"),
    ("from=2026-10-01&to=2026-12-07", "to", "maximum of 31 days"),
    ("from=2026-12-07&to=2026-12-07&interval=10m", "interval", "15m, 30m"),
    ("from=2026-12-07&to=2026-12-07&format=pdf", "format", "json, csv, svg"),
    ("from=yesterday&to=2026-12-07", "from", "YYYY-MM-DD"),
    ("to=2026-12-07", "from", "missing parameter from"),
    ("from=2026-12-07&to=2026-12-07&format=svg&figure=mood", "figure", "figure must be one of"),
    ("from=2026-12-07&to=2026-12-07&format=svg&group=nope", "group", "no such group"),
    ("from=2026-12-07&to=2026-12-07&colour=red", "colour", "unknown parameter"),
])
async def test_bad_requests_are_400_with_a_message(api: Client, query: str, field: str, words: str) -> None:
    status, body, _ = await _get(api, f"/api/v1/reports/queues?{query}")
    assert status == 400 and body["error"]["field"] == field and words in body["error"]["message"]


async def test_unknown_kind_and_the_routes_match_openapi(api: Client) -> None:
    status, body, _ = await _get(api, "/api/v1/reports/teams?from=2026-12-07&to=2026-12-07")
    assert status == 400 and body["error"]["code"] == "reports.input_invalid"
    app = web.Application()
    add_report_routes(app, store_target="unused.sqlite3", config=ServerConfig())
    mounted = {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
               if r.method != "HEAD" and r.resource is not None}
    assert mounted == {(m, p) for p, ops in REPORT_PATHS.items() for m in ops}


async def test_a_supervisor_token_reads_its_own_queues_only(api: Client) -> None:
    path = "/api/v1/reports/queues?from=2026-12-07&to=2026-12-07&interval=day"
    async with api.get(path) as response:
        assert response.status == 401
    supervisor = TOKENS.issue(Role.SUPERVISOR, "sup1").token
    async with api.get(path, headers={"Authorization": f"Bearer {supervisor}"}) as response:
        assert response.status == 200
        assert {r["group"] for r in (await response.json())["rows"]} == {"sales"}
    async with api.get(path, headers=AUTH) as response:
        assert {r["group"] for r in (await response.json())["rows"]} == {"sales", "support"}
    agent = TOKENS.issue(Role.AGENT, "1001").token
    async with api.get(path, headers={"Authorization": f"Bearer {agent}"}) as response:
        assert response.status == 401
    async with api.get("/api/v1/agents", headers={"Authorization": f"Bearer {supervisor}"}) as response:
        assert response.status == 401  # admitted for reports only
    async with api.get("/api/v1/reports/ivr?from=2026-12-07&to=2026-12-07",
                       headers={"Authorization": f"Bearer {supervisor}"}) as response:
        assert response.status == 403  # node-wide figures: the operator's


async def test_ivr_patience_and_a_past_day_replay(api: Client) -> None:
    status, body, _ = await _get(api, "/api/v1/reports/ivr?from=2026-12-07&to=2026-12-07&interval=day")
    assert status == 200 and body["kind"] == "ivr"
    assert {r["group"] for r in body["rows"]} == {"all"}  # no CDR stored, no trunk number configured
    status, _, text = await _get(api, "/api/v1/reports/ivr?from=2026-12-07&to=2026-12-07&interval=day&format=csv")
    assert status == 200 and text.startswith("group,interval,flow,offered,ivr_answered,")
    status, body, _ = await _get(api, "/api/v1/reports/patience?from=2026-12-07&to=2026-12-07&queue=sales")
    assert status == 200 and (body["abandoned"], body["legs"], body["patience_s"]) == (1, 3, 67.0)  # (12+30+25)/1
    status, body, _ = await _get(api, "/api/v1/kpi/replay?date=2026-12-07")
    sales = next(q for q in body["queues"] if q["queue"] == "sales")
    assert status == 200 and (sales["offered"], sales["answered"], sales["queued_at_day_end"]) == (3, 2, 0)
    for path, field in (("/api/v1/reports/ivr?from=2026-12-07&to=2026-12-07&format=svg", "format"),
                        ("/api/v1/reports/patience?from=2026-12-07&to=2026-12-07&queue=nope", "queue"),
                        ("/api/v1/reports/patience?from=2026-12-07&to=2026-12-07&interval=day", "interval"),
                        ("/api/v1/kpi/replay?date=2026-12-09", "date"), ("/api/v1/kpi/replay?date=monday", "date")):
        status, body, _ = await _get(api, path)
        assert status == 400 and body["error"]["field"] == field, (path, body)


async def test_cti_staffing_takes_the_patience_from_the_records(api: Client) -> None:
    url = f"http://127.0.0.1:{api.port}"
    common = ["--calls", "100", "--aht-s", "180", "--model", "erlang-a", "--patience-from-records", "--from",
              "2026-12-07", "--to", "2026-12-07", "--url", url, "--token", TOKEN, "--what-if", "0"]

    def run(*args: str) -> Any:
        return CliRunner().invoke(staffing, list(args))

    done = await asyncio.to_thread(run, *common, "--queue", "sales", "--json")
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert out["inputs"]["patience_s"] == 67.0 and out["patience_from_records"]["abandoned"] == 1
    refused = await asyncio.to_thread(run, *common, "--queue", "support")  # answered only: nobody gave up
    assert refused.exit_code == 2 and "the patience cannot be estimated" in refused.stderr
    usage = await asyncio.to_thread(run, *common[:6], "--patience-s", "90", *common[6:])
    assert usage.exit_code == 2 and "without --patience-s" in usage.output
