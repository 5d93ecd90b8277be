"""The evaluation and appeal (申述) state machines (domain.md §4.2), as transition tables.

Evaluation::

    PUBLISHED ──acknowledge (agent)──► ACKNOWLEDGED
        │
        └──appeal (agent, within the window)──► APPEALED ──uphold──► CONFIRMED
                                                   ├──amend───► CORRECTED   (a new revision; the original stays)
                                                   ├──reject──► CONFIRMED
                                                   └──withdraw (agent)──► ACKNOWLEDGED
    CALIBRATION: a calibration score; never shown as the agent's score, never appealed.

Appeal::

    FILED ──uphold (reviewer: the score stands)──────────► UPHELD
          ├──amend (reviewer: corrected item points)──────► AMENDED
          ├──reject (reviewer: not admissible, reason)────► REJECTED
          └──withdraw (the agent who filed it)────────────► WITHDRAWN

:func:`decide_transition` is pure: a state, an action, who acts and the facts that matter in, the new states out
or ``StateError`` / ``ForbiddenError`` with the reason. Rules enforced here:

- only the evaluated agent files or withdraws, until ``deadline`` (:func:`appeal_deadline`: N working days after
  publication, Monday to Friday in the site's zone; no holiday calendar), with a reason, naming items of
  the evaluation, each item at most once over all of the evaluation's appeals;
- the reviewer is a supervisor (or the operator) who is neither the first evaluator nor the agent ("QA who scored
  may sit but not decide alone"); a reject needs a comment, an amend at least one corrected item.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from cti.qa.errors import ForbiddenError, QaError, StateError

__all__ = ["APPEAL_TABLE", "EVALUATION_TABLE", "Action", "Actor", "AppealState", "EvaluationState", "Facts",
           "appeal_deadline", "decide_transition"]


class EvaluationState(enum.Enum):
    PUBLISHED = "published"
    ACKNOWLEDGED = "acknowledged"
    APPEALED = "appealed"
    CONFIRMED = "confirmed"
    CORRECTED = "corrected"
    CALIBRATION = "calibration"


class AppealState(enum.Enum):
    NONE = "none"  # no appeal yet (the state before ``file``)
    FILED = "filed"
    UPHELD = "upheld"
    AMENDED = "amended"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Action(enum.Enum):
    ACKNOWLEDGE = "acknowledge"
    FILE = "file"
    UPHOLD = "uphold"
    AMEND = "amend"
    REJECT = "reject"
    WITHDRAW = "withdraw"


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    role: str  # agent | supervisor | operator
    subject: str


_E, _A = EvaluationState, AppealState
EVALUATION_TABLE: dict[tuple[EvaluationState, Action], EvaluationState] = {
    (_E.PUBLISHED, Action.ACKNOWLEDGE): _E.ACKNOWLEDGED,
    (_E.PUBLISHED, Action.FILE): _E.APPEALED,
    (_E.APPEALED, Action.UPHOLD): _E.CONFIRMED,
    (_E.APPEALED, Action.AMEND): _E.CORRECTED,
    (_E.APPEALED, Action.REJECT): _E.CONFIRMED,
    (_E.APPEALED, Action.WITHDRAW): _E.ACKNOWLEDGED,
}
APPEAL_TABLE: dict[tuple[AppealState, Action], AppealState] = {
    (_A.NONE, Action.ACKNOWLEDGE): _A.NONE,  # acknowledging without appealing
    (_A.NONE, Action.FILE): _A.FILED,
    (_A.FILED, Action.UPHOLD): _A.UPHELD,
    (_A.FILED, Action.AMEND): _A.AMENDED,
    (_A.FILED, Action.REJECT): _A.REJECTED,
    (_A.FILED, Action.WITHDRAW): _A.WITHDRAWN,
}
_AGENT_ACTIONS = frozenset({Action.ACKNOWLEDGE, Action.FILE, Action.WITHDRAW})
_REVIEW_ACTIONS = frozenset({Action.UPHOLD, Action.AMEND, Action.REJECT})


def appeal_deadline(published_at: float, zone: dt.tzinfo, working_days: int) -> float:
    """The end of the appeal window: the same local time of day ``working_days`` working days (Monday to Friday in
    ``zone``) after ``published_at``. Published on a Friday afternoon with 3 days: the next Wednesday afternoon."""
    local = dt.datetime.fromtimestamp(published_at, zone)
    day, counted = local.date(), 0
    while counted < working_days:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            counted += 1
    return dt.datetime.combine(day, local.timetz().replace(tzinfo=None), zone).timestamp()


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What a decision depends on besides the states."""

    agent_id: str
    evaluator: str
    published_at: float | None
    deadline: float | None  # the end of the appeal window (UTC epoch seconds)
    items: frozenset[str]  # the evaluation's item ids
    appealed_items: frozenset[str]  # items named by earlier appeals of this evaluation
    filed_by: str | None = None  # the open appeal's agent


