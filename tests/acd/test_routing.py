"""Routing rules: priority bands, longest wait, aging, skill levels, strategies, escalation, limits."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from acd import (
    AgentConfig,
    AgentId,
    Answer,
    CallEscalated,
    CallExited,
    CallId,
    CallQueued,
    ExitCall,
    ExitReason,
    Hangup,
    LoginAgent,
    OfferCall,
    OverflowAction,
    OverflowRule,
    QueueId,
    Reject,
    RoutingStrategy,
    SetReady,
    SkillName,
)

from .conftest import Desk, of, queue, req


def test_call_goes_to_ready_agent_with_the_skill_level() -> None:
    d = Desk(queue("sales", req("sales", 5)))
    d.login("low", ["sales"], sales=4)
    d.login("high", ["sales"], sales=5)
    d.enqueue("c1", "sales")
    assert d.offer().agent_id == "high"


def test_call_waits_when_nobody_qualifies_then_goes_to_agent_becoming_ready() -> None:
    d = Desk(queue("sales", req("sales", 5)))
    d.login("low", ["sales"], sales=2)
    assert of(d.enqueue("c1", "sales"), OfferCall) == []
    d.login("high", ["sales"], ready=False, sales=7)
    assert of(d.out, OfferCall) == []
    d.do(SetReady(agent_id=AgentId("high")))
    assert d.offer().call_id == "c1"


def test_agent_must_be_member_of_the_queue() -> None:
    d = Desk(queue("sales", req("sales")), queue("support", req("sales")))
    d.login("a", ["support"], sales=9)
    assert of(d.enqueue("c1", "sales"), OfferCall) == []


def test_call_skills_add_to_queue_skills() -> None:
    d = Desk(queue("sales", req("sales")))
    d.login("en", ["sales"], sales=5)
    d.login("fr", ["sales"], sales=5, french=3)
    d.enqueue("c1", "sales", 0, req("french", 2))
    assert d.offer().agent_id == "fr"


def test_highest_priority_first_then_longest_waiting() -> None:
    d = Desk(queue("sales"))
    d.enqueue("old", "sales", 0)
    d.now = 1
    d.enqueue("vip", "sales", 10)
    d.now = 2
    d.enqueue("new", "sales", 0)
    order = []
    for i in range(3):
        d.login(f"a{i}", ["sales"])
        order.append(d.offer().call_id)
    assert order == ["vip", "old", "new"]


def test_priority_aging_lets_an_old_call_overtake() -> None:
    d = Desk(queue("sales", priority_aging_s=10.0))
    d.enqueue("old", "sales", 0)
    d.now = 35.0  # "old" has aged by 3.5 steps
    d.enqueue("p3", "sales", 3)
    d.login("a", ["sales"])
    assert d.offer().call_id == "old"


def test_priority_across_queues_for_a_shared_agent() -> None:
    d = Desk(queue("sales"), queue("support"))
    d.enqueue("s", "sales", 1)
    d.enqueue("t", "support", 5)
    d.login("a", ["sales", "support"])
    assert d.offer().call_id == "t"


def _two_ready(strategy: RoutingStrategy, seed: int = 1) -> Desk:
    d = Desk(queue("q", req("x"), strategy=strategy), seed=seed)
    d.login("a", ["q"], x=2)
    d.now = 5
    d.login("b", ["q"], x=9)
    d.now = 10
    return d


def test_longest_idle_is_default() -> None:
    d = _two_ready(RoutingStrategy.LONGEST_IDLE)
    d.enqueue("c", "q")
    assert d.offer().agent_id == "a"


def test_best_skill_picks_highest_level() -> None:
    d = _two_ready(RoutingStrategy.BEST_SKILL)
    d.enqueue("c", "q")
    assert d.offer().agent_id == "b"


def test_least_calls_today() -> None:
    d = Desk(queue("q", strategy=RoutingStrategy.LEAST_CALLS))
    d.login("a", ["q"])
    d.enqueue("c1", "q")
    d.do(Answer(offer_id=d.offer().offer_id))
    d.do(Hangup(call_id=CallId("c1")))  # a: 1 call, ready again (wrap_up_s=0) and now the longest idle
    d.now = 1
    d.login("b", ["q"])
    d.enqueue("c2", "q")
    assert d.offer().agent_id == "b"


def test_round_robin_takes_turns() -> None:
    d = Desk(queue("q", strategy=RoutingStrategy.ROUND_ROBIN))
    for name in "abc":
        d.now += 1
        d.login(name, ["q"])
    served = []
    for i in range(6):
        d.now += 1
        d.enqueue(f"c{i}", "q")
        offer = d.offer()
        served.append(offer.agent_id)
        d.do(Answer(offer_id=offer.offer_id))
        d.do(Hangup(call_id=offer.call_id))
    assert served == ["a", "b", "c", "a", "b", "c"]


def test_weighted_random_follows_weights() -> None:
    wins: Counter[str] = Counter()
    for seed in range(400):
        d = Desk(queue("q", strategy=RoutingStrategy.WEIGHTED_RANDOM), seed=seed)
        for name, weight in (("heavy", 3.0), ("light", 1.0)):
            d.do(LoginAgent(agent=AgentConfig(id=AgentId(name), queues=frozenset({QueueId("q")}), weight=weight),
                            ready=True))
        d.enqueue("c", "q")
        wins[d.offer().agent_id] += 1
    assert 0.65 < wins["heavy"] / 400 < 0.85


def test_relax_level_after_wait() -> None:
    d = Desk(queue("q", req("x", 8), overflow=(OverflowRule(after_s=30, action=OverflowAction.RELAX_LEVEL,
                                                             relax_by=3),)))
    d.login("a", ["q"], x=5)
    d.enqueue("c", "q")
    assert of(d.advance(29.9), OfferCall) == []
    out = d.advance(0.1)
    assert of(out, CallEscalated)[0].rule_index == 0
    assert d.offer().agent_id == "a"


def test_add_secondary_skill_after_wait() -> None:
    rule = OverflowRule(after_s=10, action=OverflowAction.ADD_SKILL, skill=SkillName("general"), min_level=2)
    d = Desk(queue("q", req("billing"), overflow=(rule,)))
    d.login("g", ["q"], general=3)
    d.enqueue("c", "q")
    assert of(d.out, OfferCall) == []
    d.advance(10)
    assert d.offer().agent_id == "g"


def test_add_queue_after_wait() -> None:
    rule = OverflowRule(after_s=20, action=OverflowAction.ADD_QUEUE, target_queue=QueueId("backup"))
    d = Desk(queue("main", req("x"), overflow=(rule,)), queue("backup", req("y")))
    d.login("b", ["backup"], y=1)
    d.enqueue("c", "main")
    d.advance(20)
    offer = d.offer()
    assert (offer.agent_id, offer.queue_id) == ("b", "main")


@pytest.mark.parametrize(("action", "reason"), [(OverflowAction.VOICEMAIL, ExitReason.OVERFLOW_VOICEMAIL),
                                                (OverflowAction.CALLBACK, ExitReason.OVERFLOW_CALLBACK)])
def test_overflow_exit(action: OverflowAction, reason: ExitReason) -> None:
    d = Desk(queue("q", overflow=(OverflowRule(after_s=60, action=action),)))
    d.enqueue("c", "q")
    out = d.advance(60)
    assert [type(o) for o in out] == [CallExited, ExitCall]
    assert of(out, ExitCall)[0].reason is reason
    assert of(out, CallExited)[0].wait_s == 60


def test_max_wait_exit_and_no_double_end() -> None:
    d = Desk(queue("q", max_wait_s=120))
    d.enqueue("c", "q")
    assert d.advance(119) == []
    out = d.advance(1)
    assert of(out, ExitCall)[0].reason is ExitReason.MAX_WAIT
    assert d.router.get_timer() is None
    d.login("a", ["q"])
    assert of(d.out, OfferCall) == []


def test_max_queue_size_refuses_with_exit() -> None:
    d = Desk(queue("q", max_size=2))
    d.enqueue("c1", "q")
    d.enqueue("c2", "q")
    out = d.enqueue("c3", "q")
    assert of(out, CallQueued) == []
    assert of(out, ExitCall)[0].reason is ExitReason.QUEUE_FULL
    snap = d.router.queue_stats(QueueId("q"), d.now)
    assert snap.waiting == 2 and snap.today.flowouts == 1


def test_hard_limit_exits_name_their_targets() -> None:
    d = Desk(queue("q", max_wait_s=30, max_size=1, max_wait_target="later", full_target="busy"))
    d.enqueue("c1", "q")
    full = d.enqueue("c2", "q")
    assert of(full, ExitCall)[0].target == "busy" and of(full, CallExited)[0].target == "busy"
    out = d.advance(30)
    assert (of(out, ExitCall)[0].reason, of(out, ExitCall)[0].target) == (ExitReason.MAX_WAIT, "later")
    assert of(out, CallExited)[0].target == "later"


def test_max_wait_reached_during_an_offer_exits_to_its_target_when_the_offer_fails() -> None:
    d = Desk(queue("q", max_wait_s=10, ring_timeout_s=15, max_wait_target="later"))
    d.login("a", ["q"])
    d.enqueue("c", "q")
    offer = d.offer()
    assert of(d.advance(12), ExitCall) == []  # the limit passes while the phone rings
    out = d.do(Reject(offer_id=offer.offer_id))
    assert (of(out, ExitCall)[0].reason, of(out, ExitCall)[0].target) == (ExitReason.MAX_WAIT, "later")


def test_without_targets_the_hard_limits_name_none() -> None:
    d = Desk(queue("q", max_wait_s=5, max_size=1))
    d.enqueue("c1", "q")
    assert of(d.enqueue("c2", "q"), ExitCall)[0].target is None
    assert of(d.advance(5), ExitCall)[0].target is None


def test_position_and_expected_wait() -> None:
    d = Desk(queue("q", default_handle_s=120.0))
    d.enqueue("a", "q", 0)
    d.enqueue("b", "q", 0)
    d.enqueue("vip", "q", 10)
    assert d.router.position(CallId("vip"), 0).position == 1
    assert d.router.position(CallId("b"), 0).position == 3
    assert d.router.position(CallId("b"), 0).expected_wait_s is None  # nobody staffed
    d.login("x", ["q"], ready=False)
    d.do(SetReady(agent_id=AgentId("x")))  # takes "vip"
    est = d.router.position(CallId("b"), 0)
    assert est.position == 2 and est.expected_wait_s == pytest.approx(240.0)
    assert d.router.position(CallId("vip"), 0).position == 0


def test_many_calls_random_order_served_by_priority_then_time() -> None:
    rng = random.Random(3)
    d = Desk(queue("q"))
    expected = []
    for i in range(200):
        d.now = float(i)
        prio = rng.choice([0, 1, 5, 10])
        d.enqueue(f"c{i}", "q", prio)
        expected.append((-prio, i, f"c{i}"))
    served = []
    for i in range(200):
        d.login(f"a{i}", ["q"])
        served.append(d.offer().call_id)
    assert served == [c for *_, c in sorted(expected)]
