"""Known answers for the IVR figures (CDR classes, rates), the patience estimate (domain.md §2.3) and the replay
of a past day through the live statistics (its day boundaries and the <= T rule)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from acd import QueueConfig, QueueId, SlFormula
from cti.ids import CallId
from cti.reports import Period, ReportSpec, local_day_bounds
from cti.reports.ivr import classify, ivr_figures, ivr_report
from cti.reports.patience import estimate_patience
from cti.reports.replay import replay_day
from cti.store import CallRecord, HangupParty

from .legs import leg

ZONE = ZoneInfo("Asia/Shanghai")
START, END = local_day_bounds(dt.date(2026, 12, 5), ZONE)
NINE = START + 9 * 3600


def cdr(n: int, *, answered: bool = True, queued: bool = False, ended: float | None = 30.0,
        by: HangupParty | None = HangupParty.CALLER, reason: str | None = "caller-hangup", number: str = "100",
        at: float = NINE) -> CallRecord:
    return CallRecord(call_id=CallId(f"c{n}"), node="n", t_arrived=at, dialled_number=number,
                      t_ivr_answered=at + 1 if answered else None, t_queued=at + 11 if queued else None,
                      t_ivr_left=at + 11 if queued else None, t_ended=None if ended is None else at + ended,
                      hangup_by=by if ended is not None else None, end_reason=reason if ended is not None else None)


def test_each_cdr_falls_in_one_class_and_the_rates_use_the_ivr_answered_calls() -> None:
    calls = [cdr(1, answered=False, ended=5.0),  # rang out: never answered
             cdr(2, queued=True, by=HangupParty.AGENT, reason="agent-hangup"),  # asked for an agent
             cdr(3, ended=7.0), cdr(4, ended=9.0),  # hung up in the IVR: 6 s and 8 s in it
             cdr(5, by=HangupParty.SYSTEM, reason="ivr-ended"),  # the flow served it
             cdr(6, by=HangupParty.SYSTEM, reason="callback-requested"),
             cdr(7, by=HangupParty.SYSTEM, reason="transfer-unavailable"),
             cdr(8, ended=None)]  # still in the IVR
    assert [classify(c) for c in calls] == ["unanswered", "to_queue", "ivr_abandoned", "ivr_abandoned",
                                            "ivr_contained", "ivr_callbacks", "ivr_failed", "in_progress"]
    f = ivr_figures(calls)
    assert (f.offered, f.ivr_answered, f.to_queue, f.ivr_abandoned, f.ivr_contained) == (8, 7, 1, 2, 1)
    assert f.system_answer_rate == 7 / 8 and f.ivr_abandon_rate == 2 / 7 and f.containment_rate == 1 / 7
    assert f.queue_rate == 1 / 7
    assert f.avg_ivr_abandon_s == 7.0  # (6 + 8) / 2
    assert f.avg_ivr_s == pytest.approx((10 + 6 + 8 + 29 + 29 + 29) / 6)  # the queued call left after 10 s
    assert ivr_figures([]).system_answer_rate is None  # no call: null, never 0 or 100 %


def test_the_ivr_report_groups_by_number_with_its_flow_and_an_all_group() -> None:
    spec = ReportSpec(start=START, end=END, period=Period.MIN60, zone=ZONE, now=END)
    report = ivr_report([cdr(1), cdr(2, number="200", queued=True), cdr(3, at=START - 10)], spec,
                        {"100": "main", "300": "night"})
    totals = {r["group"]: r for r in report.rows if r["interval"] == "total"}
    assert list(totals) == ["100", "200", "300", "all"]
    assert totals["100"]["flow"] == "main" and totals["200"]["flow"] is None and totals["all"]["flow"] is None
    assert totals["all"]["figures"]["offered"] == 2  # the call of the day before is not in the range
    assert totals["300"]["figures"]["offered"] == 0 and totals["300"]["figures"]["system_answer_rate"] is None
    nine = next(r for r in report.rows if r["group"] == "100" and r["interval"] == "2026-12-05T09:00+08:00")
    assert nine["figures"]["ivr_abandoned"] == 1


def test_patience_is_the_total_wait_of_every_resolved_caller_over_the_abandons() -> None:
    legs = [leg("sales", at=NINE, answered=10.0), leg("sales", at=NINE, answered=30.0),
            leg("sales", at=NINE, abandoned=20.0), leg("sales", at=NINE, abandoned=40.0),
            leg("sales", at=NINE, flowout=60.0), leg("sales", at=NINE),  # still queued: left out
            leg("support", at=NINE, abandoned=500.0)]
    one = estimate_patience(legs, "sales")
    assert (one.legs, one.answered, one.abandoned, one.flowouts) == (5, 2, 2, 1)
    assert one.total_wait_s == 160.0 and one.patience_s == 80.0  # (10 + 30 + 20 + 40 + 60) / 2
    both = estimate_patience(legs)
    assert both.patience_s == pytest.approx(660 / 3)
    assert estimate_patience([leg("sales", at=NINE, answered=5.0)]).patience_s is None  # nobody gave up


def _queues() -> tuple[QueueConfig, ...]:
    return (QueueConfig(id=QueueId("sales"), sl_threshold_s=20.0, short_abandon_s=5.0,
                        sl_formula=SlFormula.ABANDONS_AFTER_T_NEGATIVE),)


def test_the_replay_counts_a_day_as_the_live_tally_did_at_its_end() -> None:
    legs = [leg("sales", at=NINE, answered=20.0),  # exactly T: met
            leg("sales", at=NINE + 60, answered=20.5),  # missed
            leg("sales", at=NINE + 120, abandoned=3.0),  # short
            leg("sales", at=NINE + 180, abandoned=30.0),  # after T: a miss
            leg("sales", at=START - 30, answered=60.0),  # yesterday's leg answered today: not today's
            leg("sales", at=END - 10, answered=25.0),  # still queued at midnight: the live day never counts it
            leg("sales", at=END + 5, answered=1.0),  # tomorrow
            leg("gone", at=NINE, answered=1.0)]  # a queue no longer configured
    (sales,) = replay_day(legs, _queues(), ZONE, START, END)
    assert (sales["queue"], sales["offered"], sales["answered"], sales["abandoned"]) == ("sales", 4, 2, 2)
    assert sales["service_level"] == pytest.approx(1 / 3)  # 1 met / (2 answered + 1 abandoned after T)
    assert sales["asa_seconds"] == 20.25 and sales["queued_at_day_end"] == 1
    assert sales["window_seconds"] == 86399  # the snapshot is the day's last instant
