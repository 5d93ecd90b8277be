"""``GET /api/v1/staffing`` and ``POST /api/v1/staffing/forecast`` through the aiohttp test client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.http.api import build_app
from cti.http.openapi import STAFFING_PATHS
from cti.staffing.routes import add_staffing_routes
from tests.cti.test_api import AUTH, TOKEN, FakeControl, FakeMetrics

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def api() -> AsyncIterator[Client]:
    """The routes as build_app mounts them on the real admin application (its token guard included)."""
    app = build_app(FakeControl(), token=TOKEN, node="n", metrics=FakeMetrics())
    client: Client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def _get(api: Client, query: str) -> tuple[int, Any]:
    async with api.get(f"/api/v1/staffing?{query}", headers=AUTH) as response:
        return response.status, await response.json()


async def test_same_answer_as_the_cli(api: Client) -> None:
    status, out = await _get(api, "calls=100&interval_s=1800&aht_s=180&sl_target=0.8&answer_within_s=20"
                                  "&shrinkage=0.3&max_occupancy=0.85")
    assert status == 200
    assert (out["traffic_erlangs"], out["agents"], out["agents_scheduled"]) == (10.0, 14, 20)
    assert out["service_level"] == pytest.approx(0.8883500191794669, abs=1e-12)
    assert out["wait_probability"] == pytest.approx(0.1741319335950498, abs=1e-12)
    assert [w["agents"] for w in out["what_if"]] == list(range(11, 18))


async def test_erlang_a_and_given_agents(api: Client) -> None:
    status, out = await _get(api, "calls=100&aht_s=180&model=erlang-a&patience_s=120&agents=13&what_if=0")
    assert status == 200 and (out["agents"], out["meets_target"]) == (13, True)
    assert out["abandon_probability"] == pytest.approx(0.0384, abs=5e-5)


@pytest.mark.parametrize(("query", "code", "text"), [
    ("calls=100&aht_s=0", "staffing.input_invalid", "aht_s: the average handle time must be > 0"),
    ("calls=100&aht_s=180&shrinkage=1", "staffing.input_invalid", "shrinkage"),
    ("calls=100", "bad_parameter", "missing parameter(s): aht_s"),
    ("calls=many&aht_s=180", "bad_parameter", "calls must be a number"),
    ("calls=100&aht_s=nan", "bad_parameter", "finite"),
    ("calls=100&aht_s=180&agents=1.5", "bad_parameter", "agents must be an integer"),
    ("calls=100&aht_s=180&model=erlang-b", "bad_parameter", "model must be one of erlang-c, erlang-a"),
    ("calls=100&aht_s=180&colour=red", "unknown_parameter", "colour"),
])
async def test_bad_input_is_400(api: Client, query: str, code: str, text: str) -> None:
    status, out = await _get(api, query)
    assert status == 400 and out["error"]["code"] == code and text in out["error"]["message"]


async def test_guarded_by_the_operator_token(api: Client) -> None:
    async with api.get("/api/v1/staffing?calls=1&aht_s=1") as response:
        assert response.status == 401


async def test_forecast(api: Client) -> None:
    body = "interval,calls,aht_s\n09:00,100,180\n09:30,360,240\n"
    async with api.post("/api/v1/staffing/forecast?shrinkage=0.3", data=body, headers=AUTH) as response:
        assert response.status == 200
        out = await response.json()
    assert [(i["interval"], i["agents"], i["agents_scheduled"]) for i in out["intervals"]] == [
        ("09:00", 14, 20), ("09:30", 54, 78)]
    async with api.post("/api/v1/staffing/forecast", data="interval,calls,aht_s\n09:00,1,0\n",
                        headers=AUTH) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["code"] == "staffing.forecast_invalid"
    assert error["problems"] == [{"file": "request body", "line": 2,
                                  "reason": "aht_s must be a number of seconds > 0, got '0'"}]
    async with api.post("/api/v1/staffing/forecast?calls=3", data=body, headers=AUTH) as response:
        assert response.status == 400 and (await response.json())["error"]["code"] == "unknown_parameter"


def test_openapi_entry_matches_the_routes() -> None:
    app = web.Application()
    add_staffing_routes(app)
    routes = {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
              if r.method != "HEAD" and r.resource is not None}
    assert routes == {(m, p) for p, ops in STAFFING_PATHS.items() for m in ops}
    query = {p["name"] for p in STAFFING_PATHS["/api/v1/staffing"]["get"]["parameters"]}
    assert query == {"calls", "aht_s", "interval_s", "sl_target", "answer_within_s", "model", "patience_s",
                     "sl_formula", "shrinkage", "max_occupancy", "agents", "what_if"}
