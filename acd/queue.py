"""Queue entries (calls), offers and demand classes: where waiting calls meet ready agents.

A **route** is one way a call may be served: "a member of queue Q holding every skill in R at
its minimum level". A call starts with one route (its queue, the queue's skills plus the call's
own); overflow rules add routes (ADD_SKILL, ADD_QUEUE) or relax levels (RELAX_LEVEL). An agent
is eligible for a call when it satisfies *any* of the call's routes.

A **demand class** groups the calls of one home queue that share the same set of routes. Each
class holds two heaps:

* waiting calls, ordered by (effective priority desc, enqueue time asc). With priority aging a
  call's effective priority is ``priority + (now - enqueued) / aging_s``; because every call of a
  class ages at the same rate, the order is time-invariant and a static heap key suffices.
* ready agents eligible for the class, ordered by the home queue's strategy key.

Both heaps use lazy deletion (an entry is live while its token matches) and are compacted when
more than half of their entries are dead, so no decision ever scans all calls or all agents.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Mapping
from dataclasses import dataclass

from acd.agent import Agent, AgentState
from acd.config import (
    MIN_LEVEL,
    AgentId,
    CallId,
    OfferId,
    OverflowAction,
    OverflowRule,
    QueueConfig,
    QueueId,
    SkillRequirement,
)

_COMPACT_MIN = 64


class CallState(enum.Enum):
    """Life of a call inside the ACD."""

    QUEUED = "queued"  # waiting, in exactly one demand class
    OFFERED = "offered"  # reserved for one agent (reserved or ringing); still "in queue" for stats
    CONNECTED = "connected"  # answered; the queue leg is over, the agent is talking
    ENDED = "ended"  # gone from the ACD


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One way to serve a call: a member of ``queue`` meeting every requirement."""

    queue: QueueId
    requirements: frozenset[SkillRequirement]

    def accepts(self, agent: Agent) -> bool:
        """True if ``agent`` is a member of the queue and meets every minimum level."""
        if self.queue not in agent.queues:
            return False
        skills = agent.skills
        return all(skills.get(r.skill, 0) >= r.min_level for r in self.requirements)

    def skill_score(self, agent: Agent) -> int:
        """Sum of the agent's levels in this route's skills (for BEST_SKILL)."""
        return sum(agent.skills.get(r.skill, 0) for r in self.requirements)


Routes = frozenset[Route]


def merge_requirements(
    queue_skills: tuple[SkillRequirement, ...], call_skills: tuple[SkillRequirement, ...]
) -> frozenset[SkillRequirement]:
    """Queue skills plus call skills; for a skill named twice the higher minimum wins."""
    levels: dict[str, SkillRequirement] = {}
    for req in (*queue_skills, *call_skills):
        known = levels.get(req.skill)
        if known is None or req.min_level > known.min_level:
            levels[req.skill] = req
    return frozenset(levels.values())


def apply_rule(routes: Routes, rule: OverflowRule, home: QueueId, queues: Mapping[QueueId, QueueConfig]) -> Routes:
    """Return the routes after an escalation rule (exit actions are handled by the router)."""
    match rule.action:
        case OverflowAction.RELAX_LEVEL:
            return frozenset(
                Route(queue=r.queue, requirements=frozenset(
                    SkillRequirement(skill=q.skill, min_level=max(MIN_LEVEL, q.min_level - rule.relax_by))
                    for q in r.requirements))
                for r in routes)
        case OverflowAction.ADD_SKILL:
            assert rule.skill is not None
            extra = SkillRequirement(skill=rule.skill, min_level=rule.min_level)
            return routes | {Route(queue=home, requirements=frozenset({extra}))}
        case OverflowAction.ADD_QUEUE:
            assert rule.target_queue is not None
            target = queues[rule.target_queue]
            return routes | {Route(queue=target.id, requirements=frozenset(target.skills))}
        case OverflowAction.VOICEMAIL | OverflowAction.CALLBACK | OverflowAction.EXIT:
            return routes


