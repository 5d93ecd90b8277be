"""The call's vocabulary: who takes part (:class:`Role`), the call's phase, each leg's state, the milestones."""

from __future__ import annotations

import enum

from cti.call.detail import CallPhase as Phase


class Role(enum.Enum):
    """A participant of the call; every per-participant thing (leg, media, hold) is keyed by it."""

    CALLER = "caller"
    AGENT = "agent"
    SUPERVISOR = "supervisor"

    # Members are singletons and compare by identity: hash them so too (Enum's own __hash__ is Python code, run
    # for every participant look-up of a call).
    __hash__ = object.__hash__


class LegPhase(enum.Enum):
    """One participant's SIP leg as the call sees it (RFC 3261 §13, §15, §9)."""

    ABSENT = "absent"  # no leg (yet, or any more)
    CALLING = "calling"  # INVITE sent or received, no answer yet
    RINGING = "ringing"  # 180/183
    ESTABLISHED = "established"  # 2xx exchanged
    TERMINATED = "terminated"  # BYE, CANCEL, failure or timeout

    # Members are singletons and compare by identity: hash them so too (Enum's own __hash__ is Python code, run
    # for every leg transition of a call).
    __hash__ = object.__hash__


class Milestone(enum.Enum):
    """A point of the call's life at which its record is written (docs/reliability.md)."""

    ANSWERED = "answered"  # the caller was answered (by the IVR, or at the agent's answer with early media)
    QUEUED = "queued"
    AGENT_ANSWERED = "agent_answered"


__all__ = ["LegPhase", "Milestone", "Phase", "Role"]
