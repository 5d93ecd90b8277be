"""The admin HTTP API (aiohttp): operators and the ``cti`` CLI drive a running node through it.

Every route under ``/api/v1`` needs ``Authorization: Bearer <operator token>`` (compared in
constant time); without a configured token the API answers 403 ``api_disabled``. The QA routes under
``/api/v1/qa/`` (:mod:`cti.qa.routes`) authorise each request themselves (agent and supervisor tokens too).
Errors are JSON ``{"error": {"code": "...", "message": "..."}}`` with a 4xx status and a stable ``code``.
``/healthz`` and ``/metrics`` (Prometheus text format 0.0.4) are open. The API acts on the node
only through :class:`cti.floor.control.Control` (and :class:`cti.floor.agent_admin.AgentAdmin` for agent
CRUD); the staffing calculator's routes (:mod:`cti.staffing.routes`) need nothing from the node. The route
table is :data:`cti.http.openapi.OPENAPI`; docs/api.md describes every route.

The application carries the listener's :class:`~cti.http.guard.HttpGuard` (``http`` section of the
configuration): bodies over ``http.max_body_bytes``, JSON bodies over ``http.max_json_bytes`` or
nested deeper than ``http.max_json_depth`` are refused (413/400) before a handler sees them, and
every answer gets the guard's headers; serve it with :func:`cti.http.guard.serve_http`.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any, Protocol, cast

from aiohttp import web

from config.errors import ConfigFileError
from config.schema import HttpConfig
from cti.adherence.routes import AdherenceApi, add_adherence_routes
from cti.call.offercheck import RefusalReason
from cti.errors import ControlError, CtiError
from cti.floor.agent_admin import AgentAdmin, RuntimeAgents
from cti.floor.control import Control
from cti.http.guard import HTTP_GUARD_KEY, BodyError, GuardStats, HttpGuard, body_refusal, read_json, refusal_response
from cti.http.metrics import METRICS_CONTENT_TYPE, ExtraMetrics, MetricFamily, render_metrics
from cti.http.openapi import OPENAPI
from cti.ids import AgentId, CallId
from cti.node.admission import Refusal as AdmissionRefusal
from cti.qa.routes import QA_PREFIX
from cti.staffing.routes import add_staffing_routes
from cti.tokens import Principal, TokenError, TokenIssuer
from sip.media.aio import RELAY_COUNTERS

if TYPE_CHECKING:
    from cti.node.controller import CallController

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Reload = Callable[[], Awaitable[int]]
"""Reloads the IVR flows; returns the new flow-set version. Raises: ConfigFileError (kept old set)."""

try:
    VERSION = metadata.version("cti-server")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "unknown"


class MetricsSource(Protocol):
    """Node counters for ``/metrics`` and ``/status`` that :class:`Control` does not carry.

    Agent states and queue figures come from the Control snapshots.
    """

    def calls_total(self) -> int: ...
    def calls_active(self) -> int: ...
    def calls_refused(self) -> Mapping[str, int]: ...
    def sip_messages_rejected(self) -> int: ...
    def sip_retransmissions(self) -> tuple[int, int]: ...
    def sip_transactions(self) -> int: ...
    def bus_published(self) -> int: ...
    def bus_dropped(self) -> int: ...
    def loop_lag(self) -> tuple[float, bool]: ...


class NodeMetrics:
    """:class:`MetricsSource` of one node's call controller (its legs' SIP endpoint and its bus)."""

    def __init__(self, controller: CallController) -> None:
        self._c = controller

    def calls_total(self) -> int:
        return self._c.counters["calls_total"]

    def calls_active(self) -> int:
        return len(self._c.calls)

    def calls_refused(self) -> Mapping[str, int]:
        return self._c.refused

    def sip_messages_rejected(self) -> int:
        return self._c.legs.endpoint.rejected

    def sip_retransmissions(self) -> tuple[int, int]:
        """(sent, received): messages the node sent again, retransmissions peers sent it."""
        layer = self._c.legs.endpoint.layer
        return layer.resent, layer.received_again

    def sip_transactions(self) -> int:
        return len(self._c.legs.endpoint.layer)

    def bus_published(self) -> int:
        return self._c.publisher.bus.stats().published

    def bus_dropped(self) -> int:
        return self._c.publisher.bus.stats().dropped

    def loop_lag(self) -> tuple[float, bool]:
        """(the event loop's last measured lateness in seconds, whether new calls are refused for it)."""
        meter = self._c.admission.meter
        return meter.lag_s, meter.overloaded


class ApiError(CtiError):
    """A refused request: answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.extra = status, code, extra


def error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    """The JSON error answer, marked with its ``code`` for the HTTP guard's refusal count and log."""
    return refusal_response(status, code, message, **extra)


# ---------------------------------------------------------------------------------- request bodies

async def _body(request: web.Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The JSON object body ({} when empty).

    Raises:
        BodyError: the HTTP guard's limits (400 bad_json / json_too_deep, 408, 413, 415).
        ApiError: 400 bad_json (not an object) / unknown_field.
    """
    data = await read_json(request)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field(s): {', '.join(unknown)}")
    return data


def _field(data: Mapping[str, Any], name: str, kind: type, *, default: Any = None, required: bool = False,
           nonempty: bool = True) -> Any:
    """One typed field. Raises: ApiError(400 missing_field / bad_field)."""
    if name not in data or data[name] is None:
        if required:
            raise ApiError(400, "missing_field", f"field {name!r} is required")
        return default
    value = data[name]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        json_type = {bool: "boolean", str: "string", dict: "object"}.get(kind, kind.__name__)
        raise ApiError(400, "bad_field", f"field {name!r} must be a {json_type}")
    if nonempty and isinstance(value, str) and not value.strip():
        raise ApiError(400, "bad_field", f"field {name!r} must not be empty")
    return value


def _skills(data: Mapping[str, Any], *, required: bool) -> dict[str, int]:
    raw = _field(data, "skills", dict, default={}, required=required)
    for skill, level in raw.items():
        if not isinstance(level, int) or isinstance(level, bool):
            raise ApiError(400, "bad_field", f"skill {skill!r}: the level must be an integer")
    return dict(raw)


def _agent_id(request: web.Request) -> AgentId:
    return AgentId(request.match_info["agent_id"])


def _call_id(request: web.Request) -> CallId:
    return CallId(request.match_info["call_id"])


# ---------------------------------------------------------------------------------- metrics

# Why a new call is refused: the controller's own reasons, the offer checks' (cti/call/offercheck.py), admission's.
CALL_REFUSAL_REASONS: tuple[str, ...] = (
    "unknown_source", "auth_failed", "unknown_number", "draining", *(r.value for r in RefusalReason),
    *(r.value for r in AdmissionRefusal))


def node_families(control: Control, metrics: MetricsSource) -> list[MetricFamily]:
    """The node's own metric families (calls, agents, queues, SIP, bus)."""
    queues = [control.queue_snapshot(q) for q in control.queue_names()]
    resent, received_again = metrics.sip_retransmissions()
    lag, overloaded = metrics.loop_lag()
    return [
        MetricFamily("cti_calls_total", "counter", "Calls accepted since the node started.",
                     [({}, metrics.calls_total())]),
        MetricFamily("cti_calls_active", "gauge", "Live calls now.", [({}, metrics.calls_active())]),
        MetricFamily("cti_calls_refused_total", "counter",
                     f"New calls refused, by reason ({', '.join(CALL_REFUSAL_REASONS)}).",
                     [({"reason": r}, n) for r, n in sorted(metrics.calls_refused().items())]),
        MetricFamily("cti_agents", "gauge", "Agents by ACD state.",
                     [({"state": s}, n) for s, n in _agents_by_state(control).items()]),
        MetricFamily("cti_queue_waiting", "gauge", "Calls waiting in a queue.",
                     [({"queue": q["queue"]}, q["waiting"]) for q in queues]),
        MetricFamily("cti_queue_longest_wait_seconds", "gauge", "Wait of the oldest waiting call in a queue.",
                     [({"queue": q["queue"]}, q["longest_wait_seconds"]) for q in queues]),
        MetricFamily("cti_sip_messages_rejected_total", "counter", "SIP messages refused as malformed.",
                     [({}, metrics.sip_messages_rejected())]),
        MetricFamily("cti_sip_retransmissions_total", "counter",
                     "SIP retransmissions: sent by the node (timers, answers to a repeat), received from peers.",
                     [({"direction": "sent"}, resent), ({"direction": "received"}, received_again)]),
        MetricFamily("cti_sip_transactions", "gauge", "Live SIP transactions (finished ones linger up to 32 s).",
                     [({}, metrics.sip_transactions())]),
        MetricFamily("cti_bus_events_published_total", "counter", "Events published on the internal bus.",
                     [({}, metrics.bus_published())]),
        MetricFamily("cti_bus_events_dropped_total", "counter", "Bus events dropped because a consumer fell behind.",
                     [({}, metrics.bus_dropped())]),
        MetricFamily("cti_event_loop_lag_seconds", "gauge", "How late the event loop ran its last 100 ms tick.",
                     [({}, lag)]),
        MetricFamily("cti_node_overloaded", "gauge", "1 while new calls are refused because the event loop is "
                     "behind (limits.max_loop_lag_ms).", [({}, int(overloaded))]),
    ]


def render_node_metrics(control: Control, metrics: MetricsSource, extra: Sequence[ExtraMetrics] = ()) -> bytes:
    """The Prometheus text exposition (format 0.0.4): the node's families, then the ``extra`` ones."""
    return render_metrics([lambda: node_families(control, metrics), *extra])


def _agents_by_state(control: Control) -> dict[str, int]:
    return control.agent_state_counts()


def media_families() -> list[MetricFamily]:
    """The relay fast path's packet counters (sip.media.RELAY_COUNTERS: added as each call's relay stops)."""
    c = RELAY_COUNTERS
    return [
        MetricFamily("cti_media_relays_total", "counter", "Bridged calls' relays that have stopped.",
                     [({}, c.relays)]),
        MetricFamily("cti_media_relay_packets_total", "counter",
                     "RTP packets of stopped relays: received, forwarded, dropped, transcoded (PCMU<->PCMA), "
                     "tap_dropped (not recorded: the recorder was behind), expected (from sequence numbers), "
                     "lost (expected - received).",
                     [({"kind": "received"}, c.received), ({"kind": "forwarded"}, c.forwarded),
                      ({"kind": "dropped"}, c.dropped), ({"kind": "transcoded"}, c.transcoded),
                      ({"kind": "tap_dropped"}, c.tap_dropped),
                      ({"kind": "expected"}, c.expected), ({"kind": "lost"}, c.lost)]),
    ]


def http_families(stats: GuardStats) -> list[MetricFamily]:
    """The HTTP listener's families (cti/http_guard)."""
    return [
        MetricFamily("cti_http_connections", "gauge", "Open HTTP connections (WebSocket ones included).",
                     [({}, stats.open)]),
        MetricFamily("cti_http_connections_accepted_total", "counter", "HTTP connections accepted.",
                     [({}, stats.accepted)]),
        MetricFamily("cti_http_connections_refused_total", "counter",
                     "HTTP connections refused at once (503), by the cap that refused them (max_connections, "
                     "max_connections_per_host).",
                     [({"reason": r}, n) for r, n in sorted(stats.connections_refused.items())]),
        MetricFamily("cti_http_connections_closed_total", "counter",
                     "HTTP connections closed by the node's deadlines (idle, header_timeout, send_timeout).",
                     [({"reason": r}, n) for r, n in sorted(stats.connections_closed.items())]),
        MetricFamily("cti_http_requests_refused_total", "counter", "HTTP requests answered with a 4xx, by status.",
                     [({"status": str(s)}, n) for s, n in sorted(stats.requests_refused.items())]),
        MetricFamily("cti_http_refusal_logs_suppressed_total", "counter",
                     "Refusal log lines held back by the rate limit (http.refusal_log_per_s).",
                     [({}, stats.logs_suppressed)]),
    ]


# ---------------------------------------------------------------------------------- the application

ReaderCheck = Callable[[web.Request, str], bool]
API_READERS: web.AppKey[list[ReaderCheck]] = web.AppKey("cti.http.api.readers", list)
"""Other bearers a route family admits besides the operator token (e.g. a supervisor's token for the reports
it may read): each check gets the request and its Authorization header and says yes or no."""


def add_token_reader(app: web.Application, tokens: TokenIssuer, key: web.RequestKey[Principal],
                     admits: Callable[[web.Request, Principal], bool]) -> None:
    """Admit a signed token's bearer to the requests ``admits`` accepts for it, besides the operator token.

    The verified principal is left in ``request[key]`` for the route to scope what it answers. A missing,
    malformed, forged or expired token admits nobody (the API then answers 401 as for any other bearer).
    Raises: RuntimeError: ``app`` is already frozen."""

    def admit(request: web.Request, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or not token:
            return False
        try:
            principal = tokens.verify(token)
        except TokenError:
            return False
        if not admits(request, principal):
            return False
        request[key] = principal
        return True

    app[API_READERS] = [*app.get(API_READERS, []), admit]


def build_app(control: Control | CallController, *, token: str | None, node: str,
              metrics: MetricsSource | None = None, reload: Reload | None = None,
              agent_admin: AgentAdmin | None = None, extra_metrics: Sequence[ExtraMetrics] = (),
              http: HttpConfig | None = None, adherence: AdherenceApi | None = None) -> web.Application:
    """The aiohttp application for one node, guarded by the limits of ``http`` (defaults when None).
    Without ``adherence`` the schedule and adherence routes answer 501.

    ``control`` is a :class:`Control`; the older call ``build_app(controller, token=, node=)`` with
    the :class:`~cti.node.controller.CallController` still works and wires everything from it.
    """
    if not hasattr(control, "agents_snapshot"):
        return node_app(control, token=token, node=node, http=http)
    if metrics is None:
        raise TypeError("build_app(control, ...) needs metrics=")
    return _Api(cast(Control, control), token=token, node=node, metrics=metrics, reload=reload,
                agent_admin=agent_admin, extra_metrics=extra_metrics, http=http or HttpConfig(),
                adherence=adherence).app


def node_app(controller: CallController, *, token: str | None, node: str,
             http: HttpConfig | None = None) -> web.Application:
    """Everything wired from one call controller: NodeControl, RuntimeAgents, NodeMetrics, flow reload."""
    from cti.floor.operations import NodeControl

    control = NodeControl(controller)

    async def reload_flows() -> int:
        return (await controller.flows.reload()).version

    return _Api(control, token=token, node=node, metrics=NodeMetrics(controller), reload=reload_flows,
                agent_admin=RuntimeAgents(controller.agents, control), http=http or HttpConfig()).app


class _Api:
    """The handlers, bound to one node's Control."""

    def __init__(self, control: Control, *, token: str | None, node: str, metrics: MetricsSource,
                 reload: Reload | None, agent_admin: AgentAdmin | None,
                 extra_metrics: Sequence[ExtraMetrics] = (), http: HttpConfig,
                 adherence: AdherenceApi | None = None) -> None:
        self.control, self.token, self.node, self.metrics = control, token, node, metrics
        self.http_guard = HttpGuard(http)
        self.extra_metrics = [lambda: http_families(self.http_guard.stats()), media_families, *extra_metrics]
        self.reload, self.agent_admin = reload, agent_admin
        self.started = time.monotonic()
        self.app = web.Application(middlewares=[self.http_guard.middleware, self.guard],
                                   client_max_size=http.max_body_bytes)
        self.app[HTTP_GUARD_KEY] = self.http_guard
        self.app.on_response_prepare.append(self.http_guard.on_prepare)
        for method, path, handler in self.routes():
            self.app.router.add_route(method, path, handler)
        add_staffing_routes(self.app)
        add_adherence_routes(self.app, adherence)

    def routes(self) -> list[tuple[str, str, Handler]]:
        agent, call = "/api/v1/agents/{agent_id}", "/api/v1/calls/{call_id}"
        return [
            ("GET", "/healthz", self.healthz), ("GET", "/metrics", self.metrics_text),
            ("GET", "/api/v1/openapi.json", self.openapi), ("GET", "/api/v1/status", self.status),
            ("GET", "/api/v1/agents", self.list_agents), ("POST", "/api/v1/agents", self.add_agent),
            ("GET", agent, self.show_agent), ("DELETE", agent, self.remove_agent),
            ("PUT", f"{agent}/skills", self.set_skills), ("POST", f"{agent}/login", self.login),
            ("POST", f"{agent}/ready", self.ready), ("POST", f"{agent}/not-ready", self.not_ready),
            ("POST", f"{agent}/logout", self.logout), ("POST", f"{agent}/end-wrap-up", self.end_wrap_up),
            ("GET", "/api/v1/queues", self.list_queues), ("GET", "/api/v1/queues/{queue}/stats", self.queue_stats),
            ("GET", "/api/v1/calls", self.list_calls), ("GET", call, self.show_call),
            ("POST", f"{call}/hangup", self.hangup), ("POST", f"{call}/transfer", self.transfer),
            ("POST", "/api/v1/config/reload", self.reload_config),
        ]

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        api = request.path.startswith("/api/")
        if api and not request.path.startswith(QA_PREFIX):  # the QA routes take agent and supervisor tokens too
            if self.token is None:
                return error(403, "api_disabled", "no operator_token is configured on this node")
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()) and not any(
                    admit(request, given) for admit in request.app.get(API_READERS, ())):
                return error(401, "unauthorized", "missing or wrong bearer token")
        try:
            return await handler(request)
        except ApiError as exc:
            return error(exc.status, exc.code, str(exc), **exc.extra)
        except BodyError as exc:
            return body_refusal(exc)
        except ControlError as exc:
            status = exc.status if 400 <= exc.status < 500 else 409
            return error(status, exc.code, str(exc))
        except web.HTTPException as exc:
            if not api or exc.status < 400:
                raise
            code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status, "bad_request")
            return error(exc.status, code, exc.reason)

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "node": self.node, "calls": self.metrics.calls_active()})

    async def metrics_text(self, _: web.Request) -> web.Response:
        body = render_node_metrics(self.control, self.metrics, self.extra_metrics)
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def openapi(self, _: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    async def status(self, _: web.Request) -> web.Response:
        queues = [self.control.queue_snapshot(q) for q in self.control.queue_names()]
        return web.json_response({
            "node": self.node, "version": VERSION, "uptime_seconds": round(time.monotonic() - self.started, 3),
            "calls": {"active": self.metrics.calls_active(), "total": self.metrics.calls_total(),
                      "refused": dict(self.metrics.calls_refused())},
            "sip": dict(zip(("resent", "received_again"), self.metrics.sip_retransmissions(), strict=True),
                        transactions=self.metrics.sip_transactions()),
            "agents": _agents_by_state(self.control),
            "queues": [{k: q[k] for k in ("queue", "waiting", "longest_wait_seconds", "agents_logged_in",
                                          "agents_available") if k in q} for q in queues],
        })

    async def list_agents(self, _: web.Request) -> web.Response:
        return web.json_response({"agents": self.control.agents_snapshot()})

    def _agent_reply(self, request: web.Request, status: int = 200) -> web.Response:
        return web.json_response(self.control.agent_snapshot(_agent_id(request)), status=status)

    async def show_agent(self, request: web.Request) -> web.Response:
        return self._agent_reply(request)

    def _admin(self) -> AgentAdmin:
        if self.agent_admin is None:
            raise ApiError(501, "agent_admin_unavailable", "this node cannot change agents at run time")
        return self.agent_admin

    async def add_agent(self, request: web.Request) -> web.Response:
        admin = self._admin()
        data = await _body(request, frozenset({"id", "name", "password", "skills", "team"}))
        agent_id = _field(data, "id", str, required=True)
        name = _field(data, "name", str, default="", nonempty=False)
        password = _field(data, "password", str, required=True)
        team = _field(data, "team", str)
        admin.add_agent(agent_id, name, password, _skills(data, required=False), team)
        return web.json_response(self.control.agent_snapshot(AgentId(agent_id)), status=201)

    async def set_skills(self, request: web.Request) -> web.Response:
        admin = self._admin()
        data = await _body(request, frozenset({"skills"}))
        admin.set_skills(_agent_id(request), _skills(data, required=True))
        return self._agent_reply(request)

    async def remove_agent(self, request: web.Request) -> web.Response:
        self._admin().remove_agent(_agent_id(request))
        return web.Response(status=204)

    async def login(self, request: web.Request) -> web.Response:
        data = await _body(request, frozenset({"ready"}))
        self.control.login(_agent_id(request), ready=_field(data, "ready", bool, default=False), by="operator")
        return self._agent_reply(request)

    async def ready(self, request: web.Request) -> web.Response:
        return await self._no_body_action(request, self.control.set_ready)

    async def _no_body_action(self, request: web.Request, action: Callable[[AgentId], None]) -> web.Response:
        await _body(request, frozenset())
        action(_agent_id(request))
        return self._agent_reply(request)

    async def not_ready(self, request: web.Request) -> web.Response:
        data = await _body(request, frozenset({"reason"}))
        self.control.set_not_ready(_agent_id(request), _field(data, "reason", str, default="break"))
        return self._agent_reply(request)

    async def logout(self, request: web.Request) -> web.Response:
        return await self._no_body_action(request, lambda agent_id: self.control.logout(agent_id, by="operator"))

    async def end_wrap_up(self, request: web.Request) -> web.Response:
        data = await _body(request, frozenset({"disposition", "notes"}))
        self.control.end_wrap_up(_agent_id(request), _field(data, "disposition", str), _field(data, "notes", str))
        return self._agent_reply(request)

    async def list_queues(self, _: web.Request) -> web.Response:
        return web.json_response({"queues": [self.control.queue_snapshot(q) for q in self.control.queue_names()]})

    async def queue_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.control.queue_snapshot(request.match_info["queue"]))

    async def list_calls(self, _: web.Request) -> web.Response:
        return web.json_response({"calls": self.control.calls_snapshot()})

    async def show_call(self, request: web.Request) -> web.Response:
        return web.json_response(self.control.call_snapshot(_call_id(request)))

    async def hangup(self, request: web.Request) -> web.Response:
        await _body(request, frozenset())
        call_id = _call_id(request)
        self.control.hangup_call(call_id)
        return web.json_response({"call_id": call_id, "result": "hanging_up"})

    async def transfer(self, request: web.Request) -> web.Response:
        data = await _body(request, frozenset({"target"}))
        call_id, target = _call_id(request), _field(data, "target", str, required=True)
        self.control.transfer_call(call_id, target)
        return web.json_response({"call_id": call_id, "result": "transferred", "target": target})

    async def reload_config(self, request: web.Request) -> web.Response:
        await _body(request, frozenset())
        if self.reload is None:
            raise ApiError(501, "reload_unavailable", "this node cannot reload its flows")
        try:
            version = await self.reload()
        except ConfigFileError as exc:
            problems = [{"file": p.file, "line": p.line, "reason": p.reason} for p in exc.problems]
            raise ApiError(422, "config_invalid", f"{len(problems)} problem(s); the running flows stay in service",
                           problems=problems) from exc
        return web.json_response({"flows_version": version})


__all__ = ["API_READERS", "CALL_REFUSAL_REASONS", "ApiError", "ExtraMetrics", "MetricFamily", "MetricsSource",
           "NodeMetrics", "ReaderCheck", "Reload", "add_token_reader", "build_app", "http_families", "node_app",
           "node_families", "render_node_metrics"]
