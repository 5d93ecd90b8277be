"""IVR figures from the CDRs: calls offered to the node per dialled number (and its flow), IVR abandons and
IVR-contained calls (domain.md §1.1 ``ivr_abandoned``, §1.5 系统接通率). Pure: CDRs in, report rows out.

A CDR (``calls`` table) is attributed to the bucket holding its ``t_arrived``. Each call falls in exactly one
class:

- ``unanswered``: the IVR never answered it (``t_ivr_answered`` empty: the caller gave up while it rang, or the
  node refused it);
- ``to_queue``: it asked for an agent (``t_queued`` set); what happened in the queue is the queue report's;
- answered by the IVR and never queued, once ended:
  - ``ivr_abandoned``: the caller hung up in the IVR (``hangup_by = caller``); not a queue abandon (§1.1);
  - ``ivr_contained``: the flow ended the call itself (``ivr-hangup``/``ivr-ended``): served by the IVR alone;
  - ``ivr_callbacks``: the caller asked in the IVR to be called back (``callback-requested``);
  - ``ivr_failed``: anything else (a transfer or voicemail the node cannot reach, a refused enqueue, an error,
    a call a crash interrupted);
- ``in_progress``: neither queued nor ended yet.

Rates: ``system_answer_rate`` (系统接通率, §1.5 variant 2) = IVR-answered / offered; ``queue_rate`` =
to_queue / IVR-answered; ``ivr_abandon_rate``, ``containment_rate`` = ivr_abandoned, ivr_contained /
IVR-answered; ``avg_ivr_s`` = mean time from the IVR's answer to leaving it (queued or ended) over the calls
that left it; ``avg_ivr_abandon_s`` the same over IVR abandons. The node places no outbound calls (a transfer
to a number is refused: no outbound trunk), so there is no outbound figure to report.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cti.reports.calendar import bucket_index, buckets
from cti.reports.report import TOTAL, Report, ReportSpec
from cti.store import CallRecord, HangupParty

__all__ = ["ALL_NUMBERS", "IvrFigures", "classify", "ivr_figures", "ivr_report"]

ALL_NUMBERS = "all"  # the group of every dialled number
UNKNOWN_NUMBER = "(none)"  # a CDR without a dialled number
_CONTAINED = frozenset({"ivr-hangup", "ivr-ended"})
_CALLBACK = "callback-requested"
CLASSES = ("unanswered", "to_queue", "ivr_abandoned", "ivr_contained", "ivr_callbacks", "ivr_failed", "in_progress")


def classify(call: CallRecord) -> str:
    """The class of one CDR (module docstring)."""
    if call.t_ivr_answered is None:
        return "unanswered" if call.t_queued is None else "to_queue"
    if call.t_queued is not None:
        return "to_queue"
    if call.t_ended is None:
        return "in_progress"
    if call.hangup_by is HangupParty.CALLER:
        return "ivr_abandoned"
    if call.end_reason in _CONTAINED:
        return "ivr_contained"
    if call.end_reason == _CALLBACK:
        return "ivr_callbacks"
    return "ivr_failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrFigures:
    """The IVR figures of one group and bucket."""

    offered: int
    ivr_answered: int
    unanswered: int
    to_queue: int
    ivr_abandoned: int
    ivr_contained: int
    ivr_callbacks: int
    ivr_failed: int
    in_progress: int
    system_answer_rate: float | None
    queue_rate: float | None
    ivr_abandon_rate: float | None
    containment_rate: float | None
    avg_ivr_s: float | None
    avg_ivr_abandon_s: float | None


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _ivr_time(call: CallRecord) -> float | None:
    left = call.t_queued if call.t_queued is not None else call.t_ended
    if call.t_ivr_answered is None or left is None:
        return None
    return left - call.t_ivr_answered


def ivr_figures(calls: Sequence[CallRecord]) -> IvrFigures:
    """The figures of these CDRs (one group and bucket)."""
    counts = dict.fromkeys(CLASSES, 0)
    times: list[float] = []
    abandon_times: list[float] = []
    for call in calls:
        kind = classify(call)
        counts[kind] += 1
        spent = _ivr_time(call)
        if spent is not None:
            times.append(spent)
            if kind == "ivr_abandoned":
                abandon_times.append(spent)
    offered = len(calls)
    answered = offered - counts["unanswered"]
    return IvrFigures(
        offered=offered, ivr_answered=answered, **counts,
        system_answer_rate=_ratio(answered, offered), queue_rate=_ratio(counts["to_queue"], answered),
        ivr_abandon_rate=_ratio(counts["ivr_abandoned"], answered),
        containment_rate=_ratio(counts["ivr_contained"], answered),
        avg_ivr_s=_ratio(math.fsum(times), len(times)),
        avg_ivr_abandon_s=_ratio(math.fsum(abandon_times), len(abandon_times)))


def _json(figures: IvrFigures) -> dict[str, Any]:
    return {name: round(value, 6) if isinstance(value, float) else value
            for name, value in ((n, getattr(figures, n)) for n in IvrFigures.__dataclass_fields__)}


def ivr_report(calls: Iterable[CallRecord], spec: ReportSpec, flows: Mapping[str, str]) -> Report:
    """IVR figures per dialled number (``flows``: number -> flow name, from the trunks' config) and the
    ``all`` group, per bucket of the CDRs' arrival, with a ``total`` row per group."""
    spans = buckets(spec.start, spec.end, spec.period, spec.zone)
    starts = [b.start for b in spans]
    per: dict[str, list[list[CallRecord]]] = defaultdict(lambda: [[] for _ in spans])
    for call in calls:
        if not spec.start <= call.t_arrived < spec.end:
            continue
        i = bucket_index(starts, call.t_arrived)
        if i is None:
            continue
        per[call.dialled_number or UNKNOWN_NUMBER][i].append(call)
        per[ALL_NUMBERS][i].append(call)
    for number in flows:
        per[number]  # noqa: B018 - a configured number is reported even with no calls
    per[ALL_NUMBERS]  # noqa: B018
    rows: list[dict[str, Any]] = []
    for group in sorted(per, key=lambda g: (g == ALL_NUMBERS, g)):
        flow = None if group == ALL_NUMBERS else flows.get(group)
        parts = per[group]
        for b, part in zip(spans, parts, strict=True):
            rows.append({"group": group, "flow": flow, "interval": b.label, "start": b.start, "end": b.end,
                         "figures": _json(ivr_figures(part)), "targets": {}})
        rows.append({"group": group, "flow": flow, "interval": TOTAL, "start": spec.start, "end": spec.end,
                     "figures": _json(ivr_figures([c for part in parts for c in part])), "targets": {}})
    return Report(kind="ivr", spec=spec, rows=rows)
