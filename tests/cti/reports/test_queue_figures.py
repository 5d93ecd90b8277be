"""Queue KPIs from legs with known answers: every edge case of domain.md §1.2, §1.3–1.5, §1.7."""

from __future__ import annotations

import pytest

from acd import ExitReason, SlFormula
from cti.reports import QueueRules, mark_legs, queue_figures

from .legs import leg

RULES = QueueRules(sl_threshold_s=20.0, short_abandon_s=5.0)


def icmi_legs() -> list:  # type: ignore[type-arg]
    """domain.md §1.2's example: 1000 answered (860 <= T), 60 abandoned (20 <= T of which 10 < 5 s, 40 > T)."""
    legs = [leg(answered=10.0) for _ in range(860)] + [leg(answered=30.0) for _ in range(140)]
    legs += [leg(abandoned=2.0) for _ in range(10)] + [leg(abandoned=12.0) for _ in range(10)]
    legs += [leg(abandoned=45.0) for _ in range(40)]
    return legs


@pytest.mark.parametrize(("formula", "expected"), [
    (SlFormula.ANSWERED_ONLY, 860 / 1000),
    (SlFormula.ABANDONS_NEGATIVE, 860 / 1060),
    (SlFormula.ABANDONS_AFTER_T_NEGATIVE, 860 / 1040),
    (SlFormula.ABANDONS_IN_T_POSITIVE, 880 / 1060),
    (SlFormula.SHORT_ABANDON_POSITIVE, 870 / 1060),
])
def test_icmi_example_from_legs_in_all_five_variants(formula: SlFormula, expected: float) -> None:
    f = queue_figures(icmi_legs(), [], QueueRules(sl_formula=formula))
    assert f.service_level == pytest.approx(expected)
    assert f.service_levels[formula.value] == f.service_level
    assert round(100 * expected, 1) == {"answered_only": 86.0, "abandons_negative": 81.1,
                                        "abandons_after_t_negative": 82.7, "abandons_in_t_positive": 83.0,
                                        "short_abandon_positive": 82.1}[formula.value]
    assert (f.offered, f.answered, f.abandoned, f.abandoned_short, f.abandoned_effective) == (1060, 1000, 60, 10, 50)
    assert f.offered_effective == 1050
    assert f.abandon_rate == pytest.approx(50 / 1050) and f.abandon_rate_raw == pytest.approx(60 / 1060)
    assert f.answer_rate == pytest.approx(1000 / 1050)


def test_answered_exactly_at_t_is_met_and_just_after_is_missed() -> None:
    f = queue_figures([leg(answered=20.0), leg(answered=20.001)], [], RULES)
    assert (f.answered, f.answered_in_t) == (2, 1)
    assert f.service_level == 0.5


def test_abandoned_exactly_at_t_is_within_t() -> None:
    f = queue_figures([leg(answered=1.0), leg(abandoned=20.0)], [], RULES)
    assert (f.abandoned_in_t, f.abandoned_after_t) == (1, 0)
    assert f.service_level == 1.0  # ABANDONS_AFTER_T_NEGATIVE ignores it
    assert f.service_levels["abandons_negative"] == 0.5
    assert f.service_levels["abandons_in_t_positive"] == 1.0


@pytest.mark.parametrize("formula", list(SlFormula))
def test_zero_denominator_is_null_never_0_or_100(formula: SlFormula) -> None:
    f = queue_figures([], [], QueueRules(sl_formula=formula))
    assert f.service_level is None and all(v is None for v in f.service_levels.values())
    assert (f.asa_s, f.aht_s, f.answer_rate, f.abandon_rate, f.transfer_rate, f.repeat_rate, f.longest_wait_s) == (
        None, None, None, None, None, None, None)
    # abandons within T only: ANSWERED_ONLY and ABANDONS_AFTER_T_NEGATIVE have nothing to judge
    g = queue_figures([leg(abandoned=8.0)], [], QueueRules(sl_formula=formula))
    expected = {"answered_only": None, "abandons_after_t_negative": None, "abandons_negative": 0.0,
                "abandons_in_t_positive": 1.0, "short_abandon_positive": 0.0}[formula.value]
    assert g.service_level == expected
    assert g.asa_s is None  # ASA is over answered calls only


