"""FINAL (domain.md §4.2, docs/qa.md "Evaluations and appeals"): an evaluation settles once its filing window
has closed with no appeal open (:func:`cti.qa.appeals.finalisable`).

:func:`finalise` is the step inside a store transaction (the state change, conditional on the state read, and
its audit entry by ``node``); :func:`finalise_due` sweeps the evaluations due at ``now``; :func:`run_finaliser`
is the node's task that sweeps every minute. The decision itself is the pure transition table of
:mod:`cti.qa.appeals` (``Action.FINALISE``, taken only by the ``system`` actor, only after the window).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from cti.qa.appeals import (
    SETTLING_STATES,
    Action,
    Actor,
    AppealState,
    EvaluationState,
    Facts,
    decide_transition,
    finalisable,
)
from cti.qa.errors import QaError
from cti.qa.store import EvaluationRow, QaTx
from cti.store import StoreError

if TYPE_CHECKING:
    from cti.qa.evaluations import EvaluationService

__all__ = ["FINALISED", "FINALISE_EVERY_S", "NODE", "finalise", "finalise_due", "finalised_data", "run_finaliser"]

log = structlog.get_logger("cti.qa")
FINALISE_EVERY_S = 60.0  # how often the node looks for evaluations whose filing window has closed
NODE = Actor(role="system", subject="node")  # who finalises
FINALISED = "qa.evaluation.finalised"


async def finalise(tx: QaTx, e: EvaluationRow, state: EvaluationState, deadline: float | None, now: float) -> bool:
    """Move ``e`` (now in ``state``) to FINAL with its audit step; False when another step came first.

    Raises: StateError (qa.finalise_not_due, qa.bad_transition) as :func:`cti.qa.appeals.decide_transition`.
    """
    facts = Facts(agent_id=e.agent_id, evaluator=e.evaluator, published_at=e.published_at, deadline=deadline,
                  items=frozenset(), appealed_items=frozenset())
    t = decide_transition(state, AppealState.NONE, Action.FINALISE, NODE, facts, now=now)
    if not await tx.set_evaluation_state(e.evaluation_id, t.evaluation.value, state.value):
        return False
    await tx.audit(f"evaluation:{e.evaluation_id}", Action.FINALISE.value, NODE.subject, now,
                   {"from": state.value, "to": t.evaluation.value, "appeal_deadline": deadline})
    log.info("qa.evaluation.finalised", evaluation_id=e.evaluation_id, previous=state.value)
    return True


def finalised_data(e: EvaluationRow, previous: EvaluationState, total: Any) -> dict[str, Any]:
    """The data of :data:`FINALISED` (docs/events.md)."""
    return {"evaluation_id": e.evaluation_id, "agent_id": e.agent_id, "evaluator": e.evaluator,
            "recording_serial": e.recording_serial, "queue": e.queue_id, "previous_state": previous.value,
            "total": total}


async def finalise_due(service: EvaluationService, now: float) -> list[int]:
    """Finalise every evaluation whose filing window has closed with no appeal open; the ids finalised, oldest
    first. Each one is its own transaction: a step racing it (or another node's finaliser) wins, and it is looked
    at again on the next sweep."""
    # the window lasts at least ``working_days`` days: older publications are the only candidates
    bound = now - service.working_days * 86400.0
    async with service.base.qa.transaction() as tx:
        candidates = await tx.unsettled(sorted(s.value for s in SETTLING_STATES), bound)
    done = []
    for e in candidates:  # oldest first: the deadline never decreases with the publication time
        state, deadline = EvaluationState(e.state), service.deadline(e)
        if not finalisable(state, deadline, now):
            continue
        async with service.base.qa.transaction() as tx:
            if not await finalise(tx, e, state, deadline, now):
                continue
        service.base.publish_event(FINALISED, finalised_data(e, state, (e.result or {}).get("total")))
        done.append(e.evaluation_id)
    return done


async def run_finaliser(service: EvaluationService, every_s: float = FINALISE_EVERY_S) -> None:
    """Finalise what is due now and every ``every_s`` seconds (an evaluation is FINAL at most that late). A store
    failure is logged and retried on the next round (the store watchdog owns the store's health)."""
    while True:
        try:
            async with asyncio.timeout(max(every_s, 30.0)):
                await finalise_due(service, service.base.clock())
        except (TimeoutError, OSError, QaError, StoreError) as exc:
            log.warning("qa.finaliser.failed", error=str(exc), error_type=type(exc).__name__)
        await asyncio.sleep(every_s)
