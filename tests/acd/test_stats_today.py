"""Live statistics pinned to known answers: SL at exactly T (<=), short abandons (<), "today" as the site's
local day (reset at local midnight, attribution by arrival) and seeding from the records at start-up."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from acd import Answer, CallId, Hangup, IntervalCounters, QueueId, SiteCalendar, SlFormula

from .conftest import Desk, queue

SHANGHAI = ZoneInfo("Asia/Shanghai")
# now = 0 is 2026-12-06 23:59:00 in Shanghai: the core's clock is monotonic, the offset makes it epoch time.
OFFSET = dt.datetime(2026, 12, 6, 23, 59, tzinfo=SHANGHAI).timestamp()
Q = QueueId("q")


def answer_after(d: Desk, call: str, wait: float) -> None:
    d.enqueue(call, "q")
    d.now += wait
    d.do(Answer(offer_id=d.offer().offer_id))
    d.do(Hangup(call_id=CallId(call)))


def test_answered_exactly_at_t_is_met_live() -> None:
    d = Desk(queue("q", sl_threshold_s=20.0, wrap_up_s=0.0, sl_formula=SlFormula.ANSWERED_ONLY))
    d.login("a", ["q"], ready=False)
    d.enqueue("at_t", "q")
    d.now = 20.0
    d.login("b", ["q"])  # answered after exactly T
    d.do(Answer(offer_id=d.offer().offer_id))
    snap = d.router.queue_stats(Q, 20.0)
    assert (snap.today.answered, snap.today.answered_in_t) == (1, 1)
    assert snap.today_service_level == 1.0 and snap.service_level == 1.0
    d.do(Hangup(call_id=CallId("at_t")))
    d.enqueue("late", "q")
    d.now = 40.5
    d.do(Answer(offer_id=d.offer().offer_id))  # 20.5 s: a miss
    snap = d.router.queue_stats(Q, 40.5)
    assert (snap.today.answered, snap.today.answered_in_t, snap.today_service_level) == (2, 1, 0.5)


def test_abandon_at_t_and_at_s_and_a_call_waiting_exactly_t() -> None:
    d = Desk(queue("q", sl_threshold_s=20.0, short_abandon_s=5.0))
    d.enqueue("s", "q")
    d.enqueue("t", "q")
    d.now = 5.0
    d.do(Hangup(call_id=CallId("s")))  # exactly S: not a short abandon (wait < S is)
    d.now = 20.0
    d.do(Hangup(call_id=CallId("t")))  # exactly T: within T
    today = d.router.queue_stats(Q, 20.0).today
    assert (today.abandoned, today.abandoned_short, today.abandoned_in_t, today.abandoned_after_t) == (2, 0, 2, 0)
    d.enqueue("w", "q")
    d.now = 40.0
    assert d.router.queue_stats(Q, 40.0).waiting_over_t == 0  # waited exactly T: not yet a miss
    d.now = 40.001
    assert d.router.queue_stats(Q, 40.001).waiting_over_t == 1


def test_today_resets_at_local_midnight_and_follows_arrival() -> None:
    d = Desk(queue("q", wrap_up_s=0.0), calendar=SiteCalendar(offset=OFFSET, zone=SHANGHAI))
    d.login("a", ["q"])
    answer_after(d, "before", 10.0)  # 23:59:00 -> 23:59:10
    assert d.router.queue_stats(Q, d.now).today.answered == 1
    d.now = 50.0
    answer_after(d, "across", 15.0)  # entered 23:59:50, answered 00:00:05: yesterday's call (arrival)
    snap = d.router.queue_stats(Q, d.now)
    assert snap.today.answered == 0 and snap.today_service_level is None and snap.asa_s is None
    assert snap.interval.answered == 0  # the 00:00 interval: nothing arrived in it yet
    answer_after(d, "after", 4.0)  # entered 00:00:05
    snap = d.router.queue_stats(Q, d.now)
    assert (snap.today.answered, snap.asa_s, snap.interval.answered) == (1, 4.0, 1)
    start = dt.datetime.fromtimestamp(snap.interval_start + OFFSET, SHANGHAI)
    assert start == dt.datetime(2026, 12, 7, 0, 0, tzinfo=SHANGHAI)


def test_a_snapshot_after_midnight_shows_an_empty_day() -> None:
    d = Desk(queue("q", wrap_up_s=0.0), calendar=SiteCalendar(offset=OFFSET, zone=SHANGHAI))
    d.login("a", ["q"])
    answer_after(d, "c", 10.0)
    assert d.router.queue_stats(Q, 59.0).today.answered == 1
    assert d.router.queue_stats(Q, 60.0).today.answered == 0  # 00:00:00 local


def test_intervals_start_on_local_boundaries_in_a_quarter_hour_zone() -> None:
    nepal = ZoneInfo("Asia/Kathmandu")  # UTC+05:45
    offset = dt.datetime(2026, 12, 7, 9, 10, tzinfo=nepal).timestamp()
    d = Desk(queue("q", interval_s=1800.0), calendar=SiteCalendar(offset=offset, zone=nepal))
    snap = d.router.queue_stats(Q, 0.0)
    assert dt.datetime.fromtimestamp(snap.interval_start + offset, nepal).time() == dt.time(9, 0)


def test_restored_counters_carry_on() -> None:
    d = Desk(queue("q", wrap_up_s=0.0), calendar=SiteCalendar(offset=OFFSET, zone=SHANGHAI))
    seeded = IntervalCounters(answered=3, answered_in_t=2, abandoned=1, abandoned_after_t=1, answered_wait_s=45.0)
    d.router.restore_stats(Q, 0.0, seeded, seeded)
    d.login("a", ["q"])
    answer_after(d, "next", 5.0)
    snap = d.router.queue_stats(Q, d.now)
    assert (snap.today.answered, snap.today.answered_in_t, snap.today.abandoned) == (4, 3, 1)
    assert snap.asa_s == 50.0 / 4
    assert snap.today_service_level == 3 / 5 and snap.interval.answered == 4
