"""Admin API routes of the KPI reports (docs/reports.md): ``GET /api/v1/reports/{queues|agents|ivr|patience}``
and ``GET /api/v1/kpi/replay?date=D`` (a past day's live figures replayed from its legs, for ``cti kpi verify``).

Query: ``from``, ``to`` (a date = the site's local day, both inclusive; ``today``; or an ISO time, local when it has no
offset; ``to`` exclusive), ``interval`` (``15m``, ``30m``, ``60m``, ``day``, ``week``, ``month``; default
``30m``), ``format`` (``json`` default, ``csv``, ``svg``), and for ``svg`` ``figure`` (default
``service_level`` for queues, ``occupancy`` for agents) and ``group`` (repeatable; default every group).
Mounted on the application of ``cti.http.api.build_app`` (its middleware guards ``/api/`` with the operator token).
With ``tokens``, a supervisor's token (``/auth/login``) is admitted too (the supervisor console draws its
chart from this route): it reads its own queues (``kind=queues``) or its teams' agents (``kind=agents``) only,
and gets 403 for ``ivr`` and ``patience`` (node-wide figures). ``ivr`` takes no ``figure``/``group`` and no
``svg``; ``patience`` takes ``from``, ``to`` and ``queue`` only.
Errors are ``{"error": {"code", "message", "field"}}`` with status 400 (``reports.input_invalid``,
``unknown_parameter``); 503 ``reports_busy`` when the computation takes longer than 60 s; 500
``reports.failed`` when the worker fails. The reading, computing and serialising run in a report worker
process (:mod:`cti.reports.worker`), never on the event loop.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from config.schema import ServerConfig
from cti.http.api import API_READERS
from cti.node.routing import queue_config
from cti.reports.calendar import Period, local_day_bounds, parse_period
from cti.reports.chart import CHART_FIGURES
from cti.reports.errors import ReportError, ReportInputError
from cti.reports.fetch import parse_when, report_range, report_spec
from cti.reports.work import ReportJob, ReportOutput
from cti.reports.worker import ReportWorkers
from cti.tokens import Principal, Role, TokenError, TokenIssuer

__all__ = ["add_report_routes"]

_COMMON = frozenset({"from", "to", "interval", "format"})
_ALLOWED = {"queues": _COMMON | {"figure", "group"}, "agents": _COMMON | {"figure", "group"}, "ivr": _COMMON,
            "patience": frozenset({"from", "to", "queue"})}  # kind -> its query parameters
_SUPERVISED = ("queues", "agents")  # the kinds a supervisor's token may read (its own groups)
_FORMATS = ("json", "csv", "svg")
_TIMEOUT_S = 60.0


def _bad(code: str, message: str, field: str | None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "field": field}}, status=400)


class _Unknown(ReportInputError):
    """A query parameter the route does not take."""


_READER = web.RequestKey("cti.reports.reader", Principal)
_PREFIX = "/api/v1/reports/"


def _visible(config: ServerConfig, reader: Principal, kind: str) -> frozenset[str]:
    """The groups a supervisor may read: its queues, or its teams and their agents."""
    supervisor = next((s for s in config.supervisors if s.id == reader.subject), None)
    if supervisor is None:
        return frozenset()
    if kind == "queues":
        return frozenset(supervisor.queues)
    return frozenset({f"team:{t}" for t in supervisor.teams}
                     | {a.id for a in config.agents if a.team in supervisor.teams})


def respond(out: ReportOutput) -> web.Response:
    """A worker's answer as the HTTP response."""
    return web.Response(status=out.status, body=out.body, content_type=out.content_type, charset="utf-8")


