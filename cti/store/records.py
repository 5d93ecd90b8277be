"""Records the store keeps: CDRs, queue legs, agent-state rows, recordings, outbox entries.

``QueueLeg`` is the row of domain.md §0 ("one row per queued call per queue visit") and carries
what the KPIs of §1 need: the three resolution times that give ``wait_s``, talk/hold/ACW for
AHT, the agent, skills, priority, VIP flag, call reason and the number of offers. All times are
UTC seconds since the epoch (the ``now`` the cores were given); durations are seconds.
Validation lives in ``__post_init__`` and raises ``InvalidRecordError``.
"""

from __future__ import annotations

import enum
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NewType, TypeAlias

from acd import AgentState, ExitReason, QueueId, SkillName
from cti.ids import AgentId, CallId, LegId, RecordingSerial
from cti.store.errors import InvalidRecordError
from cti.store.serial import parse_serial

JsonValue: TypeAlias = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject: TypeAlias = Mapping[str, JsonValue]

OutboxId = NewType("OutboxId", int)
StateRowId = NewType("StateRowId", int)

_NUMBER = re.compile(r"\+?[0-9]{1,32}")
_INF = math.inf


@functools.lru_cache(maxsize=1024)
def _serial_ok(serial: str) -> bool:
    """True when ``serial`` is well formed (a call's rows repeat its serial at every milestone); raises as
    :func:`parse_serial` does otherwise (an exception is not cached)."""
    parse_serial(serial)
    return True


def _check_time(name: str, value: float | None) -> None:
    if value is not None and (not math.isfinite(value) or value < 0):
        raise InvalidRecordError(f"{name} must be a finite, non-negative timestamp, got {value!r}")


