"""Real-time queue statistics and the service-level formulas of domain spec §1.2.

* ``service_level`` implements the five ``SlFormula`` variants, the ``include_flowouts`` flag and
  the live (Cisco-style) rule: a call still waiting beyond T adds 1 to the denominator and 0 to
  the numerator. A zero denominator gives ``None`` (shown as "—"), never 0 or 100 %.
* ``QueueStats`` is the per-queue tally the router updates as it goes: calls in queue (ringing
  counts as queued, §1.3), longest wait, agents by state and by not-ready reason, and
  answered/abandoned/flow-out counters per interval (attribution by arrival or by event, §0).
* ``SiteCalendar`` maps the core's ``now`` to the site's local day and interval: "today" is the local day
  (it starts empty at local midnight), intervals start on local boundaries. A leg counts for the day and
  the interval of its attribution time (arrival by default), exactly as the reports do
  (``cti.reports``), so the live figures can be recomputed from the records. ``QueueStats.restore``
  seeds today's and the current interval's counters (rebuilt from the records at start-up).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import assert_never

from acd.agent import AgentState
from acd.config import Attribution, CallId, QueueConfig, QueueId, SlFormula

_EWMA_ALPHA = 0.1
_KEPT_INTERVALS = 96


@dataclass(frozen=True, slots=True, kw_only=True)
class IntervalCounters:
    """Outcome counters of one interval (names follow §1: ans_T, ab_T, ab_gtT, ab_short)."""

    answered: int = 0
    abandoned: int = 0
    flowouts: int = 0
    answered_in_t: int = 0
    abandoned_in_t: int = 0
    abandoned_after_t: int = 0
    abandoned_short: int = 0
    answered_wait_s: float = 0.0


@dataclass(frozen=True, slots=True)
class SiteCalendar:
    """The site's days and intervals for a core whose ``now`` is ``epoch seconds − offset``.

    ``offset`` is what turns a ``now`` into UTC epoch seconds (the node clock's offset; 0 when ``now``
    already is epoch seconds); ``zone`` is the site's time zone (config ``node.timezone``).
    """

    offset: float = 0.0
    zone: dt.tzinfo = field(default=dt.UTC)

    def _local(self, now: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(now + self.offset, self.zone)

    def day(self, now: float) -> int:
        """Ordinal of the local date holding ``now``."""
        return self._local(now).date().toordinal()

    def day_start(self, now: float) -> float:
        """The ``now`` of the local midnight that began the day holding ``now``."""
        local = self._local(now)
        midnight = dt.datetime.combine(local.date(), dt.time(), self.zone)
        return midnight.timestamp() - self.offset

    def interval(self, now: float, length_s: float) -> int:
        """Index of the local interval of ``length_s`` holding ``now`` (boundaries on local clock times)."""
        utc_offset = self._local(now).utcoffset() or dt.timedelta()
        return math.floor((now + self.offset + utc_offset.total_seconds()) / length_s)

    def interval_start(self, now: float, length_s: float) -> float:
        """The ``now`` at which the interval holding ``now`` began."""
        local = self._local(now)
        utc_offset = (local.utcoffset() or dt.timedelta()).total_seconds()
        return self.interval(now, length_s) * length_s - utc_offset - self.offset


class _Tally:
    __slots__ = ("answered", "abandoned", "flowouts", "answered_in_t", "abandoned_in_t", "abandoned_after_t",
                 "abandoned_short", "answered_wait_s")

    def __init__(self) -> None:
        self.answered = self.abandoned = self.flowouts = 0
        self.answered_in_t = self.abandoned_in_t = self.abandoned_after_t = self.abandoned_short = 0
        self.answered_wait_s = 0.0

    def freeze(self) -> IntervalCounters:
        return IntervalCounters(**{name: getattr(self, name) for name in self.__slots__})


def _thaw(counters: IntervalCounters) -> _Tally:
    tally = _Tally()
    for name in _Tally.__slots__:
        setattr(tally, name, getattr(counters, name))
    return tally


def service_level(
    counters: IntervalCounters, formula: SlFormula, *, include_flowouts: bool = False, waiting_over_t: int = 0
) -> float | None:
    """Service level in [0, 1] per ``formula``; ``None`` when the denominator is 0.

    ``waiting_over_t`` turns it into the live Cisco-style figure (calls still queued past T are misses).
    """
    c = counters
    match formula:
        case SlFormula.ANSWERED_ONLY:
            num, den = c.answered_in_t, c.answered
        case SlFormula.ABANDONS_NEGATIVE:
            num, den = c.answered_in_t, c.answered + c.abandoned
        case SlFormula.ABANDONS_AFTER_T_NEGATIVE:
            num, den = c.answered_in_t, c.answered + c.abandoned_after_t
        case SlFormula.ABANDONS_IN_T_POSITIVE:
            num, den = c.answered_in_t + c.abandoned_in_t, c.answered + c.abandoned
        case SlFormula.SHORT_ABANDON_POSITIVE:
            num, den = c.answered_in_t + c.abandoned_short, c.answered + c.abandoned
        case _:
            assert_never(formula)
    den += waiting_over_t + (c.flowouts if include_flowouts else 0)
    return num / den if den else None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueSnapshot:
    """What a wallboard shows for one queue at ``at`` (§1.9)."""

    queue_id: QueueId
    at: float
    waiting: int
    longest_wait_s: float
    waiting_over_t: int
    agents_by_state: Mapping[AgentState, int]
    paused_by_reason: Mapping[str, int]
    interval_start: float
    day_start: float  # the site's last local midnight (in the same time base as ``at``)
    interval: IntervalCounters
    today: IntervalCounters
    service_level: float | None
    live_service_level: float | None
    today_service_level: float | None
    asa_s: float | None
    abandon_rate: float | None


class QueueStats:
    """Live tally for one queue; the router feeds it, ``snapshot`` reads it."""

    __slots__ = ("config", "calendar", "waiting", "_intervals", "_today", "_day", "handle_s")

    def __init__(self, config: QueueConfig, calendar: SiteCalendar = SiteCalendar()) -> None:
        self.config = config
        self.calendar = calendar
        self.waiting: OrderedDict[CallId, float] = OrderedDict()  # enqueue order == time order
        self._intervals: dict[int, _Tally] = {}
        self._today = _Tally()
        self._day: int | None = None
        self.handle_s = config.default_handle_s

    def _roll(self, day: int) -> None:
        """Start a new "today" when the site's date has moved on (local midnight)."""
        if self._day is None or day > self._day:
            self._day = day
            self._today = _Tally()

    def _interval_tally(self, index: int) -> _Tally:
        tally = self._intervals.get(index)
        if tally is None:
            tally = self._intervals[index] = _Tally()
            if len(self._intervals) > _KEPT_INTERVALS:
                del self._intervals[min(self._intervals)]
        return tally

    def _tallies(self, enqueued: float, at: float) -> tuple[_Tally, ...]:
        stamp = enqueued if self.config.attribution is Attribution.ARRIVAL else at
        tally = self._interval_tally(self.calendar.interval(stamp, self.config.interval_s))
        day = self.calendar.day(stamp)
        self._roll(max(day, self.calendar.day(at)))
        # A leg attributed to an earlier day (entered before midnight, resolved after) is not today's.
        return (tally, self._today) if day == self._day else (tally,)

    def restore(self, now: float, today: IntervalCounters, interval: IntervalCounters | None = None) -> None:
        """Seed today's counters (and the current interval's) with figures rebuilt from the records; ``now``
        is the time they were computed for. Calls the router saw already are not in them (start-up only)."""
        self._day = self.calendar.day(now)
        self._today = _thaw(today)
        if interval is not None:
            self._intervals[self.calendar.interval(now, self.config.interval_s)] = _thaw(interval)

    def entered(self, call_id: CallId, at: float) -> None:
        """A call joined the queue."""
        self.waiting[call_id] = at

    def answered(self, call_id: CallId, enqueued: float, at: float) -> None:
        """The queue leg ended answered."""
        del self.waiting[call_id]
        wait = at - enqueued
        for t in self._tallies(enqueued, at):
            t.answered += 1
            t.answered_wait_s += wait
            if wait <= self.config.sl_threshold_s:
                t.answered_in_t += 1

    def abandoned(self, call_id: CallId, enqueued: float, at: float) -> None:
        """The queue leg ended abandoned."""
        del self.waiting[call_id]
        wait = at - enqueued
        for t in self._tallies(enqueued, at):
            t.abandoned += 1
            if wait <= self.config.sl_threshold_s:
                t.abandoned_in_t += 1
            else:
                t.abandoned_after_t += 1
            if wait < self.config.short_abandon_s:
                t.abandoned_short += 1

    def flowed_out(self, call_id: CallId, enqueued: float, at: float, *, queued: bool = True) -> None:
        """The queue leg ended by an exit (max wait, overflow, queue full...)."""
        if queued:
            del self.waiting[call_id]
        for t in self._tallies(enqueued, at):
            t.flowouts += 1

    def handled(self, handle_s: float) -> None:
        """Feed the handle-time average used for expected-wait estimates."""
        self.handle_s += _EWMA_ALPHA * (handle_s - self.handle_s)

    def snapshot(self, now: float, by_state: Mapping[AgentState, int], by_reason: Mapping[str, int]) -> QueueSnapshot:
        """Freeze the live figures at ``now``; ``by_state`` counts the queue's logged-in agents by
        state and ``by_reason`` the paused ones by reason (the matcher keeps both as agents move).
        Counting calls past T walks only those calls.
        """
        cfg = self.config
        longest = now - next(iter(self.waiting.values())) if self.waiting else 0.0
        over = 0
        limit = now - cfg.sl_threshold_s
        for enqueued in self.waiting.values():
            if enqueued >= limit:
                break
            over += 1
        index = self.calendar.interval(now, cfg.interval_s)
        interval = self._intervals.get(index, _Tally()).freeze()
        self._roll(self.calendar.day(now))
        today = self._today.freeze()
        sl_args = {"include_flowouts": cfg.include_flowouts}
        effective_abandons = today.abandoned - today.abandoned_short
        offered = today.answered + effective_abandons + today.flowouts
        return QueueSnapshot(
            queue_id=cfg.id, at=now, waiting=len(self.waiting), longest_wait_s=longest, waiting_over_t=over,
            agents_by_state=MappingProxyType(dict(by_state)), paused_by_reason=MappingProxyType(dict(by_reason)),
            interval_start=self.calendar.interval_start(now, cfg.interval_s),
            day_start=self.calendar.day_start(now), interval=interval, today=today,
            service_level=service_level(interval, cfg.sl_formula, **sl_args),
            live_service_level=service_level(interval, cfg.sl_formula, waiting_over_t=over, **sl_args),
            today_service_level=service_level(today, cfg.sl_formula, **sl_args),
            asa_s=today.answered_wait_s / today.answered if today.answered else None,
            abandon_rate=effective_abandons / offered if offered else None,
        )
