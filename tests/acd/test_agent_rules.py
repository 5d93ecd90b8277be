"""The agent state rules, checked against an independent statement of them.

tests/acd/test_agent_states.py derives its expected answers from the router's own tables
(``ALLOWED_FROM``/``TRANSITIONS``), so a wrong table would pass there. Here the rules are written
out again, in the words of the floor, without looking at those tables; each (state, request) pair
is checked against the router. The cases that would give an agent two calls are pinned as
examples of their own (they must fail every run, not one run in three of a random model).

The rules:
- A call reserved for an agent (RESERVED), ringing its phone (RINGING), talked on (ON_CALL) or held
  (HELD) belongs to that agent: it can neither go ready nor not-ready until the call is over.
- Going ready is for an agent who is not ready (PAUSED) or in after-call work (WRAP_UP); a ready
  agent is already ready; a logged-out agent must log in first.
- Going not ready (or changing the not-ready reason) is for an agent who is ready, not ready, or in
  after-call work.
- Logging out is refused while the agent is talking or holding a call; allowed otherwise for a
  logged-in agent (a reserved or ringing offer is withdrawn and the call goes back to the queue).
- After-call work ends early only from WRAP_UP; hold only from ON_CALL; unhold only from HELD.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from acd import (
    AcdRequest,
    AgentId,
    AgentState,
    CallId,
    CancelOffer,
    EndWrapUp,
    Hold,
    IllegalTransitionError,
    LogoutAgent,
    OfferCall,
    SetNotReady,
    SetReady,
    Unhold,
)

from .conftest import Desk, of, queue
from .test_agent_states import desk_in

A = AgentId("a")
S = AgentState

# request name -> the states it is allowed from (written from the rules above, not from acd.agent)
RULES: dict[str, set[AgentState]] = {
    "ready": {S.PAUSED, S.WRAP_UP},
    "not_ready": {S.AVAILABLE, S.PAUSED, S.WRAP_UP},
    "logout": {S.AVAILABLE, S.PAUSED, S.WRAP_UP, S.RESERVED, S.RINGING},
    "end_wrap_up": {S.WRAP_UP},
    "hold": {S.ON_CALL},
    "unhold": {S.HELD},
}

REQUESTS: dict[str, Callable[[], AcdRequest]] = {
    "ready": lambda: SetReady(agent_id=A),
    "not_ready": lambda: SetNotReady(agent_id=A, reason="lunch"),
    "logout": lambda: LogoutAgent(agent_id=A),
    "end_wrap_up": lambda: EndWrapUp(agent_id=A),
    "hold": lambda: Hold(agent_id=A),
    "unhold": lambda: Unhold(agent_id=A),
}


@pytest.mark.parametrize("state", list(AgentState))
@pytest.mark.parametrize("request_name", list(RULES))
def test_each_state_and_request_follows_the_written_rules(state: AgentState, request_name: str) -> None:
    d = desk_in(state)
    if state in RULES[request_name]:
        d.do(REQUESTS[request_name]())
    else:
        with pytest.raises(IllegalTransitionError):
            d.do(REQUESTS[request_name]())
        assert d.router.agent_state(A)[0] is state


@pytest.mark.parametrize("state", [S.RESERVED, S.RINGING, S.ON_CALL, S.HELD])
def test_ready_while_a_call_is_the_agents_is_refused(state: AgentState) -> None:
    """The double offer: an agent reserved for one call going ready would be offered a second."""
    d = desk_in(state)
    with pytest.raises(IllegalTransitionError):
        d.do(SetReady(agent_id=A))
    assert d.router.agent_state(A)[0] is state
    out = d.enqueue("c2", "q")  # a second call waits; it must not be offered to the busy agent
    assert not [o for o in of(out, OfferCall) if o.agent_id == A]


def test_ready_while_reserved_then_a_second_call_is_never_offered() -> None:
    d = Desk(queue("q", wrap_up_s=10.0))
    d.login("a", ["q"], ready=True)
    d.enqueue("c1", "q")
    first = d.offer()
    assert d.router.agent_state(A)[0] is S.RESERVED
    with pytest.raises(IllegalTransitionError):
        d.do(SetReady(agent_id=A))
    out = d.enqueue("c2", "q")
    assert of(out, OfferCall) == []
    assert d.router.agent_call(A) == CallId("c1") and first.call_id == CallId("c1")


def test_logout_while_reserved_withdraws_the_offer() -> None:
    d = desk_in(S.RESERVED)
    out = d.do(LogoutAgent(agent_id=A))
    assert of(out, CancelOffer) and d.router.agent_state(A)[0] is S.LOGGED_OUT
