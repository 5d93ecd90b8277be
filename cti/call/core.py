"""The call as a sans-I/O core: events in, commands out, time passed in.

:class:`CallCore` decides everything about one call's life — its phase (IVR → queued → offering →
connected → ended), the state of each participant's leg (keyed by :class:`Role`), what to ask the
ACD and when the record is written — and does nothing itself. It imports no asyncio, no sockets,
no clock: ``handle(event, now)`` returns a list of :mod:`commands <cti.call.commands>` that the
asyncio shell (:mod:`cti.call.shell`) carries out. Results of those commands that the core must know
(the ACD accepting or refusing an answer, a leg answering) come back as later events, queued by
the shell — the core is never re-entered while it is deciding.

Transitions are written once, in :data:`PHASE_TRANSITIONS` and :data:`LEG_TRANSITIONS`; the one
``_set_phase`` and the one ``_set_leg`` refuse anything else (:class:`CallStateError`). The call's
end emits :class:`~cti.call.commands.EmitCdr` exactly once, from whatever phase.

SIP meaning of the leg states: RFC 3261 §13 (INVITE: calling, ringing on 1xx, established on 2xx),
§15 (BYE), §9 (CANCEL of a pending INVITE).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import assert_never

import structlog

from acd import (
    Answer,
    CallId,
    Enqueue,
    Hangup,
    OfferCall,
    QueueId,
    Reject,
    Ringing,
    RingNoAnswer,
    SkillName,
    SkillRequirement,
)
from cti.call.commands import (
    AcdKind,
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
from cti.call.model import LegPhase, Milestone, Phase, Role
from cti.errors import CtiError

log = structlog.get_logger(__name__)

# The call phase's transition table: the only moves ``_set_phase`` accepts.
PHASE_TRANSITIONS: Mapping[Phase, frozenset[Phase]] = {
    Phase.IVR: frozenset({Phase.QUEUED, Phase.ENDED}),
    Phase.QUEUED: frozenset({Phase.OFFERING, Phase.IVR, Phase.ENDED}),
    Phase.OFFERING: frozenset({Phase.QUEUED, Phase.CONNECTED, Phase.ENDED}),
    Phase.CONNECTED: frozenset({Phase.QUEUED, Phase.ENDED}),
    Phase.ENDED: frozenset(),
}

# Each leg's transition table (the same for every role): ABSENT → CALLING → RINGING → ESTABLISHED →
# TERMINATED; a pending INVITE may fail or be cancelled (→ TERMINATED); a terminated agent leg
# makes room for the next offer's (→ ABSENT).
LEG_TRANSITIONS: Mapping[LegPhase, frozenset[LegPhase]] = {
    LegPhase.ABSENT: frozenset({LegPhase.CALLING}),
    LegPhase.CALLING: frozenset({LegPhase.RINGING, LegPhase.ESTABLISHED, LegPhase.TERMINATED}),
    LegPhase.RINGING: frozenset({LegPhase.ESTABLISHED, LegPhase.TERMINATED}),
    LegPhase.ESTABLISHED: frozenset({LegPhase.TERMINATED}),
    LegPhase.TERMINATED: frozenset({LegPhase.ABSENT}),
}

# Phases in which the ACD holds the call (a Hangup must release it there).
_ACD_PHASES = frozenset({Phase.QUEUED, Phase.OFFERING, Phase.CONNECTED})

# An agent phone's final answers to an offer that the ACD's phone rules tell apart (RFC 3261 §21): busy
# (486 Busy Here, 600 Busy Everywhere) and no answer (408 Request Timeout: also our own Timer B; 480
# Temporarily Unavailable: do-not-disturb). Any other failure is a reject.
BUSY_STATUSES = frozenset({486, 600})
NO_ANSWER_STATUSES = frozenset({408, 480})


_ROLES = tuple(Role)  # iterating the Enum class runs Python code: once, not per call


class CallStateError(CtiError):
    """A transition the tables do not allow: a bug in the core, never the peer's doing."""


