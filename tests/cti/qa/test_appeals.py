"""The evaluation and appeal state machines: every state x action, including the forbidden ones (pure)."""

from __future__ import annotations

import itertools

import pytest

from cti.qa import ForbiddenError, QaError, StateError
from cti.qa.appeals import (
    APPEAL_TABLE,
    EVALUATION_OF_OUTCOME,
    EVALUATION_TABLE,
    SETTLING_STATES,
    Action,
    Actor,
    AppealState,
    EvaluationState,
    Facts,
    Opinion,
    Seat,
    Transition,
    Verdict,
    decide_transition,
    finalisable,
    overdue_decision,
    panel_decision,
    working_days_after,
)

DEADLINE = 1000.0 + 3 * 86400
DECISION_DEADLINE = 10_000.0
AGENT, OTHER_AGENT = Actor(role="agent", subject="1001"), Actor(role="agent", subject="1002")
EVALUATOR, LEADER = Actor(role="supervisor", subject="sup1"), Actor(role="supervisor", subject="lead")
SUPERVISOR, OTHER_SUP = Actor(role="supervisor", subject="sup2"), Actor(role="supervisor", subject="sup3")
OPERATOR = Actor(role="operator", subject="operator")
NODE = Actor(role="system", subject="node")


def _op(seat: Seat, verdict: Verdict, points: dict[str, object] | None = None, member: str = "") -> Opinion:
    return Opinion(seat=seat, member=member or seat.value, verdict=verdict, points=points or {})


UPHOLD_L, UPHOLD_E = _op(Seat.LEADER, Verdict.UPHOLD, member="lead"), _op(Seat.EVALUATOR, Verdict.UPHOLD,
                                                                         member="sup1")


def _facts(**kw: object) -> Facts:
    base: dict[str, object] = {
        "agent_id": "1001", "evaluator": "sup1", "published_at": 1000.0, "deadline": DEADLINE,
        "items": frozenset({"greet", "answer"}), "appealed_items": frozenset({"answer"}), "filed_by": "1001",
        "open_items": frozenset({"answer"}), "leaders": frozenset({"lead"}), "leader": "lead",
        "decision_deadline": DECISION_DEADLINE, "opinions": ()}
    return Facts(**(base | kw))  # type: ignore[arg-type]


def _actor(action: Action) -> Actor:
    return {Action.ADMIT: LEADER, Action.REFUSE: LEADER, Action.OPINE: SUPERVISOR,
            Action.DECIDE: SUPERVISOR, Action.FINALISE: NODE}.get(action, AGENT)


def _go(e: EvaluationState, a: AppealState, action: Action, actor: Actor | None = None, facts: Facts | None = None,
        **kw: object) -> Transition:
    args: dict[str, object] = {"now": 2000.0, "reason": "the tariff was right", "item_ids": ["greet"],
                               "verdict": Verdict.UPHOLD} | kw
    if facts is None:
        fresh = a is AppealState.NONE
        facts = _facts(appealed_items=frozenset() if fresh else frozenset({"answer"}),
                       leader=None if a in (AppealState.NONE, AppealState.FILED) else "lead",
                       # a DECIDE needs the supervisor seat's opinion and a passed deadline
                       opinions=(_op(Seat.SUPERVISOR, Verdict.UPHOLD, member="sup2"),) if action is Action.DECIDE
                       else ())
        if action is Action.DECIDE:
            args["now"] = DECISION_DEADLINE + 1
        if action is Action.FINALISE and "now" not in kw:
            args["now"] = DEADLINE + 1  # the filing window has closed
    return decide_transition(e, a, action, actor or _actor(action), facts, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("e", "a", "action"), list(itertools.product(EvaluationState, AppealState, Action)))
