"""Errors raised by the ACD core.

Exception tree::

    AcdError                        base of everything the ACD raises; carries a stable ``code``
    ├── ConfigurationError          acd.config_invalid      a QueueConfig / AgentConfig is inconsistent
    └── RequestError                the request cannot be applied; the router state is unchanged
        ├── InvalidRequestError     acd.request_invalid     a field value is out of range
        ├── UnknownAgentError       acd.agent_unknown       no such agent (or not logged in)
        ├── UnknownQueueError       acd.queue_unknown       no such queue
        ├── UnknownCallError        acd.call_unknown        no such call (or it already ended)
        ├── DuplicateCallError      acd.call_duplicate      the call id is already known
        ├── StaleOfferError         acd.offer_stale         the offer was cancelled, timed out or superseded
        └── IllegalTransitionError  acd.transition_illegal  the agent state machine forbids this step

``code`` strings are part of the API (the gateway returns them to clients, like wazo's
``error_id``); never rename one. A ``RequestError`` is raised *before* any mutation, so the
caller may catch it and carry on: the router is exactly as it was.
"""

from __future__ import annotations


class AcdError(Exception):
    """Base class of every ACD error."""

    code: str = "acd.error"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class ConfigurationError(AcdError):
    """A queue or agent configuration is invalid."""

    code = "acd.config_invalid"


class RequestError(AcdError):
    """A request was refused; nothing changed."""

    code = "acd.request_refused"


class InvalidRequestError(RequestError):
    """A request field is out of range (priority, skill level, reason code...)."""

    code = "acd.request_invalid"


class UnknownAgentError(RequestError):
    """The agent is not known to the router, or is not logged in."""

    code = "acd.agent_unknown"


class UnknownQueueError(RequestError):
    """The queue is not configured."""

    code = "acd.queue_unknown"


class UnknownCallError(RequestError):
    """The call is not known, or its life in the ACD has already ended."""

    code = "acd.call_unknown"


class DuplicateCallError(RequestError):
    """A call with this id is already in the ACD."""

    code = "acd.call_duplicate"


class StaleOfferError(RequestError):
    """The offer this request refers to is no longer current (timed out, cancelled, superseded).

    The typical race: the agent answers a moment after the ring timeout fired. The router
    already emitted ``CancelOffer``; the controller must tear the late agent leg down.
    """

    code = "acd.offer_stale"


class IllegalTransitionError(RequestError):
    """The agent state machine does not allow this transition from the current state."""

    code = "acd.transition_illegal"
