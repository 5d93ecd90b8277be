"""Offer lifecycle and its races, with time stepped by hand."""

from __future__ import annotations

import pytest

from acd import (
    AgentId,
    AgentState,
    AgentStateChanged,
    Answer,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallId,
    CallRequeued,
    CallState,
    CancelOffer,
    CancelReason,
    EndWrapUp,
    Hangup,
    Hold,
    LogoutAgent,
    OfferCall,
    QueueId,
    Reject,
    RequeueReason,
    Ringing,
    RingNoAnswer,
    SetReady,
    StaleOfferError,
    Unhold,
    UnknownCallError,
)

from .conftest import Desk, of, queue

A, B, C1 = AgentId("a"), AgentId("b"), CallId("c1")


def ringing_desk(**kwargs: object) -> tuple[Desk, OfferCall]:
    d = Desk(queue("q", **kwargs))
    d.login("a", ["q"])
    d.enqueue("c1", "q")
    offer = d.offer()
    d.do(Ringing(offer_id=offer.offer_id))
    return d, offer


def test_answer_within_ring_timeout() -> None:
    d, offer = ringing_desk()
    d.now = 14.9
    out = d.do(Answer(offer_id=offer.offer_id))
    assert of(out, CallAnswered)[0].wait_s == pytest.approx(14.9)
    assert d.router.agent_state(A) == (AgentState.ON_CALL, None)
    assert d.router.get_timer() is None  # the ring timer is dead and dropped


def test_ring_timeout_requeues_at_head_and_pauses_agent() -> None:
    d, offer = ringing_desk()
    d.now = 5
    d.enqueue("c2", "q")  # same priority, arrived later
    assert d.router.get_timer() == 15.0
    out = d.advance(10)
    assert of(out, CancelOffer)[0].reason is CancelReason.RING_TIMEOUT
    assert of(out, CallRequeued)[0].reason is RequeueReason.NO_ANSWER
    assert d.router.agent_state(A) == (AgentState.PAUSED, "no answer")
    d.login("b", ["q"])
    assert d.offer().call_id == "c1"  # back at the head of its band


def test_answer_after_timeout_is_stale_and_changes_nothing() -> None:
    d, offer = ringing_desk()
    d.advance(15)
    with pytest.raises(StaleOfferError) as info:
        d.do(Answer(offer_id=offer.offer_id))
    assert info.value.code == "acd.offer_stale"
    assert d.router.call_state(C1) is CallState.QUEUED


def test_late_answer_of_old_offer_does_not_answer_new_offer_to_same_agent() -> None:
    d, first = ringing_desk(no_answer_reason=None)  # agent stays ready after no answer
    d.advance(15)
    second = d.offer()
    assert (second.agent_id, second.call_id) == ("a", "c1") and second.offer_id != first.offer_id
    with pytest.raises(StaleOfferError):
        d.do(Answer(offer_id=first.offer_id))
    d.do(Answer(offer_id=second.offer_id))
    assert d.router.agent_state(A)[0] is AgentState.ON_CALL


def test_ring_no_answer_reported_by_phone() -> None:
    d, offer = ringing_desk(no_answer_reason="missed")
    out = d.do(RingNoAnswer(offer_id=offer.offer_id))
    assert of(out, CancelOffer) == []  # the phone already gave up
    assert d.router.agent_state(A) == (AgentState.PAUSED, "missed")
    assert d.advance(15) == []  # the ring timer died with the offer
    with pytest.raises(StaleOfferError):
        d.do(Answer(offer_id=offer.offer_id))


def test_reject_requeues_and_offers_next_agent() -> None:
    d, offer = ringing_desk()
    d.login("b", ["q"], ready=False)
    d.do(Reject(offer_id=offer.offer_id))
    assert d.router.agent_state(A) == (AgentState.PAUSED, "rejected")
    d.do(SetReady(agent_id=B))
    assert d.offer().agent_id == "b"


def test_hangup_while_reserved() -> None:
    d = Desk(queue("q"))
    d.login("a", ["q"])
    d.enqueue("c1", "q")
    d.now = 2
    out = d.do(Hangup(call_id=C1))
    assert of(out, CancelOffer)[0].reason is CancelReason.CALLER_HUNG_UP
    assert of(out, CallAbandoned)[0].agent_id == "a"
    assert d.router.agent_state(A)[0] is AgentState.AVAILABLE
    assert d.router.call_state(C1) is CallState.ENDED