def test_every_state_and_action(e: EvaluationState, a: AppealState, action: Action) -> None:
    allowed = (e, action) in EVALUATION_TABLE and (a, action) in APPEAL_TABLE
    if allowed:
        t = _go(e, a, action)
        if t.decision is None:
            assert t.evaluation is EVALUATION_TABLE[(e, action)]
            assert t.appeal is APPEAL_TABLE[(a, action)]
        else:  # the overdue supervisor seat closes it alone with its uphold
            assert action is Action.DECIDE and t.appeal is AppealState.UPHELD
            assert t.evaluation is EvaluationState.CONFIRMED
    else:
        with pytest.raises(StateError) as refused:
            _go(e, a, action)
        assert refused.value.code == "qa.bad_transition"


def test_the_terminal_states_take_no_action() -> None:
    terminal = {AppealState.REJECTED_BY_LEADER, AppealState.UPHELD, AppealState.OVERTURNED, AppealState.PARTIAL,
                AppealState.WITHDRAWN}
    assert not {a for a, _ in APPEAL_TABLE} & terminal
    assert set(EVALUATION_OF_OUTCOME) == terminal


@pytest.mark.parametrize(("action", "a", "actor", "code"), [
    (Action.FILE, AppealState.NONE, OTHER_AGENT, "qa.not_your_evaluation"),
    (Action.FILE, AppealState.NONE, SUPERVISOR, "qa.forbidden"),
    (Action.ACKNOWLEDGE, AppealState.NONE, OTHER_AGENT, "qa.not_your_evaluation"),
    (Action.WITHDRAW, AppealState.FILED, LEADER, "qa.forbidden"),
    (Action.ADMIT, AppealState.FILED, AGENT, "qa.forbidden"),
    (Action.ADMIT, AppealState.FILED, SUPERVISOR, "qa.not_team_leader"),  # not a supervisor of the agent's team
    (Action.REFUSE, AppealState.FILED, SUPERVISOR, "qa.not_team_leader"),
    (Action.OPINE, AppealState.UNDER_REVIEW, AGENT, "qa.forbidden"),
    (Action.DECIDE, AppealState.UNDER_REVIEW, LEADER, "qa.forbidden"),  # only the supervisor seat
    (Action.DECIDE, AppealState.UNDER_REVIEW, EVALUATOR, "qa.forbidden"),
])
def test_roles(action: Action, a: AppealState, actor: Actor, code: str) -> None:
    e = EvaluationState.PUBLISHED if a is AppealState.NONE else EvaluationState.APPEALED
    with pytest.raises(ForbiddenError) as refused:
        _go(e, a, action, actor)
    assert refused.value.code == code and refused.value.status_hint == 403


def test_the_evaluator_may_not_admit_even_as_team_leader() -> None:
    for action in (Action.ADMIT, Action.REFUSE):
        with pytest.raises(ForbiddenError) as refused:
            _go(EvaluationState.APPEALED, AppealState.FILED, action, EVALUATOR,
                _facts(leaders=frozenset({"sup1"}), leader=None))
        assert refused.value.code == "qa.leader_is_evaluator"
    t = _go(EvaluationState.APPEALED, AppealState.FILED, Action.ADMIT, OPERATOR, _facts(leader=None))
    assert t.appeal is AppealState.ACCEPTED_BY_LEADER


def test_a_refusal_is_terminal_and_needs_a_reason() -> None:
    with pytest.raises(QaError) as refused:
        _go(EvaluationState.APPEALED, AppealState.FILED, Action.REFUSE, reason=" ")
    assert refused.value.code == "qa.reason_required"
    t = _go(EvaluationState.APPEALED, AppealState.FILED, Action.REFUSE, reason="the recording proves the score")
    assert (t.evaluation, t.appeal) == (EvaluationState.CONFIRMED,
                                                                AppealState.REJECTED_BY_LEADER)
    with pytest.raises(QaError) as again:  # the same item may not be appealed again
        _go(EvaluationState.PUBLISHED, AppealState.NONE, Action.FILE, facts=_facts(), item_ids=["answer"])
    assert again.value.code == "qa.bad_items" and "one appeal per item" in str(again.value)


