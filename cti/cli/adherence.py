"""``cti schedules ...`` and ``cti adherence ...``: schedules, approved exceptions and adherence of a running server
(docs/adherence.md).

The groups talk to the admin API of the server at ``--url`` (env ``CTI_URL``, default ``http://127.0.0.1:8080``)
with the operator token ``--token`` (env ``CTI_TOKEN``). Output is a table, or the API's JSON with ``--json``.
Exit codes: 0 success; 1 the server is unreachable or refused (its error code and message, and for a refused file
each ``file:line: reason``, on stderr); 2 bad usage (click).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlencode

import aiohttp
import click

from cti.errors import CtiError

__all__ = ["adherence", "schedules"]

DEFAULT_URL = "http://127.0.0.1:8080"
_TIMEOUT_S = 60.0
F = TypeVar("F", bound=Callable[..., Any])


class _Refused(CtiError):
    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


def _options(func: F) -> F:
    func = click.option("--json", "as_json", is_flag=True, help="print the API's JSON answer")(func)
    func = click.option("--token", envvar="CTI_TOKEN", help="operator token (env CTI_TOKEN)")(func)
    func = click.option("--url", envvar="CTI_URL", default=DEFAULT_URL, show_default=True,
                        help="server admin URL (env CTI_URL)")(func)
    return func


async def _request(method: str, url: str, token: str | None, path: str, *, json_body: Any = None,
                   data: bytes | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with asyncio.timeout(_TIMEOUT_S), aiohttp.ClientSession() as session:
            async with session.request(method, url.rstrip("/") + path, headers=headers, json=json_body,
                                       data=data) as resp:
                text, status = await resp.text(), resp.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise _Refused(f"cannot reach the server at {url}: {exc or type(exc).__name__}") from exc
    try:
        answer = json.loads(text) if text else {}
    except json.JSONDecodeError:
        answer = {}
    if status == 401:
        raise _Refused("the server refused the token (401): give --token or set CTI_TOKEN to the operator token")
    if not 200 <= status < 300:
        err = answer.get("error", {}) if isinstance(answer, dict) else {}
        problems = [f"{p['file']}:{p['line']}: {p['reason']}" for p in err.get("problems", [])]
        raise _Refused(f"{method} {path} failed ({status} {err.get('code', 'http_error')}): "
                       f"{err.get('message', text[:200])}", problems)
    return answer


def _call(method: str, url: str, token: str | None, path: str, **kwargs: Any) -> Any:
    try:
        return asyncio.run(_request(method, url, token, path, **kwargs))
    except _Refused as exc:
        _fail(str(exc), exc.problems)


def _fail(message: str, problems: Sequence[str] = ()) -> NoReturn:
    click.echo(f"cti: {message}", err=True)
    for line in problems:
        click.echo(line, err=True)
    sys.exit(1)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[["-" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def _pct(value: object) -> str:
    return "-" if not isinstance(value, int | float) else f"{value * 100:.2f}%"


def _emit(data: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False) if as_json else render(data))


@click.group("schedules")
def schedules() -> None:
    """Agents' schedules (shifts, activities, leave) on a running server."""


@schedules.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--agent", help="the agent of a one-agent iCalendar file (events without X-CTI-AGENT)")
@_options
def import_file(file: Path, agent: str | None, url: str, token: str | None, as_json: bool) -> None:
    """Import a CSV or iCalendar FILE: all of it, or nothing (each problem printed as file:line: reason)."""
    query = urlencode({"name": file.name, **({"agent": agent} if agent else {})})
    data = _call("POST", url, token, f"/api/v1/schedules/import?{query}", data=file.read_bytes())
    _emit(data, as_json, lambda d: f"{d['file']}: {d['imported']} entries for {d['agents']} agents imported "
                                   f"({d['replaced']} replaced)")


