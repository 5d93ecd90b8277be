"""Live adherence (domain.md §3.1 "Real-time alerts"): sans-I/O, ``now`` passed in, timers exposed.

The tracker knows each agent's plan around now (shifts, activities, leave, approved exceptions) and current ACD
state. At every state change, plan boundary and exception boundary it judges the agent with the same rule table as
the calculator (:meth:`AdherenceSettings.verdict`): a moment outside every shift is not judged. When an agent has
been OUT continuously for longer than the tolerance it emits :class:`ExceptionRaised` (in both tolerance modes); when
that agent is back in adherence (or leaves its shift) it emits :class:`ExceptionEnded`. Timers fire at the first
whole second past the tolerance (``out_since + tol + 1``: a run of exactly ``tol`` seconds, which ``min_duration``
ignores, never alerts) and at the next plan or exception boundary.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

from cti.adherence.calc import AdherenceSettings, Verdict
from cti.adherence.model import Activity, ApprovedException, ScheduleEntry

__all__ = ["AdherenceTracker", "AgentLive", "ExceptionEnded", "ExceptionRaised", "LiveEvent"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExceptionRaised:
    """The agent has been out of adherence longer than the tolerance."""

    agent_id: str
    activity: Activity
    state: str
    reason: str | None
    out_since: float
    tolerance_s: float
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ExceptionEnded:
    """An agent whose exception was raised is no longer out of adherence."""

    agent_id: str
    out_since: float
    at: float
    verdict: Verdict


LiveEvent = ExceptionRaised | ExceptionEnded


@dataclass(slots=True, kw_only=True)
class AgentLive:
    """What the tracker knows of one agent."""

    agent_id: str
    entries: list[ScheduleEntry] = field(default_factory=list)
    exceptions: list[ApprovedException] = field(default_factory=list)
    state: str | None = None
    reason: str | None = None
    since: float | None = None
    verdict: Verdict = Verdict.NEUTRAL
    activity: Activity | None = None
    out_since: float | None = None
    raised: bool = False

    def view(self, now: float) -> dict[str, object]:
        return {"agent_id": self.agent_id, "verdict": self.verdict.value,
                "activity": None if self.activity is None else self.activity.value, "state": self.state,
                "reason": self.reason, "out_since": self.out_since,
                "out_seconds": None if self.out_since is None else max(0.0, now - self.out_since),
                "exception": self.raised}


def planned_at(entries: Iterable[ScheduleEntry], exceptions: Iterable[ApprovedException],
               now: float) -> tuple[Activity | None, ApprovedException | None]:
    """The planned activity at ``now`` (None outside every shift; PHONE in uncovered shift time) and the
    approved exception in force, if any."""
    entries = list(entries)
    if not any(e.activity is Activity.SHIFT and e.start <= now < e.end for e in entries):
        return None, None
    leave = next((e.activity for e in entries if e.activity in (Activity.LEAVE, Activity.ABSENCE)
                  and e.start <= now < e.end), None)
    work = next((e.activity for e in entries if e.activity not in (Activity.SHIFT, Activity.LEAVE, Activity.ABSENCE)
                 and e.start <= now < e.end), None)
    exception = next((x for x in exceptions if x.start <= now < x.end), None)
    return leave or work or Activity.PHONE, exception


class AdherenceTracker:
    """Live adherence of the agents that have a plan (see the module docstring)."""

    def __init__(self, settings: AdherenceSettings | None = None) -> None:
        self.settings = settings or AdherenceSettings()
        self.agents: dict[str, AgentLive] = {}
        # get_timer runs before every bus event the service reads: it must not walk every agent. Every plan's
        # boundaries in one sorted list (rebuilt after a plan changes), and the pending alert times by agent.
        self._boundaries: list[float] = []
        self._boundaries_stale = False
        self._alerts: dict[str, float] = {}

    def _agent(self, agent_id: str) -> AgentLive:
        live = self.agents.get(agent_id)
        if live is None:
            live = self.agents[agent_id] = AgentLive(agent_id=agent_id)
        return live

    def set_plan(self, agent_id: str, entries: Iterable[ScheduleEntry], exceptions: Iterable[ApprovedException],
                 now: float) -> list[LiveEvent]:
        """Replace the agent's plan around ``now`` (the adapter reloads it from the store)."""
        live = self._agent(agent_id)
        live.entries = sorted((e for e in entries if e.agent_id == agent_id), key=lambda e: e.start)
        live.exceptions = sorted((x for x in exceptions if x.agent_id == agent_id), key=lambda x: x.start)
        self._boundaries_stale = True
        return self._judge(live, now)

    def state_changed(self, agent_id: str, state: str, reason: str | None, now: float) -> list[LiveEvent]:
        """The agent's ACD state changed (``agent.state_changed``)."""
        live = self._agent(agent_id)
        live.state, live.reason, live.since = state, reason, now
        return self._judge(live, now)

    def _judge(self, live: AgentLive, now: float) -> list[LiveEvent]:
        activity, exception = planned_at(live.entries, live.exceptions, now)
        live.activity = activity
        if activity is None:
            verdict = Verdict.NEUTRAL
        elif exception is not None:
            verdict = (Verdict.IN if exception.activity is None
                       else self.settings.verdict(exception.activity, live.state, live.reason))
        else:
            verdict = self.settings.verdict(activity, live.state, live.reason)
        live.verdict = verdict
        events: list[LiveEvent] = []
        if verdict is Verdict.OUT:
            if live.out_since is None:
                # it became OUT at the state change or at the plan boundary since, whichever is later (a timer
                # handled late, or a plan loaded now, still dates the run from when it really began)
                live.out_since = max(self._last_boundary(live, now), live.since if live.since is not None else now)
            events += self._maybe_raise(live, now)
        elif live.out_since is not None:
            if live.raised:
                events.append(ExceptionEnded(agent_id=live.agent_id, out_since=live.out_since, at=now,
                                             verdict=verdict))
            live.out_since, live.raised = None, False
        alert = self._alert_time(live)
        if alert is None:
            self._alerts.pop(live.agent_id, None)
        else:
            self._alerts[live.agent_id] = alert
        return events

    def _maybe_raise(self, live: AgentLive, now: float) -> list[LiveEvent]:
        if live.raised or live.out_since is None or live.activity is None or live.state is None:
            return []
        if now - live.out_since <= self.settings.tolerance_s:
            return []
        live.raised = True
        return [ExceptionRaised(agent_id=live.agent_id, activity=live.activity, state=live.state,
                                reason=live.reason, out_since=live.out_since, tolerance_s=self.settings.tolerance_s,
                                at=now)]

    def _last_boundary(self, live: AgentLive, now: float) -> float:
        points = [p for e in live.entries for p in (e.start, e.end) if p <= now]
        points += [p for x in live.exceptions for p in (x.start, x.end) if p <= now]
        return max(points, default=now)

    def _alert_time(self, live: AgentLive) -> float | None:
        if live.out_since is None or live.raised:
            return None
        return live.out_since + self.settings.tolerance_s + 1.0

    def get_timer(self, now: float) -> float | None:
        """The earliest moment something may change without an input (a boundary, a tolerance running out)."""
        if self._boundaries_stale:
            points = [p for live in self.agents.values() for e in live.entries for p in (e.start, e.end)]
            points += [p for live in self.agents.values() for x in live.exceptions for p in (x.start, x.end)]
            self._boundaries = sorted(points)
            self._boundaries_stale = False
        i = bisect_right(self._boundaries, now)  # the first boundary strictly after now
        boundary = self._boundaries[i] if i < len(self._boundaries) else None
        alert = min(self._alerts.values(), default=None)
        if boundary is None or alert is None:
            return alert if boundary is None else boundary
        return min(boundary, alert)

    def handle_timer(self, now: float) -> list[LiveEvent]:
        """Re-judge every agent at ``now``."""
        events: list[LiveEvent] = []
        for live in list(self.agents.values()):
            events += self._judge(live, now)
        return events

    def snapshot(self, now: float) -> list[dict[str, object]]:
        """Every scheduled agent's live adherence (for ``GET /api/v1/adherence/live``)."""
        return [self.agents[a].view(now) for a in sorted(self.agents) if self.agents[a].entries]
