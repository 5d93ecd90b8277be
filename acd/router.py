"""The ACD router: a pure, synchronous core deciding who answers each call.

Contract
--------
``Router.handle(request, now) -> list[AcdOutput]`` applies one ``AcdRequest`` at time ``now``
(seconds, any monotonic base, never decreasing) and returns, in order, the ``AcdEvent`` facts
and ``AcdCommand`` instructions it caused. ``get_timer()`` returns the earliest deadline (or
None); the owner calls ``handle_timer(now)`` once ``now`` reaches it. The router reads no clock,
does no I/O and never blocks.

* A refused request raises a ``RequestError`` subclass *before* any change: the router is left
  exactly as it was (see ``acd.errors`` for the codes).
* Offers are identified by ``offer_id``. ``Ringing``/``Answer``/``Reject``/``RingNoAnswer`` name
  the offer, so a late answer for an offer that already timed out (or was cancelled, or was
  followed by a new offer of the same call to the same agent) raises ``StaleOfferError`` instead
  of answering the wrong thing; the controller then hangs the late agent leg up.
* Every queue leg ends exactly once with ``CallAnswered``, ``CallAbandoned`` or ``CallExited``.
  ``CallExited`` always comes with an ``ExitCall`` command telling the controller where to go.
* After every request and timer, no AVAILABLE agent is eligible for a QUEUED call (work
  conservation); among the calls an agent may take, the highest effective priority goes first,
  then the longest waiting; among the agents a call may go to, the queue's strategy decides.
* A failed offer (no answer, reject, busy, agent logout) puts the call back with its original enqueue
  time: at the head of its priority band. The agent goes not ready with the queue's
  ``no_answer_reason`` / ``reject_reason`` (or ready when that is None), or with its own
  ``max_no_answer_reason`` after ``max_no_answer`` consecutive no-answers; it is offered no call
  before its ``no_answer_delay_s`` / ``reject_delay_s`` / ``busy_delay_s`` has passed (an agent
  ready during that delay is the one exception to work conservation: ``TimerId.OFFER_DELAY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from acd.agent import STAFFED_STATES, Agent, AgentAction, AgentState, check_action
from acd.config import LOGIN_REASON, AgentId, CallId, OfferId, QueueId
from acd.errors import (
    DuplicateCallError,
    IllegalTransitionError,
    InvalidRequestError,
    StaleOfferError,
    UnknownAgentError,
    UnknownCallError,
    UnknownQueueError,
)
from acd.events import (
    AcdOutput,
    AcdRequest,
    Answer,
    CallExited,
    CallQueued,
    CancelReason,
    EndWrapUp,
    Enqueue,
    ExitCall,
    ExitQueue,
    ExitReason,
    Hangup,
    Hold,
    LoginAgent,
    LogoutAgent,
    Reject,
    RequeueReason,
    Ringing,
    RingNoAnswer,
    SetNotReady,
    SetReady,
    Unhold,
    check_finite,
)
from acd.queue import Call, CallState, Offer
from acd.state import RoutingState, TimerRef
from acd.stats import IntervalCounters, QueueSnapshot
from acd.timers import TimerId


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitEstimate:
    """Position (1 = next; 0 = being offered) and expected wait (None: nobody staffed)."""

    position: int
    expected_wait_s: float | None


class Router(RoutingState):
    """Skill-based, priority ACD for a set of queues owned by one node. See the module docstring."""

    # ------------------------------------------------------------------------------ public API
    def handle(self, request: AcdRequest, now: float) -> list[AcdOutput]:
        """Apply one request at ``now`` and return the events and commands it caused.

        Raises:
            RequestError: (a subclass) the request was refused and nothing changed.
        """
        check_finite(now)
        out: list[AcdOutput] = []
        match request:
            case LoginAgent():
                self._login(request, now, out)
            case LogoutAgent(agent_id=agent_id):
                self._logout(self._agent(agent_id), now, out)
            case SetReady(agent_id=agent_id):
                agent = self._agent(agent_id)
                check_action(agent.id, agent.state, AgentAction.SET_READY)
                self._move(agent, AgentState.AVAILABLE, now, out)
            case SetNotReady(agent_id=agent_id, reason=reason):
                agent = self._agent(agent_id)
                if reason not in self._reasons:
                    raise InvalidRequestError(f"unknown not-ready reason code {reason!r}")
                check_action(agent.id, agent.state, AgentAction.SET_NOT_READY)
                self._move(agent, AgentState.PAUSED, now, out, reason=reason)
            case EndWrapUp(agent_id=agent_id):
                agent = self._agent(agent_id)
                check_action(agent.id, agent.state, AgentAction.END_WRAP_UP)
                self._move(agent, AgentState.AVAILABLE, now, out)
            case Enqueue():
                self._enqueue(request, now, out)
            case Ringing(offer_id=offer_id):
                offer = self._offer(offer_id)
                check_action(offer.agent.id, offer.agent.state, AgentAction.RING)
                offer.ringing = True
                self._move(offer.agent, AgentState.RINGING, now, out, call_id=offer.call.id)
            case Answer(offer_id=offer_id):
                self._answer(self._offer(offer_id), now, out)
            case Reject(offer_id=offer_id, busy=busy):
                offer = self._offer(offer_id)
                why = RequeueReason.BUSY if busy else RequeueReason.REJECTED
                self._fail_offer(offer, why, offer.call.queue.reject_reason, None, now, out)
            case RingNoAnswer(offer_id=offer_id):
                offer = self._offer(offer_id)
                self._fail_offer(offer, RequeueReason.NO_ANSWER, offer.call.queue.no_answer_reason, None, now, out)
            case Hangup(call_id=call_id):
                self._hangup(self._call(call_id), now, out)
            case Hold(agent_id=agent_id) | Unhold(agent_id=agent_id):
                self._hold(self._agent(agent_id), isinstance(request, Hold), now, out)
            case ExitQueue(call_id=call_id, reason=reason):
                call = self._call(call_id)
                if call.state is CallState.CONNECTED:
                    raise IllegalTransitionError(f"call {call_id} is answered; it is no longer in a queue")
                if call.offer is not None:
                    self._withdraw(call.offer, CancelReason.CALL_EXITED, out)
                self._exit(call, reason, None, now, out)
            case _:
                raise InvalidRequestError(f"not an ACD request: {request!r}")
        return out

    def get_timer(self) -> float | None:
        """The earliest pending deadline, or None."""
        return self._timers.earliest(self._timer_live)

    def handle_timer(self, now: float) -> list[AcdOutput]:
        """Fire every timer due at ``now`` (earliest first) and return what they caused."""
        check_finite(now)
        out: list[AcdOutput] = []
        while (due := self._timers.pop_due(now)) is not None:
            deadline, timer, ref = due
            if not self._timer_live(deadline, timer, ref):
                continue
            match timer:
                case TimerId.RING:
                    assert isinstance(ref, Offer)
                    self._fail_offer(ref, RequeueReason.NO_ANSWER, ref.call.queue.no_answer_reason,
                                     CancelReason.RING_TIMEOUT, now, out)
                case TimerId.WRAP_UP:
                    assert isinstance(ref, Agent)
                    self._move(ref, AgentState.AVAILABLE, now, out)
                case TimerId.OVERFLOW:
                    assert isinstance(ref, Call) and ref.demand is not None
                    ref.demand.drop_call(ref)
                    if self._apply_due_rules(ref, now, out):
                        self._queue(ref, now, out)
                case TimerId.MAX_WAIT:
                    assert isinstance(ref, Call)
                    self._exit(ref, ExitReason.MAX_WAIT, ref.queue.max_wait_target, now, out)
                case TimerId.OFFER_DELAY:
                    assert isinstance(ref, Agent)
                    self._seek(ref, now, out)
                case _:
                    assert_never(timer)
        return out

    def agent_state(self, agent_id: AgentId) -> tuple[AgentState, str | None]:
        """Current state and not-ready reason of an agent.

        Raises:
            UnknownAgentError: the agent never logged in.
        """
        agent = self._agents.get(agent_id)
        if agent is None:
            raise UnknownAgentError(f"unknown agent {agent_id}")
        return agent.state, agent.reason

    def agent_call(self, agent_id: AgentId) -> CallId | None:
        """The call the agent is reserved for or talking on, if any."""
        agent = self._agents.get(agent_id)
        return agent.call_id if agent else None

    def call_state(self, call_id: CallId) -> CallState:
        """State of a call; ENDED once the ACD has forgotten it."""
        call = self._calls.get(call_id)
        return call.state if call else CallState.ENDED

    def position(self, call_id: CallId, now: float) -> WaitEstimate:
        """Position in the home queue and expected wait (O(calls in that queue); on request only).

        Raises:
            UnknownCallError: the call is not waiting.
        """
        call = self._call(call_id)
        if call.state is CallState.CONNECTED:
            raise UnknownCallError(f"call {call_id} is no longer waiting")
        if call.state is CallState.OFFERED:
            return WaitEstimate(position=0, expected_wait_s=0.0)
        stats = self._stats[call.queue.id]
        staffed = self._matcher.staffed(call.queue.id, STAFFED_STATES)
        rank = call.rank(now)
        ahead = sum(1 for cid in stats.waiting
                    if (other := self._calls[cid]).state is CallState.QUEUED and other.rank(now) < rank)
        ewt = (ahead + 1) * stats.handle_s / staffed if staffed else None
        return WaitEstimate(position=ahead + 1, expected_wait_s=ewt)

    def queue_stats(self, queue_id: QueueId, now: float) -> QueueSnapshot:
        """Wallboard figures for one queue at ``now``.

        Raises:
            UnknownQueueError: no such queue.
        """
        if queue_id not in self._stats:
            raise UnknownQueueError(f"unknown queue {queue_id}")
        return self._stats[queue_id].snapshot(now, *self._matcher.census(queue_id))

    def restore_stats(self, queue_id: QueueId, now: float, today: IntervalCounters,
                      interval: IntervalCounters | None = None) -> None:
        """Seed a queue's "today" (and current interval) counters with figures rebuilt from the records
        (at start-up, before the first call).

        Raises:
            UnknownQueueError: no such queue.
        """
        if queue_id not in self._stats:
            raise UnknownQueueError(f"unknown queue {queue_id}")
        self._stats[queue_id].restore(now, today, interval)

    # ------------------------------------------------------------------------------ requests
    def _login(self, request: LoginAgent, now: float, out: list[AcdOutput]) -> None:
        config = request.agent
        known = self._agents.get(config.id)
        if known is not None:
            check_action(known.id, known.state, AgentAction.LOGIN)
        unknown = sorted(q for q in config.queues if q not in self._queues)
        if unknown:
            raise UnknownQueueError(f"agent {config.id}: unknown queues {unknown}")
        agent = Agent(config, now)
        if known is not None:
            agent.calls_today, agent.last_offer_seq = known.calls_today, known.last_offer_seq
        self._agents[agent.id] = agent
        self._matcher.login(agent)
        if request.ready:
            self._move(agent, AgentState.AVAILABLE, now, out)
        else:
            self._move(agent, AgentState.PAUSED, now, out, reason=LOGIN_REASON)

    def _logout(self, agent: Agent, now: float, out: list[AcdOutput]) -> None:
        check_action(agent.id, agent.state, AgentAction.LOGOUT)
        call_id = agent.call_id
        if agent.call_id is not None:
            offer = self._calls[agent.call_id].offer
            assert offer is not None
            self._fail_offer(offer, RequeueReason.AGENT_LOGGED_OUT, None, CancelReason.AGENT_LOGGED_OUT, now, out)
            agent.call_id = None
        self._move(agent, AgentState.LOGGED_OUT, now, out, call_id=call_id)
        self._matcher.logout(agent)

    def _enqueue(self, request: Enqueue, now: float, out: list[AcdOutput]) -> None:
        queue = self._queues.get(request.queue_id)
        if queue is None:
            raise UnknownQueueError(f"unknown queue {request.queue_id}")
        if request.call_id in self._calls:
            raise DuplicateCallError(f"call {request.call_id} is already in the ACD")
        stats = self._stats[queue.id]
        if queue.max_size is not None and len(stats.waiting) >= queue.max_size:
            stats.flowed_out(request.call_id, now, now, queued=False)
            out.append(CallExited(call_id=request.call_id, queue_id=queue.id, reason=ExitReason.QUEUE_FULL,
                                  wait_s=0.0, target=queue.full_target, at=now))
            out.append(ExitCall(call_id=request.call_id, queue_id=queue.id, reason=ExitReason.QUEUE_FULL,
                                target=queue.full_target))
            return
        self._call_seq += 1
        call = Call(call_id=request.call_id, queue=queue, priority=request.priority, enqueued=now,
                    seq=self._call_seq, caller_id=request.caller_id, data=request.data,
                    routes=self._base_routes(queue, request.skills))
        self._calls[call.id] = call
        stats.entered(call.id, now)
        out.append(CallQueued(call_id=call.id, queue_id=queue.id, priority=call.priority, at=now))
        if queue.max_wait_s is not None:
            self._timers.arm(now + queue.max_wait_s, TimerId.MAX_WAIT, call)
        if self._apply_due_rules(call, now, out):
            self._queue(call, now, out)

    def _hold(self, agent: Agent, hold: bool, now: float, out: list[AcdOutput]) -> None:
        new = AgentState.HELD if hold else AgentState.ON_CALL
        check_action(agent.id, agent.state, AgentAction.HOLD if hold else AgentAction.UNHOLD)
        call = self._calls[agent.call_id] if agent.call_id else None
        assert call is not None
        if hold:
            call.held_since = now
        elif call.held_since is not None:
            call.hold_s += now - call.held_since
            call.held_since = None
        self._move(agent, new, now, out, call_id=call.id)

    # ------------------------------------------------------------------------------ lookups
    def _agent(self, agent_id: AgentId) -> Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise UnknownAgentError(f"unknown agent {agent_id}")
        return agent

    def _call(self, call_id: CallId) -> Call:
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCallError(f"unknown call {call_id}")
        return call

    def _offer(self, offer_id: OfferId) -> Offer:
        offer = self._offers.get(offer_id)
        if offer is None:
            raise StaleOfferError(f"offer {offer_id} is not current")
        return offer

    def _timer_live(self, deadline: float, timer: TimerId, ref: TimerRef) -> bool:
        match timer:
            case TimerId.RING:
                return isinstance(ref, Offer) and self._offers.get(ref.offer_id) is ref
            case TimerId.WRAP_UP:
                return isinstance(ref, Agent) and ref.state is AgentState.WRAP_UP and ref.wrap_up_deadline == deadline
            case TimerId.OVERFLOW:
                if not (isinstance(ref, Call) and ref.state is CallState.QUEUED and self._calls.get(ref.id) is ref):
                    return False
                rules = ref.queue.overflow
                return ref.next_rule < len(rules) and ref.enqueued + rules[ref.next_rule].after_s <= deadline
            case TimerId.MAX_WAIT:
                return isinstance(ref, Call) and ref.state is CallState.QUEUED and self._calls.get(ref.id) is ref
            case TimerId.OFFER_DELAY:
                return (isinstance(ref, Agent) and ref.state is AgentState.AVAILABLE and not ref.parked
                        and ref.offer_after == deadline and self._agents.get(ref.id) is ref)
            case _:
                assert_never(timer)
