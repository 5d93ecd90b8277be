"""Whole reports: every group (queue, or agent and team) × every bucket, with targets. Pure.

:func:`queue_report` and :func:`agent_report` take the rows the store returned (``cti.reports.fetch``
picks them) and return a :class:`Report`: a list of rows, one per group and bucket plus one total per group
over the whole range, each with its figures and its target gaps. :func:`to_csv` flattens it.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from acd import Attribution
from cti.reports.agents import agent_figures, ring_times
from cti.reports.calendar import Bucket, Period, bucket_index, buckets
from cti.reports.queues import QueueRules, handling_ended, mark_legs, queue_figures, resolved_at
from cti.reports.targets import gaps
from cti.store import AgentStateRow, LegOutcome, QueueLeg

__all__ = ["TOTAL", "Report", "ReportSpec", "agent_report", "iso", "queue_report", "rows_to_csv", "to_csv"]

TOTAL = "total"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportSpec:
    """What to report: the range, the buckets, the site's zone, the rules and targets."""

    start: float
    end: float
    period: Period
    zone: ZoneInfo
    now: float
    rules: Mapping[str, QueueRules] = field(default_factory=dict)  # per queue; missing ones use ``default``
    default: QueueRules = QueueRules()
    attribution: Attribution = Attribution.ARRIVAL
    repeat_window_s: float = 7 * 86400.0
    queue_targets: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    team_targets: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    teams: Mapping[str, str] = field(default_factory=dict)  # agent -> team
    queues: Sequence[str] = ()  # groups reported even with no legs (the configured queues)

    def rules_of(self, queue: str) -> QueueRules:
        return self.rules.get(queue, self.default)


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """A report: its header and one row per group and bucket (``interval`` = ``total`` for the whole range)."""

    kind: str
    spec: ReportSpec
    rows: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        s = self.spec
        return {"kind": self.kind, "from": iso(s.start, s.zone), "to": iso(s.end, s.zone),
                "timezone": s.zone.key, "interval": s.period.value, "attribution": s.attribution.value,
                "generated_at": iso(s.now, s.zone), "rows": self.rows}


def iso(ts: float, zone: ZoneInfo) -> str:
    """``ts`` as local ISO time of ``zone``, to the second."""
    return dt.datetime.fromtimestamp(ts, zone).isoformat(timespec="seconds")