def decide_transition(evaluation: EvaluationState, appeal: AppealState, action: Action, actor: Actor, facts: Facts,
                      *, now: float, reason: str = "", item_ids: Iterable[str] = (),
                      corrections: int = 0) -> tuple[EvaluationState, AppealState]:
    """The states after ``action``.

    Raises:
        ForbiddenError: qa.not_your_evaluation (an agent acting on another's), qa.reviewer_is_evaluator,
            qa.reviewer_is_agent, qa.forbidden (the role may not take this action).
        StateError: qa.bad_transition (the action is not allowed in these states), qa.appeal_window_closed.
        QaError (400): qa.reason_required, qa.bad_items (unknown items, or an item appealed before),
            qa.corrections_required.
    """
    if action in _AGENT_ACTIONS:
        if actor.role != "agent":
            raise ForbiddenError(f"only the evaluated agent may {action.value}")
        if actor.subject != facts.agent_id:
            raise ForbiddenError("this evaluation is another agent's", code="qa.not_your_evaluation")
    elif action in _REVIEW_ACTIONS:
        if actor.role not in ("supervisor", "operator"):
            raise ForbiddenError(f"only a supervisor may {action.value} an appeal")
        if actor.role == "supervisor" and actor.subject == facts.evaluator:
            raise ForbiddenError("the first evaluator may not decide an appeal of their own evaluation",
                                 code="qa.reviewer_is_evaluator")
        if actor.subject == facts.agent_id:
            raise ForbiddenError("the agent may not decide their own appeal", code="qa.reviewer_is_agent")
    e_next = EVALUATION_TABLE.get((evaluation, action))
    a_next = APPEAL_TABLE.get((appeal, action))
    if e_next is None or a_next is None:
        raise StateError(f"cannot {action.value}: the evaluation is {evaluation.value} and its appeal "
                         f"{appeal.value}", code="qa.bad_transition")
    match action:
        case Action.FILE:
            if facts.published_at is None or facts.deadline is None or now > facts.deadline:
                raise StateError("the appeal window is closed" + (
                    "" if facts.deadline is None else f" (it ended at UTC epoch {facts.deadline:.0f})"),
                    code="qa.appeal_window_closed")
            if not reason.strip():
                raise QaError("an appeal needs a reason", code="qa.reason_required")
            named = set(item_ids)
            unknown = sorted(named - facts.items)
            again = sorted(named & facts.appealed_items)
            if not named or unknown or again:
                why = ("name at least one item" if not named else
                       f"unknown items: {', '.join(unknown)}" if unknown else
                       f"items appealed before: {', '.join(again)}")
                raise QaError(why, code="qa.bad_items")
        case Action.REJECT:
            if not reason.strip():
                raise QaError("a rejection needs a reason", code="qa.reason_required")
        case Action.AMEND:
            if corrections < 1:
                raise QaError("an amendment corrects at least one item", code="qa.corrections_required")
        case Action.WITHDRAW:
            if facts.filed_by is not None and facts.filed_by != actor.subject:
                raise ForbiddenError("only the agent who filed the appeal may withdraw it")
        case Action.ACKNOWLEDGE | Action.UPHOLD:
            pass
    return e_next, a_next