@schedules.command("list")
@click.option("--from", "first", required=True, help="first local day, YYYY-MM-DD")
@click.option("--to", "last", help="last local day (default: --from)")
@click.option("--agent")
@_options
def list_entries(first: str, last: str | None, agent: str | None, url: str, token: str | None,
                 as_json: bool) -> None:
    """Schedule entries of the days."""
    query = urlencode({"from": first, "to": last or first, **({"agent": agent} if agent else {})})
    data = _call("GET", url, token, f"/api/v1/schedules?{query}")
    _emit(data, as_json, lambda d: _table(("ID", "AGENT", "ACTIVITY", "START", "END", "NOTE"), [
        (e["entry_id"], e["agent_id"], e["activity"], e["start"], e["end"], e["note"]) for e in d["entries"]]))


@schedules.command("remove")
@click.argument("entry_id", type=click.IntRange(min=1))
@_options
def remove_entry(entry_id: int, url: str, token: str | None, as_json: bool) -> None:
    """Remove one schedule entry."""
    _call("DELETE", url, token, f"/api/v1/schedules/{entry_id}")
    _emit({"removed": entry_id}, as_json, lambda d: f"removed entry {d['removed']}")


@click.group("adherence")
def adherence() -> None:
    """Schedule adherence (遵时): live view, reports, approved exceptions."""


@adherence.command("live")
@_options
def live(url: str, token: str | None, as_json: bool) -> None:
    """Every scheduled agent's adherence now."""
    data = _call("GET", url, token, "/api/v1/adherence/live")
    _emit(data, as_json, lambda d: _table(("AGENT", "VERDICT", "PLANNED", "STATE", "REASON", "OUT_SINCE", "ALERT"), [
        (a["agent_id"], a["verdict"], a["activity"], a["state"], a["reason"], a["out_since"],
         "yes" if a["exception"] else "") for a in d["agents"]]))


def _render_report(d: dict[str, Any]) -> str:
    lines = [f"adherence {d['from']} .. {d['to']} ({d['timezone']}; tolerance {d['tolerance_minutes']:g} min, "
             f"{d['tolerance_mode']})", ""]
    lines.append(_table(("AGENT", "DAY", "ADHERENCE", "RAW", "CONFORMANCE", "OUT_MIN", "EXCEPTIONS", "APPROVED"), [
        (r["agent_id"], r["day"], _pct(r["adherence"]), _pct(r["raw_adherence"]), _pct(r["conformance"]),
         round(r["out_s"] / 60, 2), r["exceptions"], r["approved_exceptions"]) for r in d["days"]]))
    km = d["key_minority"]
    lines += ["", f"SL cost: {km['missed_calls']} calls missed the service level, {km['attributed_calls']} "
                  f"attributed to non-adherence; key minority ({km['share'] * 100:g}% of the cost): "
                  f"{', '.join(km['minority']) or 'none'}"]
    if km["agents"]:
        lines.append(_table(("AGENT", "SL_COST_CALLS", "SHARE"), [
            (a["agent_id"], a["sl_cost_calls"], _pct(a["share_of_cost"])) for a in km["agents"]]))
    for flag in d["gaming"]:
        times = ", ".join(s["login"] for s in flag["sessions"])
        lines.append(f"gaming? {flag['agent_id']}: {flag['repeats']} short sessions around the same time ({times})")
    return "\n".join(lines)


@adherence.command("report")
@click.option("--from", "first", required=True, help="first local day, YYYY-MM-DD")
@click.option("--to", "last", help="last local day (default: --from)")
@click.option("--agent")
@_options
def report(first: str, last: str | None, agent: str | None, url: str, token: str | None, as_json: bool) -> None:
    """Adherence, conformance, exceptions per agent per day; the key minority; gaming flags."""
    query = urlencode({"from": first, "to": last or first, **({"agent": agent} if agent else {})})
    _emit(_call("GET", url, token, f"/api/v1/adherence/report?{query}"), as_json, _render_report)


