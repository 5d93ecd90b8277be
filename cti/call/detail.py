"""What one call is doing (its phase) and what it learnt (the future CDR row), shared by the call
path, the controller and the event publisher."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class CallPhase(enum.Enum):
    IVR = "ivr"
    QUEUED = "queued"
    OFFERING = "offering"
    CONNECTED = "connected"
    ENDED = "ended"

    # Members are singletons and compare by identity: hash them so too (Enum's own __hash__ is Python code, run
    # for every phase transition of a call).
    __hash__ = object.__hash__


@dataclass(slots=True)
class CallDetail:
    """What the CDR will hold (wall-clock times, UTC epoch seconds)."""

    call_id: str
    sip_call_id: str
    trunk: str
    caller: str
    caller_name: str
    dialled: str
    arrived_at: float
    answered_at: float | None = None
    queued_at: float | None = None
    queue: str | None = None
    priority: int = 0
    vip: bool = False
    reason: str | None = None
    agent: str | None = None
    offered_to: list[str] = field(default_factory=list)
    agent_answered_at: float | None = None
    ended_at: float | None = None
    hung_up_by: str | None = None
    end_reason: str | None = None
    ivr_inputs: list[dict[str, Any]] = field(default_factory=list)
    ivr_variables: dict[str, Any] = field(default_factory=dict)
    crm: list[dict[str, Any]] = field(default_factory=list)
    recording_serial: str | None = None
    recording_path: str | None = None
    disposition: str | None = None
    wrap_up_notes: str | None = None
