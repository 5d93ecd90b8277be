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
from cti.reports.fetch import build_report
from cti.reports.report import Report, to_csv
from cti.reports.work import ReportJob, ReportOutput
from cti.store import Store

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


JOBS: dict[str, Callable[[Store, ReportJob], Coroutine[Any, Any, ReportOutput]]] = {
    "queues": _figures,
    "agents": _figures,
}
