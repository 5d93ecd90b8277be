"""What a session keeps about the call: caller input, CRM results, tags, outcome.

The call controller reads :attr:`ivr.engine.Session.record` for the agent's screen pop and
the CDR. Records are frozen snapshots; the session builds a new one on each read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from ivr.flow import FlowName, NodeId, Value


class Outcome(Enum):
    """How the IVR part of the call ended."""

    QUEUED = "queued"
    VOICEMAIL = "voicemail"
    HUNG_UP = "hung_up"
    CALLER_HUNG_UP = "caller_hung_up"


class InputResult(Enum):
    ACCEPTED = "accepted"
    INVALID = "invalid"
    NO_INPUT = "no_input"


@dataclass(frozen=True, slots=True, kw_only=True)
class InputRecord:
    """One answer of the caller at a menu or collect node (including wrong ones)."""

    flow: FlowName
    node: NodeId
    digits: str
    result: InputResult
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupRecord:
    """One CRM look-up: the raw JSON result, or why it failed."""

    flow: FlowName
    node: NodeId
    url: str
    ok: bool
    at: float
    result: Mapping[str, object] | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Tags:
    vip: bool = False
    priority: int = 0
    reason: str | None = None
    skills: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """Everything the IVR learnt about the call."""

    caller: str
    called: str
    flow: FlowName
    flow_version: int
    variables: Mapping[str, Value]
    inputs: tuple[InputRecord, ...]
    lookups: tuple[LookupRecord, ...]
    tags: Tags
    path: tuple[tuple[FlowName, NodeId], ...]
    outcome: Outcome | None
    started_at: float | None
    ended_at: float | None