def _check_duration(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise InvalidRecordError(f"{name} must be a finite, non-negative duration, got {value!r}")


def _check_not_before(name: str, value: float | None, ref_name: str, ref: float | None) -> None:
    if value is not None and ref is not None and value < ref:
        raise InvalidRecordError(f"{name} ({value}) is before {ref_name} ({ref})")


def _check_text(name: str, value: str) -> None:
    if not value:
        raise InvalidRecordError(f"{name} must not be empty")


class HangupParty(enum.Enum):
    """Who ended the call."""

    CALLER = "caller"
    AGENT = "agent"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """One CDR per call; saved (upserted) at each milestone, final when ``t_ended`` is set."""

    call_id: CallId
    node: str
    t_arrived: float
    sip_call_id: str | None = None
    trunk: str | None = None
    caller_number: str | None = None  # normalised (``+`` and digits); None when withheld
    caller_name: str | None = None
    dialled_number: str | None = None
    t_ivr_answered: float | None = None
    t_ivr_left: float | None = None
    t_queued: float | None = None  # first queue entry
    t_answered: float | None = None  # first agent answer
    t_ended: float | None = None
    hangup_by: HangupParty | None = None
    end_reason: str | None = None
    disposition: str | None = None
    ivr_inputs: JsonObject = field(default_factory=dict)
    crm_data: JsonObject = field(default_factory=dict)
    vip: bool = False
    call_reason: str | None = None
    recording_serial: RecordingSerial | None = None
    final_agent: AgentId | None = None
    final_queue: QueueId | None = None
    problems: str | None = None  # what had to be repaired to store it (docs/reliability.md)
    wrap_up_notes: str | None = None  # the agent's free text at the end of the wrap-up

    def __post_init__(self) -> None:
        # A CDR is rebuilt at each milestone of every call: the common case (every check passes) is tested in
        # one expression; anything else goes through the checks one by one, which raise the precise error.
        try:
            a, ia, il, q, ans, end = (self.t_arrived, self.t_ivr_answered, self.t_ivr_left, self.t_queued,
                                      self.t_answered, self.t_ended)
            if (self.call_id and self.node and 0 <= a < _INF
                    and (self.caller_number is None or _NUMBER.fullmatch(self.caller_number))
                    and (ia is None or a <= ia < _INF) and (il is None or a <= il < _INF)
                    and (q is None or a <= q < _INF) and (ans is None or a <= ans < _INF)
                    and (ia is None or il is None or ia <= il)
                    and (end is None or (a <= end < _INF and (ia is None or ia <= end) and (il is None or il <= end)
                                         and (q is None or q <= end) and (ans is None or ans <= end)))
                    and (self.recording_serial is None or _serial_ok(self.recording_serial))):
                return
        except (TypeError, KeyError):  # not even comparable: the checks below say what is wrong
            pass
        self._check()

    def _check(self) -> None:
        _check_text("call_id", self.call_id)
        _check_text("node", self.node)
        if self.caller_number is not None and not _NUMBER.fullmatch(self.caller_number):
            raise InvalidRecordError(f"caller_number is not normalised: {self.caller_number!r}")
        _check_time("t_arrived", self.t_arrived)
        for name in ("t_ivr_answered", "t_ivr_left", "t_queued", "t_answered", "t_ended"):
            value = getattr(self, name)
            _check_time(name, value)
            _check_not_before(name, value, "t_arrived", self.t_arrived)
        _check_not_before("t_ivr_left", self.t_ivr_left, "t_ivr_answered", self.t_ivr_answered)
        for name in ("t_ivr_answered", "t_ivr_left", "t_queued", "t_answered"):
            _check_not_before("t_ended", self.t_ended, name, getattr(self, name))
        if self.recording_serial is not None:
            parse_serial(self.recording_serial)


class LegOutcome(enum.Enum):
    """How a queue leg ended (domain.md §0); ``IN_QUEUE`` until it resolves."""

    IN_QUEUE = "in_queue"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    FLOWOUT = "flowout"


# Which of (t_answer, t_abandon, t_flowout) each outcome has (QueueLeg._check_outcome says it in words).
_OUTCOME_TIMES = {
    LegOutcome.IN_QUEUE: (False, False, False),
    LegOutcome.ANSWERED: (True, False, False),
    LegOutcome.ABANDONED: (False, True, False),
    LegOutcome.FLOWOUT: (False, False, True),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueLeg:
    """One queue visit of one call (domain.md §0); a transfer to another queue is a new leg."""

    leg_id: LegId
    call_id: CallId
    queue_id: QueueId
    t_enter_queue: float
    outcome: LegOutcome = LegOutcome.IN_QUEUE
    skills: tuple[SkillName, ...] = ()
    priority: int = 0
    vip_flag: bool = False
    caller_number: str | None = None
    call_reason: str | None = None
    t_answer: float | None = None
    t_abandon: float | None = None
    t_flowout: float | None = None
    flowout_reason: ExitReason | None = None
    t_end: float | None = None  # the agent's talk ended; ACW starts here (AHT is attributed to t_end + acw_s)
    agent_id: AgentId | None = None
    talk_s: float = 0.0
    hold_s: float = 0.0
    acw_s: float = 0.0
    offers: int = 0  # how many agents it rang
    recording_serial: RecordingSerial | None = None

    def __post_init__(self) -> None:
        # Rebuilt at each ACD event of its call: the common case is tested in one expression (as CallRecord's).
        try:
            t0, ans, abd, flo, end, outcome = (self.t_enter_queue, self.t_answer, self.t_abandon, self.t_flowout,
                                               self.t_end, self.outcome)
            if (self.leg_id and self.call_id and self.queue_id and 0 <= t0 < _INF
                    and (ans is None or t0 <= ans < _INF) and (abd is None or t0 <= abd < _INF)
                    and (flo is None or t0 <= flo < _INF)
                    and (end is None or (t0 <= end < _INF and (ans is None or ans <= end)))
                    and 0 <= self.talk_s < _INF and 0 <= self.hold_s < _INF and 0 <= self.acw_s < _INF
                    and self.offers >= 0
                    and (self.caller_number is None or _NUMBER.fullmatch(self.caller_number))
                    and (self.recording_serial is None or _serial_ok(self.recording_serial))
                    and _OUTCOME_TIMES[outcome] == (ans is not None, abd is not None, flo is not None)
                    and (outcome is LegOutcome.FLOWOUT) == (self.flowout_reason is not None)
                    and (outcome is not LegOutcome.ANSWERED or self.agent_id is not None)
                    and (outcome is LegOutcome.ANSWERED or end is None)):
                return
        except (TypeError, KeyError):  # not even comparable: the checks below say what is wrong
            pass
        self._check()

    def _check(self) -> None:
        _check_text("leg_id", self.leg_id)
        _check_text("call_id", self.call_id)
        _check_text("queue_id", self.queue_id)
        _check_time("t_enter_queue", self.t_enter_queue)
        for name in ("t_answer", "t_abandon", "t_flowout", "t_end"):
            _check_time(name, getattr(self, name))
            _check_not_before(name, getattr(self, name), "t_enter_queue", self.t_enter_queue)
        _check_not_before("t_end", self.t_end, "t_answer", self.t_answer)
        for name in ("talk_s", "hold_s", "acw_s"):
            _check_duration(name, getattr(self, name))
        if self.offers < 0:
            raise InvalidRecordError(f"offers must be >= 0, got {self.offers}")
        if self.caller_number is not None and not _NUMBER.fullmatch(self.caller_number):
            raise InvalidRecordError(f"caller_number is not normalised: {self.caller_number!r}")
        if self.recording_serial is not None:
            parse_serial(self.recording_serial)
        self._check_outcome()

    def _check_outcome(self) -> None:
        expected = {
            LegOutcome.IN_QUEUE: (),
            LegOutcome.ANSWERED: ("t_answer",),
            LegOutcome.ABANDONED: ("t_abandon",),
            LegOutcome.FLOWOUT: ("t_flowout",),
        }[self.outcome]
        present = tuple(n for n in ("t_answer", "t_abandon", "t_flowout") if getattr(self, n) is not None)
        if present != expected:
            raise InvalidRecordError(f"outcome {self.outcome.value} needs exactly {expected or 'none'} of "
                                     f"t_answer/t_abandon/t_flowout, got {present or 'none'}")
        if (self.outcome is LegOutcome.FLOWOUT) != (self.flowout_reason is not None):
            raise InvalidRecordError("flowout_reason is required for, and only for, outcome flowout")
        if self.outcome is LegOutcome.ANSWERED and self.agent_id is None:
            raise InvalidRecordError("an answered leg needs agent_id")
        if self.outcome is not LegOutcome.ANSWERED and self.t_end is not None:
            raise InvalidRecordError("t_end is only meaningful for an answered leg")

    @property
    def wait_s(self) -> float | None:
        """(t_answer or t_abandon or t_flowout) − t_enter_queue; None while still queued."""
        for resolved in (self.t_answer, self.t_abandon, self.t_flowout):
            if resolved is not None:
                return resolved - self.t_enter_queue
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStateRow:
    """One period of one agent in one state; ``end`` is None for the current state."""

    row_id: StateRowId
    agent_id: AgentId
    state: AgentState
    reason: str | None
    start: float
    end: float | None

    def __post_init__(self) -> None:
        _check_time("start", self.start)
        _check_time("end", self.end)
        _check_not_before("end", self.end, "start", self.start)


class PartyRole(enum.Enum):
    """Role of a party heard on a recording."""

    CALLER = "caller"
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    OTHER = "other"


@dataclass(frozen=True, slots=True, kw_only=True)
class Party:
    """A party on a recording: its role and identity (number, agent id...)."""

    role: PartyRole
    identity: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Recording:
    """Index entry of one recording file; saved when it starts, saved again when it ends."""

    serial: RecordingSerial
    call_id: CallId
    path: str
    started: float
    ended: float | None = None
    duration_s: float | None = None
    parties: tuple[Party, ...] = ()
    queue_id: QueueId | None = None
    agent_id: AgentId | None = None

    def __post_init__(self) -> None:
        parse_serial(self.serial)
        _check_text("call_id", self.call_id)
        _check_text("path", self.path)
        _check_time("started", self.started)
        _check_time("ended", self.ended)
        _check_not_before("ended", self.ended, "started", self.started)
        if self.duration_s is not None:
            _check_duration("duration_s", self.duration_s)


class OutboxStatus(enum.Enum):
    """Life of an outbox entry: ``PENDING`` → ``DELIVERED`` | ``DEAD`` (→ ``PENDING`` on replay)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEntry:
    """One at-least-once delivery to ``endpoint``; ``event_id`` lets the receiver deduplicate."""

    entry_id: OutboxId
    endpoint: str
    event_id: str
    event_type: str
    payload: JsonObject
    created: float
    status: OutboxStatus
    attempts: int  # delivery attempts started (counted when claimed)
    next_attempt_at: float
    lease_until: float | None  # a claim is exclusive until then; after it the entry is due again
    last_error: str | None
    delivered_at: float | None
