"""Forms, evaluations, calibration and appeals over the store (the asyncio side of :mod:`cti.qa.scoring` and
:mod:`cti.qa.appeals`).

Who may do what (docs/qa.md "Roles"): supervisors are the evaluators. A supervisor evaluates, sees and reviews
the recordings of its queues and of its teams' agents; the operator everything; an agent sees its own published
evaluations (never calibration scores), acknowledges or appeals them. Calibration is blind: a supervisor sees the
other calibration scores of a recording only once it has submitted its own.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from statistics import fmean
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from cti.ids import AgentId
from cti.qa.appeals import (
    OPEN_APPEAL_STATES,
    Action,
    Actor,
    AppealState,
    EvaluationState,
    Facts,
    Opinion,
    Verdict,
    appeal_deadline,
    decide_transition,
    finalisable,
    working_days_after,
)
from cti.qa.errors import ForbiddenError, NotFoundError, StateError
from cti.qa.finalise import FINALISE_EVERY_S, FINALISED, finalise, finalise_due, finalised_data, run_finaliser
from cti.qa.scoring import Form, calibration_report, parse_form, rescore, score
from cti.qa.service import QaService
from cti.qa.store import AppealRow, EvaluationRow, QaTx
from cti.store import RecordingSerial

__all__ = ["DEFAULT_APPEAL_WORKING_DAYS", "DEFAULT_CALIBRATION_TOLERANCE", "EvaluationService"]

log = structlog.get_logger("cti.qa")
DEFAULT_APPEAL_WORKING_DAYS = 3  # domain.md §6
DEFAULT_CALIBRATION_TOLERANCE = 5.0  # points on the 100 scale (domain.md §4.1)
DEFAULT_DECISION_WORKING_DAYS = 5  # domain.md §4.2


class EvaluationService:
    """QA forms, evaluations and appeals. An agent may appeal for ``appeal_working_days`` working days after
    publication (in the site's zone, ``qa.zone``, not counting the site's ``holidays``); ``calibration_tolerance``
    is the default of the report."""

    def __init__(self, qa: QaService, *, appeal_working_days: int = DEFAULT_APPEAL_WORKING_DAYS,
                 calibration_tolerance: float = DEFAULT_CALIBRATION_TOLERANCE,
                 decision_working_days: int = DEFAULT_DECISION_WORKING_DAYS,
                 holidays: AbstractSet[dt.date] = frozenset()) -> None:
        self.base = qa
        self.working_days = appeal_working_days
        self.decision_days = decision_working_days
        self.tolerance = calibration_tolerance
        self.holidays = frozenset(holidays)
        self.zone = ZoneInfo(qa.zone)

    def deadline(self, e: EvaluationRow) -> float | None:
        """When the appeal window of ``e`` ends (None: not published)."""
        return None if e.published_at is None else appeal_deadline(e.published_at, self.zone, self.working_days,
                                                                    self.holidays)

    # ------------------------------------------------------------------------------ access
    def may_see(self, actor: Actor, agent_id: str | None, queue_id: str | None) -> bool:
        """Whether ``actor`` may see a recording (and its evaluations) of ``agent_id`` in ``queue_id``."""
        if actor.role == "operator":
            return True
        if actor.role == "agent":
            return agent_id is not None and actor.subject == agent_id
        d = self.base.directory
        if actor.role != "supervisor" or d is None:
            return False
        queues, teams = d.supervisor_scope(actor.subject)
        team = d.agent_team(AgentId(agent_id)) if agent_id is not None else None
        return (queue_id is not None and queue_id in queues) or (team is not None and team in teams)

    def require_evaluator(self, actor: Actor) -> None:
        """Raises: ForbiddenError (not a supervisor nor the operator)."""
        if actor.role not in ("supervisor", "operator"):
            raise ForbiddenError("only supervisors (the evaluators) and the operator may do this")

    # ------------------------------------------------------------------------------ forms
    async def publish_form(self, body: Any, actor: Actor) -> dict[str, Any]:
        """Raises: ForbiddenError, FormInvalidError, StateError (qa.form_published: versions never change)."""
        self.require_evaluator(actor)
        form = parse_form(body)
        now = self.base.clock()
        async with self.base.qa.transaction() as tx:
            latest = await tx.get_form(form.form_id)
            if latest is not None and latest[0] >= form.version:
                raise StateError(f"form {form.form_id} has version {latest[0]}; publish version {latest[0] + 1}",
                                 code="qa.form_published")
            await tx.insert_form(form.form_id, form.version, dict(form.source), now, actor.subject)
            await tx.audit(f"form:{form.form_id}/{form.version}", "published", actor.subject, now, {})
        return {"form_id": form.form_id, "version": form.version, "form": form.source}

    async def form(self, form_id: str, version: int | None = None) -> Form:
        """Raises: NotFoundError."""
        async with self.base.qa.transaction() as tx:
            found = await tx.get_form(form_id, version)
        if found is None:
            raise NotFoundError(f"no form {form_id}" + ("" if version is None else f" version {version}"))
        return parse_form(found[1])

    async def forms(self) -> list[dict[str, Any]]:
        async with self.base.qa.transaction() as tx:
            return await tx.list_forms()

    # ------------------------------------------------------------------------------ evaluations
    async def submit(self, actor: Actor, *, recording_serial: str, form_id: str, form_version: int | None,
                     scores: Any, calibration: bool = False, rule_id: str | None = None,
                     rule_version: int | None = None) -> dict[str, Any]:
        """Score a recording with a form version; published at once (or kept as a calibration score).

        Raises:
            ForbiddenError: not an evaluator, or the recording is outside the supervisor's queues and teams.
            NotFoundError: no such recording or form. ScoresInvalidError: the scores do not fit the form.
            StateError: qa.already_evaluated (a second non-calibration evaluation by the same evaluator).
        """
        self.require_evaluator(actor)
        recording = await self.base.store.get_recording(RecordingSerial(recording_serial))
        if recording is None or recording.agent_id is None:
            raise NotFoundError(f"no answered recording {recording_serial}")
        if not self.may_see(actor, recording.agent_id, recording.queue_id):
            raise ForbiddenError(f"recording {recording_serial} is not in your queues or teams")
        form = await self.form(form_id, form_version)
        result = score(form, scores).to_json()
        now = self.base.clock()
        state = EvaluationState.CALIBRATION if calibration else EvaluationState.PUBLISHED
        row = EvaluationRow(evaluation_id=0, recording_serial=recording_serial, agent_id=recording.agent_id,
                            queue_id=recording.queue_id, form_id=form.form_id, form_version=form.version,
                            evaluator=actor.subject, rule_id=rule_id, rule_version=rule_version,
                            calibration=calibration, state=state.value, created_at=now,
                            published_at=None if calibration else now)
        async with self.base.qa.transaction() as tx:
            mine = [e for e in await tx.evaluations(recording_serial=recording_serial, evaluator=actor.subject)
                    if e.calibration == calibration]
            if mine:
                raise StateError(f"you evaluated {recording_serial} already (evaluation {mine[0].evaluation_id})",
                                 code="qa.already_evaluated")
            evaluation_id = await tx.insert_evaluation(row)
            await tx.insert_revision(evaluation_id, 1, result, actor.subject, now, None)
            await tx.audit(f"evaluation:{evaluation_id}", state.value, actor.subject, now,
                           {"total": result["total"], "failed": result["failed"]})
        log.info("qa.evaluation.submitted", evaluation_id=evaluation_id, evaluator=actor.subject,
                 calibration=calibration)
        if not calibration:
            self.base.publish_event("qa.evaluation.published", {
                "evaluation_id": evaluation_id, "agent_id": recording.agent_id, "evaluator": actor.subject,
                "recording_serial": recording_serial, "queue": recording.queue_id, "total": result["total"],
                "failed": result["failed"]})
        return await self.evaluation(actor, evaluation_id)

    async def _get(self, tx: QaTx, actor: Actor, evaluation_id: int) -> EvaluationRow:
        e = await tx.get_evaluation(evaluation_id)
        if e is None or not self.may_see(actor, e.agent_id, e.queue_id) or (
                actor.role == "agent" and e.calibration):
            raise NotFoundError(f"no evaluation {evaluation_id}")  # not telling whether it exists
        if e.calibration and actor.role == "supervisor" and e.evaluator != actor.subject:
            mine = await tx.evaluations(recording_serial=e.recording_serial, evaluator=actor.subject)
            if not any(m.calibration for m in mine):
                raise ForbiddenError("calibration is blind: submit your own score of this recording first",
                                     code="qa.calibration_blind")
        return e

    async def evaluation(self, actor: Actor, evaluation_id: int) -> dict[str, Any]:
        """One evaluation with its revisions, appeals and audit trail. Raises: NotFoundError, ForbiddenError."""
        async with self.base.qa.transaction() as tx:
            e = await self._get(tx, actor, evaluation_id)
            return e.to_json() | {"revisions": await tx.revisions(evaluation_id),
                                  "appeals": [await self._appeal_json(tx, a)
                                              for a in await tx.appeals(evaluation_id=evaluation_id)],
                                  "audit": await tx.audit_of(f"evaluation:{evaluation_id}"),
                                  "appeal_deadline": self.deadline(e)}

    async def evaluations(self, actor: Actor, *, agent_id: str | None = None, evaluator: str | None = None,
                          recording_serial: str | None = None) -> list[dict[str, Any]]:
        """The evaluations ``actor`` may see (an agent: its own published ones)."""
        if actor.role == "agent":
            agent_id = actor.subject
        async with self.base.qa.transaction() as tx:
            rows = await tx.evaluations(agent_id=agent_id, evaluator=evaluator, recording_serial=recording_serial)
        if actor.role == "agent":
            rows = [e for e in rows if not e.calibration]
        return [e.to_json() for e in rows if self.may_see(actor, e.agent_id, e.queue_id)
                and not (e.calibration and actor.role == "supervisor" and e.evaluator != actor.subject)]

    # ------------------------------------------------------------------------------ appeals
    async def act(self, actor: Actor, evaluation_id: int, action: Action, *, reason: str = "",
                  item_ids: list[str] | None = None, verdict: Verdict | None = None,
                  points: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One step of the appeal workflow (domain.md §4.2, :mod:`cti.qa.appeals`): the agent acknowledges, files
        (``item_ids``, ``reason``) or withdraws; the team leader admits or refuses (``reason``); a panel member
        records its opinion (``verdict``, ``points``: item id to a new answer, ``reason`` as the comment), the third
        one deciding; the supervisor seat decides an overdue appeal. Each step is in the audit trail.

        Raises:
            ForbiddenError, StateError, QaError: as :func:`cti.qa.appeals.decide_transition`; NotFoundError.
            ScoresInvalidError: proposed points that do not fit the form.
        """
        now = self.base.clock()
        async with self.base.qa.transaction() as tx:
            e = await self._get(tx, actor, evaluation_id)
            appeals = await tx.appeals(evaluation_id=evaluation_id)
            open_ = next((a for a in appeals if AppealState(a.state) in OPEN_APPEAL_STATES), None)
            opinions = [o for o, _ in await tx.opinions(open_.appeal_id)] if open_ else []
            form = parse_form((await tx.get_form(e.form_id, e.form_version) or (0, {}))[1])
            if points:
                rescore(form, (e.result or {})["items"], points)  # ScoresInvalidError before anything is stored
            facts = Facts(agent_id=e.agent_id, evaluator=e.evaluator, published_at=e.published_at,
                          deadline=self.deadline(e), items=frozenset((e.result or {}).get("items", {})),
                          appealed_items=frozenset(i for a in appeals for i in a.item_ids),
                          filed_by=open_.agent_id if open_ else None,
                          open_items=frozenset(open_.item_ids) if open_ else frozenset(),
                          leaders=frozenset({actor.subject}) if self._leads(actor, e.agent_id) else frozenset(),
                          leader=open_.leader if open_ else None,
                          decision_deadline=open_.decision_deadline if open_ else None, opinions=tuple(opinions))
            a_state = AppealState(open_.state) if open_ else AppealState.NONE
            t = decide_transition(EvaluationState(e.state), a_state, action, actor, facts, now=now, reason=reason,
                                  item_ids=item_ids or (), verdict=verdict, points=points)
            if t.evaluation.value != e.state and not await tx.set_evaluation_state(
                    evaluation_id, t.evaluation.value, e.state):
                raise StateError("the evaluation changed meanwhile; reload it", code="qa.conflict")
            detail: dict[str, Any] = {"from": e.state, "to": t.evaluation.value, "appeal_from": a_state.value,
                                      "appeal_to": t.appeal.value}
            appeal_id = open_.appeal_id if open_ else None
            decision_deadline = None
            changed = True
            if action is Action.FILE:
                appeal_id = await tx.insert_appeal(AppealRow(
                    appeal_id=0, evaluation_id=evaluation_id, agent_id=e.agent_id, evaluator=e.evaluator,
                    item_ids=tuple(item_ids or ()), reason=reason, state=t.appeal.value, filed_at=now))
                detail |= {"items": item_ids, "reason": reason}
            elif open_ is None:
                pass  # acknowledging
            elif action is Action.ADMIT:
                decision_deadline = working_days_after(now, self.zone, self.decision_days, self.holidays)
                changed = await tx.admit_appeal(open_.appeal_id, leader=actor.subject, at=now,
                                                deadline=decision_deadline)
                detail |= {"decision_deadline": decision_deadline}
            elif action is Action.OPINE:
                assert t.seat is not None and verdict is not None
                await tx.insert_opinion(open_.appeal_id, Opinion(seat=t.seat, member=actor.subject, verdict=verdict,
                                                                 points=dict(points or {}), comment=reason), now)
                detail |= {"seat": t.seat.value, "verdict": verdict.value, "points": dict(points or {}),
                           "comment": reason}
                if t.decision is None:
                    changed = t.appeal.value == open_.state or await tx.set_appeal_state(
                        open_.appeal_id, t.appeal.value, open_.state)
            if open_ is not None and t.appeal not in OPEN_APPEAL_STATES:
                rule = t.decision.rule if t.decision else None
                changed = await tx.decide_appeal(open_.appeal_id, state=t.appeal.value, was=open_.state,
                                                 reviewer=actor.subject, at=now, comment=reason, rule=rule)
                if rule is not None:
                    detail |= {"outcome": t.appeal.value, "rule": rule}
            if not changed:
                raise StateError("the appeal changed meanwhile; reload it", code="qa.conflict")
            if appeal_id is not None:
                detail["appeal_id"] = appeal_id
            if t.decision is not None and t.decision.points:
                result = rescore(form, (e.result or {})["items"], t.decision.points).to_json()
                await tx.insert_revision(evaluation_id, e.revision + 1, result, actor.subject, now,
                                         f"appeal {appeal_id}: {t.appeal.value} ({t.decision.rule})")
                detail |= {"revision": e.revision + 1, "total": result["total"],
                           "previous_total": (e.result or {}).get("total")}
            await tx.audit(f"evaluation:{evaluation_id}", action.value, actor.subject, now, detail)
            if appeal_id is not None:
                await tx.audit(f"appeal:{appeal_id}", action.value, actor.subject, now, detail)
            settled = finalisable(t.evaluation, facts.deadline, now) and await finalise(
                tx, e, t.evaluation, facts.deadline, now)  # an appeal that ended after the window: final at once
        log.info("qa.evaluation.changed", evaluation_id=evaluation_id, action=action.value, actor=actor.subject)
        after = await self.evaluation(actor, evaluation_id)
        base = {"appeal_id": appeal_id, "evaluation_id": evaluation_id, "agent_id": e.agent_id,
                "evaluator": e.evaluator, "queue": e.queue_id}
        if action is Action.FILE:
            self.base.publish_event("qa.appeal.filed", base | {"item_ids": list(item_ids or ())})
        elif action is Action.ADMIT:
            self.base.publish_event("qa.appeal.admitted", base | {"leader": actor.subject,
                                                                  "decision_deadline": decision_deadline})
        elif action is Action.REFUSE:
            self.base.publish_event("qa.appeal.refused", base | {"leader": actor.subject, "reason": reason})
        elif action is Action.WITHDRAW and open_ is not None:
            self.base.publish_event("qa.appeal.withdrawn", base)
        elif action is Action.OPINE and t.seat is not None and verdict is not None:
            self.base.publish_event("qa.appeal.opinion", base | {"seat": t.seat.value, "member": actor.subject,
                                                                 "verdict": verdict.value})
        if t.decision is not None:
            self.base.publish_event("qa.appeal.decided", base | {
                "reviewer": actor.subject, "outcome": t.appeal.value, "rule": t.decision.rule,
                "total": after["total"]})
        if settled:
            self.base.publish_event(FINALISED, finalised_data(e, t.evaluation, after["total"]))
        return after

    # ------------------------------------------------------------------------------ finalisation
    async def finalise_due(self, now: float | None = None) -> list[int]:
        """Finalise what is due at ``now`` (default: the clock's now): :func:`cti.qa.finalise.finalise_due`."""
        return await finalise_due(self, self.base.clock() if now is None else now)

    async def run_finaliser(self, every_s: float = FINALISE_EVERY_S) -> None:
        """The node's finaliser task: :func:`cti.qa.finalise.run_finaliser`."""
        await run_finaliser(self, every_s)

    def _leads(self, actor: Actor, agent_id: str) -> bool:
        """Whether ``actor`` is a team leader of ``agent_id`` (a supervisor of the agent's team)."""
        d = self.base.directory
        if actor.role != "supervisor" or d is None:
            return False
        team = d.agent_team(AgentId(agent_id))
        return team is not None and team in d.supervisor_scope(actor.subject)[1]

    async def appeal(self, actor: Actor, appeal_id: int) -> tuple[int, dict[str, Any]]:
        """(evaluation id, the appeal with its opinions and audit trail). Raises: NotFoundError."""
        async with self.base.qa.transaction() as tx:
            found = await tx.appeals(appeal_id=appeal_id)
            if not found:
                raise NotFoundError(f"no appeal {appeal_id}")
            await self._get(tx, actor, found[0].evaluation_id)
            return found[0].evaluation_id, await self._appeal_json(tx, found[0])

    async def _appeal_json(self, tx: QaTx, a: AppealRow) -> dict[str, Any]:
        return a.to_json() | {"opinions": [o.to_json() | {"at": at} for o, at in await tx.opinions(a.appeal_id)],
                              "audit": await tx.audit_of(f"appeal:{a.appeal_id}")}

    async def appeal_report(self, actor: Actor) -> dict[str, Any]:
        """Appeals counted per agent and per evaluator by outcome, with each evaluator's overturn rate
        (amended / decided). Raises: ForbiddenError (agents)."""
        self.require_evaluator(actor)
        async with self.base.qa.transaction() as tx:
            counts = await tx.appeal_counts()
        agents: dict[str, Counter[str]] = {}
        evaluators: dict[str, Counter[str]] = {}
        for agent, evaluator, state, n in counts:
            agents.setdefault(agent, Counter())[state] += n
            evaluators.setdefault(evaluator, Counter())[state] += n
        def rows(table: dict[str, Counter[str]]) -> dict[str, dict[str, Any]]:
            out = {}
            for who, c in sorted(table.items()):
                decided = c["upheld"] + c["overturned"] + c["partial"]
                changed = c["overturned"] + c["partial"]
                out[who] = {s.value: c[s.value] for s in AppealState if s is not AppealState.NONE} | {
                    "total": sum(c.values()), "overturn_rate": None if not decided else round(changed / decided, 4)}
            return out
        return {"agents": rows(agents), "evaluators": rows(evaluators)}

    async def score_report(self, actor: Actor) -> dict[str, Any]:
        """QA scores per agent and per evaluator (latest revisions; calibration scores never count). The score
        counts FINAL evaluations only (``final``, ``mean``); the others — still in their filing window or under
        appeal — are shown apart as ``provisional`` (their count and mean), never mixed in. Raises: ForbiddenError."""
        self.require_evaluator(actor)
        async with self.base.qa.transaction() as tx:
            rows = await tx.score_rows()
        final = EvaluationState.FINAL.value
        def table(by_evaluator: bool) -> dict[str, dict[str, Any]]:
            groups: dict[str, tuple[list[float], list[float]]] = {}
            for agent, evaluator, state, total in rows:
                done, pending = groups.setdefault(evaluator if by_evaluator else agent, ([], []))
                if total is not None:  # every item N/A: no score to average
                    (done if state == final else pending).append(total)
            return {who: {"final": len(done), "mean": round(fmean(done), 2) if done else None,
                          "provisional": len(pending),
                          "provisional_mean": round(fmean(pending), 2) if pending else None}
                    for who, (done, pending) in sorted(groups.items())}
        return {"counts": final, "agents": table(False), "evaluators": table(True)}

    async def calibration(self, actor: Actor, recording_serial: str, *, tolerance: float | None = None,
                          consensus_evaluation_id: int | None = None) -> dict[str, Any]:
        """The calibration report of one recording over its calibration evaluations (one form version).

        Raises: ForbiddenError (not an evaluator, or blind), NotFoundError (none), StateError (qa.mixed_forms).
        """
        self.require_evaluator(actor)
        async with self.base.qa.transaction() as tx:
            rows = [e for e in await tx.evaluations(recording_serial=recording_serial) if e.calibration]
        rows = [e for e in rows if self.may_see(actor, e.agent_id, e.queue_id)]
        if not rows:
            raise NotFoundError(f"no calibration scores of {recording_serial}")
        if actor.role == "supervisor" and not any(e.evaluator == actor.subject for e in rows):
            raise ForbiddenError("calibration is blind: submit your own score of this recording first",
                                 code="qa.calibration_blind")
        forms = {(e.form_id, e.form_version) for e in rows}
        if len(forms) != 1:
            raise StateError("the calibration scores use different form versions", code="qa.mixed_forms")
        (form_id, version), = forms
        form = await self.form(form_id, version)
        scored = {e.evaluator: _result(form, e) for e in rows if e.evaluation_id != consensus_evaluation_id}
        consensus = None
        if consensus_evaluation_id is not None:
            chosen = [e for e in rows if e.evaluation_id == consensus_evaluation_id]
            if not chosen:
                raise NotFoundError(f"evaluation {consensus_evaluation_id} is not a calibration score of "
                                    f"{recording_serial}")
            consensus = _result(form, chosen[0])
        report = calibration_report(form, scored, tolerance=self.tolerance if tolerance is None else tolerance,
                                    consensus=consensus)
        return {"recording_serial": recording_serial, "form_id": form_id, "form_version": version} | report


def _result(form: Form, e: EvaluationRow) -> Any:
    return rescore(form, (e.result or {})["items"], {})
