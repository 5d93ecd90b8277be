"""Inputs and outputs of the ACD router (see the contract at the top of ``acd.router``).

Three families, each under its own base class:

* ``AcdRequest`` — what the outside world asks or reports (imperative names, inputs of
  ``Router.handle``): ``LoginAgent``, ``SetReady``, ``Enqueue``, ``Answer``, ``Hangup``...
* ``AcdEvent`` — facts, past tense, with the ``now`` they happened at: ``AgentStateChanged``,
  ``CallQueued``, ``CallOffered``, ``CallAnswered``, ``CallAbandoned``, ``CallExited``...
* ``AcdCommand`` — instructions for the call controller, imperative: ``OfferCall``,
  ``CancelOffer``, ``ExitCall``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from acd.config import AgentConfig, AgentId, CallId, OfferId, QueueId, SkillRequirement
from acd.errors import InvalidRequestError

if TYPE_CHECKING:
    from acd.agent import AgentState

MAX_PRIORITY = 100


class ExitReason(enum.Enum):
    """Why a call left the queue without an agent and without hanging up (a "flow-out")."""

    QUEUE_FULL = "queue_full"
    MAX_WAIT = "max_wait"
    OVERFLOW_VOICEMAIL = "overflow_voicemail"
    OVERFLOW_CALLBACK = "overflow_callback"
    OVERFLOW_EXIT = "overflow_exit"
    CALLER_EXIT = "caller_exit"
    INTERRUPTED = "interrupted"  # the node holding the call stopped (a crash); set by the records, not the router


class RequeueReason(enum.Enum):
    """Why an offered call went back to the head of its priority band."""

    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    BUSY = "busy"  # the agent's phone answered busy (486/600)
    AGENT_LOGGED_OUT = "agent_logged_out"


class CancelReason(enum.Enum):
    """Why the router withdrew an offer from an agent (``CancelOffer``)."""

    RING_TIMEOUT = "ring_timeout"
    CALLER_HUNG_UP = "caller_hung_up"
    AGENT_LOGGED_OUT = "agent_logged_out"
    CALL_EXITED = "call_exited"


# ----------------------------------------------------------------------------- requests (inputs)


@dataclass(frozen=True, slots=True, kw_only=True)
class AcdRequest:
    """Base class of every router input."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginAgent(AcdRequest):
    """Log an agent in with its current configuration; not ready (reason "login") unless ``ready``."""

    agent: AgentConfig
    ready: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LogoutAgent(AcdRequest):
    """Log an agent out. Allowed unless the agent is talking or holding a call."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True, kw_only=True)
class SetReady(AcdRequest):
    """The agent is ready for calls (from not ready or wrap-up)."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True, kw_only=True)
class SetNotReady(AcdRequest):
    """The agent goes not ready with a reason code from the configured list."""

    agent_id: AgentId
    reason: str

    def __post_init__(self) -> None:
        if not self.reason:
            raise InvalidRequestError("SetNotReady needs a reason code")


