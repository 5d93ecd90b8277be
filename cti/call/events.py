"""What the call core is told (past tense): leg, ACD, IVR and operator events.

The shell (:mod:`cti.call.shell`) translates SIP leg events, ACD commands, IVR requests and operator
actions into these and queues them for :meth:`cti.call.core.CallCore.handle`.
"""

from __future__ import annotations

from dataclasses import dataclass

from acd import OfferCall, OfferId, SkillRequirement
from cti.call.commands import AcdKind
from cti.call.model import Role


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent:
    """Base class of every input of the call core."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStarted(CallEvent):
    """The caller's media is set up; ``answered``: a 200 was sent (else a 183 with early media)."""

    answered: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrEnqueued(CallEvent):
    """The flow queued the call."""

    queue: str
    priority: int = 0
    skills: tuple[SkillRequirement, ...] = ()
    caller: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrFinished(CallEvent):
    """The flow ended (without queueing, if the call is still in the IVR)."""

    reason: str = "ivr-ended"


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerRequested(CallEvent):
    """The flow needs the caller answered before going on (a voicemail records only an answered call)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HangupRequested(CallEvent):
    """Tear the call down from our side (IVR hang-up, shutdown, RTP timeout, an error).
    ``status``: the final response for a caller not answered yet (480/500 by default)."""

    reason: str
    status: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferReceived(CallEvent):
    """The ACD offers the call to an agent (``acd.OfferCall``); ``record``: the queue records its calls."""

    offer: OfferCall
    record: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferCancelled(CallEvent):
    """The ACD withdrew an offer (``acd.CancelOffer``)."""

    offer_id: OfferId


@dataclass(frozen=True, slots=True, kw_only=True)
class CallExitedQueue(CallEvent):
    """The ACD took the call out of its queue without an agent (``acd.ExitCall``: full, max wait...);
    ``flow``: the IVR flow the call goes on in (an overflow exit), else the call ends."""

    reason: str
    flow: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentDialled(CallEvent):
    """The agent's INVITE for ``offer_id`` was sent."""

    offer_id: OfferId


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentUnreachable(CallEvent):
    """The agent of ``offer_id`` has no registered phone, or no media port could be opened for it."""

    offer_id: OfferId


@dataclass(frozen=True, slots=True, kw_only=True)
class LegRang(CallEvent):
    """A leg's far end is alerting (180/183)."""

    role: Role


@dataclass(frozen=True, slots=True, kw_only=True)
class LegAnswered(CallEvent):
    """A leg's far end answered; ``media_ok``: its SDP answer was usable."""

    role: Role
    media_ok: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class LegFailed(CallEvent):
    """An INVITE we sent got a final error (408 for a timeout)."""

    role: Role
    status: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LegEnded(CallEvent):
    """A leg's dialog is over; ``by_peer``: the far end's BYE/CANCEL; ``cause``: the leg's hang-up cause."""

    role: Role
    by_peer: bool
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AcdAccepted(CallEvent):
    """The ACD applied a request the core submitted."""

    kind: AcdKind


@dataclass(frozen=True, slots=True, kw_only=True)
class AcdRefused(CallEvent):
    """The ACD refused a request the core submitted (nothing changed there)."""

    kind: AcdKind
    error: str
    transfer: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferRequested(CallEvent):
    """A blind transfer (REFER or the desktop) to ``queue``, optionally waiting for ``agent`` alone."""

    queue: str
    agent: str | None
    method: str
    priority: int = 0
    caller: str = ""
    skills: tuple[SkillRequirement, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentReplaced(CallEvent):
    """A supervisor's take-over: its leg is now the call's agent leg; the agent is released."""

    agent: str


CallInput = (
    CallStarted | AnswerRequested | IvrEnqueued | IvrFinished | HangupRequested | OfferReceived | OfferCancelled
    | CallExitedQueue | AgentDialled | AgentUnreachable | LegRang | LegAnswered | LegFailed | LegEnded | AcdAccepted
    | AcdRefused | TransferRequested | AgentReplaced
)
"""Every event the core takes (matched exhaustively)."""

__all__ = [
    "CallInput", "AcdAccepted", "AcdRefused", "AgentDialled", "AgentReplaced", "AgentUnreachable", "CallEvent",
    "AnswerRequested", "CallExitedQueue", "CallStarted", "HangupRequested", "IvrEnqueued", "IvrFinished", "LegAnswered",
    "LegEnded", "LegFailed", "LegRang", "OfferCancelled", "OfferReceived", "TransferRequested",
]
