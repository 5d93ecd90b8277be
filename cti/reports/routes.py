"""Admin API routes of the KPI reports (docs/reports.md): ``GET /api/v1/reports/{queues|agents}``.

Query: ``from``, ``to`` (a date = the site's local day, both inclusive; ``today``; or an ISO time, local when it has no
offset; ``to`` exclusive), ``interval`` (``15m``, ``30m``, ``60m``, ``day``, ``week``, ``month``; default
``30m``), ``format`` (``json`` default, ``csv``, ``svg``), and for ``svg`` ``figure`` (default
``service_level`` for queues, ``occupancy`` for agents) and ``group`` (repeatable; default every group).
Mounted on the application of ``cti.http.api.build_app`` (its middleware guards ``/api/`` with the operator token).
With ``tokens``, a supervisor's token (``/auth/login``) is admitted too (the supervisor console draws its
chart from this route): it reads its own queues (``kind=queues``) or its teams' agents (``kind=agents``) only.
Errors are ``{"error": {"code", "message", "field"}}`` with status 400 (``reports.input_invalid``,
``unknown_parameter``); 503 ``reports_busy`` when the computation takes longer than 60 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web

from config.schema import ServerConfig
from cti.http.api import API_READERS
from cti.reports.calendar import parse_period
from cti.reports.chart import render_svg
from cti.reports.errors import ReportInputError
from cti.reports.fetch import KINDS, build_report, parse_when, report_range, report_spec
from cti.reports.report import to_csv
from cti.store import StoreOperations
from cti.tokens import Principal, Role, TokenError, TokenIssuer

__all__ = ["add_report_routes"]

_ALLOWED = frozenset({"from", "to", "interval", "format", "figure", "group"})
_FORMATS = ("json", "csv", "svg")
_TIMEOUT_S = 60.0


def _bad(code: str, message: str, field: str | None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "field": field}}, status=400)


_READER = web.RequestKey("cti.reports.reader", Principal)
_PREFIX = "/api/v1/reports/"


def _visible(config: ServerConfig, reader: Principal, kind: str, group: str) -> bool:
    """Whether a supervisor may read a group: its queues, or its teams and their agents."""
    supervisor = next((s for s in config.supervisors if s.id == reader.subject), None)
    if supervisor is None:
        return False
    if kind == "queues":
        return group in supervisor.queues
    if group.startswith("team:"):
        return group[5:] in supervisor.teams
    return any(a.id == group and a.team in supervisor.teams for a in config.agents)


def add_report_routes(app: web.Application, *, store: StoreOperations, config: ServerConfig,
                      clock: Callable[[], float] = time.time, tokens: TokenIssuer | None = None) -> None:
    """Add ``GET /api/v1/reports/{kind}`` to ``app``; with ``tokens``, supervisors' tokens may read it.

    Raises:
        RuntimeError: ``app`` is already frozen.
    """
    workers = asyncio.Semaphore(2)

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

    async def report(request: web.Request) -> web.Response:
        query = request.query
        unknown = sorted(set(query) - _ALLOWED)
        if unknown:
            return _bad("unknown_parameter", f"unknown parameter(s): {', '.join(unknown)}; "
                                             f"known: {', '.join(sorted(_ALLOWED))}", unknown[0])
        kind = request.match_info["kind"]
        zone = config.node.zone
        try:
            if kind not in KINDS:
                raise ReportInputError("kind", f"report kind must be one of {', '.join(KINDS)}, got {kind!r}")
            for name in ("from", "to"):
                if name not in query:
                    raise ReportInputError(name, f"missing parameter {name} (a date YYYY-MM-DD or an ISO time)")
            now = clock()
            start = parse_when(query["from"], zone, field="from", end=False, now=now)
            end = parse_when(query["to"], zone, field="to", end=True, now=now)
            report_range(start, end, config.reports.max_range_days)
            try:
                period = parse_period(query.get("interval", "30m"))
            except ValueError as exc:
                raise ReportInputError("interval", str(exc)) from None
            fmt = query.get("format", "json")
            if fmt not in _FORMATS:
                raise ReportInputError("format", f"format must be one of {', '.join(_FORMATS)}, got {fmt!r}")
            spec = report_spec(config, start=start, end=end, period=period, now=now)
            async with workers, asyncio.timeout(_TIMEOUT_S):
                built = await build_report(store, spec, kind)
                reader = request.get(_READER)
                if reader is not None:  # a supervisor: its own queues or teams only
                    built.rows[:] = [r for r in built.rows if _visible(config, reader, kind, r["group"])]
                if fmt == "svg":
                    figure = query.get("figure", "service_level" if kind == "queues" else "occupancy")
                    svg = await asyncio.to_thread(render_svg, built, figure, query.getall("group", []))
                    return web.Response(text=svg, content_type="image/svg+xml")
                if fmt == "csv":
                    return web.Response(text=await asyncio.to_thread(to_csv, built), content_type="text/csv")
                return web.json_response(built.to_json())
        except ReportInputError as exc:
            return _bad(exc.code, str(exc), exc.field)
        except TimeoutError:
            return web.json_response({"error": {"code": "reports_busy", "message": "the report took longer than "
                                                f"{_TIMEOUT_S:g} s; ask for a shorter range"}}, status=503)

    app.router.add_get("/api/v1/reports/{kind}", report)
