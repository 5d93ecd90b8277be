"""A past day's live figures, rebuilt by replaying its stored legs through the live statistics. Pure.

The live "today" figures of ``queue.stats`` (acd/stats.py ``QueueStats``) exist for the site's current day
only: at local midnight they start again. ``cti kpi verify --date D`` for an earlier day compares the report
of D with what the live statistics showed at the end of D, and that is rebuilt here: every leg that entered
a queue from a day before D's start up to D's end is fed to a fresh ``QueueStats`` of its queue as the router
feeds it (``entered``, then ``answered`` / ``abandoned`` / ``flowed_out`` at its resolution time, all events
in time order, events after D's end left out), and the snapshot at the last instant of D is shaped by the
same function as the live event (``queue_stats_data``).

So the comparison runs the live counting code (day roll-over, attribution, the ≤ T and < S tests in their
incremental form) against the report's calculators on the day's real rows. What it cannot see: a restart
in the middle of D (the live day was then seeded from the records), and a call still queued when D ended
(the live figures of D never count it; the report of D does once it resolved). The latter are counted and
shown as ``queued_at_day_end``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from acd import CallId, QueueConfig, QueueStats, SiteCalendar
from cti.events.publish import queue_stats_data
from cti.store import LegOutcome, QueueLeg

__all__ = ["replay_day"]

_LAST_INSTANT_S = 1e-6  # the snapshot is taken this long before the day's end


def replay_day(legs: Iterable[QueueLeg], queues: Sequence[QueueConfig], zone: dt.tzinfo, day_start: float,
               day_end: float) -> list[dict[str, Any]]:
    """The ``queue.stats`` data of each queue as the live statistics had it at the end of ``[day_start,
    day_end)``, plus ``queued_at_day_end`` (legs of the day still waiting then). ``legs``: every leg that
    entered from a day before ``day_start`` to ``day_end``; legs of unconfigured queues are left out."""
    calendar = SiteCalendar(zone=zone)
    stats: Mapping[str, QueueStats] = {q.id: QueueStats(q, calendar) for q in queues}
    events: list[tuple[float, int, QueueLeg]] = []
    for leg in legs:
        if leg.queue_id not in stats or leg.t_enter_queue >= day_end:
            continue
        events.append((leg.t_enter_queue, 0, leg))
        resolved = leg.t_answer if leg.t_answer is not None else (
            leg.t_abandon if leg.t_abandon is not None else leg.t_flowout)
        if resolved is not None and resolved < day_end:
            events.append((resolved, 1, leg))
    events.sort(key=lambda e: (e[0], e[1], e[2].leg_id))
    for at, step, leg in events:
        tally = stats[leg.queue_id]
        call = CallId(leg.leg_id)  # one waiting entry per leg
        if step == 0:
            tally.entered(call, at)
            continue
        match leg.outcome:
            case LegOutcome.ANSWERED:
                tally.answered(call, leg.t_enter_queue, at)
            case LegOutcome.ABANDONED:
                tally.abandoned(call, leg.t_enter_queue, at)
            case LegOutcome.FLOWOUT:
                tally.flowed_out(call, leg.t_enter_queue, at)
            case LegOutcome.IN_QUEUE:  # pragma: no cover - an unresolved leg has no resolution event
                pass
    end = day_end - _LAST_INSTANT_S
    out = []
    for queue in sorted(stats):
        tally = stats[queue]
        waiting = sum(1 for enqueued in tally.waiting.values() if enqueued >= day_start)
        data = queue_stats_data(tally.snapshot(end, {}, {}), 0)
        out.append({**data, "queued_at_day_end": waiting})
    return out
