"""The evaluation and appeal (申述) state machines (domain.md §4.2), as transition tables.

Evaluation::

    PUBLISHED ──acknowledge (agent)──► ACKNOWLEDGED
        │
        └──file (agent, within the window)──► APPEALED ──(the appeal ends)──► CONFIRMED  (upheld, refused)
                                                                          ├──► CORRECTED  (overturned, partial:
                                                                          │                a new revision)
                                                                          └──► ACKNOWLEDGED (withdrawn)
    PUBLISHED, ACKNOWLEDGED, CONFIRMED, CORRECTED ──finalise (the node, once the filing window has closed)──► FINAL
    CALIBRATION: a calibration score; never shown as the agent's score, never appealed.

FINAL means settled: nothing can change the score any more. An evaluation becomes FINAL at the first moment the
filing window has closed and no appeal is open — at the window's close when it was not appealed (acknowledged or
not, or its appeal was withdrawn, refused or decided within the window), or at the end of its appeal when that
comes after the window (:func:`finalisable`). Score reports count FINAL evaluations; the others are provisional.

Appeal::

    FILED ──refuse (team leader, reason)──► REJECTED_BY_LEADER   [terminal; its items may not be appealed again]
      │
      └──admit (team leader)──► ACCEPTED_BY_LEADER ──opinion──► UNDER_REVIEW ──opinion (the 3rd)──► UPHELD
                                                                    │                          ├──► OVERTURNED
                                                                    │                          └──► PARTIAL
                                                                    └──decide (supervisor seat, after the
                                                                               decision deadline)──► (same)
    FILED, ACCEPTED_BY_LEADER, UNDER_REVIEW ──withdraw (the agent who filed)──► WITHDRAWN

The panel has three seats (docs/qa.md "Appeals"): the **leader** (the supervisor of the agent's team, or the
operator, who admitted the appeal), the **evaluator** (the supervisor who scored; it sits but never decides
alone) and the **supervisor** (any other supervisor who may see the evaluation, or the operator). Each seat records
one :class:`Opinion`. :func:`panel_decision` is the rule: once the three opinions are in, a verdict shared by two
or three seats wins (for ``overturn``/``partial`` the proposed points must agree too); otherwise — a three-way
tie, or a majority that disagrees on points — the supervisor seat's opinion is the decision. Past the decision
deadline (:func:`working_days_after` of the admission, default 5 working days) the other seats may no longer
opine and the supervisor seat closes the appeal with the opinions recorded so far (:func:`overdue_decision`).

:func:`decide_transition` is pure: states, an action, who acts and the facts in; the new states (and the decision
if the action ends the appeal) out, or ``StateError`` / ``ForbiddenError`` / ``QaError`` with the reason.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from cti.qa.errors import ForbiddenError, QaError, StateError

__all__ = ["APPEAL_TABLE", "EVALUATION_OF_OUTCOME", "EVALUATION_TABLE", "OPEN_APPEAL_STATES", "Action", "Actor",
           "AppealState", "Decision", "EvaluationState", "Facts", "Opinion", "SETTLING_STATES", "Seat", "Transition",
           "Verdict", "appeal_deadline", "decide_transition", "finalisable", "overdue_decision", "panel_decision",
           "seat_of", "working_days_after"]


class EvaluationState(enum.Enum):
    PUBLISHED = "published"
    ACKNOWLEDGED = "acknowledged"
    APPEALED = "appealed"
    CONFIRMED = "confirmed"
    CORRECTED = "corrected"
    CALIBRATION = "calibration"
    FINAL = "final"


class AppealState(enum.Enum):
    NONE = "none"  # no open appeal (the state before ``file``)
    FILED = "filed"
    REJECTED_BY_LEADER = "rejected_by_leader"
    ACCEPTED_BY_LEADER = "accepted_by_leader"
    UNDER_REVIEW = "under_review"
    UPHELD = "upheld"
    OVERTURNED = "overturned"
    PARTIAL = "partial"
    WITHDRAWN = "withdrawn"


OPEN_APPEAL_STATES = frozenset({AppealState.FILED, AppealState.ACCEPTED_BY_LEADER, AppealState.UNDER_REVIEW})


class Action(enum.Enum):
    ACKNOWLEDGE = "acknowledge"
    FILE = "file"
    WITHDRAW = "withdraw"
    ADMIT = "admit"
    REFUSE = "refuse"
    OPINE = "opinion"
    DECIDE = "decide"
    FINALISE = "finalise"  # the node, never a person (role ``system``)


class Verdict(enum.Enum):
    UPHOLD = "uphold"
    OVERTURN = "overturn"
    PARTIAL = "partial"


class Seat(enum.Enum):
    LEADER = "leader"
    EVALUATOR = "evaluator"
    SUPERVISOR = "supervisor"


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    role: str  # agent | supervisor | operator | system (the node's own steps: finalise)
    subject: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Opinion:
    """One panel member's view: a verdict, the proposed answers of appealed items (item id to a scorecard answer,
    e.g. ``{"points": 8}``; none for ``uphold``) and a comment."""

    seat: Seat
    member: str
    verdict: Verdict
    points: Mapping[str, Any] = field(default_factory=dict)
    comment: str = ""

    def key(self) -> tuple[str, str]:
        """What two opinions must share to count as the same vote."""
        if self.verdict is Verdict.UPHOLD:
            return (self.verdict.value, "")
        return (self.verdict.value, json.dumps(dict(self.points), sort_keys=True))

    def to_json(self) -> dict[str, Any]:
        return {"seat": self.seat.value, "member": self.member, "verdict": self.verdict.value,
                "points": dict(self.points), "comment": self.comment}


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    outcome: AppealState  # UPHELD | OVERTURNED | PARTIAL
    rule: str  # majority | casting (the supervisor seat decided) | overdue
    points: Mapping[str, Any]  # the corrections of a new revision (empty when upheld)


_OUTCOME = {Verdict.UPHOLD: AppealState.UPHELD, Verdict.OVERTURN: AppealState.OVERTURNED,
            Verdict.PARTIAL: AppealState.PARTIAL}


def _decision(opinion: Opinion, rule: str) -> Decision:
    return Decision(outcome=_OUTCOME[opinion.verdict], rule=rule,
                    points={} if opinion.verdict is Verdict.UPHOLD else dict(opinion.points))


def panel_decision(opinions: Iterable[Opinion]) -> Decision | None:
    """The decision of a full panel (None until the three seats have opined): the majority of 3, else the
    supervisor seat's opinion."""
    by_seat = {o.seat: o for o in opinions}
    if len(by_seat) < len(Seat):
        return None
    (key, n), = Counter(o.key() for o in by_seat.values()).most_common(1)
    if n >= 2:
        return _decision(next(o for o in by_seat.values() if o.key() == key), "majority")
    return _decision(by_seat[Seat.SUPERVISOR], "casting")


