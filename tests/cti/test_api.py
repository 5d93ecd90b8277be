"""The admin API (cti/http/api.py) on a real aiohttp server, against a fake Control and RuntimeAgents."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from acd import AgentState
from config.errors import ConfigFileError, Problem
from config.schema import AgentConfig
from cti.errors import ControlError
from cti.floor.agent_admin import RuntimeAgents
from cti.http.api import MetricFamily, build_app
from cti.http.openapi import CONTACT_PATHS, OPENAPI, REPORT_PATHS, VOICEMAIL_PATHS

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class FakeControl:
    """A small in-memory node: agents with a simplified state machine, two queues, one call."""

    def __init__(self) -> None:
        self.agents = {a.id: a for a in (AgentConfig(id="1001", name="Alice", password="pw1001",
                                                     skills={"sales": 5}, team="blue"),
                                         AgentConfig(id="1002", name="Bob", password="pw1002",
                                                     skills={"support": 3}))}
        self.states: dict[str, tuple[str, str | None]] = {}
        self.calls: dict[str, dict[str, Any]] = {"c1": {"call_id": "c1", "phase": "connected", "queue": "sales",
                                                        "agent_id": "1001", "caller_number": "5550001"}}
        self.journal: list[tuple[str, ...]] = []
        self.asked_by: list[str] = []  # who asked for each login / logout (the ``by`` of the events)
        self.dispositions: dict[str, str | None] = {}

    def _agent(self, agent_id: str) -> AgentConfig:
        if agent_id not in self.agents:
            raise ControlError("unknown_agent", f"no agent {agent_id!r}", status=404)
        return self.agents[agent_id]

    def _state(self, agent_id: str) -> str:
        return self.states.get(agent_id, ("logged_out", None))[0]

    def _move(self, agent_id: str, allowed: set[str], state: str, reason: str | None = None) -> None:
        self._agent(agent_id)
        if self._state(agent_id) not in allowed:
            raise ControlError("acd.transition_illegal", f"not allowed while {self._state(agent_id)}")
        self.states[agent_id] = (state, reason)

    def agent_ids(self) -> list[str]:
        return list(self.agents)

    def agent_snapshot(self, agent_id: str) -> dict[str, Any]:
        a = self._agent(agent_id)
        state, reason = self.states.get(agent_id, ("logged_out", None))
        return {"agent_id": a.id, "name": a.name, "team": a.team, "state": state, "reason": reason, "since": None,
                "call_id": None, "registered": False, "skills": dict(a.skills), "queues": []}

    def agent_state_counts(self) -> dict[str, int]:
        counts = {state.value: 0 for state in AgentState}
        for agent in self.agents_snapshot():
            counts[str(agent["state"])] = counts.get(str(agent["state"]), 0) + 1
        return counts

    def agents_snapshot(self) -> list[dict[str, Any]]:
        return [self.agent_snapshot(a) for a in self.agents]

    def agent_team(self, agent_id: str) -> str | None:
        return self._agent(agent_id).team

    def login(self, agent_id: str, *, ready: bool, by: str = "user") -> None:
        self.journal.append(("login", agent_id, str(ready)))
        self.asked_by.append(by)
        self._move(agent_id, {"logged_out"}, "available" if ready else "paused", None if ready else "login")

    def logout(self, agent_id: str, *, by: str = "user") -> None:
        self.journal.append(("logout", agent_id))
        self.asked_by.append(by)
        self._move(agent_id, {"available", "paused"}, "logged_out")

    def set_ready(self, agent_id: str) -> None:
        self._move(agent_id, {"paused", "available"}, "available")

    def set_not_ready(self, agent_id: str, reason: str) -> None:
        self.journal.append(("not_ready", agent_id, reason))
        self._move(agent_id, {"paused", "available"}, "paused", reason)

    def end_wrap_up(self, agent_id: str, disposition: str | None, notes: str | None = None) -> None:
        self._move(agent_id, {"wrap_up"}, "available")
        self.dispositions[agent_id] = disposition

    def check_agent_password(self, agent_id: str, password: str) -> bool:
        return agent_id in self.agents and self.agents[agent_id].password == password

    def _call(self, call_id: str) -> dict[str, Any]:
        if call_id not in self.calls:
            raise ControlError("unknown_call", f"no live call {call_id!r}", status=404)
        return self.calls[call_id]

    def calls_snapshot(self) -> list[dict[str, Any]]:
        return list(self.calls.values())

    def call_snapshot(self, call_id: str) -> dict[str, Any]:
        return self._call(call_id)

    def current_call(self, agent_id: str) -> dict[str, Any] | None:
        return None

    def hangup_call(self, call_id: str) -> None:
        del self.calls[self._call(call_id)["call_id"]]

    def hold_call(self, call_id: str, on_hold: bool) -> None:
        self._call(call_id)

    def transfer_call(self, call_id: str, target: str) -> None:
        call = self._call(call_id)
        kind, _, name = target.partition(":")
        if kind != "queue":
            raise ControlError("transfer_unsupported", "only queue:<name>", status=400)
        self.queue_snapshot(name)
        call["queue"] = name

    def queue_names(self) -> list[str]:
        return ["sales", "sup\"port"]

    def queue_snapshot(self, queue: str) -> dict[str, Any]:
        if queue not in self.queue_names():
            raise ControlError("unknown_queue", f"no queue {queue!r}", status=404)
        return {"queue": queue, "waiting": 2 if queue == "sales" else 0, "longest_wait_seconds": 12.5,
                "agents_logged_in": 1, "agents_available": 0, "agents_busy": 1, "agents_offering": 0,
                "offered": 3, "answered": 2,
                "abandoned": 1, "service_level": 0.5, "asa_seconds": 8.25, "window_seconds": 86400}

    def supervisor_scope(self, supervisor_id: str) -> tuple[frozenset[str], frozenset[str]]:
        raise ControlError("unknown_supervisor", supervisor_id, status=404)

    def check_supervisor_password(self, supervisor_id: str, password: str) -> bool:
        return False


class FakeMetrics:
    def calls_total(self) -> int:
        return 7

    def calls_active(self) -> int:
        return 1

    def loop_lag(self) -> tuple[float, bool]:
        return 0.0, False

    def calls_refused(self) -> dict[str, int]:
        return {"rate": 4, "trunk_full": 2}

    def sip_messages_rejected(self) -> int:
        return 3

    def sip_retransmissions(self) -> tuple[int, int]:
        return 5, 6

    def sip_transactions(self) -> int:
        return 11

    def bus_published(self) -> int:
        return 40

    def bus_dropped(self) -> int:
        return 2


class FakeReload:
    def __init__(self) -> None:
        self.version = 1
        self.problems: list[Problem] = []

    async def __call__(self) -> int:
        if self.problems:
            raise ConfigFileError(self.problems)
        self.version += 1
        return self.version


Client = TestClient[web.Request, web.Application]


async def _client(app: web.Application) -> AsyncIterator[Client]:
    client: Client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def control() -> FakeControl:
    return FakeControl()


@pytest.fixture
def reload() -> FakeReload:
    return FakeReload()


@pytest.fixture
async def api(control: FakeControl, reload: FakeReload) -> AsyncIterator[Client]:
    app = build_app(control, token=TOKEN, node="node-a", metrics=FakeMetrics(), reload=reload,
                    agent_admin=RuntimeAgents(control.agents, control))
    async for client in _client(app):
        yield client


async def call(api: Client, method: str, path: str, body: Any = None, *, raw: str | None = None,
               headers: Mapping[str, str] = AUTH) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"headers": dict(headers)}
    if raw is not None:
        kwargs["data"] = raw
    elif body is not None:
        kwargs["json"] = body
    async with api.request(method, path, **kwargs) as response:
        if response.status == 204:
            return 204, None
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


def code(answer: Any) -> str:
    return str(answer["error"]["code"])


# ---------------------------------------------------------------------------------- auth

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
async def test_missing_or_wrong_token_is_401(api: Client, headers: dict[str, str]) -> None:
    status, answer = await call(api, "GET", "/api/v1/agents", headers=headers)
    assert (status, code(answer)) == (401, "unauthorized")


async def test_no_configured_token_disables_the_api(control: FakeControl) -> None:
    async for client in _client(build_app(control, token=None, node="n", metrics=FakeMetrics())):
        status, answer = await call(client, "GET", "/api/v1/status")
        assert (status, code(answer)) == (403, "api_disabled")
        assert (await call(client, "GET", "/healthz", headers={}))[0] == 200


async def test_healthz_and_metrics_are_open(api: Client) -> None:
    status, answer = await call(api, "GET", "/healthz", headers={})
    assert (status, answer) == (200, {"status": "ok", "node": "node-a", "calls": 1})
    assert (await call(api, "GET", "/metrics", headers={}))[0] == 200


async def test_build_app_with_a_control_needs_metrics(control: FakeControl) -> None:
    with pytest.raises(TypeError):
        build_app(control, token=TOKEN, node="n")


# ---------------------------------------------------------------------------------- status, agents

async def test_status(api: Client, control: FakeControl) -> None:
    control.states["1001"] = ("available", None)
    status, answer = await call(api, "GET", "/api/v1/status")
    assert status == 200
    assert answer["node"] == "node-a"
    assert answer["calls"] == {"active": 1, "total": 7, "refused": {"rate": 4, "trunk_full": 2}}
    assert answer["sip"] == {"resent": 5, "received_again": 6, "transactions": 11}
    assert answer["agents"]["available"] == 1 and answer["agents"]["logged_out"] == 1
    assert answer["agents"]["on_call"] == 0
    assert [q["queue"] for q in answer["queues"]] == ["sales", "sup\"port"]
    assert answer["uptime_seconds"] >= 0 and isinstance(answer["version"], str)


async def test_agents_list_and_show(api: Client) -> None:
    status, answer = await call(api, "GET", "/api/v1/agents")
    assert status == 200 and [a["agent_id"] for a in answer["agents"]] == ["1001", "1002"]
    status, answer = await call(api, "GET", "/api/v1/agents/1002")
    assert (status, answer["name"], answer["state"]) == (200, "Bob", "logged_out")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/agents/9"), ("POST", "/api/v1/agents/9/login"), ("POST", "/api/v1/agents/9/ready"),
    ("POST", "/api/v1/agents/9/logout"), ("POST", "/api/v1/agents/9/end-wrap-up"),
    ("PUT", "/api/v1/agents/9/skills"), ("DELETE", "/api/v1/agents/9"),
])
async def test_unknown_agent_is_404(api: Client, method: str, path: str) -> None:
    body = {"skills": {"x": 1}} if method == "PUT" else None
    status, answer = await call(api, method, path, body)
    assert (status, code(answer)) == (404, "unknown_agent")


async def test_state_round_trip(api: Client, control: FakeControl) -> None:
    status, answer = await call(api, "POST", "/api/v1/agents/1001/login", {"ready": True})
    assert (status, answer["state"]) == (200, "available")
    status, answer = await call(api, "POST", "/api/v1/agents/1001/not-ready", {"reason": "lunch"})
    assert (status, answer["state"], answer["reason"]) == (200, "paused", "lunch")
    status, answer = await call(api, "POST", "/api/v1/agents/1001/ready")
    assert (status, answer["state"]) == (200, "available")
    status, answer = await call(api, "POST", "/api/v1/agents/1001/logout")
    assert (status, answer["state"]) == (200, "logged_out")
    status, answer = await call(api, "POST", "/api/v1/agents/1001/login")
    assert (status, answer["state"]) == (200, "paused")
    assert control.asked_by == ["operator"] * 3  # agent.logged_in / logged_out name the admin API as who asked
    control.states["1001"] = ("wrap_up", None)
    status, answer = await call(api, "POST", "/api/v1/agents/1001/end-wrap-up", {"disposition": "sale"})
    assert (status, answer["state"], control.dispositions["1001"]) == (200, "available", "sale")


async def test_refused_transitions_are_409_with_the_acd_code(api: Client) -> None:
    for path in ("ready", "logout", "end-wrap-up"):
        status, answer = await call(api, "POST", f"/api/v1/agents/1001/{path}")
        assert (status, code(answer)) == (409, "acd.transition_illegal"), path
    await call(api, "POST", "/api/v1/agents/1001/login")
    status, answer = await call(api, "POST", "/api/v1/agents/1001/login")
    assert (status, code(answer)) == (409, "acd.transition_illegal")


@pytest.mark.parametrize(("path", "raw", "expected"), [
    ("/api/v1/agents/1001/login", "{not json", "bad_json"),
    ("/api/v1/agents/1001/login", "[true]", "bad_json"),
    ("/api/v1/agents/1001/login", '{"ready": "yes"}', "bad_field"),
    ("/api/v1/agents/1001/login", '{"ready": 1}', "bad_field"),
    ("/api/v1/agents/1001/login", '{"redy": true}', "unknown_field"),
    ("/api/v1/agents/1001/not-ready", '{"reason": 5}', "bad_field"),
    ("/api/v1/agents/1001/not-ready", '{"reason": "  "}', "bad_field"),
    ("/api/v1/agents/1001/end-wrap-up", '{"disposition": []}', "bad_field"),
    ("/api/v1/calls/c1/transfer", "{}", "missing_field"),
    ("/api/v1/calls/c1/transfer", '{"target": 7}', "bad_field"),
    ("/api/v1/agents", '{"id": "2001"}', "missing_field"),
    ("/api/v1/agents", '{"id": "2001", "password": "secret", "skills": {"sales": "5"}}', "bad_field"),
    ("/api/v1/agents", '{"id": "2001", "password": "secret", "skills": ["sales"]}', "bad_field"),
    ("/api/v1/agents", '{"id": "2001", "password": "secret", "skills": {"sales": true}}', "bad_field"),
])
async def test_bad_bodies_are_400(api: Client, control: FakeControl, path: str, raw: str, expected: str) -> None:
    status, answer = await call(api, "POST", path, raw=raw)
    assert (status, code(answer)) == (400, expected)
    assert control.states == {} and "2001" not in control.agents


# ---------------------------------------------------------------------------------- runtime agents

async def test_add_agent_then_remove(api: Client, control: FakeControl) -> None:
    body = {"id": "2001", "name": "Eve", "password": "secret", "skills": {"sales": 4}, "team": "red"}
    status, answer = await call(api, "POST", "/api/v1/agents", body)
    assert (status, answer["agent_id"], answer["skills"], answer["team"]) == (201, "2001", {"sales": 4}, "red")
    assert control.agents["2001"].password == "secret"
    status, answer = await call(api, "POST", "/api/v1/agents", body)
    assert (status, code(answer)) == (409, "agent_exists")
    assert (await call(api, "DELETE", "/api/v1/agents/2001"))[0] == 204
    assert "2001" not in control.agents
    assert (await call(api, "GET", "/api/v1/agents/2001"))[0] == 404


@pytest.mark.parametrize("body", [
    {"id": "2001", "password": "pw"},  # too short
    {"id": "bad id", "password": "secret"},
    {"id": "2001", "password": "secret", "skills": {"sales": 11}},
])
async def test_add_agent_refused_by_the_schema_is_400(api: Client, control: FakeControl, body: Any) -> None:
    status, answer = await call(api, "POST", "/api/v1/agents", body)
    assert (status, code(answer)) == (400, "bad_agent")
    assert len(control.agents) == 2


async def test_remove_logged_in_agent_is_409(api: Client, control: FakeControl) -> None:
    await call(api, "POST", "/api/v1/agents/1002/login")
    status, answer = await call(api, "DELETE", "/api/v1/agents/1002")
    assert (status, code(answer)) == (409, "agent_logged_in")
    assert "1002" in control.agents


async def test_set_skills_of_logged_out_agent(api: Client, control: FakeControl) -> None:
    status, answer = await call(api, "PUT", "/api/v1/agents/1001/skills", {"skills": {"vip": 5, "sales": 2}})
    assert (status, answer["skills"]) == (200, {"vip": 5, "sales": 2})
    assert control.journal == []
    status, answer = await call(api, "PUT", "/api/v1/agents/1001/skills", {"skills": {"vip": 0}})
    assert (status, code(answer)) == (400, "bad_agent")
    assert control.agents["1001"].skills == {"vip": 5, "sales": 2}
    status, answer = await call(api, "PUT", "/api/v1/agents/1001/skills", {})
    assert (status, code(answer)) == (400, "missing_field")


async def test_set_skills_of_idle_agent_logs_it_in_again_keeping_its_state(api: Client,
                                                                           control: FakeControl) -> None:
    await call(api, "POST", "/api/v1/agents/1001/login", {"ready": False})
    await call(api, "POST", "/api/v1/agents/1001/not-ready", {"reason": "training"})
    control.journal.clear()
    status, answer = await call(api, "PUT", "/api/v1/agents/1001/skills", {"skills": {"support": 4}})
    assert (status, answer["state"], answer["reason"]) == (200, "paused", "training")
    assert control.journal == [("logout", "1001"), ("login", "1001", "False"), ("not_ready", "1001", "training")]


async def test_agent_crud_without_admin_is_501(control: FakeControl) -> None:
    async for client in _client(build_app(control, token=TOKEN, node="n", metrics=FakeMetrics())):
        status, answer = await call(client, "DELETE", "/api/v1/agents/1001")
        assert (status, code(answer)) == (501, "agent_admin_unavailable")
        status, answer = await call(client, "POST", "/api/v1/config/reload")
        assert (status, code(answer)) == (501, "reload_unavailable")


# ---------------------------------------------------------------------------------- queues, calls, reload

async def test_queues(api: Client) -> None:
    status, answer = await call(api, "GET", "/api/v1/queues")
    assert status == 200 and [q["queue"] for q in answer["queues"]] == ["sales", "sup\"port"]
    status, answer = await call(api, "GET", "/api/v1/queues/sales/stats")
    assert (status, answer["waiting"], answer["answered"]) == (200, 2, 2)
    status, answer = await call(api, "GET", "/api/v1/queues/nope/stats")
    assert (status, code(answer)) == (404, "unknown_queue")


async def test_calls(api: Client, control: FakeControl) -> None:
    status, answer = await call(api, "GET", "/api/v1/calls")
    assert status == 200 and [c["call_id"] for c in answer["calls"]] == ["c1"]
    assert (await call(api, "GET", "/api/v1/calls/c1"))[1]["caller_number"] == "5550001"
    status, answer = await call(api, "POST", "/api/v1/calls/c1/transfer", {"target": "queue:sup\"port"})
    assert (status, answer["target"], control.calls["c1"]["queue"]) == (200, "queue:sup\"port", "sup\"port")
    status, answer = await call(api, "POST", "/api/v1/calls/c1/transfer", {"target": "5551234"})
    assert (status, code(answer)) == (400, "transfer_unsupported")
    status, answer = await call(api, "POST", "/api/v1/calls/c1/transfer", {"target": "queue:nope"})
    assert (status, code(answer)) == (404, "unknown_queue")
    status, answer = await call(api, "POST", "/api/v1/calls/c1/hangup")
    assert (status, answer["result"], control.calls) == (200, "hanging_up", {})
    for method, path in (("GET", "/api/v1/calls/c1"), ("POST", "/api/v1/calls/c1/hangup")):
        status, answer = await call(api, method, path)
        assert (status, code(answer)) == (404, "unknown_call")


async def test_reload(api: Client, reload: FakeReload) -> None:
    status, answer = await call(api, "POST", "/api/v1/config/reload")
    assert (status, answer) == (200, {"flows_version": 2})
    reload.problems = [Problem("flows/main.yaml", 12, "unknown node 'x'")]
    status, answer = await call(api, "POST", "/api/v1/config/reload")
    assert (status, code(answer)) == (422, "config_invalid")
    assert answer["error"]["problems"] == [{"file": "flows/main.yaml", "line": 12, "reason": "unknown node 'x'"}]


async def test_unknown_route_and_method_are_json_errors(api: Client) -> None:
    status, answer = await call(api, "GET", "/api/v1/nothing")
    assert (status, code(answer)) == (404, "not_found")
    status, answer = await call(api, "DELETE", "/api/v1/queues")
    assert (status, code(answer)) == (405, "method_not_allowed")


# ---------------------------------------------------------------------------------- metrics, OpenAPI

async def test_metrics_exposition(api: Client, control: FakeControl) -> None:
    control.states["1002"] = ("on_call", None)
    async with api.get("/metrics") as response:
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await response.text()
    sample = re.compile(r'^[a-z_:][a-z0-9_:]*(\{[a-z_]+="(?:[^"\\]|\\.)*"\})? -?[0-9.e+]+$')
    for line in text.splitlines():
        assert line.startswith(("# HELP ", "# TYPE ")) or sample.match(line), line
    assert text.endswith("\n")
    for expected in ("cti_calls_total 7.0", "cti_calls_active 1.0", 'cti_agents{state="on_call"} 1.0',
                     'cti_agents{state="logged_out"} 1.0', 'cti_queue_waiting{queue="sales"} 2.0',
                     'cti_queue_longest_wait_seconds{queue="sup\\"port"} 12.5',
                     "cti_sip_messages_rejected_total 3.0", 'cti_sip_retransmissions_total{direction="sent"} 5.0',
                     'cti_sip_retransmissions_total{direction="received"} 6.0', "cti_sip_transactions 11.0",
                     'cti_calls_refused_total{reason="rate"} 4.0', 'cti_calls_refused_total{reason="trunk_full"} 2.0',
                     "cti_bus_events_published_total 40.0",
                     "cti_bus_events_dropped_total 2.0", "# TYPE cti_calls_total counter"):
        assert re.search(rf"^{re.escape(expected)}$", text, re.M), expected
    parsed = {f.name: f for f in text_string_to_metric_families(text)}  # the library's own parser reads it back
    assert parsed["cti_calls"].type == "counter" and parsed["cti_agents"].type == "gauge"


async def test_extra_metric_families_follow_the_node_ones(control: FakeControl) -> None:
    def gateway() -> list[MetricFamily]:
        return [MetricFamily("cti_ws_sessions", "gauge", "Open WebSocket sessions.",
                             [({"role": "agent", "node": 'a"b'}, 3), ({}, 0.25)])]

    app = build_app(control, token=TOKEN, node="n", metrics=FakeMetrics(), extra_metrics=[gateway])
    async for client in _client(app):
        status, text = await call(client, "GET", "/metrics", headers={})
    assert status == 200
    tail = text.splitlines()[-4:]
    assert tail == ["# HELP cti_ws_sessions Open WebSocket sessions.", "# TYPE cti_ws_sessions gauge",
                    'cti_ws_sessions{node="a\\"b",role="agent"} 3.0', "cti_ws_sessions 0.25"]


async def test_openapi_covers_every_route(api: Client) -> None:
    status, served = await call(api, "GET", "/api/v1/openapi.json")
    assert status == 200 and served == OPENAPI and served["openapi"].startswith("3.1")
    app = build_app(FakeControl(), token=TOKEN, node="n", metrics=FakeMetrics())
    routes = {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
              if r.method != "HEAD" and r.resource is not None}
    documented = {(m, p) for p, ops in OPENAPI["paths"].items() for m in ops
                  if not p.startswith("/api/v1/qa/")}  # mounted by the node (tests/cti/qa/test_api_qa.py)
    # the report routes need the store: the server mounts them beside build_app's (tests/cti/reports)
    # so do the screen pop's previous contacts (tests/cti/test_contacts.py) and voicemail (tests/cti/test_voicemail.py)
    mounted_beside = (*REPORT_PATHS.items(), *CONTACT_PATHS.items(), *VOICEMAIL_PATHS.items())
    assert routes == documented - {(m, p) for p, ops in mounted_beside for m in ops}
    for path, ops in OPENAPI["paths"].items():
        for op in ops.values():
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == set(re.findall(r"\{(\w+)\}", path)), path
            assert op["responses"], path
            # the HTTP guard can refuse any request before its handler runs
            assert {"408", "413", "415", "503"} <= op["responses"].keys(), path
    assert "json_too_deep" in OPENAPI["paths"]["/api/v1/agents"]["post"]["responses"]["400"]["description"]


async def test_staffing_routes_are_mounted_by_build_app(api: Client) -> None:
    status, body = await call(api, "GET", "/api/v1/staffing?calls=100&aht_s=180")
    assert status == 200 and body["agents"] > 0
    async with api.get("/api/v1/staffing?calls=100&aht_s=180") as response:
        assert response.status == 401
