"""What a report worker computes for each kind of job (run in the worker process, :mod:`cti.reports.worker`).

Each job reads its rows from the store, runs the pure calculators and serialises the answer:

- ``queues``, ``agents``: :func:`cti.reports.fetch.build_report` as JSON, CSV or an SVG chart;
- ``ivr``: the IVR figures from the CDRs (:mod:`cti.reports.ivr`);
- ``replay``: a day's live figures rebuilt by replaying its legs through the live statistics
  (:mod:`cti.reports.replay`), for ``cti kpi verify --date`` on a past day;
- ``patience``: the callers' mean patience estimated from the legs (:mod:`cti.reports.patience`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from cti.reports.chart import render_svg
from cti.reports.fetch import LOOKBACK_S, PAGE_S, build_report, read_legs
from cti.reports.ivr import ivr_report
from cti.reports.patience import estimate_patience
from cti.reports.replay import replay_day
from cti.reports.report import Report, iso, to_csv
from cti.reports.work import ReportJob, ReportOutput
from cti.store import CallRecord, Store

__all__ = ["JOBS"]


def _serialise(report: Report, job: ReportJob) -> ReportOutput:
    if job.visible is not None:  # a supervisor: its own groups only
        report.rows[:] = [r for r in report.rows if r["group"] in job.visible]
    if job.fmt == "svg":
        return ReportOutput(200, "image/svg+xml", render_svg(report, job.figure or "", job.groups).encode())
    if job.fmt == "csv":
        return ReportOutput(200, "text/csv", to_csv(report).encode())
    return ReportOutput.json(report.to_json())


async def _figures(store: Store, job: ReportJob) -> ReportOutput:
    return _serialise(await build_report(store, job.spec, job.kind), job)


async def _ivr(store: Store, job: ReportJob) -> ReportOutput:
    calls: list[CallRecord] = []
    cursor = job.spec.start
    while cursor < job.spec.end:
        calls += await store.calls_between(cursor, min(cursor + PAGE_S, job.spec.end))
        cursor += PAGE_S
    return _serialise(ivr_report(calls, job.spec, job.options.get("flows", {})), job)


async def _replay(store: Store, job: ReportJob) -> ReportOutput:
    spec = job.spec
    legs = await read_legs(store, spec.start - LOOKBACK_S, spec.end)
    queues = replay_day(legs, job.options["queues"], spec.zone, spec.start, spec.end)
    return ReportOutput.json({"date": iso(spec.start, spec.zone)[:10], "timezone": spec.zone.key,
                              "source": "replay", "queues": queues})


async def _patience(store: Store, job: ReportJob) -> ReportOutput:
    spec = job.spec
    queue = job.options.get("queue")
    estimate = estimate_patience(await read_legs(store, spec.start, spec.end), queue)
    return ReportOutput.json({"from": iso(spec.start, spec.zone), "to": iso(spec.end, spec.zone),
                              "timezone": spec.zone.key, "queue": queue, **estimate.to_json()})


JOBS: dict[str, Callable[[Store, ReportJob], Coroutine[Any, Any, ReportOutput]]] = {
    "queues": _figures,
    "agents": _figures,
    "ivr": _ivr,
    "replay": _replay,
    "patience": _patience,
}
