"""Builders of queue legs and agent-state rows with round numbers, for the report tests."""

from __future__ import annotations

from acd import AgentId, AgentState, CallId, ExitReason, QueueId
from cti.store import AgentStateRow, LegId, LegOutcome, QueueLeg, StateRowId

_seq = [0]


def leg(queue: str = "q", *, at: float = 0.0, answered: float | None = None, abandoned: float | None = None,
        flowout: float | None = None, reason: ExitReason = ExitReason.MAX_WAIT, call: str | None = None,
        caller: str | None = None, agent: str = "a1", talk: float = 0.0, hold: float = 0.0, acw: float = 0.0,
        ended: float | None = None) -> QueueLeg:
    """A leg entering ``queue`` at ``at`` and resolved ``answered``/``abandoned``/``flowout`` seconds later."""
    _seq[0] += 1
    call_id = call or f"c{_seq[0]}"
    common = dict(leg_id=LegId(f"{call_id}-{_seq[0]}"), call_id=CallId(call_id), queue_id=QueueId(queue),
                  t_enter_queue=at, caller_number=caller)
    if answered is not None:
        t_end = at + answered + talk if ended is None else ended
        return QueueLeg(**common, outcome=LegOutcome.ANSWERED, t_answer=at + answered,  # type: ignore[arg-type]
                        agent_id=AgentId(agent), t_end=t_end, talk_s=talk, hold_s=hold, acw_s=acw)
    if abandoned is not None:
        return QueueLeg(**common, outcome=LegOutcome.ABANDONED, t_abandon=at + abandoned)  # type: ignore[arg-type]
    if flowout is not None:
        return QueueLeg(**common, outcome=LegOutcome.FLOWOUT, t_flowout=at + flowout,  # type: ignore[arg-type]
                        flowout_reason=reason)
    return QueueLeg(**common)  # type: ignore[arg-type]


def row(agent: str, state: AgentState, start: float, end: float | None, reason: str | None = None) -> AgentStateRow:
    _seq[0] += 1
    return AgentStateRow(row_id=StateRowId(_seq[0]), agent_id=AgentId(agent), state=state, reason=reason,
                         start=start, end=end)
