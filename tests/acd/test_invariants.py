"""Hypothesis stateful test: router invariants over random request/timer sequences.

Invariants checked after every step, against an independent model built from the outputs:
an agent never holds two calls; a call is never offered to two agents at once; work
conservation (no AVAILABLE agent past its phone-rule delay is eligible for a QUEUED call); priority
(an offered call ranks at least as well as every call that stayed queued and is eligible for the same agent); every
queue leg ends exactly once; a refused request changes nothing.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from acd import (
    AcdOutput,
    AgentId,
    AgentState,
    AgentStateChanged,
    Answer,
    CallAbandoned,
    CallAnswered,
    CallEscalated,
    CallExited,
    CallId,
    CallQueued,
    CallRequeued,
    CallState,
    CancelOffer,
    EndWrapUp,
    Enqueue,
    Hangup,
    Hold,
    LoginAgent,
    LogoutAgent,
    OfferCall,
    OfferId,
    OverflowAction,
    OverflowRule,
    QueueConfig,
    QueueId,
    Reject,
    RequestError,
    RequeueReason,
    Ringing,
    RingNoAnswer,
    Router,
    RoutingStrategy,
    SetNotReady,
    SetReady,
    SkillRequirement,
    StaleOfferError,
    Unhold,
    UnknownAgentError,
)

from .conftest import agent_cfg, req

Q1, Q2 = QueueId("q1"), QueueId("q2")
QUEUES = {
    Q1: QueueConfig(id=Q1, skills=(req("a", 5),), wrap_up_s=5.0, max_size=6, overflow=(
        OverflowRule(after_s=20.0, action=OverflowAction.RELAX_LEVEL, relax_by=3),
        OverflowRule(after_s=40.0, action=OverflowAction.ADD_QUEUE, target_queue=Q2),
        OverflowRule(after_s=120.0, action=OverflowAction.VOICEMAIL))),
    Q2: QueueConfig(id=Q2, skills=(req("b", 1),), wrap_up_s=None, max_wait_s=90.0, priority_aging_s=10.0,
                    strategy=RoutingStrategy.WEIGHTED_RANDOM, reject_reason=None, ring_timeout_s=8.0),
}
AGENTS = [
    agent_cfg("a1", ["q1"], a=6),
    replace(agent_cfg("a2", ["q1"], a=3, c=4), no_answer_delay_s=10.0, reject_delay_s=3.0, busy_delay_s=5.0,
            max_no_answer=2),
    agent_cfg("a3", ["q1", "q2"], a=9, b=2),
    agent_cfg("a4", ["q2"], b=5, c=1),
    replace(agent_cfg("a5", ["q2"], b=1), no_answer_delay_s=4.0, reject_delay_s=6.0, busy_delay_s=3.0,
            max_no_answer=2, max_no_answer_reason="lunch"),
]
EXTRA = [None, req("c", 1), req("c", 3)]


def routes_at(call: Enqueue, enqueued: float, now: float) -> list[tuple[QueueId, dict[str, int]]]:
    """Independent re-statement of which agents may take ``call`` at ``now``."""
    cfg = QUEUES[call.queue_id]
    base: dict[str, int] = {r.skill: r.min_level for r in cfg.skills}
    for r in call.skills:
        base[r.skill] = max(base.get(r.skill, 0), r.min_level)
    routes = [(cfg.id, base)]
    for step in cfg.overflow:
        if enqueued + step.after_s > now:
            break
        if step.action is OverflowAction.RELAX_LEVEL:
            routes = [(q, {s: max(1, m - step.relax_by) for s, m in reqs.items()}) for q, reqs in routes]
        elif step.action is OverflowAction.ADD_QUEUE:
            assert step.target_queue is not None
            routes.append((step.target_queue, {r.skill: r.min_level for r in QUEUES[step.target_queue].skills}))
    return routes


def eligible(agent_index: int, call: Enqueue, enqueued: float, now: float) -> bool:
    cfg = AGENTS[agent_index]
    return any(q in cfg.queues and all(cfg.skills.get(s, 0) >= m for s, m in reqs.items())  # type: ignore[call-overload]
               for q, reqs in routes_at(call, enqueued, now))


def rank(call: Enqueue, enqueued: float, now: float) -> tuple[float, float]:
    aging = QUEUES[call.queue_id].priority_aging_s
    return (-(call.priority + ((now - enqueued) / aging if aging else 0.0)), enqueued)


class AcdMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.router = Router(QUEUES.values(), rng=random.Random(7))
        self.now = 0.0
        self.calls: dict[CallId, tuple[Enqueue, float]] = {}
        self.ended: dict[CallId, int] = {}
        self.offers: dict[OfferId, tuple[CallId, AgentId]] = {}
        self.retired: list[OfferId] = []
        self.agent_call: dict[AgentId, CallId] = {}
        self.next_call = 0
        self.last: list[AcdOutput] = []
        self.offer_after: dict[AgentId, float] = {}  # the model of the phone rules' delays
        self.delays = {cfg.id: {RequeueReason.NO_ANSWER: cfg.no_answer_delay_s,
                                RequeueReason.REJECTED: cfg.reject_delay_s,
                                RequeueReason.BUSY: cfg.busy_delay_s} for cfg in AGENTS}

    # -- plumbing ---------------------------------------------------------------------------
    def snapshot(self) -> object:
        agents = []
        for cfg in AGENTS:
            try:
                agents.append((self.router.agent_state(cfg.id), self.router.agent_call(cfg.id)))
            except RequestError:
                agents.append(None)  # type: ignore[arg-type]
        return agents, {c: self.router.call_state(c) for c in self.calls}, self.router.get_timer()

    def apply(self, outputs: list[AcdOutput]) -> None:
        self.last = outputs
        for o in outputs:
            match o:
                case OfferCall(offer_id=oid, call_id=cid, agent_id=aid):
                    assert aid not in self.agent_call, f"{aid} offered a second call"
                    assert all(c != cid for c, _ in self.offers.values()), f"{cid} offered twice"
                    self.offers[oid] = (cid, aid)
                    self.agent_call[aid] = cid
                case CancelOffer(offer_id=oid):
                    self.retire(oid, keep_call=False)
                case CallRequeued(call_id=cid, agent_id=aid, reason=why):
                    delay = self.delays[aid].get(why, 0.0)
                    self.offer_after[aid] = max(self.offer_after.get(aid, 0.0), o.at + delay)
                    for oid, (c, _) in list(self.offers.items()):
                        if c == cid:
                            self.retire(oid, keep_call=False)
                case CallAnswered(call_id=cid) | CallAbandoned(call_id=cid) | CallExited(call_id=cid):
                    self.ended[cid] = self.ended.get(cid, 0) + 1
                    assert self.ended[cid] == 1, f"{cid} ended twice"
                    for oid, (c, _) in list(self.offers.items()):
                        if c == cid:
                            self.retire(oid, keep_call=isinstance(o, CallAnswered))
                case CallQueued(call_id=cid):
                    assert cid not in self.ended
                case AgentStateChanged(agent_id=aid, previous=AgentState.LOGGED_OUT):
                    self.offer_after.pop(aid, None)  # a new login starts without a delay
                case _:
                    pass

    def retire(self, oid: OfferId, *, keep_call: bool) -> None:
        cid, aid = self.offers.pop(oid)
        self.retired.append(oid)
        if not keep_call and self.agent_call.get(aid) == cid:
            del self.agent_call[aid]

    def send(self, request: object) -> None:
        before = self.snapshot()
        try:
            outputs = self.router.handle(request, self.now)  # type: ignore[arg-type]
        except RequestError:
            assert self.snapshot() == before, "a refused request changed the router"
            self.last = []
            return
        self.apply(outputs)

    def sync_connected(self) -> None:
        for aid, cid in list(self.agent_call.items()):
            if self.router.call_state(cid) is CallState.ENDED:
                del self.agent_call[aid]

    # -- rules --------------------------------------------------------------------------------
    @rule(i=st.integers(0, len(AGENTS) - 1), ready=st.booleans())
    def login(self, i: int, ready: bool) -> None:
        self.send(LoginAgent(agent=AGENTS[i], ready=ready))

    @rule(i=st.integers(0, len(AGENTS) - 1))
    def logout(self, i: int) -> None:
        self.send(LogoutAgent(agent_id=AGENTS[i].id))

    @rule(i=st.integers(0, len(AGENTS) - 1), kind=st.sampled_from(["ready", "break", "wrap", "hold", "unhold"]))
    def agent_action(self, i: int, kind: str) -> None:
        aid = AGENTS[i].id
        request = {"ready": SetReady(agent_id=aid), "break": SetNotReady(agent_id=aid, reason="break"),
                   "wrap": EndWrapUp(agent_id=aid), "hold": Hold(agent_id=aid), "unhold": Unhold(agent_id=aid)}[kind]
        self.send(request)

    @rule(q=st.sampled_from([Q1, Q2]), priority=st.sampled_from([0, 0, 1, 5, 10]), extra=st.sampled_from(EXTRA))
    def enqueue(self, q: QueueId, priority: int, extra: SkillRequirement | None) -> None:
        self.next_call += 1
        cid = CallId(f"c{self.next_call}")
        request = Enqueue(call_id=cid, queue_id=q, priority=priority, skills=(extra,) if extra else ())
        self.calls[cid] = (request, self.now)
        self.send(request)

    @precondition(lambda self: self.offers)
    @rule(data=st.data(), kind=st.sampled_from(["ringing", "answer", "answer", "reject", "busy", "noanswer"]))
    def offer_response(self, data: st.DataObject, kind: str) -> None:
        oid = data.draw(st.sampled_from(sorted(self.offers)))
        if kind == "busy":
            self.send(Reject(offer_id=oid, busy=True))
            return
        cls = {"ringing": Ringing, "answer": Answer, "reject": Reject, "noanswer": RingNoAnswer}[kind]
        self.send(cls(offer_id=oid))

    @precondition(lambda self: self.retired)
    @rule(data=st.data())
    def late_answer(self, data: st.DataObject) -> None:
        oid = data.draw(st.sampled_from(self.retired))
        before = self.snapshot()
        try:
            self.router.handle(Answer(offer_id=oid), self.now)
        except StaleOfferError:
            assert self.snapshot() == before
        else:
            raise AssertionError("a retired offer was answered")

    @precondition(lambda self: self.calls)
    @rule(data=st.data())
    def hangup(self, data: st.DataObject) -> None:
        cid = data.draw(st.sampled_from(sorted(self.calls)))
        self.send(Hangup(call_id=cid))
        self.sync_connected()

    @rule(dt=st.sampled_from([0.5, 3.0, 8.0, 15.0, 25.0, 60.0]))
    def advance(self, dt: float) -> None:
        target = self.now + dt
        while (deadline := self.router.get_timer()) is not None and deadline <= target:
            self.now = max(self.now, deadline)
            self.apply(self.router.handle_timer(self.now))
            self.check_priority()
        self.now = target
        self.last = []  # checked at the time they happened: ranks at a later time would compare aged calls unfairly

    # -- invariants ---------------------------------------------------------------------------
    def queued(self) -> list[CallId]:
        return [c for c in self.calls if self.router.call_state(c) is CallState.QUEUED]

    @invariant()
    def work_conservation(self) -> None:
        waiting = self.queued()
        for i, cfg in enumerate(AGENTS):
            try:
                state, _ = self.router.agent_state(cfg.id)
            except RequestError:
                continue
            if state is AgentState.AVAILABLE and self.offer_after.get(cfg.id, 0.0) <= self.now:
                for cid in waiting:
                    request, enqueued = self.calls[cid]
                    assert not eligible(i, request, enqueued, self.now), f"{cfg.id} idle while {cid} waits"

    @invariant()
    def priority(self) -> None:
        self.check_priority()

    def check_priority(self) -> None:
        touched = {o.call_id for o in self.last if isinstance(o, CallRequeued | CallEscalated)}
        for offer in (o for o in self.last if isinstance(o, OfferCall)):
            if offer.offer_id not in self.offers:
                continue
            i = next(k for k, a in enumerate(AGENTS) if a.id == offer.agent_id)
            given = rank(*self.calls[offer.call_id], self.now)
            for cid in self.queued():
                if cid in touched:
                    continue
                request, enqueued = self.calls[cid]
                if eligible(i, request, enqueued, self.now):
                    assert rank(request, enqueued, self.now) >= given, f"{cid} waits behind {offer.call_id}"

    @invariant()
    def one_call_per_agent_and_agent_per_call(self) -> None:
        holders: dict[CallId, AgentId] = {}
        for cfg in AGENTS:
            cid = self.router.agent_call(cfg.id)
            if cid is not None:
                assert cid not in holders, f"{cid} held by {holders[cid]} and {cfg.id}"
                holders[cid] = cfg.id

    @invariant()
    def legs_end_exactly_once(self) -> None:
        for cid in self.calls:
            state = self.router.call_state(cid)
            ended = self.ended.get(cid, 0)
            if state in (CallState.QUEUED, CallState.OFFERED):
                assert ended == 0
            else:
                assert ended == 1, f"{cid} is {state} but its leg ended {ended} times"

    @invariant()
    def stats_agree(self) -> None:
        for q in QUEUES:
            waiting = sum(1 for c, (r, _) in self.calls.items() if r.queue_id == q
                          and self.router.call_state(c) in (CallState.QUEUED, CallState.OFFERED))
            assert self.router.queue_stats(q, self.now).waiting == waiting

    @invariant()
    def agent_counts_agree(self) -> None:
        # The matcher's running census equals a recount of every agent, state by state.
        for q in QUEUES:
            by_state: Counter[AgentState] = Counter()
            by_reason: Counter[str] = Counter()
            for cfg in AGENTS:
                try:
                    state, reason = self.router.agent_state(cfg.id)
                except UnknownAgentError:
                    continue
                if q in cfg.queues and state is not AgentState.LOGGED_OUT:
                    by_state[state] += 1
                    if state is AgentState.PAUSED and reason is not None:
                        by_reason[reason] += 1
            snap = self.router.queue_stats(q, self.now)
            assert dict(snap.agents_by_state) == dict(by_state)
            assert dict(snap.paused_by_reason) == dict(by_reason)


AcdMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
TestAcdInvariants = AcdMachine.TestCase
