"""KPI reports from the records (domain.md §0–1; docs/reports.md).

Sans-I/O calculators over stored rows (queue legs, agent-state history) and a thin store layer:

- :mod:`cti.reports.calendar`: buckets of 15/30/60 minutes, days, weeks, months in the site's time zone;
- :mod:`cti.reports.queues`, :mod:`cti.reports.agents`: the figures of one group and bucket;
- :mod:`cti.reports.report`: every group × bucket with target gaps, JSON and CSV;
- :mod:`cti.reports.chart`: an interval chart as SVG;
- :mod:`cti.reports.fetch`: the rows a report needs from the store, and the report settings from config;
- :mod:`cti.reports.ivr`, :mod:`cti.reports.patience`, :mod:`cti.reports.replay`: IVR figures from the CDRs,
  the callers' patience from the legs (Erlang A), a past day's live figures replayed from its legs;
- :mod:`cti.reports.worker` (with :mod:`cti.reports.work`, :mod:`cti.reports.jobs`): the worker processes the
  report routes hand their jobs to, so no report runs on the server's event loop.
"""

from cti.reports.agents import AgentFigures, agent_figures, answered_rings, ring_times
from cti.reports.calendar import Bucket, Period, bucket_index, buckets, local_day_bounds, parse_period
from cti.reports.queues import LegMarks, QueueFigures, QueueRules, mark_legs, queue_figures, resolved_at
from cti.reports.report import TOTAL, Report, ReportSpec, agent_report, queue_report, rows_to_csv, to_csv
from cti.reports.targets import TARGET_KINDS, Direction, TargetGap, gaps

__all__ = [
    "TARGET_KINDS", "AgentFigures", "Bucket", "Direction", "LegMarks", "Period", "QueueFigures", "QueueRules",
    "Report", "ReportSpec", "TargetGap", "agent_figures", "agent_report", "answered_rings", "bucket_index",
    "buckets", "gaps", "local_day_bounds", "mark_legs", "parse_period", "queue_figures", "queue_report",
    "resolved_at", "ring_times", "rows_to_csv", "to_csv", "TOTAL",
]