def overdue_decision(opinions: Iterable[Opinion]) -> Decision:
    """Past the deadline: two matching opinions among those recorded decide, else the supervisor seat's."""
    by_seat = {o.seat: o for o in opinions}
    (key, n), = Counter(o.key() for o in by_seat.values()).most_common(1)
    if n >= 2:
        return _decision(next(o for o in by_seat.values() if o.key() == key), "majority")
    return _decision(by_seat[Seat.SUPERVISOR], "overdue")


EVALUATION_OF_OUTCOME = {AppealState.UPHELD: EvaluationState.CONFIRMED,
                         AppealState.REJECTED_BY_LEADER: EvaluationState.CONFIRMED,
                         AppealState.OVERTURNED: EvaluationState.CORRECTED,
                         AppealState.PARTIAL: EvaluationState.CORRECTED,
                         AppealState.WITHDRAWN: EvaluationState.ACKNOWLEDGED}

_E, _A = EvaluationState, AppealState
EVALUATION_TABLE: dict[tuple[EvaluationState, Action], EvaluationState] = {
    (_E.PUBLISHED, Action.ACKNOWLEDGE): _E.ACKNOWLEDGED,
    (_E.PUBLISHED, Action.FILE): _E.APPEALED,
    (_E.APPEALED, Action.WITHDRAW): _E.ACKNOWLEDGED,
    (_E.APPEALED, Action.ADMIT): _E.APPEALED,
    (_E.APPEALED, Action.REFUSE): _E.CONFIRMED,
    (_E.APPEALED, Action.OPINE): _E.APPEALED,  # or the outcome's state (EVALUATION_OF_OUTCOME)
    (_E.APPEALED, Action.DECIDE): _E.APPEALED,
    (_E.PUBLISHED, Action.FINALISE): _E.FINAL,
    (_E.ACKNOWLEDGED, Action.FINALISE): _E.FINAL,
    (_E.CONFIRMED, Action.FINALISE): _E.FINAL,
    (_E.CORRECTED, Action.FINALISE): _E.FINAL,
}
SETTLING_STATES = frozenset(e for e, action in EVALUATION_TABLE if action is Action.FINALISE)
APPEAL_TABLE: dict[tuple[AppealState, Action], AppealState] = {
    (_A.NONE, Action.ACKNOWLEDGE): _A.NONE,  # acknowledging without appealing
    (_A.NONE, Action.FILE): _A.FILED,
    (_A.FILED, Action.REFUSE): _A.REJECTED_BY_LEADER,
    (_A.FILED, Action.ADMIT): _A.ACCEPTED_BY_LEADER,
    (_A.ACCEPTED_BY_LEADER, Action.OPINE): _A.UNDER_REVIEW,
    (_A.UNDER_REVIEW, Action.OPINE): _A.UNDER_REVIEW,  # or the decision's outcome
    (_A.UNDER_REVIEW, Action.DECIDE): _A.UNDER_REVIEW,  # replaced by the decision's outcome
    (_A.FILED, Action.WITHDRAW): _A.WITHDRAWN,
    (_A.ACCEPTED_BY_LEADER, Action.WITHDRAW): _A.WITHDRAWN,
    (_A.UNDER_REVIEW, Action.WITHDRAW): _A.WITHDRAWN,
    (_A.NONE, Action.FINALISE): _A.NONE,  # only with no open appeal
}
_AGENT_ACTIONS = frozenset({Action.ACKNOWLEDGE, Action.FILE, Action.WITHDRAW})
_LEADER_ACTIONS = frozenset({Action.ADMIT, Action.REFUSE})
_PANEL_ACTIONS = frozenset({Action.OPINE, Action.DECIDE})