class Call:
    """One queue entry (a queue leg), owned and mutated by the router only."""

    __slots__ = (
        "id", "queue", "priority", "enqueued", "seq", "caller_id", "data", "state", "routes", "demand",
        "token", "next_rule", "offer", "agent_id", "answered_at", "held_since", "hold_s", "aging", "static_rank",
    )

    def __init__(self, *, call_id: CallId, queue: QueueConfig, priority: int, enqueued: float, seq: int,
                 caller_id: str, data: Mapping[str, str], routes: Routes) -> None:
        self.id = call_id
        self.queue = queue
        self.priority = priority
        self.enqueued = enqueued
        self.seq = seq
        self.caller_id = caller_id
        self.data = data
        self.state = CallState.QUEUED
        self.routes = routes
        self.demand: Demand | None = None
        self.token = 0
        self.next_rule = 0
        self.offer: Offer | None = None
        self.agent_id: AgentId | None = None
        self.answered_at: float | None = None
        self.held_since: float | None = None
        self.hold_s = 0.0
        self.aging = queue.priority_aging_s
        self.static_rank = (float(-priority), enqueued, seq)  # the rank when the queue does not age

    def rank(self, now: float) -> tuple[float, float, int]:
        """Cross-class order key at ``now``: smaller is served first."""
        aging = self.aging
        if aging is None:
            return self.static_rank
        return (-(self.priority + (now - self.enqueued) / aging), self.enqueued, self.seq)


@dataclass(slots=True, kw_only=True)
class Offer:
    """A call reserved for an agent until answered, refused or timed out."""

    offer_id: OfferId
    call: Call
    agent: Agent
    deadline: float
    ringing: bool = False


CallEntry = tuple[float, float, int, int, Call]
AgentEntry = tuple[float, float, int, int, Agent]


class Demand:
    """A demand class: the calls of one home queue sharing one route set, and their ready agents."""

    __slots__ = ("home", "routes", "calls", "agents", "live_calls", "agent_limit", "queues")

    def __init__(self, home: QueueConfig, routes: Routes) -> None:
        self.home = home
        self.routes = routes
        self.queues = frozenset(r.queue for r in routes)
        self.calls: list[CallEntry] = []
        self.agents: list[AgentEntry] = []
        self.live_calls = 0
        self.agent_limit = _COMPACT_MIN  # compact the agent heap when it grows past this

    def accepts(self, agent: Agent) -> bool:
        """True if ``agent`` satisfies any route of this class."""
        return any(route.accepts(agent) for route in self.routes)

    # -- calls ---------------------------------------------------------------------------------
    def push_call(self, call: Call) -> None:
        """Insert ``call`` (QUEUED) at its place by static priority/wait key."""
        call.token += 1
        call.demand = self
        aging = self.home.priority_aging_s
        first = call.enqueued / aging - call.priority if aging else float(-call.priority)
        heapq.heappush(self.calls, (first, call.enqueued, call.seq, call.token, call))
        self.live_calls += 1

    def drop_call(self, call: Call) -> None:
        """Forget ``call`` (its heap entry becomes dead)."""
        call.token += 1
        call.demand = None
        self.live_calls -= 1
        if len(self.calls) > _COMPACT_MIN and self.live_calls * 2 < len(self.calls):
            self.calls = [e for e in self.calls if e[4].token == e[3] and e[4].demand is self]
            heapq.heapify(self.calls)

    def head_call(self) -> Call | None:
        """The best waiting call, or None; dead entries on top are discarded."""
        calls = self.calls
        while calls:
            entry = calls[0]
            call = entry[4]
            if call.token == entry[3] and call.demand is self:
                return call
            heapq.heappop(calls)
        return None

    # -- agents --------------------------------------------------------------------------------
    def push_agent(self, agent: Agent, key: tuple[float, float], seq: int) -> None:
        """Insert a ready agent with its strategy key; ``seq`` breaks ties (unique).

        Agents leaving AVAILABLE are not removed (that would cost one step per class per
        transition); instead the heap is filtered once it doubles, which is amortised O(1).
        """
        heapq.heappush(self.agents, (key[0], key[1], seq, agent.ready_epoch, agent))
        if len(self.agents) > self.agent_limit:
            self.agents = [e for e in self.agents if e[4].state is AgentState.AVAILABLE and e[4].ready_epoch == e[3]]
            heapq.heapify(self.agents)
            self.agent_limit = 2 * len(self.agents) + _COMPACT_MIN

    def head_agent(self) -> Agent | None:
        """The best ready agent by strategy, or None; dead entries on top are discarded."""
        agents = self.agents
        while agents:
            entry = agents[0]
            agent = entry[4]
            if agent.state is AgentState.AVAILABLE and agent.ready_epoch == entry[3]:
                return agent
            heapq.heappop(agents)
        return None
