"""Admin API routes of schedules and adherence (docs/adherence.md, docs/api.md, ``cti.http.openapi.ADHERENCE_PATHS``).

Mounted by ``cti.http.api.build_app`` on every node; without an :class:`AdherenceApi` (a node built without a store)
each answers 501 ``not_available``. Times in answers are ISO 8601 in the site's time zone (``node.timezone``) with
epoch seconds beside them; times in requests are ISO 8601, with an offset or in site time. Errors are
``{"error": {"code", "message"}}``:

- 400 ``bad_parameter`` / ``unknown_parameter`` / ``bad_json`` / ``unknown_field``: the request itself;
- 400 ``adherence.import_invalid``: the file was refused, ``problems`` lists file, line and reason (nothing stored);
- 400 ``adherence.schedule_invalid``: the entry overlaps, lies outside a shift, or cannot be;
- 400 ``adherence.range_invalid``: ``from`` after ``to``, or longer than ``adherence.report_max_days``;
- 404 ``not_found``: no such entry or approved exception.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from acd import AgentId
from cti.adherence.importers import parse_schedule_file
from cti.adherence.model import (
    Activity,
    ApprovedException,
    ImportFileError,
    Problem,
    ScheduleEntry,
    ScheduleError,
    StateSpan,
)
from cti.adherence.reports import ReportOptions, adherence_report, day_bounds
from cti.adherence.service import AdherenceService
from cti.errors import CtiError
from cti.http.guard import BodyError, body_refusal, read_json, refusal_response
from cti.store import NotFoundError

__all__ = ["AdherenceApi", "add_adherence_routes", "parse_time"]

_DAY = 86_400.0
_LIST_MAX_DAYS = 62


@dataclass(frozen=True, slots=True, kw_only=True)
class AdherenceApi:
    """What the routes need from the node."""

    service: AdherenceService
    zone: ZoneInfo
    report_max_days: int = 92
    options: ReportOptions | None = None
    agents: Callable[[], Sequence[str]] = field(default=list)


class _Refused(CtiError):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.extra = status, code, extra


def parse_time(raw: object, zone: ZoneInfo, what: str) -> float:
    """ISO 8601 date-time (with an offset, or site time) to epoch seconds. Raises: _Refused (400)."""
    if not isinstance(raw, str):
        raise _Refused(400, "bad_parameter", f"{what} must be an ISO 8601 date-time string")
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise _Refused(400, "bad_parameter", f"{what} must be ISO 8601 (e.g. 2026-05-09T09:00), got {raw!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def _iso(ts: float, zone: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts, zone).isoformat(timespec="seconds")


def _entry_json(e: ScheduleEntry, zone: ZoneInfo) -> dict[str, Any]:
    return {"entry_id": e.entry_id, "agent_id": e.agent_id, "activity": e.activity.value,
            "start": _iso(e.start, zone), "end": _iso(e.end, zone), "start_ts": e.start, "end_ts": e.end,
            "note": e.note}


def _exception_json(x: ApprovedException, zone: ZoneInfo) -> dict[str, Any]:
    return {"exception_id": x.exception_id, "agent_id": x.agent_id,
            "activity": None if x.activity is None else x.activity.value, "start": _iso(x.start, zone),
            "end": _iso(x.end, zone), "start_ts": x.start, "end_ts": x.end, "reason": x.reason,
            "approved_by": x.approved_by, "approved_at": _iso(x.approved_at, zone)}


class _EntryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    activity: Literal["shift", "phone", "break", "lunch", "meeting", "training", "offline_work", "leave", "absence"]
    start: str
    end: str
    note: str | None = Field(default=None, max_length=500)


class _ExceptionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    start: str
    end: str
    reason: str = Field(min_length=1, max_length=500)
    approved_by: str = Field(min_length=1, max_length=100)
    activity: Literal["phone", "break", "lunch", "meeting", "training", "offline_work", "leave", "absence"] | None \
        = None


def _query(request: web.Request, allowed: tuple[str, ...]) -> Mapping[str, str]:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        raise _Refused(400, "unknown_parameter", f"unknown parameter(s): {', '.join(unknown)}; known: "
                                                 f"{', '.join(allowed)}")
    return request.query


def _days(query: Mapping[str, str], max_days: int) -> tuple[dt.date, dt.date]:
    """``from``/``to`` local dates (inclusive). Raises: _Refused."""
    try:
        first = dt.date.fromisoformat(query["from"])
        last = dt.date.fromisoformat(query.get("to", query["from"]))
    except KeyError:
        raise _Refused(400, "bad_parameter", "from (YYYY-MM-DD) is required") from None
    except ValueError:
        raise _Refused(400, "bad_parameter", "from and to must be dates YYYY-MM-DD") from None
    if first > last:
        raise _Refused(400, "adherence.range_invalid", f"from {first} is after to {last}")
    days = (last - first).days + 1
    if days > max_days:
        raise _Refused(400, "adherence.range_invalid",
                       f"{days} days asked; at most {max_days} (adherence.report_max_days)")
    return first, last


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    raw = await read_json(request)  # BodyError: answered by the handler wrapper (body_refusal)
    if not isinstance(raw, dict):
        raise _Refused(400, "bad_json", "the body must be a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        code = "unknown_field" if first["type"] == "extra_forbidden" else "bad_parameter"
        raise _Refused(400, code, f"{where}: {first['msg']}") from exc


def _int_id(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise _Refused(404, "not_found", f"no such {name}") from None


def add_adherence_routes(app: web.Application, ctx: AdherenceApi | None) -> None:
    """Add the schedule and adherence routes to ``app`` (see the module docstring)."""

    def handler(work: Callable[[web.Request, AdherenceApi], Any]) -> Callable[[web.Request], Any]:
        async def run(request: web.Request) -> web.StreamResponse:
            if ctx is None:
                return _error(501, "not_available", "schedules and adherence need the node's store")
            try:
                result: web.StreamResponse = await work(request, ctx)
                return result
            except _Refused as exc:
                return _error(exc.status, exc.code, str(exc), **exc.extra)
            except BodyError as exc:
                return body_refusal(exc)
            except ImportFileError as exc:
                return _error(400, exc.code, str(exc), problems=[{"file": p.file, "line": p.line, "reason": p.reason}
                                                                 for p in exc.problems])
            except ScheduleError as exc:
                return _error(400, exc.code, str(exc))
            except NotFoundError as exc:
                return _error(404, "not_found", str(exc))
        return run

    for method, path, work in _ROUTES:
        app.router.add_route(method, path, handler(work))


def _error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return refusal_response(status, code, message, **extra)


async def _list_entries(request: web.Request, ctx: AdherenceApi) -> web.Response:
    query = _query(request, ("from", "to", "agent"))
    first, last = _days(query, _LIST_MAX_DAYS)
    lo, hi = day_bounds(first, last, ctx.zone)
    entries = await ctx.service.schedules.entries_between(lo, hi, query.get("agent"))
    return web.json_response({"timezone": ctx.zone.key, "entries": [_entry_json(e, ctx.zone) for e in entries]})


def _known_agent(ctx: AdherenceApi, agent: str) -> None:
    known = set(ctx.agents())
    if known and agent not in known:
        raise _Refused(400, "adherence.schedule_invalid", f"unknown agent {agent!r} (not an agent of this node)")


def _entry_from(body: _EntryBody, zone: ZoneInfo) -> ScheduleEntry:
    return ScheduleEntry(agent_id=body.agent_id, start=parse_time(body.start, zone, "start"),
                         end=parse_time(body.end, zone, "end"), activity=Activity(body.activity), note=body.note)


async def _add_entry(request: web.Request, ctx: AdherenceApi) -> web.Response:
    body = await _body(request, _EntryBody)
    _known_agent(ctx, body.agent_id)
    entry = await ctx.service.schedules.add_entry(_entry_from(body, ctx.zone), ctx.service.now())
    await ctx.service.reload()
    return web.json_response(_entry_json(entry, ctx.zone), status=201)


async def _change_entry(request: web.Request, ctx: AdherenceApi) -> web.Response:
    entry_id = _int_id(request, "entry_id")
    body = await _body(request, _EntryBody)
    _known_agent(ctx, body.agent_id)
    entry = await ctx.service.schedules.add_entry(_entry_from(body, ctx.zone), ctx.service.now(), replacing=entry_id)
    await ctx.service.reload()
    return web.json_response(_entry_json(entry, ctx.zone))


async def _delete_entry(request: web.Request, ctx: AdherenceApi) -> web.Response:
    await ctx.service.schedules.delete_entry(_int_id(request, "entry_id"))
    await ctx.service.reload()
    return web.Response(status=204)


async def _import(request: web.Request, ctx: AdherenceApi) -> web.Response:
    query = _query(request, ("name", "agent"))
    name = query.get("name") or "request body"
    data = await request.read()
    entries = await asyncio.to_thread(parse_schedule_file, data, name, ctx.zone, agent=query.get("agent"))
    known = set(ctx.agents())
    unknown = [Problem(name, line, f"unknown agent {e.agent_id!r} (not an agent of this node)")
               for line, e in entries if known and e.agent_id not in known]
    if unknown:
        raise ImportFileError(unknown)
    summary = await ctx.service.schedules.import_entries(entries, name, ctx.service.now())
    await ctx.service.reload()
    return web.json_response({"file": name, "agents": summary.agents, "imported": summary.imported,
                              "replaced": summary.replaced})


async def _list_exceptions(request: web.Request, ctx: AdherenceApi) -> web.Response:
    query = _query(request, ("from", "to", "agent"))
    first, last = _days(query, _LIST_MAX_DAYS)
    lo, hi = day_bounds(first, last, ctx.zone)
    found = await ctx.service.schedules.exceptions_between(lo, hi, query.get("agent"))
    return web.json_response({"timezone": ctx.zone.key, "exceptions": [_exception_json(x, ctx.zone) for x in found]})


async def _add_exception(request: web.Request, ctx: AdherenceApi) -> web.Response:
    body = await _body(request, _ExceptionBody)
    _known_agent(ctx, body.agent_id)
    exc = ApprovedException(agent_id=body.agent_id, start=parse_time(body.start, ctx.zone, "start"),
                            end=parse_time(body.end, ctx.zone, "end"), reason=body.reason,
                            approved_by=body.approved_by, approved_at=ctx.service.now(),
                            activity=None if body.activity is None else Activity(body.activity))
    stored = await ctx.service.schedules.add_exception(exc)
    await ctx.service.reload()
    return web.json_response(_exception_json(stored, ctx.zone), status=201)


async def _delete_exception(request: web.Request, ctx: AdherenceApi) -> web.Response:
    await ctx.service.schedules.delete_exception(_int_id(request, "exception_id"))
    await ctx.service.reload()
    return web.Response(status=204)


async def _live(request: web.Request, ctx: AdherenceApi) -> web.Response:
    _query(request, ())
    now = ctx.service.now()
    agents = ctx.service.tracker.snapshot(now)
    for row in agents:
        since = row.get("out_since")
        row["out_since"] = None if not isinstance(since, float) else _iso(since, ctx.zone)
    return web.json_response({"timezone": ctx.zone.key, "at": _iso(now, ctx.zone), "agents": agents})


async def _report(request: web.Request, ctx: AdherenceApi) -> web.Response:
    query = _query(request, ("from", "to", "agent"))
    first, last = _days(query, ctx.report_max_days)
    lo, hi = day_bounds(first, last, ctx.zone)
    only = query.get("agent")
    schedules = ctx.service.schedules
    entries = await schedules.entries_between(lo - _DAY, hi + _DAY, only)
    exceptions = await schedules.exceptions_between(lo - _DAY, hi + _DAY, only)
    agents = sorted({e.agent_id for e in entries} | ({only} if only else set(ctx.agents())))
    store = ctx.service.store
    states: dict[str, list[StateSpan]] = {}
    now = ctx.service.now()
    for agent in agents:
        rows = await store.agent_states_between(AgentId(agent), lo - _DAY, hi + _DAY)
        states[agent] = [StateSpan(start=r.start, end=min(now, hi + _DAY) if r.end is None else r.end,
                                   state=r.state.value, reason=r.reason) for r in rows]
    legs = await store.queue_legs_between(lo, hi)
    options = ctx.options or ReportOptions(zone=ctx.zone)
    report = await asyncio.to_thread(lambda: adherence_report(
        first=first, last=last, entries=entries, exceptions=exceptions, states=states, legs=legs,
        settings=ctx.service.settings, options=options))
    return web.json_response(report)


_ROUTES: tuple[tuple[str, str, Callable[[web.Request, AdherenceApi], Any]], ...] = (
    ("GET", "/api/v1/schedules", _list_entries),
    ("POST", "/api/v1/schedules", _add_entry),
    ("POST", "/api/v1/schedules/import", _import),
    ("PUT", "/api/v1/schedules/{entry_id}", _change_entry),
    ("DELETE", "/api/v1/schedules/{entry_id}", _delete_entry),
    ("GET", "/api/v1/adherence/approved-exceptions", _list_exceptions),
    ("POST", "/api/v1/adherence/approved-exceptions", _add_exception),
    ("DELETE", "/api/v1/adherence/approved-exceptions/{exception_id}", _delete_exception),
    ("GET", "/api/v1/adherence/live", _live),
    ("GET", "/api/v1/adherence/report", _report),
)