@pytest.mark.parametrize(("action", "kw", "code"), [
    (Action.FILE, {"now": DEADLINE + 1}, "qa.appeal_window_closed"),
    (Action.FILE, {"reason": "  "}, "qa.reason_required"),
    (Action.FILE, {"item_ids": []}, "qa.bad_items"),
    (Action.FILE, {"item_ids": ["nope"]}, "qa.bad_items"),
    (Action.OPINE, {"verdict": None}, "qa.bad_points"),
    (Action.OPINE, {"verdict": Verdict.UPHOLD, "points": {"answer": {"points": 8}}}, "qa.bad_points"),
    (Action.OPINE, {"verdict": Verdict.OVERTURN, "points": {}}, "qa.bad_points"),
    (Action.OPINE, {"verdict": Verdict.PARTIAL, "points": {"greet": {"points": 5}}}, "qa.bad_points"),  # not appealed
])
def test_conditions(action: Action, kw: dict[str, object], code: str) -> None:
    e = EvaluationState.PUBLISHED if action is Action.FILE else EvaluationState.APPEALED
    a = AppealState.NONE if action is Action.FILE else AppealState.UNDER_REVIEW
    with pytest.raises(QaError) as refused:
        _go(e, a, action, **kw)
    assert refused.value.code == code


def test_the_agent_may_not_sit_and_a_seat_opines_once() -> None:
    with pytest.raises(ForbiddenError) as refused:
        _go(EvaluationState.APPEALED, AppealState.UNDER_REVIEW, Action.OPINE, Actor(role="operator", subject="1001"))
    assert refused.value.code == "qa.reviewer_is_agent"
    taken = _facts(opinions=(_op(Seat.SUPERVISOR, Verdict.UPHOLD, member="sup2"),))
    with pytest.raises(ForbiddenError) as twice:  # another supervisor cannot take the supervisor seat again
        _go(EvaluationState.APPEALED, AppealState.UNDER_REVIEW, Action.OPINE, OTHER_SUP, taken)
    assert twice.value.code == "qa.seat_taken"


O8, O9 = {"answer": {"points": 8}}, {"answer": {"points": 9}}


@pytest.mark.parametrize(("opinions", "outcome", "rule", "points"), [
    # a majority of three
    ([(Seat.LEADER, Verdict.UPHOLD, {}), (Seat.EVALUATOR, Verdict.UPHOLD, {}), (Seat.SUPERVISOR, Verdict.OVERTURN, O8)],
     AppealState.UPHELD, "majority", {}),
    ([(Seat.LEADER, Verdict.OVERTURN, O8), (Seat.EVALUATOR, Verdict.UPHOLD, {}),
      (Seat.SUPERVISOR, Verdict.OVERTURN, O8)], AppealState.OVERTURNED, "majority", O8),
    ([(Seat.LEADER, Verdict.PARTIAL, O8), (Seat.EVALUATOR, Verdict.PARTIAL, O8), (Seat.SUPERVISOR, Verdict.UPHOLD, {})],
     AppealState.PARTIAL, "majority", O8),  # the supervisor is outvoted
    ([(Seat.LEADER, Verdict.OVERTURN, O9), (Seat.EVALUATOR, Verdict.OVERTURN, O9),
      (Seat.SUPERVISOR, Verdict.OVERTURN, O9)], AppealState.OVERTURNED, "majority", O9),
    # a three-way tie: the supervisor casts the final
    ([(Seat.LEADER, Verdict.OVERTURN, O9), (Seat.EVALUATOR, Verdict.UPHOLD, {}),
      (Seat.SUPERVISOR, Verdict.PARTIAL, O8)], AppealState.PARTIAL, "casting", O8),
    # partial disagreement: two partials with different points
    ([(Seat.LEADER, Verdict.PARTIAL, O9), (Seat.EVALUATOR, Verdict.UPHOLD, {}),
      (Seat.SUPERVISOR, Verdict.PARTIAL, O8)], AppealState.PARTIAL, "casting", O8),
    ([(Seat.LEADER, Verdict.PARTIAL, O9), (Seat.EVALUATOR, Verdict.PARTIAL, O8),
      (Seat.SUPERVISOR, Verdict.UPHOLD, {})], AppealState.UPHELD, "casting", {}),
])
def test_the_decision_rule(opinions: list[tuple[Seat, Verdict, dict[str, object]]], outcome: AppealState, rule: str,
                           points: dict[str, object]) -> None:
    ops = [_op(seat, verdict, p) for seat, verdict, p in opinions]
    assert panel_decision(ops[:2]) is None  # no decision before the third opinion
    decision = panel_decision(ops)
    assert decision is not None and (decision.outcome, decision.rule, dict(decision.points)) == (outcome, rule,
                                                                                                  points)
    # the third opinion, through the machine, ends the appeal with that decision
    last = ops[2]
    actor = {Seat.LEADER: LEADER, Seat.EVALUATOR: EVALUATOR, Seat.SUPERVISOR: SUPERVISOR}[last.seat]
    t = _go(EvaluationState.APPEALED, AppealState.UNDER_REVIEW, Action.OPINE, actor,
            _facts(opinions=tuple(ops[:2])), verdict=last.verdict, points=dict(last.points))
    assert t.appeal is outcome and t.evaluation is EVALUATION_OF_OUTCOME[outcome]