def add_report_routes(app: web.Application, *, store_target: str | Path, config: ServerConfig,
                      clock: Callable[[], float] = time.time, tokens: TokenIssuer | None = None,
                      workers: ReportWorkers | None = None) -> ReportWorkers:
    """Add ``GET /api/v1/reports/{kind}`` to ``app``; with ``tokens``, supervisors' tokens may read it.

    ``store_target`` is the store the workers read (the SQLite file or PostgreSQL URL the server opened);
    ``workers`` the report workers (made here, at most two, and stopped with ``app``, when not given).
    Returns the workers (other report routes share them).

    Raises:
        RuntimeError: ``app`` is already frozen.
    """
    if workers is None:
        workers = ReportWorkers()
        owned = workers

        async def stop_workers(_: web.Application) -> None:
            await owned.close()

        app.on_cleanup.append(stop_workers)

    def admit(request: web.Request, authorization: str) -> bool:
        if tokens is None or request.method != "GET" or not request.path.startswith(_PREFIX):
            return False
        scheme, _, token = authorization.partition(" ")
        try:
            principal = tokens.verify(token) if scheme == "Bearer" and token else None
        except TokenError:
            return False
        if principal is None or principal.role is not Role.SUPERVISOR:
            return False
        request[_READER] = principal
        return True

    app[API_READERS] = [*app.get(API_READERS, []), admit]

    async def answer(job: ReportJob) -> web.Response:
        try:
            return respond(await workers.run(job, _TIMEOUT_S))
        except ReportError as exc:
            return web.json_response({"error": {"code": "reports.failed", "message": str(exc)}}, status=500)
        except TimeoutError:
            return web.json_response({"error": {"code": "reports_busy", "message": "the report took longer than "
                                                f"{_TIMEOUT_S:g} s; ask for a shorter range"}}, status=503)

    def job_of(request: web.Request, kind: str) -> ReportJob:
        """Raises: ReportInputError: a bad parameter (its name in ``field``)."""
        query = request.query
        allowed = _ALLOWED[kind]
        unknown = sorted(set(query) - allowed)
        if unknown:
            raise _Unknown(unknown[0], f"unknown parameter(s): {', '.join(unknown)}; "
                                       f"known: {', '.join(sorted(allowed))}")
        for name in ("from", "to"):
            if name not in query:
                raise ReportInputError(name, f"missing parameter {name} (a date YYYY-MM-DD or an ISO time)")
        zone = config.node.zone
        now = clock()
        start = parse_when(query["from"], zone, field="from", end=False, now=now)
        end = parse_when(query["to"], zone, field="to", end=True, now=now)
        report_range(start, end, config.reports.max_range_days)
        try:
            period = parse_period(query.get("interval", "30m"))
        except ValueError as exc:
            raise ReportInputError("interval", str(exc)) from None
        fmt = query.get("format", "json")
        formats = _FORMATS if kind in ("queues", "agents") else _FORMATS[:2]
        if fmt not in formats:
            raise ReportInputError("format", f"format must be one of {', '.join(formats)}, got {fmt!r}")
        spec = report_spec(config, start=start, end=end, period=period, now=now)
        figure = query.get("figure", "service_level" if kind == "queues" else "occupancy")
        if fmt == "svg" and figure not in CHART_FIGURES:
            raise ReportInputError("figure", f"figure must be one of {', '.join(CHART_FIGURES)}, got {figure!r}")
        options: dict[str, Any] = {}
        if kind == "ivr":
            options["flows"] = {n: f for trunk in config.trunks for n, f in trunk.numbers.items()}
        if kind == "patience":
            queue = query.get("queue")
            if queue is not None and queue not in {q.name for q in config.queues}:
                raise ReportInputError("queue", f"no such queue: {queue!r}")
            options["queue"] = queue
        reader = request.get(_READER)
        return ReportJob(target=str(store_target), kind=kind, spec=spec, fmt=fmt, figure=figure,
                         groups=tuple(query.getall("group", [])),
                         visible=None if reader is None else _visible(config, reader, kind), options=options)

    async def report(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        try:
            if kind not in _ALLOWED:
                raise ReportInputError("kind", f"report kind must be one of {', '.join(_ALLOWED)}, got {kind!r}")
            if kind not in _SUPERVISED and request.get(_READER) is not None:
                return web.json_response({"error": {"code": "forbidden", "message": f"the {kind} report is for "
                                                    "the operator token"}}, status=403)
            job = job_of(request, kind)
        except _Unknown as exc:
            return _bad("unknown_parameter", str(exc), exc.field)
        except ReportInputError as exc:
            return _bad(exc.code, str(exc), exc.field)
        return await answer(job)

    async def replay(request: web.Request) -> web.Response:
        unknown = sorted(set(request.query) - {"date"})
        if unknown:
            return _bad("unknown_parameter", f"unknown parameter(s): {', '.join(unknown)}; known: date", unknown[0])
        zone = config.node.zone
        text = request.query.get("date", "")
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            return _bad(ReportInputError.code, f"date must be a day (YYYY-MM-DD), got {text!r}", "date")
        today = dt.datetime.fromtimestamp(clock(), zone).date()
        if day > today:
            return _bad(ReportInputError.code, f"{day} is after the site's today ({today})", "date")
        start, end = local_day_bounds(day, zone)
        spec = report_spec(config, start=start, end=end, period=Period.DAY, now=clock())
        return await answer(ReportJob(target=str(store_target), kind="replay", spec=spec,
                                      options={"queues": tuple(queue_config(q) for q in config.queues)}))

    app.router.add_get("/api/v1/reports/{kind}", report)
    app.router.add_get("/api/v1/kpi/replay", replay)
    return workers
