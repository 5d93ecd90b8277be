"""The matching index: demand classes, and which agents are eligible for which class.

Invariant kept by the router after every request and timer (work conservation): no AVAILABLE
agent is eligible for a QUEUED call. Hence

* a newly queued call only needs the best ready agent of *its* class (one heap peek);
* a newly ready agent only needs the best call among the heads of *its* classes
  (one peek per class the agent is eligible for — a handful, never all calls);
* a new class (a new route set, e.g. after an escalation) finds its eligible agents through the
  smallest candidate set: the members of the route's queue or the holders of its rarest skill.
"""

from __future__ import annotations

import random
from collections import Counter

from acd.agent import Agent, AgentState
from acd.config import QueueConfig, QueueId, SkillName
from acd.queue import Call, Demand, Routes
from acd.strategy import agent_key


class Matcher:
    """Demand classes plus per-queue and per-skill indexes of logged-in agents."""

    __slots__ = ("_demands", "_by_queue", "_members", "_by_skill", "_rng", "_push_seq", "_census", "_paused")

    def __init__(self, rng: random.Random) -> None:
        self._demands: dict[tuple[QueueId, Routes], Demand] = {}
        self._by_queue: dict[QueueId, list[Demand]] = {}
        self._members: dict[QueueId, set[Agent]] = {}
        self._by_skill: dict[SkillName, set[Agent]] = {}
        self._rng = rng
        self._push_seq = 0
        # Members of each queue by state, and paused members by reason: kept on every transition
        # (an agent is in a handful of queues) so wallboards and wait estimates never walk agents.
        self._census: dict[QueueId, Counter[AgentState]] = {}
        self._paused: dict[QueueId, Counter[str]] = {}

    @property
    def demand_count(self) -> int:
        """Number of demand classes created so far."""
        return len(self._demands)

    def members(self, queue: QueueId) -> set[Agent]:
        """Logged-in members of ``queue`` (a live view; do not mutate)."""
        return self._members.get(queue, set())

    def census(self, queue: QueueId) -> tuple[dict[AgentState, int], dict[str, int]]:
        """Logged-in members of ``queue`` by state, and the paused ones by reason (no zero counts)."""
        by_state = self._census.get(queue, Counter())
        paused = self._paused.get(queue, Counter())
        return {s: n for s, n in by_state.items() if n}, {r: n for r, n in paused.items() if n}

    def staffed(self, queue: QueueId, states: frozenset[AgentState]) -> int:
        """Logged-in members of ``queue`` in one of ``states``."""
        by_state = self._census.get(queue)
        return sum(by_state[s] for s in states) if by_state else 0

    def moved(self, agent: Agent, old: AgentState, old_reason: str | None) -> None:
        """``agent`` went from ``old`` (paused for ``old_reason``) to its current state."""
        new, reason = agent.state, agent.reason
        for queue in agent.queues:
            by_state = self._census[queue]
            by_state[old] -= 1
            by_state[new] += 1
            if old is AgentState.PAUSED and old_reason is not None:
                self._paused[queue][old_reason] -= 1
            if new is AgentState.PAUSED and reason is not None:
                self._paused[queue][reason] += 1

    def login(self, agent: Agent) -> None:
        """Index a logging-in agent and compute the classes it is eligible for."""
        for queue in agent.queues:
            self._members.setdefault(queue, set()).add(agent)
            self._census.setdefault(queue, Counter())[agent.state] += 1
            self._paused.setdefault(queue, Counter())
            if agent.state is AgentState.PAUSED and agent.reason is not None:
                self._paused[queue][agent.reason] += 1
        for skill in agent.skills:
            self._by_skill.setdefault(skill, set()).add(agent)
        seen: set[int] = set()
        agent.demands = []
        for queue in agent.queues:
            for demand in self._by_queue.get(queue, ()):
                if id(demand) not in seen and demand.accepts(agent):
                    seen.add(id(demand))
                    agent.demands.append(demand)

    def logout(self, agent: Agent) -> None:
        """Remove a logged-out agent from the indexes."""
        for queue in agent.queues:
            if agent in self._members[queue]:
                self._members[queue].discard(agent)
                self._census[queue][agent.state] -= 1
                if agent.state is AgentState.PAUSED and agent.reason is not None:
                    self._paused[queue][agent.reason] -= 1
        for skill in agent.skills:
            self._by_skill[skill].discard(agent)
        agent.demands = []

    def demand(self, home: QueueConfig, routes: Routes) -> Demand:
        """The class for (home queue, route set), created and populated on first use."""
        key = (home.id, routes)
        found = self._demands.get(key)
        if found is not None:
            return found
        demand = Demand(home, routes)
        self._demands[key] = demand
        for queue in demand.queues:
            self._by_queue.setdefault(queue, []).append(demand)
        eligible: set[Agent] = set()
        for route in routes:
            pools = [self._members.get(route.queue, set())]
            pools += [self._by_skill.get(req.skill, set()) for req in route.requirements]
            pools.sort(key=len)  # start from the rarest skill (or the queue, if smaller)
            eligible.update(a for a in pools[0].intersection(*pools[1:]) if route.accepts(a))
        for agent in sorted(eligible, key=lambda a: (a.ready_since, a.id)):  # deterministic tie order
            agent.demands.append(demand)
            if agent.parked:  # AVAILABLE and waiting: it must be findable from this class too
                self._push(agent, demand)
        return demand

    def best_call(self, agent: Agent, now: float) -> Call | None:
        """The call an agent becoming ready should take: best rank among its classes' heads."""
        best: Call | None = None
        best_rank: tuple[float, float, int] | None = None
        for demand in agent.demands:
            if not demand.live_calls:
                continue
            call = demand.head_call()
            if call is None:
                continue
            rank = call.static_rank if call.aging is None else call.rank(now)
            if best_rank is None or rank < best_rank:
                best, best_rank = call, rank
        return best

    def park(self, agent: Agent) -> None:
        """An AVAILABLE agent found no call: make it findable from every class it may serve."""
        agent.parked = True
        for demand in agent.demands:
            self._push(agent, demand)

    def unpark(self, agent: Agent) -> None:
        """The agent is no longer AVAILABLE: its heap entries are dead (epoch check), nothing to do."""
        agent.parked = False

    def _push(self, agent: Agent, demand: Demand) -> None:
        self._push_seq += 1
        demand.push_agent(agent, agent_key(demand.home.strategy, agent, demand, self._rng), self._push_seq)
