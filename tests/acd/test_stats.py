"""Service-level formulas (domain spec §1.2, ICMI worked example) and live queue stats."""

from __future__ import annotations

import pytest

from acd import (
    Answer,
    CallId,
    ConfigurationError,
    Hangup,
    IntervalCounters,
    QueueConfig,
    QueueId,
    SlFormula,
    service_level,
)

from .conftest import Desk, queue

# 1000 answered, 60 abandoned, 860 answered <= T, 20 abandoned <= T, 40 abandoned > T, 10 abandoned < 5 s
ICMI = IntervalCounters(answered=1000, abandoned=60, answered_in_t=860, abandoned_in_t=20, abandoned_after_t=40,
                        abandoned_short=10)


@pytest.mark.parametrize(("formula", "expected"), [
    (SlFormula.ANSWERED_ONLY, 0.860),
    (SlFormula.ABANDONS_NEGATIVE, 0.811),
    (SlFormula.ABANDONS_AFTER_T_NEGATIVE, 0.827),
    (SlFormula.ABANDONS_IN_T_POSITIVE, 0.830),
    (SlFormula.SHORT_ABANDON_POSITIVE, 0.821),
])
def test_icmi_example(formula: SlFormula, expected: float) -> None:
    assert service_level(ICMI, formula) == pytest.approx(expected, abs=0.0005)


def test_flowouts_and_live_calls_join_the_denominator() -> None:
    c = IntervalCounters(answered=8, answered_in_t=6, flowouts=2)
    assert service_level(c, SlFormula.ANSWERED_ONLY) == 0.75
    assert service_level(c, SlFormula.ANSWERED_ONLY, include_flowouts=True) == 0.6
    assert service_level(c, SlFormula.ANSWERED_ONLY, waiting_over_t=4) == 0.5


@pytest.mark.parametrize("formula", list(SlFormula))
def test_zero_denominator_is_none(formula: SlFormula) -> None:
    assert service_level(IntervalCounters(), formula) is None


def test_short_abandon_threshold_must_not_exceed_t() -> None:
    with pytest.raises(ConfigurationError):
        QueueConfig(id=QueueId("q"), sl_threshold_s=5, short_abandon_s=10)


def test_live_queue_stats() -> None:
    d = Desk(queue("q", sl_threshold_s=20.0, short_abandon_s=5.0))
    d.enqueue("short", "q")
    d.now = 3
    d.do(Hangup(call_id=CallId("short")))  # short abandon
    d.enqueue("late", "q")
    d.now = 10
    d.enqueue("quick", "q")
    d.now = 30
    d.do(Hangup(call_id=CallId("late")))  # abandoned after T (27 s)
    d.enqueue("w1", "q")
    d.now = 40
    snap = d.router.queue_stats(QueueId("q"), 40)
    assert (snap.waiting, snap.longest_wait_s, snap.waiting_over_t) == (2, 30, 1)
    d.login("a", ["q"])
    d.do(Answer(offer_id=d.offer().offer_id))  # "quick" answered after 30 s: a miss
    snap = d.router.queue_stats(QueueId("q"), 40)
    i = snap.interval
    assert (i.answered, i.abandoned, i.abandoned_short, i.abandoned_after_t, i.answered_in_t) == (1, 2, 1, 1, 0)
    assert snap.service_level == 0.0  # ABANDONS_AFTER_T_NEGATIVE: 0 / (1 + 1)
    assert snap.live_service_level == 0.0
    assert snap.asa_s == 30
    assert snap.abandon_rate == pytest.approx(1 / 2)  # short abandon excluded from both sides
    assert snap.waiting == 1 and snap.longest_wait_s == 10


def test_interval_attribution_by_arrival() -> None:
    d = Desk(queue("q", interval_s=60.0))
    d.enqueue("c", "q")
    d.now = 70
    d.login("a", ["q"])
    d.do(Answer(offer_id=d.offer().offer_id))
    snap = d.router.queue_stats(QueueId("q"), 70)
    assert snap.interval_start == 60 and snap.interval.answered == 0  # counted in [0, 60)
    assert snap.today.answered == 1
