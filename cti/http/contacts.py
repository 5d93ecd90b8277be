"""The screen pop's previous contacts: ``GET /api/v1/calls/{call_id}/contacts`` (docs/api.md).

A live call's caller, looked up in our own CDRs: the last ``limit`` calls from the same number (newest first,
the live call itself left out). Who may read it (:func:`may_read`): the operator token; an agent's token
(``/auth/login``) while the call is offered to or connected with that agent; a supervisor's token when the call
is in one of the supervisor's queues. Answers 401 for no or a bad token, 403 ``contacts.forbidden`` for a
token that may not see this call, 404 ``unknown_call`` when the call is not live on this node, 400
``bad_request`` for a bad ``limit``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from aiohttp import web

from cti.errors import ControlError
from cti.floor.control import Control
from cti.http.api import API_READERS, ApiError
from cti.ids import CallId
from cti.store import CallRecord, StoreOperations
from cti.tokens import Principal, Role, TokenError, TokenIssuer

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "add_contact_routes", "contact_json", "may_read"]

DEFAULT_LIMIT: Final = 5
MAX_LIMIT: Final = 50
_PATH: Final = "/api/v1/calls/{call_id}/contacts"
_READER = web.RequestKey("cti.http.contacts.reader", Principal)
_LIVE_PHASES: Final = frozenset({"offering", "connected"})


def may_read(role: Role, subject: str, call: Mapping[str, Any], supervised_queues: frozenset[str]) -> bool:
    """Whether a token's holder may see the previous contacts of the live call ``call`` (a call snapshot)."""
    if role is Role.OPERATOR:
        return True
    if role is Role.AGENT:
        return call.get("agent_id") == subject and call.get("phase") in _LIVE_PHASES
    return role is Role.SUPERVISOR and call.get("queue") in supervised_queues


def contact_json(record: CallRecord) -> dict[str, Any]:
    """One previous contact as the route answers it (times are UTC epoch seconds)."""
    ended = record.t_ended
    return {
        "call_id": record.call_id, "arrived_at": record.t_arrived, "queue": record.final_queue,
        "agent_id": record.final_agent, "answered": record.t_answered is not None,
        "disposition": record.disposition, "end_reason": record.end_reason,
        "duration_s": None if ended is None else round(max(0.0, ended - record.t_arrived), 3),
        "talk_s": None if ended is None or record.t_answered is None else round(max(0.0, ended - record.t_answered), 3),
    }


def _limit(values: Sequence[str]) -> int:
    if not values:
        return DEFAULT_LIMIT
    raw = values[-1]
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, "bad_request", f"limit must be a whole number from 1 to {MAX_LIMIT}, got {raw!r}")
    return int(raw)


def add_contact_routes(app: web.Application, *, store: StoreOperations, control: Control,
                       tokens: TokenIssuer) -> None:
    """Add the route to ``app`` (built by ``cti.http.api.build_app``, whose guard admits the operator token) and
    admit agents' and supervisors' tokens on it.

    Raises:
        RuntimeError: ``app`` is already frozen.
    """

    def admit(request: web.Request, authorization: str) -> bool:
        if request.method != "GET" or request.match_info.route.resource is None \
                or request.match_info.route.resource.canonical != _PATH:
            return False
        scheme, _, token = authorization.partition(" ")
        try:
            principal = tokens.verify(token) if scheme == "Bearer" and token else None
        except TokenError:
            return False
        if principal is None:
            return False
        request[_READER] = principal
        return True

    app[API_READERS] = [*app.get(API_READERS, []), admit]

    async def contacts(request: web.Request) -> web.Response:
        unknown = sorted(set(request.query) - {"limit"})
        if unknown:
            raise ApiError(400, "bad_request", f"unknown parameter(s): {', '.join(unknown)}; known: limit")
        limit = _limit(request.query.getall("limit", []))
        call_id = CallId(request.match_info["call_id"])
        call = control.call_snapshot(call_id)  # ControlError unknown_call (404) when not live here
        reader = request.get(_READER)
        if reader is not None:
            queues: frozenset[str] = frozenset()
            if reader.role is Role.SUPERVISOR:
                try:
                    queues = control.supervisor_scope(reader.subject)[0]
                except ControlError:
                    queues = frozenset()
            if not may_read(reader.role, reader.subject, call, queues):
                raise ApiError(403, "contacts.forbidden",
                               "only the agent the call is offered to or connected with, a supervisor of its "
                               "queue or the operator may see its caller's previous contacts")
        number = call.get("caller_number")
        records = [] if not number else await store.calls_of_caller(
            str(number), before=float(call["arrived_at"]), limit=limit)
        return web.json_response({"call_id": call_id, "caller_number": number or None,
                                  "contacts": [contact_json(r) for r in records if r.call_id != call_id]})

    app.router.add_get(_PATH, contacts)
