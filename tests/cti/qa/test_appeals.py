"""The evaluation and appeal state machines: every state x action, including the forbidden ones (pure)."""

from __future__ import annotations

import itertools

import pytest

from cti.qa import ForbiddenError, QaError, StateError
from cti.qa.appeals import (
    APPEAL_TABLE,
    EVALUATION_TABLE,
    Action,
    Actor,
    AppealState,
    EvaluationState,
    Facts,
    decide_transition,
)

FACTS = Facts(agent_id="1001", evaluator="sup1", published_at=1000.0, deadline=1000.0 + 3 * 86400,
              items=frozenset({"greet", "answer"}), appealed_items=frozenset())
AGENT, OTHER_AGENT = Actor(role="agent", subject="1001"), Actor(role="agent", subject="1002")
EVALUATOR, REVIEWER = Actor(role="supervisor", subject="sup1"), Actor(role="supervisor", subject="sup2")


def _actor(action: Action) -> Actor:
    return AGENT if action in (Action.ACKNOWLEDGE, Action.FILE, Action.WITHDRAW) else REVIEWER


def _go(e: EvaluationState, a: AppealState, action: Action, actor: Actor | None = None, **kw: object
        ) -> tuple[EvaluationState, AppealState]:
    args: dict[str, object] = {"now": 2000.0, "reason": "the tariff was right", "item_ids": ["answer"],
                               "corrections": 1} | kw
    return decide_transition(e, a, action, actor or _actor(action), FACTS, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("e", "a", "action"), list(itertools.product(EvaluationState, AppealState, Action)))
def test_every_state_and_action(e: EvaluationState, a: AppealState, action: Action) -> None:
    allowed = (e, action) in EVALUATION_TABLE and (a, action) in APPEAL_TABLE
    if allowed:
        assert _go(e, a, action)[0] is EVALUATION_TABLE[(e, action)]
    else:
        with pytest.raises(StateError) as refused:
            _go(e, a, action)
        assert refused.value.code == "qa.bad_transition"


def test_the_first_evaluator_may_not_decide_the_appeal() -> None:
    for action in (Action.UPHOLD, Action.AMEND, Action.REJECT):
        with pytest.raises(ForbiddenError) as refused:
            _go(EvaluationState.APPEALED, AppealState.FILED, action, EVALUATOR)
        assert refused.value.code == "qa.reviewer_is_evaluator" and refused.value.status_hint == 403


@pytest.mark.parametrize(("action", "actor", "code"), [
    (Action.FILE, OTHER_AGENT, "qa.not_your_evaluation"),
    (Action.FILE, REVIEWER, "qa.forbidden"),
    (Action.UPHOLD, AGENT, "qa.forbidden"),
    (Action.ACKNOWLEDGE, OTHER_AGENT, "qa.not_your_evaluation"),
])
def test_roles(action: Action, actor: Actor, code: str) -> None:
    e = EvaluationState.APPEALED if action is Action.UPHOLD else EvaluationState.PUBLISHED
    a = AppealState.FILED if action is Action.UPHOLD else AppealState.NONE
    with pytest.raises(ForbiddenError) as refused:
        _go(e, a, action, actor)
    assert refused.value.code == code


@pytest.mark.parametrize(("action", "kw", "code"), [
    (Action.FILE, {"now": 1000.0 + 3 * 86400 + 1}, "qa.appeal_window_closed"),
    (Action.FILE, {"reason": "  "}, "qa.reason_required"),
    (Action.FILE, {"item_ids": []}, "qa.bad_items"),
    (Action.FILE, {"item_ids": ["nope"]}, "qa.bad_items"),
    (Action.REJECT, {"reason": ""}, "qa.reason_required"),
    (Action.AMEND, {"corrections": 0}, "qa.corrections_required"),
])
def test_conditions(action: Action, kw: dict[str, object], code: str) -> None:
    e = EvaluationState.PUBLISHED if action is Action.FILE else EvaluationState.APPEALED
    a = AppealState.NONE if action is Action.FILE else AppealState.FILED
    with pytest.raises(QaError) as refused:
        _go(e, a, action, **kw)
    assert refused.value.code == code


def test_an_item_is_appealed_at_most_once() -> None:
    facts = Facts(**{**{f: getattr(FACTS, f) for f in FACTS.__dataclass_fields__}, "appealed_items":
                     frozenset({"answer"})})
    with pytest.raises(QaError) as refused:
        decide_transition(EvaluationState.PUBLISHED, AppealState.NONE, Action.FILE, AGENT, facts, now=2000.0,
                          reason="again", item_ids=["answer"])
    assert refused.value.code == "qa.bad_items"


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
