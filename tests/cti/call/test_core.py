"""The call core, synchronously with time stepped by hand: every phase x event pair, the main
paths with their exact commands, and a seeded Hypothesis walk over random event sequences."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from acd import AgentId, Answer, CallId, Enqueue, Hangup, OfferCall, OfferId, QueueId, Reject, Ringing, RingNoAnswer
from cti.call import LEG_TRANSITIONS, PHASE_TRANSITIONS, AcdKind, CallCore, LegPhase, Milestone, Phase, Role
from cti.call.commands import (
    AnswerLeg,
    Bridge,
    CancelLeg,
    Command,
    DialAgent,
    DropMedia,
    EmitCdr,
    EndLeg,
    NotifyIvr,
    PublishTransfer,
    RecordMilestone,
    RunFlow,
    StartRecording,
    SubmitAcd,
)
from cti.call.events import (
    AcdAccepted,
    AcdRefused,
    AgentDialled,
    AgentReplaced,
    AgentUnreachable,
    AnswerRequested,
    CallExitedQueue,
    CallInput,
    CallStarted,
    HangupRequested,
    IvrEnqueued,
    IvrFinished,
    LegAnswered,
    LegEnded,
    LegFailed,
    LegRang,
    OfferCancelled,
    OfferReceived,
    TransferRequested,
)

C = CallId("c-1")


def offer(n: int = 1, agent: str = "1001") -> OfferCall:
    return OfferCall(call_id=C, offer_id=OfferId(f"o{n}"), agent_id=AgentId(agent), queue_id=QueueId("sales"),
                     ring_timeout_s=20.0)


class Run:
    """A core and a hand-stepped clock; ``do`` returns the commands of one event."""

    def __init__(self, *, early_media: bool = False) -> None:
        self.core = CallCore(C, early_media=early_media)
        self.now = 1_700_000_000.0
        self.commands: list[Command] = []

    def do(self, event: CallInput, step: float = 0.1) -> list[Command]:
        self.now += step
        out = self.core.handle(event, self.now)
        self.commands += out
        return out

    def cdrs(self) -> list[EmitCdr]:
        return [c for c in self.commands if isinstance(c, EmitCdr)]


def in_phase(phase: Phase) -> Run:
    """A call driven by real events into ``phase``."""
    r = Run()
    r.do(CallStarted(answered=True))
    if phase is Phase.IVR:
        return r
    if phase is Phase.ENDED:
        r.do(HangupRequested(reason="test"))
        return r
    r.do(IvrEnqueued(queue="sales", caller="5551234"))
    r.do(AcdAccepted(kind=AcdKind.ENQUEUE))
    if phase is Phase.QUEUED:
        return r
    r.do(OfferReceived(offer=offer()))
    r.do(AgentDialled(offer_id=OfferId("o1")))
    if phase is Phase.OFFERING:
        return r
    r.do(LegAnswered(role=Role.AGENT))
    r.do(AcdAccepted(kind=AcdKind.ANSWER))
    assert phase is Phase.CONNECTED
    return r


# One example of every event kind (the kinds the core matches on).
EVENTS: dict[str, Callable[[], CallInput]] = {
    "CallStarted": lambda: CallStarted(answered=True),
    "IvrEnqueued": lambda: IvrEnqueued(queue="support"),
    "IvrFinished": lambda: IvrFinished(),
    "HangupRequested": lambda: HangupRequested(reason="operator-hangup"),
    "OfferReceived": lambda: OfferReceived(offer=offer(2, "1002")),
    "OfferCancelled": lambda: OfferCancelled(offer_id=OfferId("o1")),
    "CallExitedQueue": lambda: CallExitedQueue(reason="max_wait"),
    "CallExitedQueue(flow)": lambda: CallExitedQueue(reason="overflow_exit", flow="closed"),
    "AgentDialled": lambda: AgentDialled(offer_id=OfferId("o1")),
    "AgentUnreachable": lambda: AgentUnreachable(offer_id=OfferId("o1")),
    "LegRang(agent)": lambda: LegRang(role=Role.AGENT),
    "LegAnswered(agent)": lambda: LegAnswered(role=Role.AGENT),
    "LegAnswered(agent, bad sdp)": lambda: LegAnswered(role=Role.AGENT, media_ok=False),
    "LegFailed(agent)": lambda: LegFailed(role=Role.AGENT, status=486),
    "LegEnded(caller)": lambda: LegEnded(role=Role.CALLER, by_peer=True, cause="remote_bye"),
    "LegEnded(agent)": lambda: LegEnded(role=Role.AGENT, by_peer=True, cause="remote_bye"),
    "AcdAccepted(answer)": lambda: AcdAccepted(kind=AcdKind.ANSWER),
    "AcdRefused(answer)": lambda: AcdRefused(kind=AcdKind.ANSWER, error="stale"),
    "AcdRefused(enqueue)": lambda: AcdRefused(kind=AcdKind.ENQUEUE, error="full"),
    "TransferRequested": lambda: TransferRequested(queue="support", agent=None, method="desktop"),
    "AgentReplaced": lambda: AgentReplaced(agent="sup1"),
}

# What each (phase, event) pair leads to: the phase after it. Written from the call's rules, not
# from the tables: a pair not listed leaves the phase as it was.
EXPECTED: dict[tuple[Phase, str], Phase] = {
    (Phase.IVR, "IvrEnqueued"): Phase.QUEUED,
    (Phase.IVR, "IvrFinished"): Phase.ENDED,
    (Phase.IVR, "HangupRequested"): Phase.ENDED,
    (Phase.IVR, "CallExitedQueue"): Phase.ENDED,
    (Phase.IVR, "CallExitedQueue(flow)"): Phase.ENDED,
    (Phase.IVR, "LegEnded(caller)"): Phase.ENDED,
    (Phase.QUEUED, "HangupRequested"): Phase.ENDED,
    (Phase.QUEUED, "OfferReceived"): Phase.OFFERING,
    (Phase.QUEUED, "CallExitedQueue"): Phase.ENDED,
    (Phase.QUEUED, "CallExitedQueue(flow)"): Phase.IVR,
    (Phase.QUEUED, "LegEnded(caller)"): Phase.ENDED,
    (Phase.QUEUED, "AcdRefused(enqueue)"): Phase.ENDED,
    (Phase.OFFERING, "HangupRequested"): Phase.ENDED,
    (Phase.OFFERING, "OfferCancelled"): Phase.QUEUED,
    (Phase.OFFERING, "CallExitedQueue"): Phase.ENDED,
    (Phase.OFFERING, "CallExitedQueue(flow)"): Phase.ENDED,
    (Phase.OFFERING, "AgentUnreachable"): Phase.QUEUED,
    (Phase.OFFERING, "LegAnswered(agent, bad sdp)"): Phase.QUEUED,
    (Phase.OFFERING, "LegFailed(agent)"): Phase.QUEUED,
    (Phase.OFFERING, "LegEnded(caller)"): Phase.ENDED,
    (Phase.OFFERING, "LegEnded(agent)"): Phase.QUEUED,
    (Phase.CONNECTED, "HangupRequested"): Phase.ENDED,
    (Phase.CONNECTED, "CallExitedQueue"): Phase.ENDED,
    (Phase.CONNECTED, "CallExitedQueue(flow)"): Phase.ENDED,
    (Phase.CONNECTED, "LegEnded(caller)"): Phase.ENDED,
    (Phase.CONNECTED, "LegEnded(agent)"): Phase.ENDED,
    (Phase.CONNECTED, "TransferRequested"): Phase.QUEUED,
}


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("name", list(EVENTS))
def test_every_phase_and_event(phase: Phase, name: str) -> None:
    r = in_phase(phase)
    assert r.core.phase is phase
    before = len(r.cdrs())
    out = r.do(EVENTS[name]())
    assert r.core.phase is EXPECTED.get((phase, name), phase)
    ended_now = r.core.phase is Phase.ENDED and phase is not Phase.ENDED
    assert len([c for c in out if isinstance(c, EmitCdr)]) == (1 if ended_now else 0)
    assert len(r.cdrs()) == (before + 1 if ended_now else before)
    if r.core.phase is Phase.ENDED:
        assert not any(r.core.legs[role] in (LegPhase.CALLING, LegPhase.RINGING, LegPhase.ESTABLISHED)
                       for role in Role)
    if r.core.phase is Phase.OFFERING:
        assert r.core.offer is not None


def test_the_tables_name_every_state_and_ended_is_final() -> None:
    assert set(PHASE_TRANSITIONS) == set(Phase) and PHASE_TRANSITIONS[Phase.ENDED] == frozenset()
    assert set(LEG_TRANSITIONS) == set(LegPhase)


def test_the_path_of_a_call_answered_by_an_agent() -> None:
    r = Run()
    assert r.do(CallStarted(answered=True)) == [RecordMilestone(milestone=Milestone.ANSWERED, at=r.now)]
    (enqueue,) = r.do(IvrEnqueued(queue="sales", priority=5, caller="5551234"))
    assert enqueue == SubmitAcd(request=Enqueue(call_id=C, queue_id=QueueId("sales"), priority=5,
                                                caller_id="5551234"), kind=AcdKind.ENQUEUE)
    assert r.do(AcdAccepted(kind=AcdKind.ENQUEUE)) == [RecordMilestone(milestone=Milestone.QUEUED, at=r.now)]
    assert r.do(OfferReceived(offer=offer(), record=True)) == [DialAgent(offer=offer())]
    assert r.do(AgentDialled(offer_id=OfferId("o1"))) == []
    assert r.do(LegRang(role=Role.AGENT)) == [SubmitAcd(request=Ringing(offer_id=OfferId("o1")),
                                                        kind=AcdKind.RINGING)]
    assert r.do(LegAnswered(role=Role.AGENT)) == [SubmitAcd(request=Answer(offer_id=OfferId("o1")),
                                                            kind=AcdKind.ANSWER)]
    assert r.core.phase is Phase.OFFERING  # connected only once the ACD agrees
    assert r.do(AcdAccepted(kind=AcdKind.ANSWER)) == [
        RecordMilestone(milestone=Milestone.AGENT_ANSWERED, at=r.now), Bridge(), StartRecording(offer=offer())]
    assert r.core.agent == "1001"
    out = r.do(LegEnded(role=Role.CALLER, by_peer=True, cause="remote_bye"), step=30.0)
    assert out == [NotifyIvr(), SubmitAcd(request=Hangup(call_id=C), kind=AcdKind.RELEASE),
                   CancelLeg(role=Role.AGENT), EmitCdr(reason="caller-hangup", by="caller", at=r.now)]


def test_early_media_answers_the_caller_when_the_agent_answers() -> None:
    r = Run(early_media=True)
    assert r.do(CallStarted(answered=False)) == []
    r.do(IvrEnqueued(queue="sales"))
    r.do(OfferReceived(offer=offer()))
    r.do(AgentDialled(offer_id=OfferId("o1")))
    r.do(LegAnswered(role=Role.AGENT))
    out = r.do(AcdAccepted(kind=AcdKind.ANSWER))
    assert out[:3] == [AnswerLeg(role=Role.CALLER), RecordMilestone(milestone=Milestone.ANSWERED, at=r.now),
                       RecordMilestone(milestone=Milestone.AGENT_ANSWERED, at=r.now)]
    # never answered before the agent: ending now rejects it instead (480)
    r2 = Run(early_media=True)
    r2.do(CallStarted(answered=False))
    assert EndLeg(role=Role.CALLER, status=480) in r2.do(HangupRequested(reason="shutdown"))


def test_a_voicemail_answers_a_caller_still_in_early_media_once() -> None:
    r = Run(early_media=True)
    r.do(CallStarted(answered=False))
    assert r.do(AnswerRequested()) == [AnswerLeg(role=Role.CALLER),
                                       RecordMilestone(milestone=Milestone.ANSWERED, at=r.now)]
    assert r.core.legs[Role.CALLER] is LegPhase.ESTABLISHED and r.core.phase is Phase.IVR
    assert r.do(AnswerRequested()) == []  # already answered
    assert r.do(IvrFinished(reason="ivr-ended"))[-1] == EmitCdr(reason="ivr-ended", by="system", at=r.now)
    plain = Run()
    plain.do(CallStarted(answered=True))
    assert plain.do(AnswerRequested()) == []


def test_a_stale_answer_hangs_up_the_agent_and_gives_the_offer_back() -> None:
    r = in_phase(Phase.OFFERING)
    r.do(LegAnswered(role=Role.AGENT))
    assert r.do(AcdRefused(kind=AcdKind.ANSWER, error="stale")) == [EndLeg(role=Role.AGENT, status=0)]
    out = r.do(LegEnded(role=Role.AGENT, by_peer=False, cause="local"))
    assert out == [DropMedia(role=Role.AGENT), SubmitAcd(request=Reject(offer_id=OfferId("o1")),
                                                          kind=AcdKind.REJECT)]
    assert r.core.phase is Phase.QUEUED and r.core.offer is None


def test_a_refused_enqueue_ends_the_call_without_releasing_the_acd() -> None:
    r = in_phase(Phase.IVR)
    r.do(IvrEnqueued(queue="nope"))
    out = r.do(AcdRefused(kind=AcdKind.ENQUEUE, error="unknown queue"))
    assert not any(isinstance(c, SubmitAcd) for c in out)
    assert r.cdrs() == [EmitCdr(reason="enqueue-refused", by="system", at=r.now)]


def test_an_ended_call_refuses_a_late_offer_and_hangs_up_a_late_answer() -> None:
    r = in_phase(Phase.ENDED)
    assert r.do(OfferReceived(offer=offer(3))) == [SubmitAcd(request=Reject(offer_id=OfferId("o3")),
                                                             kind=AcdKind.REJECT)]
    assert r.do(LegAnswered(role=Role.AGENT)) == [EndLeg(role=Role.AGENT, status=0)]
    assert r.do(HangupRequested(reason="again")) == []
    assert len(r.cdrs()) == 1


def test_a_transfer_releases_the_agent_and_queues_again() -> None:
    r = in_phase(Phase.CONNECTED)
    out = r.do(TransferRequested(queue="support", agent="1002", method="refer"))
    assert out[0] == SubmitAcd(request=Hangup(call_id=C), kind=AcdKind.RELEASE)
    assert EndLeg(role=Role.AGENT, status=0) in out
    assert PublishTransfer(queue="support", agent="1002", method="refer", from_agent="1001") in out
    assert isinstance(out[-1], SubmitAcd) and isinstance(out[-1].request, Enqueue)
    assert r.core.phase is Phase.QUEUED
    # the released agent's BYE arriving later changes nothing
    assert r.do(LegEnded(role=Role.AGENT, by_peer=False, cause="local")) == []
    assert r.core.phase is Phase.QUEUED


def test_a_late_dial_of_a_cancelled_offer_is_withdrawn() -> None:
    r = in_phase(Phase.QUEUED)
    r.do(OfferReceived(offer=offer()))
    r.do(OfferCancelled(offer_id=OfferId("o1")))  # ring timeout while the port was being opened
    assert r.do(AgentDialled(offer_id=OfferId("o1"))) == [CancelLeg(role=Role.AGENT), DropMedia(role=Role.AGENT)]
    assert r.core.phase is Phase.QUEUED


def test_a_second_offer_after_a_failed_one_dials_a_new_leg() -> None:
    r = in_phase(Phase.OFFERING)
    r.do(LegFailed(role=Role.AGENT, status=486))
    r.do(OfferReceived(offer=offer(2, "1002")))
    r.do(AgentDialled(offer_id=OfferId("o2")))
    assert r.core.legs[Role.AGENT] is LegPhase.CALLING and r.core.phase is Phase.OFFERING


# ------------------------------------------------------------------------------ the random walk

event_strategy = st.one_of(
    st.sampled_from(list(EVENTS.values())).map(lambda make: make()),
    st.builds(OfferReceived, offer=st.integers(1, 3).map(offer), record=st.booleans()),
    st.builds(OfferCancelled, offer_id=st.sampled_from([OfferId("o1"), OfferId("o2"), OfferId("o3")])),
    st.builds(AgentDialled, offer_id=st.sampled_from([OfferId("o1"), OfferId("o2"), OfferId("o3")])),
    st.builds(AcdAccepted, kind=st.sampled_from(list(AcdKind))),
    st.builds(LegRang, role=st.sampled_from(list(Role))),
    st.builds(LegAnswered, role=st.sampled_from(list(Role)), media_ok=st.booleans()),
    st.builds(LegEnded, role=st.sampled_from(list(Role)), by_peer=st.booleans(), cause=st.just("timeout")),
)
endings = st.sampled_from([
    HangupRequested(reason="shutdown"),
    LegEnded(role=Role.CALLER, by_peer=True, cause="remote_bye"),
    LegEnded(role=Role.CALLER, by_peer=True, cause="remote_cancel"),
])


@seed(17)
@settings(max_examples=400, deadline=None, derandomize=False)
@given(st.lists(event_strategy, max_size=40), endings, st.booleans(), st.lists(st.floats(0.0, 5.0), min_size=41,
                                                                             max_size=41))
def test_random_event_sequences_never_raise_and_end_with_one_cdr(
        events: list[CallInput], ending: CallInput, early: bool, steps: list[float]) -> None:
    r = Run(early_media=early)
    for event, step in zip(events, steps, strict=False):
        r.do(event, step)
        if r.core.phase is Phase.OFFERING:
            assert r.core.offer is not None
        if r.core.phase is Phase.CONNECTED:
            assert r.core.agent is not None
        assert len(r.cdrs()) == (1 if r.core.phase is Phase.ENDED else 0)
    r.do(ending)
    assert r.core.phase is Phase.ENDED
    assert len(r.cdrs()) == 1
    assert not any(r.core.legs[role] in (LegPhase.CALLING, LegPhase.RINGING, LegPhase.ESTABLISHED) for role in Role)
    # milestones come in time order, all before the CDR
    times = [c.at for c in r.commands if isinstance(c, RecordMilestone | EmitCdr)]
    assert times == sorted(times)
    assert isinstance(r.commands[-1], EmitCdr) or not any(
        isinstance(c, EmitCdr) for c in r.commands[r.commands.index(r.cdrs()[0]) + 1:])


# ------------------------------------------------------------------------------ overflow exits and phone answers


def test_an_overflow_exit_runs_its_flow_instead_of_hanging_up() -> None:
    r = in_phase(Phase.QUEUED)
    out = r.do(CallExitedQueue(reason="overflow_exit", flow="closed"))
    assert out == [RunFlow(flow="closed", reason="flowout:overflow_exit")]
    assert r.core.phase is Phase.IVR and r.core.legs[Role.CALLER] is LegPhase.ESTABLISHED
    assert r.cdrs() == [] and r.core.acd_released  # the queue leg is over; the call is not


def test_after_an_overflow_the_flow_may_queue_the_call_again_and_its_end_releases_it() -> None:
    r = in_phase(Phase.QUEUED)
    r.do(CallExitedQueue(reason="overflow_exit", flow="closed"))
    (enqueue,) = r.do(IvrEnqueued(queue="support"))
    assert isinstance(enqueue, SubmitAcd) and enqueue.kind is AcdKind.ENQUEUE and not r.core.acd_released
    out = r.do(LegEnded(role=Role.CALLER, by_peer=True, cause="remote_bye"))
    assert SubmitAcd(request=Hangup(call_id=C), kind=AcdKind.RELEASE) in out


def test_an_overflow_flow_that_ends_ends_the_call_with_the_flows_reason() -> None:
    r = in_phase(Phase.QUEUED)
    r.do(CallExitedQueue(reason="overflow_exit", flow="closed"))
    r.do(HangupRequested(reason="ivr-hangup"))
    assert [(c.reason, c.by) for c in r.cdrs()] == [("ivr-hangup", "system")]


@pytest.mark.parametrize(("status", "request_"), [
    (486, Reject(offer_id=OfferId("o1"), busy=True)),
    (600, Reject(offer_id=OfferId("o1"), busy=True)),
    (603, Reject(offer_id=OfferId("o1"))),
    (500, Reject(offer_id=OfferId("o1"))),
    (408, RingNoAnswer(offer_id=OfferId("o1"))),
    (480, RingNoAnswer(offer_id=OfferId("o1"))),
])
def test_the_agent_phones_answer_tells_busy_and_no_answer_from_a_reject(status: int, request_: object) -> None:
    r = in_phase(Phase.OFFERING)
    out = r.do(LegFailed(role=Role.AGENT, status=status))
    assert SubmitAcd(request=request_, kind=AcdKind.REJECT) in out  # type: ignore[arg-type]
