"""The router's state and the primitive steps every request and timer is built from.

``RoutingState`` owns the agents, calls, offers, demand classes, timers and queue stats; its
methods are the only code that mutates them. ``acd.router.Router`` adds the public request API on
top. Each primitive keeps the router invariants (see ``acd.router``): in particular ``_move`` to
AVAILABLE always looks for a waiting call first, and ``_queue`` always looks for a ready agent
first, so no AVAILABLE agent is ever left eligible for a QUEUED call.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import structlog

from acd.agent import Agent, AgentState
from acd.config import (
    DEFAULT_REASON_CODES,
    EXIT_ACTIONS,
    AgentId,
    CallId,
    OfferId,
    OverflowAction,
    QueueConfig,
    QueueId,
    SkillRequirement,
)
from acd.errors import ConfigurationError
from acd.events import (
    AcdOutput,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEscalated,
    CallExited,
    CallOffered,
    CallRequeued,
    CancelOffer,
    CancelReason,
    ExitCall,
    ExitReason,
    OfferCall,
    RequeueReason,
)
from acd.matching import Matcher
from acd.queue import Call, CallState, Offer, Route, Routes, apply_rule, merge_requirements
from acd.stats import QueueStats, SiteCalendar
from acd.timers import TimerHeap, TimerId

_EXIT_REASONS = {OverflowAction.VOICEMAIL: ExitReason.OVERFLOW_VOICEMAIL,
                 OverflowAction.CALLBACK: ExitReason.OVERFLOW_CALLBACK, OverflowAction.EXIT: ExitReason.OVERFLOW_EXIT}
TimerRef = Offer | Agent | Call


class RoutingState:
    """Agents, calls, offers, demand classes, timers and stats, plus the steps that change them."""

    def __init__(self, queues: Iterable[QueueConfig], *, reason_codes: Iterable[str] = DEFAULT_REASON_CODES,
                 rng: random.Random | None = None, calendar: SiteCalendar | None = None) -> None:
        """``calendar``: the site's days and intervals for the statistics (UTC days of ``now`` when None).

        Raises: ConfigurationError: duplicate queue ids or an overflow rule naming an unknown queue.
        """
        self._queues: dict[QueueId, QueueConfig] = {}
        for q in queues:
            if q.id in self._queues:
                raise ConfigurationError(f"queue {q.id} is configured twice")
            self._queues[q.id] = q
        for q in self._queues.values():
            for rule in q.overflow:
                if rule.target_queue is not None and rule.target_queue not in self._queues:
                    raise ConfigurationError(f"queue {q.id}: overflow to unknown queue {rule.target_queue}")
        self._reasons = frozenset(reason_codes)
        self._stats = {qid: QueueStats(q, calendar or SiteCalendar()) for qid, q in self._queues.items()}
        self._agents: dict[AgentId, Agent] = {}
        self._calls: dict[CallId, Call] = {}
        self._offers: dict[OfferId, Offer] = {}
        self._matcher = Matcher(rng or random.Random())
        self._timers: TimerHeap[TimerRef] = TimerHeap()
        self._route_cache: dict[tuple[QueueId, tuple[SkillRequirement, ...]], Routes] = {}
        self._offer_seq = 0
        self._call_seq = 0
        # Bound once: structlog's lazy proxy would re-bind on every call in the hot path.
        self._log = structlog.get_logger("acd").bind()
        for q in self._queues.values():  # the base class of each queue exists before any agent logs in
            self._matcher.demand(q, self._base_routes(q, ()))

    def _base_routes(self, queue: QueueConfig, skills: tuple[SkillRequirement, ...]) -> Routes:
        """The starting route set; interned so equal sets are one object (cheap class lookups)."""
        key = (queue.id, skills)
        routes = self._route_cache.get(key)
        if routes is None:
            route = Route(queue=queue.id, requirements=merge_requirements(queue.skills, skills))
            routes = self._route_cache[key] = frozenset({route})
        return routes

    # ------------------------------------------------------------------------------ agents
    def _move(self, agent: Agent, new: AgentState, now: float, out: list[AcdOutput], *,
              reason: str | None = None, call_id: CallId | None = None, wrap_up_s: float | None = None) -> None:
        """Transition an agent, keep stats and the ready index right; AVAILABLE looks for a call."""
        old, old_reason = agent.state, agent.reason
        if old is AgentState.AVAILABLE:
            self._matcher.unpark(agent)
        out.append(agent.set_state(new, now, reason=reason, call_id=call_id, wrap_up_s=wrap_up_s))
        self._matcher.moved(agent, old, old_reason)
        self._log.debug("acd.agent.state_changed", agent_id=agent.id, previous=old.value, state=new.value,
                        reason=agent.reason, previous_reason=old_reason, call_id=call_id)
        if new is AgentState.AVAILABLE:
            if agent.offer_after > now:  # a phone rule's delay: passed over until it ends (OFFER_DELAY)
                self._timers.arm(agent.offer_after, TimerId.OFFER_DELAY, agent)
            else:
                self._seek(agent, now, out)

    def _seek(self, agent: Agent, now: float, out: list[AcdOutput]) -> None:
        """An AVAILABLE agent that may be offered a call: take the best waiting one, or park."""
        call = self._matcher.best_call(agent, now)
        if call is None:
            self._matcher.park(agent)
        else:
            assert call.demand is not None
            call.demand.drop_call(call)
            self._offer_to(call, agent, now, out)

    def _end_offer_for_agent(self, agent: Agent, reason: str | None, now: float, out: list[AcdOutput]) -> None:
        agent.call_id = None
        if reason is None:
            self._move(agent, AgentState.AVAILABLE, now, out)
        else:
            self._move(agent, AgentState.PAUSED, now, out, reason=reason)

    # ------------------------------------------------------------------------------ calls
    def _queue(self, call: Call, now: float, out: list[AcdOutput]) -> None:
        """Put a call (not in any class) into its class, or straight to the best ready agent."""
        demand = self._matcher.demand(call.queue, call.routes)
        agent = demand.head_agent()
        call.state = CallState.QUEUED
        if agent is None:
            demand.push_call(call)
        else:
            self._offer_to(call, agent, now, out)

    def _offer_to(self, call: Call, agent: Agent, now: float, out: list[AcdOutput]) -> None:
        self._offer_seq += 1
        offer_id = OfferId(self._offer_seq)
        offer = Offer(offer_id=offer_id, call=call, agent=agent, deadline=now + call.queue.ring_timeout_s)
        self._offers[offer_id] = offer
        call.state, call.offer, call.agent_id = CallState.OFFERED, offer, agent.id
        agent.call_id = call.id
        agent.last_offer_seq = self._offer_seq
        self._move(agent, AgentState.RESERVED, now, out, call_id=call.id)
        out.append(CallOffered(call_id=call.id, queue_id=call.queue.id, agent_id=agent.id, offer_id=offer_id, at=now))
        out.append(OfferCall(offer_id=offer_id, call_id=call.id, agent_id=agent.id, queue_id=call.queue.id,
                             ring_timeout_s=call.queue.ring_timeout_s))
        self._timers.arm(offer.deadline, TimerId.RING, offer)
        self._log.debug("acd.call.offered", call_id=call.id, agent_id=agent.id, offer_id=offer_id)

    def _withdraw(self, offer: Offer, reason: CancelReason, out: list[AcdOutput]) -> None:
        """Void an offer and tell the controller to stop ringing the agent."""
        del self._offers[offer.offer_id]
        offer.call.offer = None
        out.append(CancelOffer(offer_id=offer.offer_id, call_id=offer.call.id, agent_id=offer.agent.id, reason=reason))

    def _fail_offer(self, offer: Offer, why: RequeueReason, agent_reason: str | None, cancel: CancelReason | None,
                    now: float, out: list[AcdOutput]) -> None:
        """No answer / reject / logout: the call goes back first, then the agent moves."""
        if cancel is None:
            del self._offers[offer.offer_id]
            offer.call.offer = None
        else:
            self._withdraw(offer, cancel, out)
        call, agent = offer.call, offer.agent
        call.agent_id = None
        out.append(CallRequeued(call_id=call.id, queue_id=call.queue.id, agent_id=agent.id, reason=why, at=now))
        if why is not RequeueReason.AGENT_LOGGED_OUT:
            agent_reason = self._phone_rules(agent, why, agent_reason, now)
        self._requeue(call, now, out)
        if why is not RequeueReason.AGENT_LOGGED_OUT:
            self._end_offer_for_agent(agent, agent_reason, now, out)

    @staticmethod
    def _phone_rules(agent: Agent, why: RequeueReason, agent_reason: str | None, now: float) -> str | None:
        """The agent's delay after a failed offer, and ``max_no_answer``: the reason the agent leaves with."""
        config = agent.config
        delay = {RequeueReason.NO_ANSWER: config.no_answer_delay_s, RequeueReason.REJECTED: config.reject_delay_s,
                 RequeueReason.BUSY: config.busy_delay_s}.get(why, 0.0)
        agent.offer_after = max(agent.offer_after, now + delay)
        if why is RequeueReason.NO_ANSWER:
            agent.no_answers += 1
            if config.max_no_answer and agent.no_answers >= config.max_no_answer:
                agent.no_answers = 0  # the break starts the count again
                return config.max_no_answer_reason
        return agent_reason

    def _requeue(self, call: Call, now: float, out: list[AcdOutput]) -> None:
        """Back in queue with the original enqueue time (head of its band), unless a limit is reached."""
        max_wait = call.queue.max_wait_s
        if max_wait is not None and now >= call.enqueued + max_wait:
            self._exit(call, ExitReason.MAX_WAIT, call.queue.max_wait_target, now, out)
        elif self._apply_due_rules(call, now, out):
            self._queue(call, now, out)

    def _apply_due_rules(self, call: Call, now: float, out: list[AcdOutput]) -> bool:
        """Apply every overflow rule due at ``now``; False if one took the call out of the queue."""
        rules = call.queue.overflow
        while call.next_rule < len(rules) and call.enqueued + rules[call.next_rule].after_s <= now:
            index = call.next_rule
            rule = rules[index]
            call.next_rule += 1
            if rule.action in EXIT_ACTIONS:
                self._exit(call, _EXIT_REASONS[rule.action], rule.target, now, out)
                return False
            call.routes = apply_rule(call.routes, rule, call.queue.id, self._queues)
            out.append(CallEscalated(call_id=call.id, queue_id=call.queue.id, rule_index=index, at=now))
            self._log.debug("acd.call.escalated", call_id=call.id, rule_index=index, action=rule.action.value)
        if call.next_rule < len(rules):
            self._timers.arm(call.enqueued + rules[call.next_rule].after_s, TimerId.OVERFLOW, call)
        return True

    def _forget(self, call: Call) -> None:
        if call.demand is not None:
            call.demand.drop_call(call)
        call.state = CallState.ENDED
        del self._calls[call.id]

    def _exit(self, call: Call, reason: ExitReason, target: str | None, now: float, out: list[AcdOutput]) -> None:
        """The queue leg ends as a flow-out; the controller gets ExitCall."""
        self._forget(call)
        self._stats[call.queue.id].flowed_out(call.id, call.enqueued, now)
        out.append(CallExited(call_id=call.id, queue_id=call.queue.id, reason=reason, wait_s=now - call.enqueued,
                              target=target, at=now))
        out.append(ExitCall(call_id=call.id, queue_id=call.queue.id, reason=reason, target=target))
        self._log.info("acd.call.exited", call_id=call.id, queue=call.queue.id, reason=reason.value)

    def _answer(self, offer: Offer, now: float, out: list[AcdOutput]) -> None:
        call, agent = offer.call, offer.agent
        del self._offers[offer.offer_id]
        call.offer = None
        call.state, call.answered_at = CallState.CONNECTED, now
        agent.calls_today += 1
        agent.no_answers = 0  # max_no_answer counts consecutive no-answers
        self._stats[call.queue.id].answered(call.id, call.enqueued, now)
        out.append(CallAnswered(call_id=call.id, queue_id=call.queue.id, agent_id=agent.id,
                                wait_s=now - call.enqueued, at=now))
        self._move(agent, AgentState.ON_CALL, now, out, call_id=call.id)

    def _hangup(self, call: Call, now: float, out: list[AcdOutput]) -> None:
        """The call ended: abandoned if not answered yet, else the agent goes to wrap-up."""
        if call.state is not CallState.CONNECTED:
            offer = call.offer
            if offer is not None:
                self._withdraw(offer, CancelReason.CALLER_HUNG_UP, out)
            self._forget(call)
            self._stats[call.queue.id].abandoned(call.id, call.enqueued, now)
            out.append(CallAbandoned(call_id=call.id, queue_id=call.queue.id, wait_s=now - call.enqueued,
                                     agent_id=offer.agent.id if offer else None, at=now))
            if offer is not None:
                self._end_offer_for_agent(offer.agent, None, now, out)
            return
        agent = self._agents[call.agent_id] if call.agent_id else None
        assert agent is not None and call.answered_at is not None
        if call.held_since is not None:
            call.hold_s += now - call.held_since
        self._forget(call)
        agent.call_id = None
        wrap = call.queue.wrap_up_s
        self._stats[call.queue.id].handled(now - call.answered_at + (wrap or 0.0))
        out.append(CallEnded(call_id=call.id, queue_id=call.queue.id, agent_id=agent.id,
                             talk_s=now - call.answered_at, hold_s=call.hold_s, at=now))
        if wrap == 0:
            self._move(agent, AgentState.AVAILABLE, now, out)
            return
        self._move(agent, AgentState.WRAP_UP, now, out, call_id=call.id, wrap_up_s=wrap)
        agent.wrap_up_deadline = None if wrap is None else now + wrap
        if agent.wrap_up_deadline is not None:
            self._timers.arm(agent.wrap_up_deadline, TimerId.WRAP_UP, agent)