class CallCore:
    """One call's decisions. Create one per call; feed it with :meth:`handle`."""

    def __init__(self, call_id: CallId, *, early_media: bool = False) -> None:
        self.call_id = call_id
        self.early_media = early_media
        self.record = False  # record the bridged audio (the offering queue's setting)
        self.phase = Phase.IVR
        self.legs: dict[Role, LegPhase] = dict.fromkeys(_ROLES, LegPhase.ABSENT)
        self.legs[Role.CALLER] = LegPhase.CALLING  # the caller's INVITE is the call's arrival
        self.offer: OfferCall | None = None
        self.agent: str | None = None
        self.queue: str | None = None
        self.acd_released = False
        self.end_reason: str | None = None
        self.hung_up_by: str | None = None
        self.cdr_emitted = False

    # ------------------------------------------------------------------------------ state

    @property
    def ended(self) -> bool:
        return self.phase is Phase.ENDED

    def _set_phase(self, phase: Phase, now: float) -> None:
        if phase is self.phase:
            return
        if phase not in PHASE_TRANSITIONS[self.phase]:
            raise CallStateError(f"call {self.call_id}: phase {self.phase.value} -> {phase.value} is not allowed")
        log.debug("call.phase.changed", call_id=self.call_id, previous=self.phase.value, phase=phase.value, at=now)
        self.phase = phase

    def _set_leg(self, role: Role, state: LegPhase) -> None:
        current = self.legs[role]
        if state is current:
            return
        if state not in LEG_TRANSITIONS[current]:
            raise CallStateError(f"call {self.call_id}: {role.value} leg {current.value} -> {state.value}")
        self.legs[role] = state

    def _leg_live(self, role: Role) -> bool:
        return self.legs[role] in (LegPhase.CALLING, LegPhase.RINGING, LegPhase.ESTABLISHED)

    # ------------------------------------------------------------------------------ input

    def handle(self, event: CallInput, now: float) -> list[Command]:
        """Apply one event at ``now``; return what the shell must do, in order.

        Raises:
            CallStateError: the event would break the transition tables (a bug; the shell fails the call).
        """
        if self.ended:
            return self._after_end(event)
        match event:
            case CallStarted():
                if event.answered and self.legs[Role.CALLER] is LegPhase.CALLING:
                    self._set_leg(Role.CALLER, LegPhase.ESTABLISHED)
                    return [RecordMilestone(milestone=Milestone.ANSWERED, at=now)]
                return []
            case AnswerRequested():
                # Early media (a 183 so far): answer the caller now, in the IVR.
                if self.phase is Phase.IVR and self.legs[Role.CALLER] in (LegPhase.CALLING, LegPhase.RINGING):
                    self._set_leg(Role.CALLER, LegPhase.ESTABLISHED)
                    return [AnswerLeg(role=Role.CALLER), RecordMilestone(milestone=Milestone.ANSWERED, at=now)]
                return []
            case IvrEnqueued():
                return self._enqueue(event, now)
            case IvrFinished():
                return self._end(event.reason, "system", now) if self.phase is Phase.IVR else []
            case HangupRequested():
                return self._end(event.reason, "system", now, status=event.status)
            case OfferReceived():
                return self._offer(event, now)
            case OfferCancelled():
                return self._cancel_offer(event, now)
            case CallExitedQueue():
                # out of the queue: nothing left for the ACD to release
                self.acd_released = True
                if event.flow is not None and self.phase is Phase.QUEUED:
                    self._set_phase(Phase.IVR, now)  # an overflow exit: the caller goes on in that flow
                    return [RunFlow(flow=event.flow, reason=f"flowout:{event.reason}")]
                self.end_reason = f"flowout:{event.reason}"
                return self._end(self.end_reason, "system", now)
            case AgentDialled():
                if self.offer is None or self.offer.offer_id != event.offer_id or self.phase is not Phase.OFFERING:
                    return [CancelLeg(role=Role.AGENT), DropMedia(role=Role.AGENT)]
                self._agent_leg_reset()
                self._set_leg(Role.AGENT, LegPhase.CALLING)
                return []
            case AgentUnreachable():
                if self.offer is not None and self.offer.offer_id == event.offer_id:
                    return self._reject_offer(now)
                return []
            case LegRang():
                return self._rang(event.role)
            case LegAnswered():
                return self._answered(event, now)
            case LegFailed():
                return self._failed(event.role, event.status, now)
            case LegEnded():
                return self._leg_ended(event, now)
            case AcdAccepted():
                return self._acd_accepted(event, now)
            case AcdRefused():
                return self._acd_refused(event, now)
            case TransferRequested():
                return self._transfer(event, now)
            case AgentReplaced():
                if self.phase is not Phase.CONNECTED:
                    return []
                cmds: list[Command] = [] if self.acd_released else [SubmitAcd(request=Hangup(call_id=self.call_id),
                                                                             kind=AcdKind.RELEASE)]
                self.acd_released = True
                self.agent = event.agent
                return cmds
            case _:
                assert_never(event)

    def _after_end(self, event: CallInput) -> list[Command]:
        """An ended call still answers for stray legs: a late agent answer is hung up, a late offer refused."""
        match event:
            case LegAnswered() if event.role is Role.AGENT:
                return [EndLeg(role=Role.AGENT, status=0)]
            case OfferReceived():
                return [SubmitAcd(request=Reject(offer_id=event.offer.offer_id), kind=AcdKind.REJECT)]
            case AgentDialled():
                return [CancelLeg(role=Role.AGENT), DropMedia(role=Role.AGENT)]
            case _:
                return []

    # ------------------------------------------------------------------------------ IVR and queue

    def _enqueue(self, event: IvrEnqueued, now: float) -> list[Command]:
        if self.phase is not Phase.IVR:
            # The caller hung up (or the call was torn down) while the flow was deciding: an ended
            # call must never enter a queue, where it would be offered to an agent.
            return []
        self.queue = event.queue
        self.acd_released = False  # a new queue leg (after an overflow into a flow, the call may queue again)
        self._set_phase(Phase.QUEUED, now)
        request = Enqueue(call_id=self.call_id, queue_id=QueueId(event.queue), priority=event.priority,
                          skills=event.skills, caller_id=event.caller)
        return [SubmitAcd(request=request, kind=AcdKind.ENQUEUE)]

    def _offer(self, event: OfferReceived, now: float) -> list[Command]:
        offer = event.offer
        if self.phase is not Phase.QUEUED:
            return [SubmitAcd(request=Reject(offer_id=offer.offer_id), kind=AcdKind.REJECT)]
        self.offer = offer
        self.record = event.record
        self._set_phase(Phase.OFFERING, now)
        return [DialAgent(offer=offer)]

    def _cancel_offer(self, event: OfferCancelled, now: float) -> list[Command]:
        if self.offer is None or self.offer.offer_id != event.offer_id:
            return []
        self.offer = None
        if self.phase is Phase.OFFERING:
            self._set_phase(Phase.QUEUED, now)
        cmds: list[Command] = []
        if self._leg_live(Role.AGENT):
            self._set_leg(Role.AGENT, LegPhase.TERMINATED)
            cmds.append(CancelLeg(role=Role.AGENT))
        cmds.append(DropMedia(role=Role.AGENT))
        return cmds

    def _reject_offer(self, now: float, status: int | None = None) -> list[Command]:
        """Give the offer back to the ACD; ``status``: the agent phone's final answer, if it gave one
        (busy and no-answer have their own agent rules in the ACD: docs/acd.md "Agent phone rules")."""
        offer, self.offer = self.offer, None
        if self.phase is Phase.OFFERING:
            self._set_phase(Phase.QUEUED, now)
        if offer is None:
            return []
        request: Reject | RingNoAnswer
        if status in NO_ANSWER_STATUSES:
            request = RingNoAnswer(offer_id=offer.offer_id)
        else:
            request = Reject(offer_id=offer.offer_id, busy=status in BUSY_STATUSES)
        return [SubmitAcd(request=request, kind=AcdKind.REJECT)]

    def _transfer(self, event: TransferRequested, now: float) -> list[Command]:
        if self.phase is not Phase.CONNECTED:
            return []
        cmds: list[Command] = [SubmitAcd(request=Hangup(call_id=self.call_id), kind=AcdKind.RELEASE)]
        self.offer = None
        if self._leg_live(Role.AGENT):
            self._set_leg(Role.AGENT, LegPhase.TERMINATED)
            cmds.append(EndLeg(role=Role.AGENT, status=0))
        cmds.append(DropMedia(role=Role.AGENT))
        self._set_phase(Phase.QUEUED, now)
        self.queue = event.queue
        self.acd_released = False
        cmds.append(PublishTransfer(queue=event.queue, agent=event.agent, method=event.method,
                                    from_agent=self.agent or ""))
        cmds.append(SubmitAcd(request=Enqueue(call_id=self.call_id, queue_id=QueueId(event.queue),
                                              priority=event.priority, caller_id=event.caller,
                                              skills=event.skills), kind=AcdKind.ENQUEUE))
        return cmds

    # ------------------------------------------------------------------------------ legs

    def _agent_leg_reset(self) -> None:
        if self.legs[Role.AGENT] is LegPhase.TERMINATED:
            self._set_leg(Role.AGENT, LegPhase.ABSENT)
        elif self.legs[Role.AGENT] is not LegPhase.ABSENT:
            # A previous agent leg still counted live: it is superseded (its end is ignored).
            self.legs[Role.AGENT] = LegPhase.ABSENT

    def _rang(self, role: Role) -> list[Command]:
        if role is not Role.AGENT or self.legs[role] is not LegPhase.CALLING:
            if role is Role.AGENT and self.legs[role] is LegPhase.RINGING:
                return []
            return []
        self._set_leg(role, LegPhase.RINGING)
        if self.offer is not None and self.phase is Phase.OFFERING:
            return [SubmitAcd(request=Ringing(offer_id=self.offer.offer_id), kind=AcdKind.RINGING)]
        return []

    def _answered(self, event: LegAnswered, now: float) -> list[Command]:
        role = event.role
        if role is Role.CALLER:
            if self._leg_live(Role.CALLER) and self.legs[Role.CALLER] is not LegPhase.ESTABLISHED:
                self._set_leg(Role.CALLER, LegPhase.ESTABLISHED)
            return []
        if role is not Role.AGENT:
            return []
        if not self._leg_live(Role.AGENT) or self.offer is None or self.phase is not Phase.OFFERING:
            return [EndLeg(role=Role.AGENT, status=0)]  # a late answer from an offer we gave up
        self._set_leg(Role.AGENT, LegPhase.ESTABLISHED)
        if not event.media_ok:
            self._set_leg(Role.AGENT, LegPhase.TERMINATED)
            return [EndLeg(role=Role.AGENT, status=0), *self._reject_offer(now), DropMedia(role=Role.AGENT)]
        # Connected only once the ACD agrees (AcdAccepted / AcdRefused come back as events).
        return [SubmitAcd(request=Answer(offer_id=self.offer.offer_id), kind=AcdKind.ANSWER)]

    def _failed(self, role: Role, status: int, now: float) -> list[Command]:
        if role is not Role.AGENT or not self._leg_live(role):
            return []
        self._set_leg(role, LegPhase.TERMINATED)
        cmds: list[Command] = [DropMedia(role=Role.AGENT)]
        if self.phase is Phase.OFFERING:
            cmds += self._reject_offer(now, status)
        return cmds

    def _leg_ended(self, event: LegEnded, now: float) -> list[Command]:
        role = event.role
        if not self._leg_live(role):
            return []
        self._set_leg(role, LegPhase.TERMINATED)
        if role is Role.CALLER:
            by = "caller" if event.by_peer else "system"
            return [NotifyIvr(), *self._end("caller-hangup" if event.by_peer else event.cause, by, now)]
        if role is Role.AGENT:
            cmds: list[Command] = [DropMedia(role=Role.AGENT)]
            if self.phase is Phase.OFFERING:
                return cmds + self._reject_offer(now)  # the agent's phone gave up before answering
            if self.phase is Phase.CONNECTED:
                return cmds + self._end("agent-hangup", "agent", now)
            return cmds
        return []

    # ------------------------------------------------------------------------------ ACD answers

    def _acd_accepted(self, event: AcdAccepted, now: float) -> list[Command]:
        if event.kind is AcdKind.ENQUEUE:
            return [RecordMilestone(milestone=Milestone.QUEUED, at=now)]
        if (event.kind is not AcdKind.ANSWER or self.phase is not Phase.OFFERING or self.offer is None
                or self.legs[Role.AGENT] is not LegPhase.ESTABLISHED):
            return []
        offer = self.offer
        self._set_phase(Phase.CONNECTED, now)
        self.agent = offer.agent_id
        cmds: list[Command] = []
        if self.legs[Role.CALLER] is not LegPhase.ESTABLISHED and self._leg_live(Role.CALLER):
            self._set_leg(Role.CALLER, LegPhase.ESTABLISHED)
            cmds.append(AnswerLeg(role=Role.CALLER))  # early media: the caller is answered when the agent is
            cmds.append(RecordMilestone(milestone=Milestone.ANSWERED, at=now))
        cmds.append(RecordMilestone(milestone=Milestone.AGENT_ANSWERED, at=now))
        cmds.append(Bridge())
        if self.record:
            cmds.append(StartRecording(offer=offer))
        return cmds

    def _acd_refused(self, event: AcdRefused, now: float) -> list[Command]:
        match event.kind:
            case AcdKind.ANSWER:
                if self.legs[Role.AGENT] is LegPhase.ESTABLISHED and self.phase is Phase.OFFERING:
                    return [EndLeg(role=Role.AGENT, status=0)]  # its LegEnded gives the offer back
                return []
            case AcdKind.ENQUEUE:
                if self.phase is Phase.QUEUED:
                    self._set_phase(Phase.IVR, now)  # never entered the queue: nothing for the ACD to release
                    reason = "transfer-failed" if event.transfer else "enqueue-refused"
                    return self._end(reason, "system", now)
                return []
            case AcdKind.RINGING | AcdKind.REJECT | AcdKind.RELEASE:
                return []
            case _:
                assert_never(event.kind)

    # ------------------------------------------------------------------------------ the end

    def _end(self, reason: str, by: str, now: float, *, status: int | None = None) -> list[Command]:
        """End the call from any live phase: release the ACD, hang up every leg, emit the CDR once."""
        phase = self.phase
        self._set_phase(Phase.ENDED, now)
        self.end_reason = self.end_reason or reason
        self.hung_up_by = self.hung_up_by or by
        cmds: list[Command] = []
        if phase in _ACD_PHASES and not self.acd_released:
            self.acd_released = True
            cmds.append(SubmitAcd(request=Hangup(call_id=self.call_id), kind=AcdKind.RELEASE))
        for role in (Role.SUPERVISOR, Role.AGENT, Role.CALLER):
            if self._leg_live(role):
                self._set_leg(role, LegPhase.TERMINATED)
                if role is Role.CALLER:
                    cmds.append(EndLeg(role=role, status=status or (500 if reason == "error" else 480)))
                else:
                    cmds.append(CancelLeg(role=role))
        cmds.append(self._cdr(now))
        return cmds

    def _cdr(self, now: float) -> EmitCdr:
        assert not self.cdr_emitted, "the CDR is emitted once"
        self.cdr_emitted = True
        return EmitCdr(reason=self.end_reason or "system", by=self.hung_up_by or "system", at=now)


PERSONAL_SKILL_PREFIX = "agent:"  # reserved: config skills may not start with it


def personal_skill(agent_id: str) -> SkillName:
    """The skill only ``agent_id`` holds: a call that requires it waits for that agent alone
    (a transfer to an agent), with the queue's priority, aging and overflow rules."""
    return SkillName(PERSONAL_SKILL_PREFIX + agent_id)


def skills_of(requirements: Mapping[str, int]) -> tuple[SkillRequirement, ...]:
    """The ACD's skill requirements from the IVR's ``{skill: level}``."""
    return tuple(SkillRequirement(skill=SkillName(s), min_level=lv) for s, lv in requirements.items())