def _figures_json(figures: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _field_names(type(figures)):
        value = getattr(figures, name)
        if isinstance(value, float):
            value = round(value, 6)
        elif isinstance(value, Mapping):
            value = {k: round(v, 6) if isinstance(v, float) else v for k, v in sorted(value.items())}
        out[name] = value
    return out


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(kind: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(kind))
    return names


def _spread(items: Iterable[QueueLeg], stamp: Callable[[QueueLeg], float | None], spans: Sequence[Bucket],
            start: float, end: float) -> tuple[list[list[QueueLeg]], list[QueueLeg]]:
    """Legs per bucket by ``stamp`` (those in ``[start, end)``), and all of them."""
    starts = [b.start for b in spans]
    per: list[list[QueueLeg]] = [[] for _ in spans]
    inside: list[QueueLeg] = []
    for leg in items:
        t = stamp(leg)
        if t is None or not start <= t < end:
            continue
        i = bucket_index(starts, t)
        if i is not None:
            per[i].append(leg)
            inside.append(leg)
    return per, inside


def _arrival_stamp(attribution: Attribution) -> Callable[[QueueLeg], float | None]:
    if attribution is Attribution.ARRIVAL:
        return lambda leg: leg.t_enter_queue
    return resolved_at


def queue_report(legs: Sequence[QueueLeg], states: Sequence[AgentStateRow], spec: ReportSpec) -> Report:
    """Queue figures per queue and bucket (domain.md §1.1–1.5, §1.7).

    ``legs``: every leg entered from a day before ``start`` (for handling that ends in range) up to
    ``end`` + the repeat window; ``states``: agent-state rows around the range (ring times).
    """
    spans = buckets(spec.start, spec.end, spec.period, spec.zone)
    marks = mark_legs(legs, repeat_window_s=spec.repeat_window_s,
                      data_until=min(spec.now, spec.end + spec.repeat_window_s))
    by_agent: dict[str, list[AgentStateRow]] = defaultdict(list)
    for row in sorted(states, key=lambda r: (r.start, r.row_id)):
        by_agent[row.agent_id].append(row)
    marks = dataclasses.replace(marks, ring_s=ring_times(
        (leg for leg in legs if leg.outcome is LegOutcome.ANSWERED), by_agent))
    by_queue: dict[str, list[QueueLeg]] = defaultdict(list)
    for leg in legs:
        by_queue[leg.queue_id].append(leg)
    rows: list[dict[str, Any]] = []
    stamp = _arrival_stamp(spec.attribution)
    for queue in sorted(set(spec.queues) | set(by_queue)):
        rules = spec.rules_of(queue)
        targets = dict(spec.queue_targets.get(queue, {}))
        arrived, arrived_all = _spread(by_queue[queue], stamp, spans, spec.start, spec.end)
        ended, ended_all = _spread(by_queue[queue], handling_ended, spans, spec.start, spec.end)
        groups = [(b.label, b.start, b.end, arrived[i], ended[i]) for i, b in enumerate(spans)]
        groups.append((TOTAL, spec.start, spec.end, arrived_all, ended_all))
        empty: dict[str, Any] | None = None  # most buckets of a long range are empty: the same figures
        for label, b_start, b_end, a, e in groups:
            if a or e:
                figures = _figures_json(queue_figures(a, e, rules, marks))
            else:
                empty = empty or _figures_json(queue_figures(a, e, rules, marks))
                figures = dict(empty)
            rows.append({"group": queue, "interval": label, "start": b_start, "end": b_end,
                         "sl_formula": rules.sl_formula.value, "sl_threshold_s": rules.sl_threshold_s,
                         "figures": figures,
                         "targets": {k: g.to_json() for k, g in gaps(figures, targets).items()}})
    return Report(kind="queues", spec=spec, rows=rows)


def agent_report(legs: Sequence[QueueLeg], states: Sequence[AgentStateRow], spec: ReportSpec) -> Report:
    """Agent figures per agent, per team (``team:<name>``) and bucket (domain.md §1.4, §1.6)."""
    spans = buckets(spec.start, spec.end, spec.period, spec.zone)
    rows_of: dict[str, list[AgentStateRow]] = defaultdict(list)
    for row in states:
        rows_of[row.agent_id].append(row)
        team = spec.teams.get(row.agent_id)
        if team is not None:
            rows_of[f"team:{team}"].append(row)
    legs_of: dict[str, list[QueueLeg]] = defaultdict(list)
    for leg in legs:
        if leg.agent_id is None:
            continue
        legs_of[leg.agent_id].append(leg)
        team = spec.teams.get(leg.agent_id)
        if team is not None:
            legs_of[f"team:{team}"].append(leg)
    limit = spec.default.answer_within_rings * spec.default.ring_cycle_s
    rows: list[dict[str, Any]] = []
    for group in sorted(set(rows_of) | set(legs_of)):
        targets = dict(spec.team_targets.get(group[5:], {})) if group.startswith("team:") else {}
        answered, answered_all = _spread(legs_of[group], lambda leg: leg.t_answer, spans, spec.start, spec.end)
        ended, ended_all = _spread(legs_of[group], handling_ended, spans, spec.start, spec.end)
        state_rows = rows_of[group]
        per_bucket = _rows_per_bucket(state_rows, spans, spec.now)
        groups = [(b.label, b.start, b.end, per_bucket[i], answered[i], ended[i]) for i, b in enumerate(spans)]
        groups.append((TOTAL, spec.start, spec.end, state_rows, answered_all, ended_all))
        for label, b_start, b_end, r, a, e in groups:
            figures = _figures_json(agent_figures(r, a, e, b_start, b_end, spec.now, ring_limit_s=limit))
            rows.append({"group": group, "interval": label, "start": b_start, "end": b_end, "figures": figures,
                         "targets": {k: g.to_json() for k, g in gaps(figures, targets).items()}})
    return Report(kind="agents", spec=spec, rows=rows)


def _rows_per_bucket(rows: Sequence[AgentStateRow], spans: Sequence[Bucket], now: float
                     ) -> list[list[AgentStateRow]]:
    """The rows touching each bucket, ends included (a ring answered at a bucket's start pairs with the row
    that ended there); in the given order, so each bucket holds a contiguous run of each agent's rows."""
    starts = [b.start for b in spans]
    ends = [b.end for b in spans]
    per: list[list[AgentStateRow]] = [[] for _ in spans]
    for row in rows:
        row_end = now if row.end is None else row.end
        i = bisect.bisect_left(ends, row.start)
        while i < len(spans) and starts[i] <= row_end:
            per[i].append(row)
            i += 1
    return per


def to_csv(report: Report) -> str:
    """The report's rows as CSV (:func:`rows_to_csv`)."""
    return rows_to_csv(report.rows)


def rows_to_csv(report_rows: Iterable[Mapping[str, Any]]) -> str:
    """One line per row: group, interval, then every scalar figure (maps flattened as ``name.key``) and
    each target and gap (``target.<figure>``, ``gap.<figure>``)."""
    flat: list[dict[str, Any]] = []
    for row in report_rows:
        line: dict[str, Any] = {"group": row["group"], "interval": row["interval"]}
        if "flow" in row:  # IVR rows: the number's flow
            line["flow"] = row["flow"]
        for name, value in row["figures"].items():
            if isinstance(value, Mapping):
                for key, inner in value.items():
                    line[f"{name}.{key}"] = inner
            else:
                line[name] = value
        for name, gap in row["targets"].items():
            line[f"target.{name}"] = gap["target"]
            line[f"gap.{name}"] = gap["gap"]
        flat.append(line)
    columns: list[str] = []
    for line in flat:
        columns.extend(k for k in line if k not in columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for line in flat:
        writer.writerow({k: "" if v is None else v for k, v in line.items()})
    return out.getvalue()