def test_short_abandons_are_separated_by_the_threshold() -> None:
    legs = [leg(abandoned=4.999), leg(abandoned=5.0), leg(answered=3.0), leg(answered=3.0)]
    f = queue_figures(legs, [], RULES)
    assert (f.abandoned, f.abandoned_short, f.abandoned_effective) == (2, 1, 1)  # wait < S is short; S is not
    assert (f.offered, f.offered_effective) == (4, 3)
    assert f.abandon_rate == pytest.approx(1 / 3)
    assert f.avg_abandon_s == 5.0  # short abandons excluded
    kept = queue_figures(legs, [], QueueRules(exclude_short_abandons=False))
    assert (kept.offered_effective, kept.abandon_rate) == (4, 0.5)


def test_callbacks_are_flowouts_and_join_the_denominator_when_asked() -> None:
    legs = [leg(answered=5.0), leg(answered=30.0), leg(flowout=60.0, reason=ExitReason.OVERFLOW_CALLBACK),
            leg(flowout=120.0, reason=ExitReason.MAX_WAIT)]
    f = queue_figures(legs, [], RULES)
    assert (f.offered, f.flowouts, f.callbacks) == (4, 2, 1)
    assert f.service_level == 0.5
    assert f.answer_rate + f.abandon_rate + f.flowout_rate == pytest.approx(1.0)  # type: ignore[operator]
    assert f.longest_wait_s == 30.0  # historical longest wait: answered and abandoned legs only
    g = queue_figures(legs, [], QueueRules(include_flowouts=True))
    assert g.service_level == 0.25


def test_transfers_count_per_queue() -> None:
    first = leg("sales", at=0.0, answered=10.0, call="t1", talk=60.0)
    second = leg("support", at=75.0, answered=30.0, call="t1", talk=100.0)
    other = leg("sales", at=5.0, answered=5.0, call="t2", talk=30.0)
    marks = mark_legs([first, second, other], repeat_window_s=7 * 86400, data_until=1e9)
    sales = queue_figures([first, other], [], RULES, marks)
    support = queue_figures([second], [], RULES, marks)
    assert (sales.answered, sales.transfers, sales.transfer_rate, sales.service_level) == (2, 1, 0.5, 1.0)
    assert (support.answered, support.transfers, support.service_level, support.asa_s) == (1, 0, 0.0, 30.0)


def test_aht_is_talk_plus_hold_plus_wrap_up_by_the_end_of_handling() -> None:
    a = leg(answered=10.0, talk=100.0, hold=20.0, acw=30.0)  # talk_s includes hold (acd.CallEnded)
    b = leg(answered=10.0, talk=200.0, hold=0.0, acw=0.0)
    f = queue_figures([a, b], [a, b], RULES)
    assert f.handled == 2
    assert f.aht_s == pytest.approx((130 + 200) / 2)
    assert f.att_s == pytest.approx((80 + 200) / 2)
    assert (f.avg_hold_s, f.avg_acw_s) == (10.0, 15.0)
    assert f.asa_s == 10.0
    assert queue_figures([a, b], [], RULES).aht_s is None  # no handling ended in this bucket


def test_repeat_contacts_within_the_window() -> None:
    day = 86400.0
    legs = [leg(at=0, answered=1, caller="+861", call="r1"), leg(at=3 * day, answered=1, caller="+861", call="r2"),
            leg(at=20 * day, answered=1, caller="+861", call="r3"),
            leg(at=0, answered=1, caller="+862", call="r4"),
            leg(at=0, answered=1, caller=None, call="anon1"), leg(at=1, answered=1, caller=None, call="anon2")]
    marks = mark_legs(legs, repeat_window_s=7 * day, data_until=22 * day)
    f = queue_figures(legs, [], RULES, marks)
    assert (f.contacts, f.repeat_contacts) == (4, 1)  # r1 (repeated by r2); anonymous callers excluded
    assert f.repeat_rate == 0.25
    assert f.repeat_provisional == 1  # r3's window is not over at day 22


def test_still_queued_legs_are_not_offered_yet() -> None:
    f = queue_figures([leg(), leg(answered=2.0)], [], RULES)
    assert (f.in_queue, f.offered, f.service_level) == (1, 1, 1.0)


def test_rules_refuse_a_short_abandon_threshold_over_t() -> None:
    with pytest.raises(ValueError, match="S <= T"):
        QueueRules(sl_threshold_s=5.0, short_abandon_s=10.0)
