"""The agent state machine (domain spec §0, agent state stream).

Transition table (voice, one call at a time)::

    LOGGED_OUT ─login─► PAUSED(login) | AVAILABLE
    AVAILABLE  ─offer─► RESERVED ─ringing─► RINGING ─answer─► ON_CALL ⇄ HELD
                                 └────────── answer ─────────┘     │
    RESERVED / RINGING ─caller hung up─► AVAILABLE                 │ call ended
    RESERVED / RINGING ─no answer / reject─► PAUSED(reason) | AVAILABLE
    ON_CALL / HELD ─call ended─► WRAP_UP | AVAILABLE ◄─end / timeout─ WRAP_UP
    AVAILABLE / PAUSED / WRAP_UP / RESERVED / RINGING ─logout─► LOGGED_OUT
    AVAILABLE / PAUSED / WRAP_UP ─not ready─► PAUSED(reason)

Every other step raises ``IllegalTransitionError``: there is no silent no-op (setting
AVAILABLE while AVAILABLE is refused too; changing the reason while PAUSED is a real transition
PAUSED → PAUSED). Each accepted step returns one ``AgentStateChanged`` with the time passed in,
which is what adherence and the agent KPIs (§1.6) are computed from. ``Agent.set_state`` is the
only place that changes ``state``; the router's ``_move`` is the only caller and logs it.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from acd.config import AgentConfig, AgentId, CallId, QueueId, SkillName
from acd.errors import IllegalTransitionError
from acd.events import AgentStateChanged

if TYPE_CHECKING:
    from acd.queue import Demand

class AgentState(enum.Enum):
    """Voice agent states; ``AVAILABLE`` is "ready", ``PAUSED`` is "not ready" with a reason."""

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RESERVED = "reserved"
    RINGING = "ringing"
    ON_CALL = "on_call"
    HELD = "held"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"

    # Members are singletons and compare by identity: hash them so too (Enum's own __hash__ is Python code, run
    # for every state change, in the transition table and the queue census).
    __hash__ = object.__hash__


_S = AgentState
TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    _S.LOGGED_OUT: frozenset({_S.AVAILABLE, _S.PAUSED}),
    _S.AVAILABLE: frozenset({_S.RESERVED, _S.PAUSED, _S.LOGGED_OUT}),
    _S.RESERVED: frozenset({_S.RINGING, _S.ON_CALL, _S.AVAILABLE, _S.PAUSED, _S.LOGGED_OUT}),
    _S.RINGING: frozenset({_S.ON_CALL, _S.AVAILABLE, _S.PAUSED, _S.LOGGED_OUT}),
    _S.ON_CALL: frozenset({_S.HELD, _S.WRAP_UP, _S.AVAILABLE}),
    _S.HELD: frozenset({_S.ON_CALL, _S.WRAP_UP, _S.AVAILABLE}),
    _S.WRAP_UP: frozenset({_S.AVAILABLE, _S.PAUSED, _S.LOGGED_OUT}),
    _S.PAUSED: frozenset({_S.AVAILABLE, _S.PAUSED, _S.LOGGED_OUT}),
}
#: States in which the agent holds (or is being offered) a call.
BUSY_STATES = frozenset({_S.RESERVED, _S.RINGING, _S.ON_CALL, _S.HELD})
#: States that count as "staffed" for expected-wait estimates.
STAFFED_STATES = frozenset({_S.AVAILABLE, _S.RESERVED, _S.RINGING, _S.ON_CALL, _S.HELD, _S.WRAP_UP})


class AgentAction(enum.Enum):
    """Requests an agent (or its phone) can make; each is allowed only from some states."""

    LOGIN = "login"
    LOGOUT = "logout"
    SET_READY = "set_ready"
    SET_NOT_READY = "set_not_ready"
    END_WRAP_UP = "end_wrap_up"
    RING = "ring"
    HOLD = "hold"
    UNHOLD = "unhold"


#: Where each request is accepted. The transition table above is the second line of defence:
#: e.g. RESERVED -> AVAILABLE is a legal *system* step (caller hung up) but not a SetReady.
ALLOWED_FROM: dict[AgentAction, frozenset[AgentState]] = {
    AgentAction.LOGIN: frozenset({_S.LOGGED_OUT}),
    AgentAction.LOGOUT: frozenset({_S.AVAILABLE, _S.PAUSED, _S.WRAP_UP, _S.RESERVED, _S.RINGING}),
    AgentAction.SET_READY: frozenset({_S.PAUSED, _S.WRAP_UP}),
    AgentAction.SET_NOT_READY: frozenset({_S.AVAILABLE, _S.PAUSED, _S.WRAP_UP}),
    AgentAction.END_WRAP_UP: frozenset({_S.WRAP_UP}),
    AgentAction.RING: frozenset({_S.RESERVED}),
    AgentAction.HOLD: frozenset({_S.ON_CALL}),
    AgentAction.UNHOLD: frozenset({_S.HELD}),
}


def check_action(agent_id: AgentId, current: AgentState, action: AgentAction) -> None:
    """Raise ``IllegalTransitionError`` unless ``action`` is accepted in ``current``.

    Raises:
        IllegalTransitionError: the agent is in a state where the request makes no sense.
    """
    if current not in ALLOWED_FROM[action]:
        raise IllegalTransitionError(f"agent {agent_id}: {action.value} is not allowed while {current.name}")


def check_transition(agent_id: AgentId, current: AgentState, new: AgentState) -> None:
    """Raise ``IllegalTransitionError`` unless ``current -> new`` is in ``TRANSITIONS``.

    Raises:
        IllegalTransitionError: the table forbids the step.
    """
    if new not in TRANSITIONS[current]:
        raise IllegalTransitionError(f"agent {agent_id}: {current.name} -> {new.name} is not allowed")


class Agent:
    """Runtime record of one agent, owned and mutated by the router only."""

    __slots__ = (
        "config", "id", "skills", "queues", "state", "reason", "since", "call_id", "ready_epoch",
        "ready_since", "calls_today", "last_offer_seq", "demands", "parked",
        "wrap_up_deadline", "offer_after", "no_answers",
    )

    def __init__(self, config: AgentConfig, now: float) -> None:
        self.config = config
        self.id: AgentId = config.id
        self.skills: dict[SkillName, int] = dict(config.skills)
        self.queues: frozenset[QueueId] = config.queues
        self.state = AgentState.LOGGED_OUT
        self.reason: str | None = None
        self.since = now
        self.call_id: CallId | None = None
        self.ready_epoch = 0
        self.ready_since = now
        self.calls_today = 0
        self.last_offer_seq = 0
        self.demands: list[Demand] = []  # every demand class this agent is eligible for
        self.parked = False  # AVAILABLE with no call found: present in the ready heaps
        self.wrap_up_deadline: float | None = None
        self.offer_after = now  # no offer before this (the phone rules' delays, AgentConfig)
        self.no_answers = 0  # consecutive offers not answered (AgentConfig.max_no_answer)

    def set_state(
        self, new: AgentState, now: float, *, reason: str | None = None, call_id: CallId | None = None,
        wrap_up_s: float | None = None,
    ) -> AgentStateChanged:
        """Validate and apply one transition; return the event describing it.

        Raises:
            IllegalTransitionError: the transition table forbids ``state -> new``.
        """
        check_transition(self.id, self.state, new)
        previous, previous_reason = self.state, self.reason
        self.state = new
        self.reason = reason if new is AgentState.PAUSED else None
        self.since = now
        if new is AgentState.AVAILABLE:
            self.ready_epoch += 1
            self.ready_since = now
        return AgentStateChanged(agent_id=self.id, previous=previous, previous_reason=previous_reason,
                                 state=new, reason=self.reason, call_id=call_id, at=now,
                                 wrap_up_s=wrap_up_s if new is AgentState.WRAP_UP else None)
