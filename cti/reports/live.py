"""The live "today" figures and the records: rebuild them at start-up, and compare them (``cti kpi verify``).

- :func:`restore_live_stats` seeds the router's per-queue "today" and current-interval counters from the
  stored legs, so a restart does not start the day again at zero (acd/stats.py counts from then on);
- :func:`live_differences` compares the figures a ``queue.stats`` event shows for today with the same
  figures recomputed from the records (a day's ``total`` row of the queue report).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from acd import Router
from config.schema import ServerConfig
from cti.clock import NodeClock
from cti.reports.fetch import today_counters
from cti.store import StoreOperations

__all__ = ["LIVE_FIGURES", "Difference", "live_differences", "restore_live_stats"]

# queue.stats field -> (report figure, tolerance); the live event rounds ASA to milliseconds, the report
# rounds its figures to 6 decimals.
LIVE_FIGURES: Mapping[str, tuple[str, float]] = {
    "offered": ("offered", 0.0),
    "answered": ("answered", 0.0),
    "abandoned": ("abandoned", 0.0),
    "service_level": ("service_level", 5.000001e-7),
    "asa_seconds": ("asa_s", 0.0015),
}


async def restore_live_stats(router: Router, store: StoreOperations, config: ServerConfig, clock: NodeClock) -> int:
    """Seed every queue's live counters with today's records; returns the legs' count restored.

    Raises:
        StoreError: the store failed.
    """
    counters = await today_counters(store, config, clock.wall())
    now = clock.monotonic()
    restored = 0
    for queue, (today, interval) in counters.items():
        router.restore_stats(queue, now, today, interval)
        restored += today.answered + today.abandoned + today.flowouts
    return restored


@dataclass(frozen=True, slots=True)
class Difference:
    """One live figure that the records do not reproduce."""

    queue: str
    figure: str
    live: Any
    records: Any


def _differs(live: Any, recomputed: Any, tolerance: float) -> bool:
    if live is None or recomputed is None:
        return (live is None) != (recomputed is None)
    return not math.isclose(float(live), float(recomputed), rel_tol=0.0, abs_tol=tolerance)


def live_differences(live: Sequence[Mapping[str, Any]], report_rows: Sequence[Mapping[str, Any]]
                     ) -> list[Difference]:
    """Every live figure (``queue.stats`` data per queue) against the report's ``total`` rows of the day."""
    totals = {row["group"]: row["figures"] for row in report_rows if row["interval"] == "total"}
    out: list[Difference] = []
    for stats in live:
        queue = stats["queue"]
        figures = totals.get(queue)
        for field, (name, tolerance) in LIVE_FIGURES.items():
            recomputed = None if figures is None else figures.get(name)
            if figures is None and stats.get(field) in (0, None):
                continue  # a queue with no records and nothing live
            if _differs(stats.get(field), recomputed, tolerance):
                out.append(Difference(queue, field, stats.get(field), recomputed))
    return out
