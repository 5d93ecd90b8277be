"""The agent's phone rules (FreeSWITCH mod_callcenter's model): delays after a no-answer, a reject or a
busy answer, and ``max_no_answer`` putting the agent on a break. Time is stepped by hand."""

from __future__ import annotations

import pytest

from acd import (
    AgentConfig,
    AgentId,
    AgentState,
    Answer,
    CallId,
    CallRequeued,
    ConfigurationError,
    Hangup,
    LoginAgent,
    OfferCall,
    QueueId,
    Reject,
    RequeueReason,
    RingNoAnswer,
    SetNotReady,
    SetReady,
    TimerId,
)

from .conftest import Desk, of, queue

A, B = AgentId("a"), AgentId("b")


def phone_desk(*, no_answer_reason: str | None = None, reject_reason: str | None = None, **rules: object) -> Desk:
    d = Desk(queue("q", no_answer_reason=no_answer_reason, reject_reason=reject_reason, ring_timeout_s=10.0))
    config = AgentConfig(id=A, queues=frozenset({QueueId("q")}), **rules)  # type: ignore[arg-type]
    d.do(LoginAgent(agent=config, ready=True))
    return d


def test_no_answer_delay_passes_the_ready_agent_over_until_it_ends() -> None:
    d = phone_desk(no_answer_delay_s=30.0)
    d.enqueue("c1", "q")
    d.offer()
    out = d.advance(10)  # ring timeout
    assert of(out, CallRequeued)[0].reason is RequeueReason.NO_ANSWER
    assert d.router.agent_state(A) == (AgentState.AVAILABLE, None)  # ready, yet not offered the call again
    assert of(out, OfferCall) == []
    assert d.router.get_timer() == 40.0
    assert of(d.advance(29.9), OfferCall) == []
    offer = of(d.advance(0.1), OfferCall)
    assert [(o.agent_id, o.call_id) for o in offer] == [(A, "c1")]
    assert d.now == 40.0


def test_without_a_delay_the_ready_agent_gets_the_call_again_at_once() -> None:
    d = phone_desk()  # today's behaviour (no_answer_reason None: back to ready)
    d.enqueue("c1", "q")
    d.advance(10)
    assert [o.agent_id for o in of(d.out, OfferCall)] == [A]


def test_another_agent_takes_the_call_during_the_delay() -> None:
    d = phone_desk(no_answer_delay_s=30.0)
    d.login("b", ["q"], ready=False)
    d.enqueue("c1", "q")
    d.advance(10)
    d.do(SetReady(agent_id=B))
    assert d.offer().agent_id == B
    d.do(Answer(offer_id=d.offer().offer_id))
    d.enqueue("c2", "q")  # a waits out its delay even though a call is waiting
    assert of(d.out, OfferCall) == []
    assert of(d.advance(29.9), OfferCall) == []
    assert of(d.advance(0.1), OfferCall)[0].agent_id == A


def test_a_delay_outlasts_a_pause_and_a_manual_ready() -> None:
    d = phone_desk(reject_delay_s=20.0)
    d.enqueue("c1", "q")
    d.do(Reject(offer_id=d.offer().offer_id))
    assert d.router.agent_state(A) == (AgentState.AVAILABLE, None)
    d.now = 5
    d.do(SetNotReady(agent_id=A, reason="break"))
    d.now = 8
    assert of(d.do(SetReady(agent_id=A)), OfferCall) == []  # still inside the 20 s
    assert of(d.advance(12), OfferCall)[0].agent_id == A
    assert d.now == 20.0


@pytest.mark.parametrize(("busy", "reason", "wait"), [(True, RequeueReason.BUSY, 5.0),
                                                      (False, RequeueReason.REJECTED, 50.0)])
def test_busy_and_reject_have_their_own_delays(busy: bool, reason: RequeueReason, wait: float) -> None:
    d = phone_desk(busy_delay_s=5.0, reject_delay_s=50.0)
    d.enqueue("c1", "q")
    out = d.do(Reject(offer_id=d.offer().offer_id, busy=busy))
    assert of(out, CallRequeued)[0].reason is reason
    assert of(d.advance(wait - 0.5), OfferCall) == []
    assert of(d.advance(0.5), OfferCall)[0].agent_id == A


def test_busy_keeps_the_queues_reject_reason() -> None:
    d = phone_desk(reject_reason="rejected")
    d.enqueue("c1", "q")
    d.do(Reject(offer_id=d.offer().offer_id, busy=True))
    assert d.router.agent_state(A) == (AgentState.PAUSED, "rejected")


def test_max_no_answer_puts_the_agent_on_a_break_after_consecutive_no_answers() -> None:
    d = phone_desk(max_no_answer=3, max_no_answer_reason="lunch")
    d.enqueue("c1", "q")
    d.advance(10)  # 1st no-answer: ready again, offered again at once
    d.do(RingNoAnswer(offer_id=d.offer().offer_id))  # 2nd (the phone said so)
    assert d.router.agent_state(A)[0] is AgentState.RESERVED
    d.advance(10)  # 3rd
    assert d.router.agent_state(A) == (AgentState.PAUSED, "lunch")
    assert of(d.out, OfferCall) == []
    d.do(SetReady(agent_id=A))  # back from the break: the count starts again
    d.advance(10)
    d.advance(10)
    assert d.router.agent_state(A)[0] is AgentState.RESERVED


def test_an_answered_call_resets_the_no_answer_count() -> None:
    d = phone_desk(max_no_answer=2)
    d.enqueue("c1", "q")
    d.advance(10)
    d.do(Answer(offer_id=d.offer().offer_id))
    d.do(Hangup(call_id=CallId("c1")))
    d.enqueue("c2", "q")
    d.advance(10)  # one no-answer since the answer: still under 2
    assert d.router.agent_state(A)[0] is AgentState.RESERVED
    d.advance(10)
    assert d.router.agent_state(A) == (AgentState.PAUSED, "break")


def test_rejects_do_not_count_as_no_answers() -> None:
    d = phone_desk(max_no_answer=1, reject_reason=None)
    d.enqueue("c1", "q")
    d.do(Reject(offer_id=d.offer().offer_id))
    assert d.router.agent_state(A)[0] is AgentState.RESERVED  # offered again at once


def test_max_no_answer_wins_over_the_queues_no_answer_reason() -> None:
    d = phone_desk(no_answer_reason="no answer", max_no_answer=1, max_no_answer_reason="break")
    d.enqueue("c1", "q")
    d.advance(10)
    assert d.router.agent_state(A) == (AgentState.PAUSED, "break")


def test_the_delay_timer_dies_when_the_agent_leaves_ready() -> None:
    d = phone_desk(no_answer_delay_s=30.0)
    d.enqueue("c1", "q")
    d.advance(10)
    assert d.router.get_timer() == 40.0
    d.do(SetNotReady(agent_id=A, reason="break"))
    assert d.router.get_timer() is None
    assert TimerId.OFFER_DELAY.value == "offer_delay"


@pytest.mark.parametrize("field", ["no_answer_delay_s", "reject_delay_s", "busy_delay_s"])
@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_bad_delays_are_refused(field: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match=field):
        AgentConfig(id=A, **{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1, True, 1.5])
def test_bad_max_no_answer_is_refused(value: object) -> None:
    with pytest.raises(ConfigurationError, match="max_no_answer"):
        AgentConfig(id=A, max_no_answer=value)  # type: ignore[arg-type]
