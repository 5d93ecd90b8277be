"""ACD routing benchmark (a script, not collected by pytest).

    python tests/bench/bench_acd.py [--agents 10000] [--skills 200] [--waiting 50000] [--decisions 50000]

Storm scenario: every agent is busy and ``--waiting`` calls wait. Each measured step is one
agent finishing a call (``Hangup``, no wrap-up), which makes the router pick the best call among
everything that agent may take (one routing decision), then the ``Answer`` of that offer and one
new arrival to keep the backlog constant. It prints decisions/s and p50/p99 latency of the
decision step, plus the same for the opposite direction (calls arriving with many idle agents).
"""

from __future__ import annotations

import argparse
import gc
import logging
import random
import statistics
import sys
import time
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from acd import (  # noqa: E402
    AgentConfig,
    AgentId,
    Answer,
    CallId,
    Enqueue,
    Hangup,
    LoginAgent,
    OfferCall,
    QueueConfig,
    QueueId,
    Router,
    SkillName,
    SkillRequirement,
)

N_QUEUES = 100
N_LANGUAGES = 10


def build(args: argparse.Namespace, rng: random.Random) -> tuple[Router, list[AgentConfig]]:
    skills = [SkillName(f"s{i}") for i in range(args.skills)]
    topical, languages = skills[: args.skills - N_LANGUAGES], skills[args.skills - N_LANGUAGES:]
    queues = [QueueConfig(id=QueueId(f"q{i}"), skills=(SkillRequirement(skill=topical[i % len(topical)],
                                                                         min_level=rng.randint(1, 4)),))
              for i in range(N_QUEUES)]
    agents = []
    for a in range(args.agents):
        mine = rng.sample(range(N_QUEUES), 8)
        levels = {topical[i % len(topical)]: rng.randint(1, 10) for i in mine}
        levels |= {lang: rng.randint(1, 10) for lang in rng.sample(languages, 2)}
        levels |= {s: rng.randint(1, 10) for s in rng.sample(topical, 4)}
        agents.append(AgentConfig(id=AgentId(f"a{a}"), skills=levels, queues=frozenset(QueueId(f"q{i}") for i in mine)))
    return Router(queues, rng=random.Random(1)), agents


def call_request(n: int, rng: random.Random, args: argparse.Namespace) -> Enqueue:
    extra: tuple[SkillRequirement, ...] = ()
    if rng.random() < 0.2:
        extra = (SkillRequirement(skill=SkillName(f"s{args.skills - 1 - rng.randrange(N_LANGUAGES)}"), min_level=2),)
    return Enqueue(call_id=CallId(f"c{n}"), queue_id=QueueId(f"q{rng.randrange(N_QUEUES)}"),
                   priority=rng.choice((0, 0, 0, 0, 1, 5, 10)), skills=extra)


def pct(values: list[int], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--skills", type=int, default=200)
    parser.add_argument("--waiting", type=int, default=50_000)
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # as cti does
    rng = random.Random(args.seed)
    router, agents = build(args, rng)
    now = 0.0

    # Idle direction: every agent ready, calls arrive and each takes the best idle agent.
    t0 = time.perf_counter()
    for cfg in agents:
        router.handle(LoginAgent(agent=cfg, ready=True), now)
    setup_s = time.perf_counter() - t0
    talking: dict[AgentId, CallId] = {}
    arrive_lat: list[int] = []
    n = 0
    while len(talking) < len(agents) * 0.98 and n < len(agents) * 3:
        n += 1
        now += 0.001
        request = call_request(n, rng, args)
        t = time.perf_counter_ns()
        out = router.handle(request, now)
        arrive_lat.append(time.perf_counter_ns() - t)
        for o in out:
            if isinstance(o, OfferCall):
                router.handle(Answer(offer_id=o.offer_id), now)
                talking[o.agent_id] = o.call_id
    offered_on_arrival = len(talking)

    # Build the storm backlog.
    waiting = 0
    while waiting < args.waiting:
        n += 1
        now += 0.001
        out = router.handle(call_request(n, rng, args), now)
        offers = [o for o in out if isinstance(o, OfferCall)]
        for o in offers:
            router.handle(Answer(offer_id=o.offer_id), now)
            talking[o.agent_id] = o.call_id
        waiting += not offers

    # Storm direction: an agent hangs up and must pick the best of ~50k waiting calls.
    # Long-lived objects are moved out of the cyclic GC's sight, as a server does after start-up.
    gc.collect()
    gc.freeze()
    busy = list(talking)
    decide_lat: list[int] = []
    assignments = 0
    t_start = time.perf_counter()
    for _ in range(args.decisions):
        now += 0.001
        agent_id = busy[rng.randrange(len(busy))]
        call_id = talking.get(agent_id)
        if call_id is None:
            continue
        t = time.perf_counter_ns()
        out = router.handle(Hangup(call_id=call_id), now)
        decide_lat.append(time.perf_counter_ns() - t)
        del talking[agent_id]
        for o in out:
            if isinstance(o, OfferCall):
                assignments += 1
                router.handle(Answer(offer_id=o.offer_id), now)
                talking[o.agent_id] = o.call_id
        n += 1
        for o in router.handle(call_request(n, rng, args), now):  # keep the backlog steady
            if isinstance(o, OfferCall):
                assignments += 1
                router.handle(Answer(offer_id=o.offer_id), now)
                talking[o.agent_id] = o.call_id
    storm_s = time.perf_counter() - t_start

    print(f"agents={args.agents} skills={args.skills} queues={N_QUEUES} waiting={args.waiting} "
          f"(login of all agents: {setup_s:.2f} s)")
    print(f"arrivals with idle agents: {len(arrive_lat)} decisions, {offered_on_arrival} offered, "
          f"p50={pct(arrive_lat, 0.5):.1f} us p99={pct(arrive_lat, 0.99):.1f} us "
          f"mean={statistics.fmean(arrive_lat) / 1000:.1f} us -> {1e9 / statistics.fmean(arrive_lat):,.0f}/s")
    print(f"storm (agent frees, picks best of the backlog): {len(decide_lat)} decisions, {assignments} assignments, "
          f"p50={pct(decide_lat, 0.5):.1f} us p99={pct(decide_lat, 0.99):.1f} us "
          f"mean={statistics.fmean(decide_lat) / 1000:.1f} us -> {1e9 / statistics.fmean(decide_lat):,.0f} decisions/s")
    print(f"storm loop incl. Answer and a new arrival per step: {assignments / storm_s:,.0f} assignments/s "
          f"(calls still waiting: {router.queue_stats(QueueId('q0'), now).waiting} in q0)")


if __name__ == "__main__":
    main()