@adherence.command("approve")
@click.option("--agent", required=True)
@click.option("--from", "start", required=True, help="ISO date-time, site time unless it has an offset")
@click.option("--to", "end", required=True)
@click.option("--reason", required=True)
@click.option("--by", "approved_by", required=True, help="the supervisor who approves it")
@click.option("--activity", help="read the span as this activity instead of excusing it")
@_options
def approve(agent: str, start: str, end: str, reason: str, approved_by: str, activity: str | None, url: str,
            token: str | None, as_json: bool) -> None:
    """Approve an exception: the span counts as in adherence (or as --activity)."""
    body = {"agent_id": agent, "start": start, "end": end, "reason": reason, "approved_by": approved_by,
            "activity": activity}
    data = _call("POST", url, token, "/api/v1/adherence/approved-exceptions", json_body=body)
    _emit(data, as_json, lambda d: f"approved exception {d['exception_id']}: {d['agent_id']} {d['start']} .. "
                                   f"{d['end']} ({d['reason']})")


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@adherence.command("compute")
@click.option("--schedule", "schedule_file", required=True, type=_FILE, help="CSV or iCalendar schedule file")
@click.option("--states", "states_file", required=True, type=_FILE,
              help="CSV agent,time,state[,reason]: one row per state change")
@click.option("--exceptions", "exceptions_file", type=_FILE,
              help="CSV agent,start,end,reason,approved_by[,activity]: approved exceptions")
@click.option("--timezone", "zone_name", default="UTC", show_default=True, help="site time zone of the files")
@click.option("--tolerance-min", type=click.FloatRange(0, 60), default=5.0, show_default=True)
@click.option("--mode", type=click.Choice(["grace", "min_duration"]), default="grace", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one object per shift")
def compute(schedule_file: Path, states_file: Path, exceptions_file: Path | None, zone_name: str,
            tolerance_min: float, mode: str, as_json: bool) -> None:
    """Adherence of the shifts in files, with no server: the calculator of domain.md §3 (exit 2 on a bad file)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from cti.adherence import AdherenceSettings, ImportFileError, StateSpan, ToleranceMode, compute_shift, shifts_of
    from cti.adherence.importers import parse_approved, parse_schedule_file, parse_state_changes

    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {zone_name!r}", param_hint="--timezone") from None
    try:
        entries = [e for _, e in parse_schedule_file(schedule_file.read_bytes(), schedule_file.name, zone)]
        changes = parse_state_changes(states_file.read_text("utf-8"), states_file.name, zone)
        approved = (parse_approved(exceptions_file.read_text("utf-8"), exceptions_file.name, zone)
                    if exceptions_file else [])
    except ImportFileError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(2)
    horizon = max((e.end for e in entries), default=0.0)
    spans: dict[str, list[StateSpan]] = {}
    for index, (agent, at, state, reason) in enumerate(changes):
        following = next((c[1] for c in changes[index + 1:] if c[0] == agent), max(horizon, at))
        spans.setdefault(agent, []).append(StateSpan(start=at, end=following, state=state, reason=reason))
    settings = AdherenceSettings(tolerance_s=tolerance_min * 60, tolerance_mode=ToleranceMode(mode))
    results = [compute_shift(s, entries, spans.get(s.agent_id, []), approved, settings) for s in shifts_of(entries)]
    rows = [{"agent_id": r.agent_id, "shift_start": _local(r.start, zone), "shift_end": _local(r.end, zone),
             "adherence": r.adherence, "raw_adherence": r.raw_adherence, "conformance": r.conformance,
             "in_min": r.in_s / 60, "out_min": r.out_s / 60, "neutral_min": r.neutral_s / 60,
             "out_segments": [{"start": _local(g.start, zone), "minutes": g.duration_s / 60,
                               "counted_minutes": g.counted_s / 60, "activity": g.activity.value, "state": g.state,
                               "reason": g.reason} for g in r.segments]} for r in results]
    _emit(rows, as_json, lambda d: _table(
        ("AGENT", "SHIFT", "ADHERENCE", "RAW", "CONFORMANCE", "IN_MIN", "OUT_MIN", "NEUTRAL_MIN"),
        [(r["agent_id"], f"{r['shift_start']}..{r['shift_end'][11:]}", _pct(r["adherence"]),
          _pct(r["raw_adherence"]), _pct(r["conformance"]), f"{r['in_min']:g}", f"{r['out_min']:g}",
          f"{r['neutral_min']:g}") for r in d]))


def _local(ts: float, zone: Any) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M")
