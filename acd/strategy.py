"""Agent selection strategies: which eligible ready agent gets the call.

Each strategy is a *static* heap key computed when the agent becomes ready (smaller wins), so a
demand class keeps its ready agents in a heap and picks in O(log n):

* ``LONGEST_IDLE`` (default): earliest ``ready_since``.
* ``LEAST_CALLS``: fewest calls answered today, then longest idle.
* ``BEST_SKILL``: highest sum of levels in the skills of the best matching route, then longest idle.
* ``ROUND_ROBIN``: the agent offered a call least recently (a global offer sequence), i.e. agents
  take turns whatever their idle time.
* ``WEIGHTED_RANDOM``: Efraimidis–Spirakis keys ``Exp(weight)``; the minimum of independent
  exponential draws picks agent *i* with probability ``w_i / Σ w``. The random source is
  injected (``random.Random``) so tests are deterministic.
"""

from __future__ import annotations

import random
from typing import assert_never

from acd.agent import Agent
from acd.config import RoutingStrategy
from acd.queue import Demand


def agent_key(strategy: RoutingStrategy, agent: Agent, demand: Demand, rng: random.Random) -> tuple[float, float]:
    """The heap key of ``agent`` in ``demand`` under ``strategy`` (smaller is picked first)."""
    match strategy:
        case RoutingStrategy.LONGEST_IDLE:
            return (agent.ready_since, 0.0)
        case RoutingStrategy.LEAST_CALLS:
            return (float(agent.calls_today), agent.ready_since)
        case RoutingStrategy.BEST_SKILL:
            best = max((r.skill_score(agent) for r in demand.routes if r.accepts(agent)), default=0)
            return (float(-best), agent.ready_since)
        case RoutingStrategy.ROUND_ROBIN:
            return (float(agent.last_offer_seq), agent.ready_since)
        case RoutingStrategy.WEIGHTED_RANDOM:
            return (rng.expovariate(agent.config.weight), 0.0)
        case _:
            assert_never(strategy)