def working_days_after(at: float, zone: dt.tzinfo, working_days: int,
                       holidays: AbstractSet[dt.date] = frozenset()) -> float:
    """The same local time of day ``working_days`` working days after ``at``: a working day is a Monday to Friday
    in ``zone`` that is not one of the site's ``holidays`` (local dates, config ``node.holidays``). From a Friday
    afternoon with 3 days: the next Wednesday afternoon (Thursday when that Monday is a holiday)."""
    local = dt.datetime.fromtimestamp(at, zone)
    day, counted = local.date(), 0
    while counted < working_days:
        day += dt.timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            counted += 1
    return dt.datetime.combine(day, local.timetz().replace(tzinfo=None), zone).timestamp()


def appeal_deadline(published_at: float, zone: dt.tzinfo, working_days: int,
                    holidays: AbstractSet[dt.date] = frozenset()) -> float:
    """The end of the filing window."""
    return working_days_after(published_at, zone, working_days, holidays)


def finalisable(state: EvaluationState, deadline: float | None, now: float) -> bool:
    """Whether an evaluation in ``state`` whose filing window ends at ``deadline`` is settled at ``now``: the
    window has closed and no appeal is open (the states :data:`SETTLING_STATES`)."""
    return state in SETTLING_STATES and deadline is not None and now > deadline


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What a decision depends on besides the states."""

    agent_id: str
    evaluator: str
    published_at: float | None
    deadline: float | None  # the end of the filing window (UTC epoch seconds)
    items: frozenset[str]  # the evaluation's item ids
    appealed_items: frozenset[str]  # items named by earlier appeals of this evaluation (any outcome)
    filed_by: str | None = None  # the open appeal's agent
    open_items: frozenset[str] = frozenset()  # the open appeal's items
    leaders: frozenset[str] = frozenset()  # the supervisors of the agent's team
    leader: str | None = None  # who admitted the open appeal
    decision_deadline: float | None = None
    opinions: tuple[Opinion, ...] = ()


def seat_of(actor: Actor, facts: Facts) -> Seat:
    """The panel seat ``actor`` takes. Raises: ForbiddenError (not a panel member)."""
    if actor.role not in ("supervisor", "operator"):
        raise ForbiddenError("only the panel (team leader, evaluator, a supervisor) may opine on an appeal")
    if actor.subject == facts.agent_id:
        raise ForbiddenError("the agent may not decide their own appeal", code="qa.reviewer_is_agent")
    if actor.subject == facts.leader:
        return Seat.LEADER
    if actor.subject == facts.evaluator:
        return Seat.EVALUATOR
    return Seat.SUPERVISOR


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    evaluation: EvaluationState
    appeal: AppealState
    seat: Seat | None = None  # the panel seat of an opinion or decision
    decision: Decision | None = None


def decide_transition(evaluation: EvaluationState, appeal: AppealState, action: Action, actor: Actor, facts: Facts,
                      *, now: float, reason: str = "", item_ids: Iterable[str] = (),
                      verdict: Verdict | None = None, points: Mapping[str, Any] | None = None) -> Transition:
    """The states after ``action`` (``reason`` is the appeal's reason, the refusal's reason or the opinion's
    comment).

    Raises:
        ForbiddenError: qa.not_your_evaluation, qa.not_team_leader, qa.leader_is_evaluator, qa.reviewer_is_agent,
            qa.seat_taken, qa.forbidden (the role may not take this action).
        StateError: qa.bad_transition, qa.appeal_window_closed, qa.decision_deadline_passed, qa.decision_not_due,
            qa.finalise_not_due (the filing window is still open).
        QaError (400): qa.reason_required, qa.bad_items, qa.bad_points.
    """
    if action in _AGENT_ACTIONS:
        if actor.role != "agent":
            raise ForbiddenError(f"only the evaluated agent may {action.value}")
        if actor.subject != facts.agent_id:
            raise ForbiddenError("this evaluation is another agent's", code="qa.not_your_evaluation")
    elif action in _LEADER_ACTIONS:
        if actor.role not in ("supervisor", "operator"):
            raise ForbiddenError(f"only the agent's team leader may {action.value} an appeal")
        if actor.role == "supervisor" and actor.subject not in facts.leaders:
            raise ForbiddenError("only a supervisor of the agent's team (or the operator) admits appeals",
                                 code="qa.not_team_leader")
        if actor.subject == facts.evaluator:
            raise ForbiddenError("the first evaluator may not admit an appeal of their own evaluation",
                                 code="qa.leader_is_evaluator")
    elif action is Action.FINALISE and actor.role != "system":
        raise ForbiddenError("the node finalises an evaluation when its filing window has closed; no one else may",
                             code="qa.forbidden")
    e_next = EVALUATION_TABLE.get((evaluation, action))
    a_next = APPEAL_TABLE.get((appeal, action))
    if e_next is None or a_next is None:
        raise StateError(f"cannot {action.value}: the evaluation is {evaluation.value} and its appeal "
                         f"{appeal.value}", code="qa.bad_transition")
    seat = seat_of(actor, facts) if action in _PANEL_ACTIONS else None
    decision: Decision | None = None
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
                       f"items appealed before (one appeal per item): {', '.join(again)}")
                raise QaError(why, code="qa.bad_items")
        case Action.REFUSE:
            if not reason.strip():
                raise QaError("a refusal needs a reason", code="qa.reason_required")
        case Action.WITHDRAW:
            if facts.filed_by is not None and facts.filed_by != actor.subject:
                raise ForbiddenError("only the agent who filed the appeal may withdraw it")
        case Action.OPINE:
            assert seat is not None
            if any(o.seat is seat for o in facts.opinions):
                raise ForbiddenError(f"the {seat.value} seat has given its opinion", code="qa.seat_taken")
            overdue = facts.decision_deadline is not None and now > facts.decision_deadline
            if overdue and seat is not Seat.SUPERVISOR:
                raise StateError("the decision deadline has passed: the supervisor seat decides now",
                                 code="qa.decision_deadline_passed")
            opinion = _opinion(seat, actor, verdict, points or {}, reason, facts)
            opinions = (*facts.opinions, opinion)
            decision = overdue_decision(opinions) if overdue else panel_decision(opinions)
        case Action.DECIDE:
            if seat is not Seat.SUPERVISOR or not any(o.seat is Seat.SUPERVISOR for o in facts.opinions):
                raise ForbiddenError("only the supervisor seat, having given its opinion, closes an overdue appeal",
                                     code="qa.forbidden")
            if facts.decision_deadline is None or now <= facts.decision_deadline:
                raise StateError("the decision deadline has not passed: the panel decides by majority",
                                 code="qa.decision_not_due")
            decision = overdue_decision(facts.opinions)
        case Action.FINALISE:
            if not finalisable(evaluation, facts.deadline, now):
                raise StateError("the filing window is still open" + (
                    "" if facts.deadline is None else f" (it ends at UTC epoch {facts.deadline:.0f})"),
                    code="qa.finalise_not_due")
        case Action.ACKNOWLEDGE | Action.ADMIT:
            pass
    if decision is not None:
        a_next, e_next = decision.outcome, EVALUATION_OF_OUTCOME[decision.outcome]
    return Transition(evaluation=e_next, appeal=a_next, seat=seat, decision=decision)


def _opinion(seat: Seat, actor: Actor, verdict: Verdict | None, points: Mapping[str, Any], comment: str,
             facts: Facts) -> Opinion:
    if verdict is None:
        raise QaError("an opinion needs a verdict: uphold, overturn or partial", code="qa.bad_points")
    if verdict is Verdict.UPHOLD and points:
        raise QaError("an uphold proposes no points", code="qa.bad_points")
    if verdict is not Verdict.UPHOLD:
        outside = sorted(set(points) - facts.open_items)
        if not points or outside:
            raise QaError("propose new points for at least one appealed item" if not points else
                          f"not items of this appeal: {', '.join(outside)}", code="qa.bad_points")
    return Opinion(seat=seat, member=actor.subject, verdict=verdict, points=dict(points), comment=comment)