def test_the_evaluator_does_not_decide_alone() -> None:
    # the evaluator's overturn alone, or against two upholds, changes nothing; and it never casts
    ops = [_op(Seat.EVALUATOR, Verdict.OVERTURN, O8), _op(Seat.LEADER, Verdict.UPHOLD),
           _op(Seat.SUPERVISOR, Verdict.UPHOLD)]
    assert panel_decision(ops) is not None and panel_decision(ops).outcome is AppealState.UPHELD  # type: ignore[union-attr]
    tie = [_op(Seat.EVALUATOR, Verdict.OVERTURN, O8), _op(Seat.LEADER, Verdict.PARTIAL, O9),
           _op(Seat.SUPERVISOR, Verdict.UPHOLD)]
    assert panel_decision(tie).outcome is AppealState.UPHELD  # type: ignore[union-attr]


def test_the_decision_deadline() -> None:
    late = DECISION_DEADLINE + 1
    one = _facts(opinions=(_op(Seat.EVALUATOR, Verdict.OVERTURN, O8, member="sup1"),))
    # before the deadline the supervisor seat cannot close it
    with pytest.raises(StateError) as early:
        _go(EvaluationState.APPEALED, AppealState.UNDER_REVIEW, Action.DECIDE, SUPERVISOR,
            _facts(opinions=(_op(Seat.SUPERVISOR, Verdict.UPHOLD, member="sup2"),)), now=DECISION_DEADLINE)
    assert early.value.code == "qa.decision_not_due"
    # after it, the leader and the evaluator may no longer opine
    for actor in (LEADER, EVALUATOR):
        f = _facts(opinions=()) if actor is EVALUATOR else one
        with pytest.raises(StateError) as refused:
            _go(EvaluationState.APPEALED, AppealState.UNDER_REVIEW, Action.OPINE, actor, f, now=late)
        assert refused.value.code == "qa.decision_deadline_passed"
    # the supervisor seat's opinion then closes it at once: alone it decides ("overdue")
    t = _go(EvaluationState.APPEALED, AppealState.UNDER_REVIEW, Action.OPINE, SUPERVISOR, one, now=late,
            verdict=Verdict.UPHOLD)
    assert t.appeal is AppealState.UPHELD and t.decision is not None and t.decision.rule == "overdue"
    # ...unless it agrees with an opinion recorded: then two of the seats make a majority
    t = _go(EvaluationState.APPEALED, AppealState.UNDER_REVIEW, Action.OPINE, SUPERVISOR, one, now=late,
            verdict=Verdict.OVERTURN, points=O8)
    assert t.appeal is AppealState.OVERTURNED and t.decision is not None and t.decision.rule == "majority"
    assert overdue_decision([_op(Seat.SUPERVISOR, Verdict.PARTIAL, O9)]).points == O9


