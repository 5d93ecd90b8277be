"""The ACD: priority, skill-based routing of queued calls to agents (sans-I/O).

Feed ``Router.handle(request, now)`` with ``AcdRequest`` objects and ``Router.handle_timer(now)``
whenever ``Router.get_timer()`` is due; act on the ``AcdCommand`` objects it returns and publish
the ``AcdEvent`` objects. ``cti.node.routing.AcdDriver`` does that on the node's loop. See
``docs/acd.md`` for the full contract.
"""

from acd.agent import AgentState
from acd.config import (
    DEFAULT_REASON_CODES,
    AgentConfig,
    AgentId,
    Attribution,
    CallId,
    OfferId,
    OverflowAction,
    OverflowRule,
    QueueConfig,
    QueueId,
    RoutingStrategy,
    SkillName,
    SkillRequirement,
    SlFormula,
)
from acd.errors import (
    AcdError,
    ConfigurationError,
    DuplicateCallError,
    IllegalTransitionError,
    InvalidRequestError,
    RequestError,
    StaleOfferError,
    UnknownAgentError,
    UnknownCallError,
    UnknownQueueError,
)
from acd.events import (
    AcdCommand,
    AcdEvent,
    AcdOutput,
    AcdRequest,
    AgentStateChanged,
    Answer,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEscalated,
    CallExited,
    CallOffered,
    CallQueued,
    CallRequeued,
    CancelOffer,
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
    OfferCall,
    Reject,
    RequeueReason,
    Ringing,
    RingNoAnswer,
    SetNotReady,
    SetReady,
    Unhold,
)
from acd.queue import CallState
from acd.router import Router, WaitEstimate
from acd.stats import IntervalCounters, QueueSnapshot, QueueStats, SiteCalendar, service_level
from acd.timers import TimerId

__all__ = [
    "DEFAULT_REASON_CODES",
    "AcdCommand", "AcdError", "AcdEvent", "AcdOutput", "AcdRequest", "AgentConfig", "AgentId", "AgentState",
    "AgentStateChanged", "Answer", "Attribution", "CallAbandoned", "CallAnswered", "CallEnded", "CallEscalated",
    "CallExited", "CallId", "CallOffered", "CallQueued", "CallRequeued", "CallState", "CancelOffer", "CancelReason",
    "ConfigurationError", "DuplicateCallError", "EndWrapUp", "Enqueue", "ExitCall", "ExitQueue", "ExitReason",
    "Hangup", "Hold", "IllegalTransitionError", "IntervalCounters", "InvalidRequestError", "LoginAgent",
    "LogoutAgent", "OfferCall", "OfferId", "OverflowAction", "OverflowRule", "QueueConfig", "QueueId",
    "QueueSnapshot", "QueueStats", "Reject", "SiteCalendar", "RequestError", "RequeueReason", "RingNoAnswer",
    "Ringing", "Router",
    "RoutingStrategy", "SetNotReady", "SetReady", "SkillName", "SkillRequirement", "SlFormula", "StaleOfferError",
    "TimerId", "Unhold", "UnknownAgentError", "UnknownCallError", "UnknownQueueError", "WaitEstimate",
    "service_level",
]
