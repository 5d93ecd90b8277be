"""HTTP routes of the gateway: ``POST /auth/login``, ``POST /api/v1/tokens`` and ``GET /ws`` (docs/websocket.md).

Errors are JSON ``{"error": {"code", "message"}}`` with a 4xx status, as in the admin API. A missing or bad token on
``/ws`` is refused with 401 before the upgrade. Failed logins are throttled per source address (429 with
``Retry-After``). JSON bodies are read within the HTTP guard's limits (cti/http_guard: size, nesting depth, read
time), and every refusal is counted and logged by the guard (``http.request.refused``, rate-limited) with its code
and, for a failed login, the ``role`` and ``subject`` tried.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from aiohttp import web

from cti.errors import ControlError
from cti.events.bus import Bus
from cti.floor.control import Control
from cti.floor.notices import NoticeService
from cti.gateway.limits import LoginThrottle
from cti.gateway.phone import PhonePort
from cti.gateway.ws import Gateway, GatewaySettings
from cti.http.guard import BodyError, body_refusal, read_json, refusal_response
from cti.ids import AgentId
from cti.tokens import IssuedToken, Role, TokenError, TokenIssuer

__all__ = ["GATEWAY_KEY", "add_gateway_routes"]

GATEWAY_KEY: Final = web.AppKey("cti.gateway", Gateway)
"""``app[GATEWAY_KEY]`` is the mounted :class:`Gateway` (its ``stats()`` feed ``/metrics``)."""

_MAX_TTL_S: Final = 30 * 24 * 3600.0


def _error(status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
           detail: dict[str, str] | None = None) -> web.Response:
    return refusal_response(status, code, message, headers=headers, detail=detail)


def _issued(issued: IssuedToken) -> dict[str, Any]:
    return {"token": issued.token, "expires_at": issued.expires_at, "role": issued.role.value,
            "subject": issued.subject}


async def _json_object(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await read_json(request)
    except BodyError as exc:
        return body_refusal(exc)
    if not isinstance(body, dict):
        return _error(400, "bad_json", "the body must be a JSON object")
    return body


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return header[7:].strip()
    return None


def add_gateway_routes(app: web.Application, *, control: Control, bus: Bus, tokens: TokenIssuer,
                       operator_token: str | None, node: str, settings: GatewaySettings | None = None,
                       clock: Callable[[], float] = time.time, notices: NoticeService | None = None,
                       site: Mapping[str, Any] | None = None, phones: PhonePort | None = None) -> None:
    """Mount ``/auth/login``, ``/api/v1/tokens`` and ``/ws`` on ``app`` and store the gateway as ``app[GATEWAY_KEY]``.

    ``clock`` is UTC epoch seconds (time in state, login throttling windows).
    """
    gateway = Gateway(control=control, bus=bus, node=node, settings=settings, clock=clock, notices=notices,
                      site=site, phones=phones)
    throttle = LoginThrottle(limit=gateway.settings.login_failures, window_s=gateway.settings.login_window_s)
    app[GATEWAY_KEY] = gateway
    app.cleanup_ctx.append(gateway.lifespan)
    app.on_shutdown.append(gateway.shutdown)

    async def login(request: web.Request) -> web.Response:
        source = request.remote or "unknown"
        wait = throttle.blocked(source, clock())
        if wait is not None:
            return _error(429, "too_many_attempts", "too many failed logins; try again later",
                          headers={"Retry-After": str(max(1, math.ceil(wait)))})
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        role, ident, password = body.get("role"), body.get("id"), body.get("password")
        if role not in ("agent", "supervisor") or not isinstance(ident, str) or not isinstance(password, str):
            return _error(400, "bad_args", "need role ('agent' or 'supervisor'), id and password strings")
        try:
            if role == "agent":
                ok = bool(ident) and control.check_agent_password(AgentId(ident), password)
            else:
                ok = bool(ident) and control.check_supervisor_password(ident, password)
        except ControlError:
            ok = False  # an unknown id is indistinguishable from a wrong password
        if not ok:
            throttle.failed(source, clock())
            return _error(401, "bad_credentials", "wrong id or password", detail={"role": role, "subject": ident[:64]})
        return web.json_response(_issued(tokens.issue(Role(role), ident)))

    async def issue_token(request: web.Request) -> web.Response:
        if operator_token is None:
            return _error(403, "api_disabled", "no operator_token is configured on this node")
        given = _bearer(request) or ""
        if not hmac.compare_digest(given.encode(), operator_token.encode()):
            return _error(401, "unauthorized", "missing or wrong bearer token")
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        role, subject, ttl_s = body.get("role"), body.get("subject"), body.get("ttl_s")
        if role not in {r.value for r in Role} or not isinstance(subject, str) or not subject:
            return _error(400, "bad_args", "need role (agent, supervisor or operator) and a subject string")
        if ttl_s is not None and (isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float)
                                  or not 0 < ttl_s <= _MAX_TTL_S):
            return _error(400, "bad_args", f"ttl_s must be a number in (0, {_MAX_TTL_S:.0f}]")
        try:
            if role == "agent" and subject not in control.agent_ids():
                raise ControlError("unknown_agent", f"no agent {subject!r}", status=404)
            if role == "supervisor":
                control.supervisor_scope(subject)
        except ControlError as exc:
            return _error(404, exc.code, str(exc))
        issued = tokens.issue(Role(role), subject, ttl_s=None if ttl_s is None else float(ttl_s))
        return web.json_response(_issued(issued), status=201)

    async def websocket(request: web.Request) -> web.StreamResponse:
        token = request.query.get("token") or _bearer(request)
        if token is None:
            return _error(401, "token_missing", "pass ?token= or Authorization: Bearer <token>")
        try:
            principal = tokens.verify(token)
        except TokenError as exc:
            return _error(401, exc.code, str(exc))
        since_text = request.query.get("since")
        since: int | None = None
        if since_text is not None:
            if not since_text.isascii() or not since_text.isdigit() or len(since_text) > 19:
                return _error(400, "bad_args", "since must be the seq (a non-negative integer) of the last event seen")
            since = int(since_text)
        ws = gateway.response()
        ready = ws.can_prepare(request)
        if not ready.ok:
            return _error(400, "not_websocket", "this endpoint needs a WebSocket upgrade")
        try:
            session = gateway.open_session(principal, ready.protocol)
        except ControlError as exc:
            return _error(403, exc.code, str(exc))
        await ws.prepare(request)
        await gateway.serve(request, ws, session, since=since)
        return ws

    app.router.add_post("/auth/login", login)
    app.router.add_post("/api/v1/tokens", issue_token)
    app.router.add_get("/ws", websocket)