def test_hangup_while_ringing_gives_agent_the_next_call() -> None:
    d, offer = ringing_desk()
    d.enqueue("c2", "q")
    d.do(Hangup(call_id=C1))
    assert d.offer().call_id == "c2"
    with pytest.raises(StaleOfferError):
        d.do(Answer(offer_id=offer.offer_id))


def test_logout_while_ringing_requeues() -> None:
    d, offer = ringing_desk()
    d.login("b", ["q"], ready=False)
    out = d.do(LogoutAgent(agent_id=A))
    assert of(out, CancelOffer)[0].reason is CancelReason.AGENT_LOGGED_OUT
    assert of(out, CallRequeued)[0].reason is RequeueReason.AGENT_LOGGED_OUT
    assert d.router.agent_state(A)[0] is AgentState.LOGGED_OUT
    assert d.router.call_state(C1) is CallState.QUEUED
    d.do(SetReady(agent_id=B))
    assert d.offer().call_id == "c1"


def test_logout_while_reserved_then_requeue_goes_straight_to_ready_agent() -> None:
    d = Desk(queue("q"))
    d.login("a", ["q"])
    d.enqueue("c1", "q")
    d.login("b", ["q"])
    out = d.do(LogoutAgent(agent_id=A))
    assert [o.agent_id for o in of(out, OfferCall)] == ["b"]


def test_talk_hold_wrap_up_auto_timeout() -> None:
    d, offer = ringing_desk(wrap_up_s=30.0)
    d.do(Answer(offer_id=offer.offer_id))
    d.now = 10
    d.do(Hold(agent_id=A))
    d.now = 16
    d.do(Unhold(agent_id=A))
    d.now = 20
    out = d.do(Hangup(call_id=C1))
    ended = of(out, CallEnded)[0]
    assert (ended.talk_s, ended.hold_s) == (20, 6)
    assert d.router.agent_state(A)[0] is AgentState.WRAP_UP
    d.enqueue("c2", "q")
    assert of(d.out, OfferCall) == []
    assert d.router.get_timer() == 50
    d.advance(30)
    assert d.offer().call_id == "c2"


def test_end_wrap_up_early_kills_timer() -> None:
    d, offer = ringing_desk(wrap_up_s=30.0)
    d.do(Answer(offer_id=offer.offer_id))
    d.do(Hangup(call_id=C1))
    d.now = 3
    d.do(EndWrapUp(agent_id=A))
    assert d.router.agent_state(A)[0] is AgentState.AVAILABLE
    assert d.router.get_timer() is None


def test_manual_wrap_up_has_no_timer() -> None:
    d, offer = ringing_desk(wrap_up_s=None)
    d.do(Answer(offer_id=offer.offer_id))
    d.do(Hangup(call_id=C1))
    assert d.router.get_timer() is None
    d.advance(3600)
    assert d.router.agent_state(A)[0] is AgentState.WRAP_UP


@pytest.mark.parametrize("wrap_up_s", [30.0, None])
def test_the_move_into_wrap_up_carries_the_queues_wrap_up_time(wrap_up_s: float | None) -> None:
    d, offer = ringing_desk(wrap_up_s=wrap_up_s)
    answered = d.do(Answer(offer_id=offer.offer_id))
    assert [e.wrap_up_s for e in of(answered, AgentStateChanged)] == [None]  # on_call: not a wrap-up
    wrap = [e for e in of(d.do(Hangup(call_id=C1)), AgentStateChanged)]
    assert [(e.state, e.wrap_up_s, e.call_id) for e in wrap] == [(AgentState.WRAP_UP, wrap_up_s, C1)]
    assert [e.wrap_up_s for e in of(d.do(EndWrapUp(agent_id=A)), AgentStateChanged)] == [None]


def test_answer_straight_from_reserved_auto_answer() -> None:
    d = Desk(queue("q"))
    d.login("a", ["q"])
    d.enqueue("c1", "q")
    d.do(Answer(offer_id=d.offer().offer_id))
    assert d.router.agent_state(A)[0] is AgentState.ON_CALL


def test_answered_then_hangup_twice_is_unknown_call() -> None:
    d, offer = ringing_desk()
    d.do(Answer(offer_id=offer.offer_id))
    d.do(Hangup(call_id=C1))
    with pytest.raises(UnknownCallError):
        d.do(Hangup(call_id=C1))


def test_queue_stats_agents_by_state() -> None:
    d, _ = ringing_desk()
    d.login("b", ["q"], ready=False)
    snap = d.router.queue_stats(QueueId("q"), d.now)
    assert dict(snap.agents_by_state) == {AgentState.RINGING: 1, AgentState.PAUSED: 1}
    assert dict(snap.paused_by_reason) == {"login": 1}