@dataclass(frozen=True, slots=True, kw_only=True)
class EndWrapUp(AcdRequest):
    """The agent finished after-call work before the auto-timeout."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True, kw_only=True)
class Enqueue(AcdRequest):
    """A call enters a queue. ``skills`` are added to the queue's own required skills."""

    call_id: CallId
    queue_id: QueueId
    priority: int = 0
    skills: tuple[SkillRequirement, ...] = ()
    caller_id: str = ""
    data: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if isinstance(self.priority, bool) or not 0 <= self.priority <= MAX_PRIORITY:
            raise InvalidRequestError(f"priority must be in [0, {MAX_PRIORITY}], got {self.priority!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ringing(AcdRequest):
    """The agent's phone started ringing for this offer (RESERVED -> RINGING)."""

    offer_id: OfferId


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer(AcdRequest):
    """The agent answered this offer."""

    offer_id: OfferId


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject(AcdRequest):
    """The agent declined this offer; ``busy``: its phone answered busy (486 Busy Here, 600 Busy Everywhere)."""

    offer_id: OfferId
    busy: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RingNoAnswer(AcdRequest):
    """The agent leg reported no answer (e.g. 408/480) before the router's own ring timeout."""

    offer_id: OfferId


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup(AcdRequest):
    """The call ended: the caller hung up while queued/offered, or either side after answer."""

    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold(AcdRequest):
    """The agent put the call on hold."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True, kw_only=True)
class Unhold(AcdRequest):
    """The agent took the call off hold."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitQueue(AcdRequest):
    """The caller left the queue on purpose (e.g. pressed a key for voicemail)."""

    call_id: CallId
    reason: ExitReason = ExitReason.CALLER_EXIT


# ----------------------------------------------------------------------------- events (facts)


@dataclass(frozen=True, slots=True, kw_only=True)
class AcdEvent:
    """Base class of every fact the router reports; ``at`` is the ``now`` passed in."""

    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStateChanged(AcdEvent):
    """An agent changed state (one row of the agent-state stream)."""

    agent_id: AgentId
    previous: AgentState
    previous_reason: str | None
    state: AgentState
    reason: str | None
    call_id: CallId | None
    wrap_up_s: float | None = None
    """Into WRAP_UP: the queue's after-call work length (None when unlimited); None for every other state."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallQueued(AcdEvent):
    """A call entered a queue (``t_enter_queue``)."""

    call_id: CallId
    queue_id: QueueId
    priority: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOffered(AcdEvent):
    """The router reserved an agent for a call."""

    call_id: CallId
    queue_id: QueueId
    agent_id: AgentId
    offer_id: OfferId


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRequeued(AcdEvent):
    """An offer failed; the call is back at the head of its priority band."""

    call_id: CallId
    queue_id: QueueId
    agent_id: AgentId
    reason: RequeueReason


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEscalated(AcdEvent):
    """An overflow rule widened the set of agents that may take the call."""

    call_id: CallId
    queue_id: QueueId
    rule_index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(AcdEvent):
    """An agent connected (``t_answer``); the queue leg ends here."""

    call_id: CallId
    queue_id: QueueId
    agent_id: AgentId
    wait_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAbandoned(AcdEvent):
    """The caller hung up before an agent answered (``t_abandon``); the queue leg ends here."""

    call_id: CallId
    queue_id: QueueId
    wait_s: float
    agent_id: AgentId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallExited(AcdEvent):
    """The call left the queue without agent or hang-up (``t_flowout``); the queue leg ends here."""

    call_id: CallId
    queue_id: QueueId
    reason: ExitReason
    wait_s: float
    target: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(AcdEvent):
    """An answered call finished; ``talk_s`` includes ``hold_s``."""

    call_id: CallId
    queue_id: QueueId
    agent_id: AgentId
    talk_s: float
    hold_s: float


# ----------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True, kw_only=True)
class AcdCommand:
    """Base class of every instruction for the call controller."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferCall(AcdCommand):
    """Ring ``agent_id`` for ``call_id``; echo ``offer_id`` in Ringing/Answer/Reject/RingNoAnswer."""

    offer_id: OfferId
    call_id: CallId
    agent_id: AgentId
    queue_id: QueueId
    ring_timeout_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOffer(AcdCommand):
    """Stop ringing ``agent_id``: the offer is void (a late Answer will raise StaleOfferError)."""

    offer_id: OfferId
    call_id: CallId
    agent_id: AgentId
    reason: CancelReason


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitCall(AcdCommand):
    """Take the call out of the ACD and send it to ``reason``'s destination (voicemail, callback...)."""

    call_id: CallId
    queue_id: QueueId
    reason: ExitReason
    target: str | None = None


AcdOutput = AcdEvent | AcdCommand


def check_finite(now: float) -> None:
    """Refuse a non-finite clock value.

    Raises:
        InvalidRequestError: ``now`` is NaN or infinite.
    """
    if not math.isfinite(now):
        raise InvalidRequestError(f"now must be finite, got {now!r}")
