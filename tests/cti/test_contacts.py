"""``GET /api/v1/calls/{call_id}/contacts`` on the real admin application over a SQLite store: the caller's last
calls, and who may see them (the agent the call is offered to or connected with, a supervisor of its queue, the
operator; another agent gets 403)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from acd import AgentId, CallId, QueueId
from cti.errors import ControlError
from cti.http.api import build_app
from cti.http.contacts import add_contact_routes, may_read
from cti.http.openapi import OPENAPI
from cti.store import CallRecord, open_store
from cti.tokens import Role, TokenIssuer
from tests.cti.test_api import AUTH, TOKEN, FakeControl, FakeMetrics

Client = TestClient[web.Request, web.Application]
TOKENS = TokenIssuer(b"k" * 32, ttl_s=600, clock=lambda: 5000.0)


class Node(FakeControl):
    """One live call c9 from +3361, offered to agent 1001 in queue sales; sup1 supervises sales, sup2 support."""

    def __init__(self) -> None:
        super().__init__()
        self.calls["c9"] = {"call_id": "c9", "phase": "offering", "queue": "sales", "agent_id": "1001",
                            "caller_number": "+3361", "arrived_at": 1000.0}

    def supervisor_scope(self, supervisor_id: str) -> tuple[frozenset[str], frozenset[str]]:
        scopes = {"sup1": frozenset({"sales"}), "sup2": frozenset({"support"})}
        if supervisor_id not in scopes:
            raise ControlError("unknown_supervisor", supervisor_id, status=404)
        return scopes[supervisor_id], frozenset()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[Client, Node]]:
    store = await open_store(tmp_path / "cti.sqlite3")
    for call_id, number, t, disposition in (("p1", "+3361", 100.0, "billing"), ("p2", "+3361", 500.0, None),
                                            ("p3", "+3362", 600.0, "sales")):
        answered = t + 10 if disposition else None
        await store.save_call(CallRecord(
            call_id=CallId(call_id), node="n", t_arrived=t, caller_number=number, t_answered=answered,
            t_ended=t + 70, disposition=disposition, end_reason="normal_clearing",
            final_agent=AgentId("1002") if disposition else None, final_queue=QueueId("sales")))
    # The live call's own CDR (saved at arrival) is not a previous contact.
    await store.save_call(CallRecord(call_id=CallId("c9"), node="n", t_arrived=1000.0, caller_number="+3361"))
    control = Node()
    app = build_app(control, token=TOKEN, node="n", metrics=FakeMetrics())
    add_contact_routes(app, store=store, control=control, tokens=TOKENS)
    client: Client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield client, control
    finally:
        await client.close()
        await store.close()


def _bearer(role: Role, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS.issue(role, subject).token}"}


async def _get(client: Client, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with client.get(path, headers=headers) as response:
        return response.status, await response.json()


async def test_the_offered_agent_sees_the_callers_last_calls_newest_first(node: tuple[Client, Node]) -> None:
    client, _ = node
    status, body = await _get(client, "/api/v1/calls/c9/contacts", _bearer(Role.AGENT, "1001"))
    assert status == 200, body
    assert body["call_id"] == "c9" and body["caller_number"] == "+3361"
    assert body["contacts"] == [
        {"call_id": "p2", "arrived_at": 500.0, "queue": "sales", "agent_id": None, "answered": False,
         "disposition": None, "end_reason": "normal_clearing", "duration_s": 70.0, "talk_s": None},
        {"call_id": "p1", "arrived_at": 100.0, "queue": "sales", "agent_id": "1002", "answered": True,
         "disposition": "billing", "end_reason": "normal_clearing", "duration_s": 70.0, "talk_s": 60.0}]
    status, body = await _get(client, "/api/v1/calls/c9/contacts?limit=1", AUTH)  # the operator
    assert status == 200 and [c["call_id"] for c in body["contacts"]] == ["p2"]


async def test_another_agent_gets_403(node: tuple[Client, Node]) -> None:
    client, _ = node
    status, body = await _get(client, "/api/v1/calls/c9/contacts", _bearer(Role.AGENT, "1002"))
    assert status == 403 and body["error"]["code"] == "contacts.forbidden"


async def test_supervisors_of_the_queue_only(node: tuple[Client, Node]) -> None:
    client, _ = node
    assert (await _get(client, "/api/v1/calls/c9/contacts", _bearer(Role.SUPERVISOR, "sup1")))[0] == 200
    assert (await _get(client, "/api/v1/calls/c9/contacts", _bearer(Role.SUPERVISOR, "sup2")))[0] == 403
    assert (await _get(client, "/api/v1/calls/c9/contacts", _bearer(Role.SUPERVISOR, "nobody")))[0] == 403


async def test_the_agent_loses_sight_once_the_call_is_no_longer_theirs(node: tuple[Client, Node]) -> None:
    client, control = node
    control.calls["c9"]["phase"] = "connected"
    assert (await _get(client, "/api/v1/calls/c9/contacts", _bearer(Role.AGENT, "1001")))[0] == 200
    control.calls["c9"].update(agent_id="1002")  # transferred
    assert (await _get(client, "/api/v1/calls/c9/contacts", _bearer(Role.AGENT, "1001")))[0] == 403
    del control.calls["c9"]  # ended
    status, body = await _get(client, "/api/v1/calls/c9/contacts", _bearer(Role.AGENT, "1001"))
    assert status == 404 and body["error"]["code"] == "unknown_call"


async def test_bad_tokens_and_parameters(node: tuple[Client, Node]) -> None:
    client, _ = node
    assert (await _get(client, "/api/v1/calls/c9/contacts", {"Authorization": "Bearer forged"}))[0] == 401
    assert (await _get(client, "/api/v1/calls/c9/contacts", {}))[0] == 401
    for query in ("limit=0", "limit=51", "limit=x", "since=1"):
        status, body = await _get(client, f"/api/v1/calls/c9/contacts?{query}", AUTH)
        assert status == 400 and body["error"]["code"] == "bad_request", query
    # An agent's token opens this route only, not the rest of the admin API.
    assert (await _get(client, "/api/v1/calls/c9", _bearer(Role.AGENT, "1001")))[0] == 401


def test_may_read_rules() -> None:
    call = {"agent_id": "7", "phase": "queued", "queue": "q"}
    assert may_read(Role.OPERATOR, "", call, frozenset())
    assert not may_read(Role.AGENT, "7", call, frozenset())  # queued: not yet offered to anyone
    assert may_read(Role.AGENT, "7", {**call, "phase": "offering"}, frozenset())
    assert not may_read(Role.SUPERVISOR, "s", call, frozenset({"other"}))
    assert may_read(Role.SUPERVISOR, "s", call, frozenset({"q"}))


def test_documented_in_openapi() -> None:
    op = OPENAPI["paths"]["/api/v1/calls/{call_id}/contacts"]["get"]
    assert {"200", "400", "401", "403", "404"} <= set(op["responses"])
