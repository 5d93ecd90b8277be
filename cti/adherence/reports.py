"""Adherence reports (docs/adherence.md): per agent and site day, the key minority, log-in/log-out gaming. Pure.

- **Per agent per day** (the local day, config ``node.timezone``, of each shift's start): adherence adjusted
  (approved exceptions and tolerance applied) and raw (neither), conformance, IN/OUT/NEUTRAL seconds, the
  out-of-adherence segments longer than the tolerance (``exceptions``: what live alerts would raise) and the
  approved exceptions that applied.
- **Key minority** (SL cost). For each 30-minute interval *i*: ``missed_i`` = queue legs that entered in it and
  missed the service level (answered after the queue's threshold T, or abandoned after T; domain.md §1.2's
  negative outcomes); ``planned_i`` = the agent-seconds of PHONE every agent was scheduled for in it; ``out_ai`` =
  agent *a*'s counted out-of-adherence seconds during its scheduled PHONE time in it. The agent's SL cost is
  ``Σ_i missed_i × out_ai / planned_i`` missed calls: each missed call is shared out over the planned phone capacity,
  and the agents who were not there carry the missing share (the rest is the plan's or the volume's, never an
  agent's). The key minority is the fewest agents, costliest first, whose cost makes up ``key_minority_share``
  (0.8) of the agents' total cost.
- **Gaming**: a logged-in session (from leaving ``logged_out`` to the next ``logged_out``) of at most
  ``gaming_session_max_min`` minutes is short; an agent is flagged when at least ``gaming_repeats`` short sessions
  start within ``gaming_window_min`` minutes of the same local time of day (on any days of the range): a log-in
  around the shift start to look punctual, then out again, day after day.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from cti.adherence.calc import PRODUCTIVE_STATES, AdherenceSettings, ShiftResult, compute_shift, plan_boundaries
from cti.adherence.model import Activity, ApprovedException, ScheduleEntry, StateSpan
from cti.store import LegOutcome, QueueLeg

__all__ = ["ReportOptions", "adherence_report", "day_bounds", "gaming_flags", "key_minority"]

INTERVAL_S = 1800.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportOptions:
    zone: ZoneInfo
    conformance_window: str = "shift"
    key_minority_share: float = 0.8
    gaming_session_max_s: float = 600.0
    gaming_repeats: int = 3
    gaming_window_s: float = 900.0
    sl_thresholds: Mapping[str, float] = field(default_factory=dict)
    default_sl_threshold_s: float = 20.0


def day_bounds(first: dt.date, last: dt.date, zone: ZoneInfo) -> tuple[float, float]:
    """UTC epoch bounds of the local days ``first``..``last`` (inclusive)."""
    start = dt.datetime.combine(first, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start.timestamp(), end.timestamp()


def _local_day(ts: float, zone: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(ts, zone).date()


def _iso(ts: float | None, zone: ZoneInfo) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, zone).isoformat(timespec="seconds")


def _ratio(num: float, den: float) -> float | None:
    return None if den <= 0 else round(num / den, 6)


def _counted_spans(result: ShiftResult) -> list[tuple[float, float]]:
    """Where in time the counted OUT seconds of a shift lie (the tolerance forgives at the boundaries)."""
    return [span for seg in result.segments for span in seg.counted]


def adherence_report(*, first: dt.date, last: dt.date, entries: Sequence[ScheduleEntry],
                     exceptions: Sequence[ApprovedException], states: Mapping[str, Sequence[StateSpan]],
                     legs: Sequence[QueueLeg], settings: AdherenceSettings, options: ReportOptions) -> dict[str, Any]:
    """The report of the local days ``first``..``last`` (see the module docstring)."""
    zone = options.zone
    lo, hi = day_bounds(first, last, zone)
    rows: dict[tuple[str, dt.date], dict[str, Any]] = {}
    out_by_agent_interval: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    planned_by_interval: dict[int, float] = defaultdict(float)
    shifts = [e for e in entries if e.activity is Activity.SHIFT and lo <= e.start < hi]
    for shift in sorted(shifts, key=lambda e: (e.agent_id, e.start)):
        agent = shift.agent_id
        own = [e for e in entries if e.agent_id == agent]
        agent_states = states.get(agent, ())
        result = compute_shift(shift, own, agent_states, [x for x in exceptions if x.agent_id == agent], settings)
        day = _local_day(shift.start, zone)
        row = rows.setdefault((agent, day), {
            "agent_id": agent, "day": day.isoformat(), "shifts": 0, "in_s": 0.0, "out_s": 0.0, "neutral_s": 0.0,
            "raw_in_s": 0.0, "raw_out_s": 0.0, "scheduled_productive_s": 0.0, "productive_s": 0.0,
            "exceptions": 0, "approved_exceptions": 0, "segments": []})
        row["shifts"] += 1
        for key in ("in_s", "out_s", "neutral_s", "raw_in_s", "raw_out_s", "scheduled_productive_s",
                    "productive_s"):
            row[key] += getattr(result, key)
        for seg in result.segments:
            if seg.counted_s > 0 and seg.duration_s - seg.excused_s > settings.tolerance_s:
                row["exceptions"] += 1
            row["segments"].append({
                "start": _iso(seg.start, zone), "end": _iso(seg.end, zone), "minutes": round(seg.duration_s / 60, 2),
                "counted_minutes": round(seg.counted_s / 60, 2), "excused_minutes": round(seg.excused_s / 60, 2),
                "tolerated_minutes": round(seg.tolerated_s / 60, 2), "activity": seg.activity.value,
                "state": seg.state, "reason": seg.reason})
        row["approved_exceptions"] += sum(1 for x in exceptions if x.agent_id == agent and x.end > shift.start
                                          and x.start < shift.end)
        phone = [(a, b) for a, b, act in plan_boundaries(shift, own) if act is Activity.PHONE]
        for a, b in phone:
            _spread(planned_by_interval, a, b)
        for a, b in _counted_spans(result):
            for pa, pb in phone:
                x, y = max(a, pa), min(b, pb)
                if y > x:
                    _spread(out_by_agent_interval[agent], x, y)
    agents_out = []
    for (agent, day), row in sorted(rows.items()):
        if options.conformance_window == "day":  # productive time anywhere in the local day, not only in shifts
            d0, d1 = day_bounds(day, day, zone)
            row["productive_s"] = sum(min(s.end, d1) - max(s.start, d0) for s in states.get(agent, ())
                                      if s.state in PRODUCTIVE_STATES and s.end > d0 and s.start < d1)
        row["adherence"] = _ratio(row["in_s"], row["in_s"] + row["out_s"])
        row["raw_adherence"] = _ratio(row["raw_in_s"], row["raw_in_s"] + row["raw_out_s"])
        row["conformance"] = _ratio(row["productive_s"], row["scheduled_productive_s"])
        for key in ("in_s", "out_s", "neutral_s", "raw_in_s", "raw_out_s", "scheduled_productive_s",
                    "productive_s"):
            row[key] = round(row[key], 3)
        agents_out.append(row)
    missed = _missed_by_interval(legs, options, lo, hi)
    minority = key_minority(missed, planned_by_interval, out_by_agent_interval, options.key_minority_share)
    gaming = gaming_flags(states, options, lo, hi)
    return {"from": first.isoformat(), "to": last.isoformat(), "timezone": zone.key,
            "tolerance_minutes": settings.tolerance_s / 60, "tolerance_mode": settings.tolerance_mode.value,
            "conformance_window": options.conformance_window, "days": agents_out, "totals": _totals(agents_out),
            "key_minority": minority, "gaming": gaming}


def _totals(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    by_agent: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        for key in ("in_s", "out_s", "raw_in_s", "raw_out_s", "productive_s", "scheduled_productive_s",
                    "exceptions", "approved_exceptions"):
            by_agent[row["agent_id"]][key] += row[key]
    out = []
    for agent, t in sorted(by_agent.items()):
        out.append({"agent_id": agent, "adherence": _ratio(t["in_s"], t["in_s"] + t["out_s"]),
                    "raw_adherence": _ratio(t["raw_in_s"], t["raw_in_s"] + t["raw_out_s"]),
                    "conformance": _ratio(t["productive_s"], t["scheduled_productive_s"]),
                    "exceptions": int(t["exceptions"]), "approved_exceptions": int(t["approved_exceptions"]),
                    "out_s": round(t["out_s"], 3)})
    return out


def _spread(into: dict[int, float], a: float, b: float) -> None:
    """Add the seconds of ``[a, b)`` to the 30-minute intervals they fall in (keyed by interval start // 1800)."""
    while a < b:
        index = int(a // INTERVAL_S)
        end = min(b, (index + 1) * INTERVAL_S)
        into[index] += end - a
        a = end


def _missed_by_interval(legs: Sequence[QueueLeg], options: ReportOptions, lo: float,
                        hi: float) -> dict[int, int]:
    missed: dict[int, int] = defaultdict(int)
    for leg in legs:
        if not lo <= leg.t_enter_queue < hi or leg.wait_s is None:
            continue
        threshold = options.sl_thresholds.get(leg.queue_id, options.default_sl_threshold_s)
        if leg.outcome in (LegOutcome.ANSWERED, LegOutcome.ABANDONED) and leg.wait_s > threshold:
            missed[int(leg.t_enter_queue // INTERVAL_S)] += 1
    return missed


def key_minority(missed: Mapping[int, int], planned: Mapping[int, float],
                 out: Mapping[str, Mapping[int, float]], share: float) -> dict[str, Any]:
    """Each agent's SL cost in missed calls and the key minority (see the module docstring)."""
    costs: dict[str, float] = {}
    for agent, per_interval in out.items():
        cost = sum(missed.get(i, 0) * seconds / planned[i] for i, seconds in per_interval.items()
                   if planned.get(i, 0) > 0)
        if cost > 0:
            costs[agent] = cost
    ranked = sorted(costs.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(costs.values())
    minority: list[str] = []
    running = 0.0
    for agent, cost in ranked:
        if total <= 0 or running >= share * total - 1e-9:
            break
        minority.append(agent)
        running += cost
    return {"missed_calls": sum(missed.values()), "attributed_calls": round(total, 3), "share": share,
            "agents": [{"agent_id": a, "sl_cost_calls": round(c, 3),
                        "share_of_cost": round(c / total, 4) if total else None} for a, c in ranked],
            "minority": minority}


def _sessions(states: Sequence[StateSpan]) -> list[tuple[float, float]]:
    sessions: list[tuple[float, float]] = []
    start: float | None = None
    for span in sorted(states, key=lambda s: s.start):
        if span.state == "logged_out":
            if start is not None:
                sessions.append((start, span.start))
                start = None
        elif start is None:
            start = span.start
    return sessions


def gaming_flags(states: Mapping[str, Sequence[StateSpan]], options: ReportOptions, lo: float,
                 hi: float) -> list[dict[str, Any]]:
    """Agents with repeated short sessions starting around the same time of day (see the module docstring)."""
    flags = []
    for agent in sorted(states):
        short = [(a, b) for a, b in _sessions(states[agent])
                 if lo <= a < hi and b - a <= options.gaming_session_max_s]
        if len(short) < options.gaming_repeats:
            continue
        tod = [(_seconds_of_day(a, options.zone), a, b) for a, b in short]
        best: list[tuple[float, float, float]] = []
        for center, _a, _b in tod:
            near = [x for x in tod if _circular(x[0], center) <= options.gaming_window_s]
            if len(near) > len(best):
                best = near
        if len(best) >= options.gaming_repeats:
            flags.append({"agent_id": agent, "short_sessions": len(short), "repeats": len(best),
                          "sessions": [{"login": _iso(a, options.zone), "logout": _iso(b, options.zone),
                                        "minutes": round((b - a) / 60, 2)} for _, a, b in sorted(best,
                                                                                                 key=lambda x: x[1])]})
    return flags


def _seconds_of_day(ts: float, zone: ZoneInfo) -> float:
    local = dt.datetime.fromtimestamp(ts, zone)
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


def _circular(a: float, b: float) -> float:
    d = abs(a - b) % 86400
    return min(d, 86400 - d)
