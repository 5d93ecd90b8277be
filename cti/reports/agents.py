"""Agent KPIs from the agent-state history and the queue legs: domain.md §1.4 and §1.6. Pure.

Per agent (or a team: the sum of its agents) and bucket:

- time in each state and, for not-ready (``paused``), in each reason: the state rows clipped to the bucket
  (an open row runs to ``now``);
- logged-in time L = every state but ``logged_out``; handle time H = on call + held + wrap-up; available
  I = ready (``available``). Reserved and ringing count in L only (§1.6: ringing in H is optional; we
  leave it out);
- occupancy = H / (H + I), utilisation = H / L (§1.6 (a)); ``None`` when the denominator is 0;
- answered: legs the agent answered in the bucket; handled and AHT as for queues (§1.4, attributed to the
  bucket where handling ended);
- ring time: a ``ringing`` row followed at once by ``on_call`` is an answered ring, counted in the bucket
  where it was answered; "answered within N rings" is the share with ring time ≤ N × ring cycle.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from acd import AgentState
from cti.store import AgentStateRow, LegId, QueueLeg

__all__ = ["AgentFigures", "agent_figures", "answered_rings", "ring_times"]

_HANDLE = frozenset({AgentState.ON_CALL, AgentState.HELD, AgentState.WRAP_UP})
_JOIN_S = 0.001  # a ringing row ends when the answer's state row starts (the same router step)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentFigures:
    """The agent KPIs of one agent (or team) and bucket."""

    state_s: Mapping[str, float]
    reason_s: Mapping[str, float]
    logged_in_s: float
    handle_s: float
    available_s: float
    occupancy: float | None
    utilisation: float | None
    answered: int
    handled: int
    aht_s: float | None
    att_s: float | None
    avg_acw_s: float | None
    avg_ring_s: float | None
    answered_within_rings: float | None


def answered_rings(rows: Sequence[AgentStateRow]) -> list[tuple[float, float]]:
    """``(answered_at, ring_s)`` for each ring of one agent's rows (oldest first) that was answered."""
    out = []
    for ringing, nxt in zip(rows, rows[1:], strict=False):
        if (ringing.state is AgentState.RINGING and nxt.state is AgentState.ON_CALL and ringing.end is not None
                and abs(nxt.start - ringing.end) <= _JOIN_S):
            out.append((ringing.end, ringing.end - ringing.start))
    return out


def ring_times(legs: Iterable[QueueLeg], rows_by_agent: Mapping[str, Sequence[AgentStateRow]]) -> dict[LegId, float]:
    """How long the answering agent's phone rang, for each answered leg with a matching ring."""
    rings: dict[str, tuple[list[float], list[float]]] = {}
    for agent, rows in rows_by_agent.items():
        found = sorted(answered_rings(rows))
        rings[agent] = ([at for at, _ in found], [ring for _, ring in found])
    out: dict[LegId, float] = {}
    for leg in legs:
        if leg.agent_id is None or leg.t_answer is None or leg.agent_id not in rings:
            continue
        times, spans = rings[leg.agent_id]
        i = bisect.bisect_left(times, leg.t_answer - _JOIN_S)  # the earliest ring answered within the join
        if i < len(times) and times[i] <= leg.t_answer + _JOIN_S:
            out[leg.leg_id] = spans[i]
    return out


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def agent_figures(rows: Iterable[AgentStateRow], legs_answered: Sequence[QueueLeg],
                  legs_ended: Sequence[QueueLeg], start: float, end: float, now: float, *,
                  ring_limit_s: float) -> AgentFigures:
    """Figures over ``[start, end)``: ``rows`` of the agent(s) (any that overlap; clipped here), the legs
    they answered in the bucket and those whose handling ended in it; ``now`` ends an open row."""
    state_s: dict[str, float] = {}
    reason_s: dict[str, float] = {}
    rows = list(rows)
    for row in rows:
        row_end = now if row.end is None else row.end
        span = min(row_end, end) - max(row.start, start)
        if span <= 0:
            continue
        state_s[row.state.value] = state_s.get(row.state.value, 0.0) + span
        if row.state is AgentState.PAUSED:
            reason = row.reason or "(none)"
            reason_s[reason] = reason_s.get(reason, 0.0) + span
    logged_in = math.fsum(v for k, v in state_s.items() if k != AgentState.LOGGED_OUT.value)
    handle = math.fsum(state_s.get(s.value, 0.0) for s in _HANDLE)
    available = state_s.get(AgentState.AVAILABLE.value, 0.0)
    by_agent: dict[str, list[AgentStateRow]] = {}
    for row in sorted(rows, key=lambda r: (r.start, r.row_id)):
        by_agent.setdefault(row.agent_id, []).append(row)
    rings = [ring for agent_rows in by_agent.values() for at, ring in answered_rings(agent_rows)
             if start <= at < end]
    handled = [leg for leg in legs_ended if leg.t_end is not None]
    n_h = len(handled)
    return AgentFigures(
        state_s=state_s, reason_s=reason_s, logged_in_s=logged_in, handle_s=handle, available_s=available,
        occupancy=_ratio(handle, handle + available), utilisation=_ratio(handle, logged_in),
        answered=len(legs_answered), handled=n_h,
        aht_s=_ratio(math.fsum(leg.talk_s + leg.acw_s for leg in handled), n_h),
        att_s=_ratio(math.fsum(leg.talk_s - leg.hold_s for leg in handled), n_h),
        avg_acw_s=_ratio(math.fsum(leg.acw_s for leg in handled), n_h),
        avg_ring_s=_ratio(math.fsum(rings), len(rings)),
        answered_within_rings=_ratio(sum(1 for r in rings if r <= ring_limit_s), len(rings)),
    )