def test_the_window_counts_working_days_in_the_site_zone() -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    from cti.qa import appeal_deadline

    shanghai = ZoneInfo("Asia/Shanghai")
    friday = dt.datetime(2026, 6, 5, 16, 30, tzinfo=shanghai).timestamp()
    assert appeal_deadline(friday, shanghai, 3) == dt.datetime(2026, 6, 10, 16, 30, tzinfo=shanghai).timestamp()
    monday = dt.datetime(2026, 6, 8, 9, 0, tzinfo=shanghai).timestamp()
    assert appeal_deadline(monday, shanghai, 3) == dt.datetime(2026, 6, 11, 9, 0, tzinfo=shanghai).timestamp()
    saturday = dt.datetime(2026, 6, 6, 12, 0, tzinfo=shanghai).timestamp()
    assert appeal_deadline(saturday, shanghai, 1) == dt.datetime(2026, 6, 8, 12, 0, tzinfo=shanghai).timestamp()


def test_final_is_terminal_and_only_the_node_finalises_after_the_window() -> None:
    assert not {action for e, action in EVALUATION_TABLE if e is EvaluationState.FINAL}
    assert {e for e, action in EVALUATION_TABLE if action is Action.FINALISE} == SETTLING_STATES == {
        EvaluationState.PUBLISHED, EvaluationState.ACKNOWLEDGED, EvaluationState.CONFIRMED,
        EvaluationState.CORRECTED}
    for state in SETTLING_STATES:
        with pytest.raises(StateError) as early:  # the window is open until DEADLINE
            _go(state, AppealState.NONE, Action.FINALISE, now=DEADLINE)
        assert early.value.code == "qa.finalise_not_due" and early.value.status_hint == 409
        assert _go(state, AppealState.NONE, Action.FINALISE, now=DEADLINE + 1).evaluation is EvaluationState.FINAL
        for person in (AGENT, LEADER, SUPERVISOR, OPERATOR):
            with pytest.raises(ForbiddenError) as refused:
                _go(state, AppealState.NONE, Action.FINALISE, person, now=DEADLINE + 1)
            assert refused.value.status_hint == 403
    for open_ in (AppealState.FILED, AppealState.ACCEPTED_BY_LEADER, AppealState.UNDER_REVIEW):
        with pytest.raises(StateError):  # never while an appeal is open
            _go(EvaluationState.APPEALED, open_, Action.FINALISE, now=DEADLINE + 1)
    assert not finalisable(EvaluationState.PUBLISHED, None, DEADLINE + 1)
    assert not finalisable(EvaluationState.APPEALED, DEADLINE, DEADLINE + 1)
    assert not finalisable(EvaluationState.CALIBRATION, DEADLINE, DEADLINE + 1)


def test_working_days_skip_the_site_holidays_and_weekends() -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    holidays = frozenset({dt.date(2026, 10, 1), dt.date(2026, 10, 2)})  # Thursday, Friday
    wednesday = dt.datetime(2026, 9, 30, 15, 0, tzinfo=shanghai).timestamp()
    # 3 working days from Wednesday 30 September: not Thu 1, Fri 2 (holidays), Sat 3, Sun 4: Mon 5, Tue 6, Wed 7
    assert working_days_after(wednesday, shanghai, 3, holidays) == dt.datetime(
        2026, 10, 7, 15, 0, tzinfo=shanghai).timestamp()
    assert working_days_after(wednesday, shanghai, 3) == dt.datetime(2026, 10, 5, 15, 0, tzinfo=shanghai).timestamp()
    holiday = dt.datetime(2026, 10, 1, 10, 0, tzinfo=shanghai).timestamp()  # published on a holiday
    assert working_days_after(holiday, shanghai, 1, holidays) == dt.datetime(
        2026, 10, 5, 10, 0, tzinfo=shanghai).timestamp()
