"""The store side of reports: read the rows a report needs, and the report settings from the config.

The only asyncio-facing module of the package: it awaits the store (SQLite or PostgreSQL, the same queries) in
reads of 2 hours of range each (the SQLite store serialises its users, so the call-records writer waits for one
read at most; the store decodes large results in a worker thread) and runs the pure calculators in a worker
thread, so a long report does not block the event loop.
:func:`parse_when` and :func:`report_range` turn the user's ``from``/``to`` into epoch seconds in the
site's time zone and refuse a bad range (from not before to, longer than ``reports.max_range_days``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from acd import IntervalCounters, QueueId, SiteCalendar, SlFormula
from config.schema import ServerConfig
from cti.reports.calendar import Period, local_day_bounds
from cti.reports.errors import ReportInputError
from cti.reports.queues import QueueRules, queue_figures
from cti.reports.report import Report, ReportSpec, agent_report, queue_report
from cti.store import AgentStateRow, QueueLeg, StoreOperations

__all__ = ["LOOKBACK_S", "KINDS", "PAGE_S", "build_report", "parse_when", "read_legs", "report_range", "report_spec",
           "today_counters"]

LOOKBACK_S = 86400.0  # handling that ends in the range began at most this long before it
KINDS = ("queues", "agents")


def parse_when(text: str, zone: ZoneInfo, *, field: str, end: bool, now: float | None = None) -> float:
    """A date (``2026-12-06``: the local day; as ``to``, its end), ``today`` (the site's date at ``now``) or
    an ISO time (local when it has no offset) as epoch seconds.

    Raises:
        ReportInputError: none of these.
    """
    if text == "today" and now is not None:
        text = dt.datetime.fromtimestamp(now, zone).date().isoformat()
    try:
        if len(text) == 10:
            start, stop = local_day_bounds(dt.date.fromisoformat(text), zone)
            return stop if end else start
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ReportInputError(field, f"{field} must be a date (YYYY-MM-DD) or an ISO time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def report_range(start: float, end: float, max_days: int) -> None:
    """Raises: ReportInputError: ``start`` not before ``end``, or longer than ``max_days``."""
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ReportInputError("from", "from and to must be finite times")
    if start >= end:
        raise ReportInputError("from", "from must be before to")
    if end - start > max_days * 86400.0 + 3600.0:  # + 1 h: a range of whole local days across DST
        raise ReportInputError("to", f"the range is longer than the maximum of {max_days} days "
                                     f"(reports.max_range_days)")


def _rules(config: ServerConfig) -> dict[str, QueueRules]:
    r = config.reports
    return {q.name: QueueRules(sl_threshold_s=q.sl_threshold_s, sl_formula=SlFormula(q.sl_formula),
                               include_flowouts=q.include_flowouts, short_abandon_s=q.short_abandon_s,
                               exclude_short_abandons=r.exclude_short_abandons, ring_cycle_s=r.ring_cycle_s,
                               answer_within_rings=r.answer_within_rings) for q in config.queues}


def report_spec(config: ServerConfig, *, start: float, end: float, period: Period, now: float) -> ReportSpec:
    """The spec of a report over ``[start, end)`` with the configured rules, targets and teams."""
    r = config.reports
    queue_targets: dict[str, Mapping[str, float]] = {}
    for q in config.queues:
        given = r.queue_targets[q.name].given() if q.name in r.queue_targets else {}
        queue_targets[q.name] = {"service_level": q.sl_target, **given}
    return ReportSpec(
        start=start, end=end, period=period, zone=config.node.zone, now=now, rules=_rules(config),
        default=QueueRules(ring_cycle_s=r.ring_cycle_s, answer_within_rings=r.answer_within_rings,
                           exclude_short_abandons=r.exclude_short_abandons),
        repeat_window_s=r.repeat_window_days * 86400.0, queue_targets=queue_targets,
        team_targets={t: v.given() for t, v in r.team_targets.items()},
        teams={a.id: a.team for a in config.agents if a.team}, queues=tuple(q.name for q in config.queues))


CHUNK_S = 2 * 3600.0  # in the server (start-up): one store read per 2 hours, the SQLite lock is never held long
PAGE_S = 86400.0  # in a report worker: one read per day of range


async def _legs(store: StoreOperations, start: float, end: float, chunk_s: float = CHUNK_S) -> list[QueueLeg]:
    legs: list[QueueLeg] = []
    cursor = start
    while cursor < end:
        legs += await store.queue_legs_between(cursor, min(cursor + chunk_s, end))
        cursor += chunk_s
    return legs


async def read_legs(store: StoreOperations, start: float, end: float) -> list[QueueLeg]:
    """Legs entered in ``[start, end)``, read a day at a time (report workers)."""
    return await _legs(store, start, end, PAGE_S)


async def _rows(store: StoreOperations, spec: ReportSpec) -> tuple[list[QueueLeg], list[AgentStateRow]]:
    legs = await _legs(store, spec.start - LOOKBACK_S, min(spec.end + spec.repeat_window_s, max(spec.now, spec.end)),
                       PAGE_S)
    return legs, await store.all_agent_states_between(spec.start, spec.end)


async def build_report(store: StoreOperations, spec: ReportSpec, kind: str) -> Report:
    """Read the rows and compute the report (in a worker thread).

    Raises:
        ReportInputError: an unknown ``kind``. StoreError: the store failed.
    """
    if kind not in KINDS:
        raise ReportInputError("kind", f"report kind must be one of {', '.join(KINDS)}, got {kind!r}")
    legs, states = await _rows(store, spec)
    build = queue_report if kind == "queues" else agent_report
    return await asyncio.to_thread(build, legs, states, spec)


async def today_counters(store: StoreOperations, config: ServerConfig, now: float, interval_s: float = 1800.0
                         ) -> dict[QueueId, tuple[IntervalCounters, IntervalCounters]]:
    """Each queue's counters for the site's current day and interval at ``now`` (epoch seconds), from the
    records: what the live statistics (acd/stats.py) would show had the node run all day (start-up)."""
    zone = config.node.zone
    calendar = SiteCalendar(zone=zone)
    day_start, _ = local_day_bounds(dt.datetime.fromtimestamp(now, zone).date(), zone)
    interval_start = calendar.interval_start(now, interval_s)
    legs = await _legs(store, day_start, now + 1.0)
    rules = _rules(config)
    out: dict[QueueId, tuple[IntervalCounters, IntervalCounters]] = {}
    for name, rule in rules.items():
        mine = [leg for leg in legs if leg.queue_id == name]
        recent = [leg for leg in mine if leg.t_enter_queue >= interval_start]
        out[QueueId(name)] = (queue_figures(mine, [], rule).counters, queue_figures(recent, [], rule).counters)
    return out
