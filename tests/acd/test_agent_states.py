"""Agent state machine: every (state x request) pair is either a listed transition or an error."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from structlog.typing import EventDict

from acd import (
    AcdRequest,
    AgentId,
    AgentState,
    AgentStateChanged,
    Answer,
    CallId,
    DuplicateCallError,
    EndWrapUp,
    Enqueue,
    Hangup,
    Hold,
    IllegalTransitionError,
    InvalidRequestError,
    LoginAgent,
    LogoutAgent,
    QueueId,
    Ringing,
    SetNotReady,
    SetReady,
    Unhold,
    UnknownAgentError,
    UnknownQueueError,
)
from acd.agent import ALLOWED_FROM, TRANSITIONS, AgentAction

from .conftest import Desk, agent_cfg, of, queue

A = AgentId("a")


def desk_in(state: AgentState) -> Desk:
    """A desk whose agent "a" is in ``state`` (a 10 s wrap-up queue)."""
    d = Desk(queue("q", wrap_up_s=10.0))
    if state is AgentState.LOGGED_OUT:
        d.login("a", ["q"], ready=False)
        d.do(LogoutAgent(agent_id=A))
        return d
    d.login("a", ["q"], ready=state is not AgentState.PAUSED)
    if state in (AgentState.AVAILABLE, AgentState.PAUSED):
        return d
    d.enqueue("c", "q")
    offer = d.offer()
    if state is AgentState.RESERVED:
        return d
    d.do(Ringing(offer_id=offer.offer_id))
    if state is AgentState.RINGING:
        return d
    d.do(Answer(offer_id=offer.offer_id))
    if state is AgentState.ON_CALL:
        return d
    if state is AgentState.HELD:
        d.do(Hold(agent_id=A))
        return d
    d.do(Hangup(call_id=CallId("c")))
    assert state is AgentState.WRAP_UP
    return d


REQUESTS: dict[AgentAction, Callable[[], AcdRequest]] = {
    AgentAction.LOGOUT: lambda: LogoutAgent(agent_id=A),
    AgentAction.SET_READY: lambda: SetReady(agent_id=A),
    AgentAction.SET_NOT_READY: lambda: SetNotReady(agent_id=A, reason="lunch"),
    AgentAction.END_WRAP_UP: lambda: EndWrapUp(agent_id=A),
    AgentAction.HOLD: lambda: Hold(agent_id=A),
    AgentAction.UNHOLD: lambda: Unhold(agent_id=A),
}


@pytest.mark.parametrize("state", list(AgentState))
@pytest.mark.parametrize("action", list(REQUESTS))
def test_every_state_and_request(state: AgentState, action: AgentAction) -> None:
    d = desk_in(state)
    assert d.router.agent_state(A)[0] is state
    if state in ALLOWED_FROM[action]:
        out = d.do(REQUESTS[action]())
        changes = [o for o in of(out, AgentStateChanged) if o.agent_id == A]
        assert changes and changes[0].previous is state
        for change in changes:
            assert change.state in TRANSITIONS[change.previous]
            assert change.at == d.now
    else:
        with pytest.raises(IllegalTransitionError) as info:
            d.do(REQUESTS[action]())
        assert info.value.code == "acd.transition_illegal"
        assert d.router.agent_state(A)[0] is state


def test_login_twice_is_illegal() -> None:
    d = desk_in(AgentState.AVAILABLE)
    with pytest.raises(IllegalTransitionError):
        d.login("a", ["q"])


def test_relogin_keeps_daily_counter_and_new_skills() -> None:
    d = desk_in(AgentState.WRAP_UP)
    d.do(LogoutAgent(agent_id=A))
    d.login("a", ["q"], ready=False)
    assert d.router.agent_state(A) == (AgentState.PAUSED, "login")


def test_unknown_reason_code_is_invalid() -> None:
    d = desk_in(AgentState.AVAILABLE)
    with pytest.raises(InvalidRequestError):
        d.do(SetNotReady(agent_id=A, reason="nap"))


def test_pause_reason_change_is_a_transition() -> None:
    d = desk_in(AgentState.PAUSED)
    out = d.do(SetNotReady(agent_id=A, reason="training"))
    (change,) = of(out, AgentStateChanged)
    assert (change.previous_reason, change.reason) == ("login", "training")


def test_errors_for_unknown_things() -> None:
    d = desk_in(AgentState.AVAILABLE)
    with pytest.raises(UnknownAgentError):
        d.do(SetReady(agent_id=AgentId("ghost")))
    with pytest.raises(UnknownQueueError):
        d.do(Enqueue(call_id=CallId("x"), queue_id=QueueId("nope")))
    with pytest.raises(UnknownQueueError):
        d.do(LoginAgent(agent=agent_cfg("z", ["nope"])))
    d.enqueue("c", "q")
    with pytest.raises(DuplicateCallError):
        d.enqueue("c", "q")
    with pytest.raises(InvalidRequestError):
        Enqueue(call_id=CallId("y"), queue_id=QueueId("q"), priority=-1)


def test_state_changes_are_logged_once(_quiet_logs: list[EventDict]) -> None:
    d = desk_in(AgentState.AVAILABLE)
    names = [e["event"] for e in _quiet_logs]
    assert names.count("acd.agent.state_changed") == 1
    d.enqueue("c", "q")
    assert "acd.call.offered" in [e["event"] for e in _quiet_logs]
