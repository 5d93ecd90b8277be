"""What the call core asks its shell to do (imperative): leg signalling, ACD requests, media, records."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from acd import AcdRequest, OfferCall
from cti.call.model import Milestone, Role


class AcdKind(enum.Enum):
    """Which ACD request a :class:`SubmitAcd` carries, so its outcome can come back as an event."""

    ENQUEUE = "enqueue"
    RINGING = "ringing"
    ANSWER = "answer"
    REJECT = "reject"
    RELEASE = "release"  # Hangup: the ACD lets go of the call (agent to wrap-up, queue leg ended)


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Base class of every output of the call core."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitAcd(Command):
    """Hand ``request`` to the ACD; its acceptance or refusal comes back as AcdAccepted / AcdRefused."""

    request: AcdRequest
    kind: AcdKind


@dataclass(frozen=True, slots=True, kw_only=True)
class DialAgent(Command):
    """Open the agent's media and INVITE its phone for ``offer`` (then AgentDialled / AgentUnreachable)."""

    offer: OfferCall


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerLeg(Command):
    """200 OK to a received INVITE with our SDP (the caller, answered late after early media)."""

    role: Role


@dataclass(frozen=True, slots=True, kw_only=True)
class EndLeg(Command):
    """BYE an established leg, or answer a pending received INVITE with ``status`` (0: BYE only)."""

    role: Role
    status: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelLeg(Command):
    """CANCEL the INVITE we sent (BYE when it was answered)."""

    role: Role


@dataclass(frozen=True, slots=True, kw_only=True)
class DropMedia(Command):
    """Close ``role``'s RTP endpoint; the bridge stops."""

    role: Role


@dataclass(frozen=True, slots=True, kw_only=True)
class Bridge(Command):
    """Move audio between the caller and the agent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartRecording(Command):
    """Allocate a recording serial and record the bridged audio."""

    offer: OfferCall


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFlow(Command):
    """Run IVR flow ``flow`` for the caller (an overflow exit); ``reason``: the flow-out, should it be missing."""

    flow: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyIvr(Command):
    """Tell the IVR the caller hung up."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordMilestone(Command):
    """Write the call's record at ``milestone`` (``at``: the wall-clock time it happened)."""

    milestone: Milestone
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishTransfer(Command):
    """Publish ``call.transferred``."""

    queue: str
    agent: str | None
    method: str
    from_agent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EmitCdr(Command):
    """The call is over: close its media and write the final CDR (emitted exactly once per call)."""

    reason: str
    by: str
    at: float


__all__ = [
    "AcdKind", "AnswerLeg", "Bridge", "CancelLeg", "Command", "DialAgent", "DropMedia", "EmitCdr", "EndLeg",
    "NotifyIvr", "PublishTransfer", "RecordMilestone", "RunFlow", "StartRecording", "SubmitAcd",
]
