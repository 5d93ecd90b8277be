"""The admin HTTP API (aiohttp): operators and the ``cti`` CLI drive a running node through it.

Every route under ``/api/v1`` needs ``Authorization: Bearer <operator token>``. Errors are JSON
``{"error": {"code": "...", "message": "..."}}`` with a 4xx status; ``code`` is stable.
``/healthz`` is open. See docs/api.md for every route.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from acd import AcdError, AgentId, QueueId

if TYPE_CHECKING:
    from cti.controller import CallController

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def build_app(controller: CallController, *, token: str | None, node: str) -> web.Application:
    """The aiohttp application for one node."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            given = request.headers.get("Authorization", "")
            if token is None:
                return error(403, "api_disabled", "no operator_token is configured on this node")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return error(401, "unauthorized", "missing or wrong bearer token")
        try:
            return await handler(request)
        except AcdError as exc:
            return error(409, getattr(exc, "code", "acd_refused"), str(exc))

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "node": node, "calls": len(controller.calls)})

    async def body(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            data = await request.json()
        except json.JSONDecodeError as exc:
            raise web.HTTPBadRequest(text=json.dumps({"error": {"code": "bad_json", "message": str(exc)}}),
                                     content_type="application/json") from exc
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text=json.dumps({"error": {"code": "bad_json",
                                                                 "message": "the body must be a JSON object"}}),
                                     content_type="application/json")
        return data

    def agent_id(request: web.Request) -> str:
        ident = request.match_info["agent"]
        if ident not in controller.agents:
            raise web.HTTPNotFound(text=json.dumps({"error": {"code": "unknown_agent", "message": ident}}),
                                   content_type="application/json")
        return ident

    def agent_view(ident: str) -> dict[str, Any]:
        try:
            state, reason = controller.agent_state(ident)
            state_name = state.name
        except AcdError:
            state_name, reason = "LOGGED_OUT", None
        return {"id": ident, "name": controller.agents[ident].name, "state": state_name, "reason": reason,
                "registered": bool(controller.registration.lookup(ident))}

    async def list_agents(_: web.Request) -> web.Response:
        return web.json_response({"agents": [agent_view(a) for a in controller.agents]})

    async def login(request: web.Request) -> web.Response:
        ident = agent_id(request)
        data = await body(request)
        ready = data.get("ready", False)
        if not isinstance(ready, bool):
            return error(400, "bad_field", "'ready' must be true or false")
        controller.login(ident, ready=ready)
        return web.json_response(agent_view(ident))

    async def ready(request: web.Request) -> web.Response:
        ident = agent_id(request)
        controller.set_ready(ident)
        return web.json_response(agent_view(ident))

    async def not_ready(request: web.Request) -> web.Response:
        ident = agent_id(request)
        reason = (await body(request)).get("reason", "break")
        if not isinstance(reason, str) or not reason:
            return error(400, "bad_field", "'reason' must be a non-empty string")
        controller.set_not_ready(ident, reason)
        return web.json_response(agent_view(ident))

    async def logout(request: web.Request) -> web.Response:
        ident = agent_id(request)
        controller.logout(ident)
        return web.json_response(agent_view(ident))

    async def list_calls(_: web.Request) -> web.Response:
        calls = [{"id": c.id, "phase": c.phase.value, "caller": c.detail.caller, "dialled": c.detail.dialled,
                  "queue": c.detail.queue, "agent": c.detail.agent, "vip": c.detail.vip,
                  "recording_serial": c.detail.recording_serial} for c in controller.calls.values()]
        return web.json_response({"calls": calls})

    async def queue_stats(request: web.Request) -> web.Response:
        name = request.match_info["queue"]
        if name not in controller.queues:
            return error(404, "unknown_queue", name)
        snap = controller.acd.router.queue_stats(QueueId(name), controller.acd.now())
        return web.json_response({"queue": name, "stats": _plain(snap)})

    app = web.Application(middlewares=[guard])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/agents", list_agents)
    app.router.add_post("/api/v1/agents/{agent}/login", login)
    app.router.add_post("/api/v1/agents/{agent}/ready", ready)
    app.router.add_post("/api/v1/agents/{agent}/not-ready", not_ready)
    app.router.add_post("/api/v1/agents/{agent}/logout", logout)
    app.router.add_get("/api/v1/calls", list_calls)
    app.router.add_get("/api/v1/queues/{queue}/stats", queue_stats)
    return app


def _plain(value: Any) -> Any:
    """A dataclass snapshot as JSON-friendly data (enums by value, mappings as dicts)."""
    import dataclasses
    import enum
    from collections.abc import Mapping

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value if not isinstance(value.value, object) or isinstance(value.value, str | int) else value.name
    if isinstance(value, Mapping):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


__all__ = ["AgentId", "build_app"]
