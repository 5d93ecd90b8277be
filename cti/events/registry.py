"""The public event envelope, the registry of event types and their data schemas.

Every event that leaves the process (WebSocket gateway, MQTT bridge, webhooks) travels in one envelope::

    {"type": "call.offered", "id": "01J0...", "ts": 1718000000.123, "node": "cti-a", "data": {...}}

Decisions (see ``docs/events.md``):

- ``id`` is a 26-character ULID (Crockford base32, 48-bit millisecond time + 80 random bits). Ids made by one
  :class:`EventIdFactory` sort in creation order, even within the same millisecond.
- ``ts`` is UTC epoch seconds as a float (millisecond precision); it is the ``now`` passed in, never read here.
- ``type`` is a dotted lower-case name registered in :data:`REGISTRY` with a schema version. Additive changes keep the
  version; removing, renaming or retyping a field bumps it.
- ``seq`` (a sixth, optional key) is the node's sequence number, given by the bus when the envelope is published
  (:meth:`Envelope.sequenced`): it increases by one per event within a run of the node and keeps increasing across
  restarts (``cti.events.bus.first_seq``). The WebSocket gateway replays missed events by it (``?since=<seq>``).

Internal (core) events are never serialised directly; the mapping to envelopes lives elsewhere in ``cti``.

Errors::

    EventError
     ├── EnvelopeError   the envelope itself is malformed or cannot be decoded
     └── SchemaError     ``data`` does not match the registered schema of its type (or the type is unknown)
"""

from __future__ import annotations

import enum
import json
import math
import random
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack

from acd import ExitReason
from cti import jsonbytes
from cti.errors import CtiError

__all__ = [
    "REGISTRY", "Envelope", "EnvelopeError", "EventError", "EventIdFactory", "EventSchema", "Field", "FieldKind",
    "SchemaError", "catalog", "new_event_id", "validate",
]

_TYPE_RE: Final = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_ENVELOPE_KEYS: Final = ("type", "id", "ts", "node", "data")
_CHECKED_TYPES: set[str] = set()  # event types that matched _TYPE_RE (a few dozen; bounded all the same)
_CHECKED_TYPES_MAX: Final = 1024
_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two Crockford characters for each 10-bit value: an id's 130 bits (the top two zero) are 13 look-ups, a third of
# what base64.b32encode (pure Python on 3.11) and a translation cost.
_CROCKFORD_PAIRS: Final = tuple(_CROCKFORD[i >> 5] + _CROCKFORD[i & 31] for i in range(1024))
_PAIR_SHIFTS: Final = tuple(range(120, -1, -10))
_RAND_SHIFTS: Final = tuple(range(70, -1, -10))  # the pairs below bit 80: the random part alone


class EventError(CtiError):
    """Base class of this module's errors; ``code`` is a stable identifier for API answers."""

    code = "event_error"


class EnvelopeError(EventError):
    """The envelope is malformed (missing key, wrong type) or its bytes cannot be decoded."""

    code = "envelope_invalid"


class SchemaError(EventError):
    """An envelope's ``data`` does not match the schema registered for its ``type``."""

    code = "event_schema_mismatch"

    def __init__(self, message: str, *, event_type: str, field_name: str | None = None) -> None:
        super().__init__(message)
        self.event_type = event_type
        self.field_name = field_name



class EventIdFactory:
    """Makes ULIDs that are strictly increasing for this factory, even within one millisecond.

    The 80 random bits come from a generator seeded once per factory from the OS (``secrets``):
    ids must be unique across nodes, not secret (a Mersenne Twister can be predicted from enough
    of its output; nothing may rely on an id being unguessable), and a system call per event
    cost more than the rest of the id.
    """

    __slots__ = ("_last_ms", "_last_rand", "_prefix", "_prefix_ms", "_random")

    def __init__(self) -> None:
        self._last_ms, self._last_rand = -1, 0
        self._prefix_ms, self._prefix = -1, ""  # the characters of the time part, for the last millisecond
        self._random = random.Random(secrets.randbits(128))

    def new(self, now: float) -> str:
        """Return a new id for an event created at ``now`` (UTC epoch seconds)."""
        ms = max(int(now * 1000), self._last_ms)
        if ms == self._last_ms:
            rand = self._last_rand + 1
            if rand >= 1 << 80:  # 2**80 ids in one millisecond: borrow the next millisecond
                ms, rand = ms + 1, self._random.getrandbits(79)
        else:
            rand = self._random.getrandbits(79)  # top bit clear leaves room to increment
        self._last_ms, self._last_rand = ms, rand
        # 26 Crockford characters = 130 bits, the top two zero, most significant first: the first ten hold the
        # 48 bits of the time (and the two zero bits above), the last sixteen the 80 random bits
        pairs = _CROCKFORD_PAIRS
        if ms != self._prefix_ms:
            high = (ms & ((1 << 48) - 1)) << 80
            self._prefix_ms, self._prefix = ms, "".join([pairs[(high >> shift) & 1023] for shift in _PAIR_SHIFTS[:5]])
        return self._prefix + "".join([pairs[(rand >> shift) & 1023] for shift in _RAND_SHIFTS])


_DEFAULT_IDS: Final = EventIdFactory()


def new_event_id(now: float) -> str:
    """Return a new ULID from the process-wide factory (sortable by creation order)."""
    return _DEFAULT_IDS.new(now)



@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One public event. ``data`` holds JSON-compatible values only (str, int, float, bool, None, list, dict)."""

    type: str
    id: str
    ts: float
    node: str
    data: dict[str, Any] = field(default_factory=dict)
    seq: int | None = field(default=None, compare=False)  # delivery order on one node, not the event's identity

    def __post_init__(self) -> None:
        if not (isinstance(self.type, str) and self.type in _CHECKED_TYPES):
            if not isinstance(self.type, str) or not _TYPE_RE.match(self.type):
                raise EnvelopeError(f"type must be a dotted lower-case name, got {self.type!r}")
            if len(_CHECKED_TYPES) < _CHECKED_TYPES_MAX:
                _CHECKED_TYPES.add(self.type)
        if not isinstance(self.id, str) or not self.id:
            raise EnvelopeError("id must be a non-empty string")
        if isinstance(self.ts, bool) or not isinstance(self.ts, int | float) or not math.isfinite(self.ts):
            raise EnvelopeError(f"ts must be finite epoch seconds, got {self.ts!r}")
        if not isinstance(self.node, str) or not self.node:
            raise EnvelopeError("node must be a non-empty string")
        if not isinstance(self.data, dict) or not all(isinstance(k, str) for k in self.data):
            raise EnvelopeError("data must be an object with string keys")
        if self.seq is not None and (type(self.seq) is not int or self.seq < 0):
            raise EnvelopeError(f"seq must be a non-negative integer, got {self.seq!r}")

    @classmethod
    def new(cls, type: str, data: Mapping[str, Any], *, node: str, now: float) -> Envelope:
        """Build an envelope with a fresh id; ``now`` is UTC epoch seconds.

        Raises:
            EnvelopeError: a field is malformed.
        """
        # The dataclass __init__ with its keyword arguments and one object.__setattr__ look-up per field costs more
        # than the checks: a node builds about ten envelopes a call. The same fields, the same __post_init__ checks.
        envelope = object.__new__(cls)
        _set = object.__setattr__
        _set(envelope, "type", type)
        _set(envelope, "id", new_event_id(now))
        _set(envelope, "ts", float(now))
        _set(envelope, "node", node)
        _set(envelope, "data", dict(data))
        _set(envelope, "seq", None)
        envelope.__post_init__()
        return envelope

    def sequenced(self, seq: int) -> Envelope:
        """This envelope carrying the node's sequence number ``seq`` (the bus calls it once, at publish)."""
        copy = object.__new__(Envelope)  # the fields were checked when this envelope was made; seq is the bus's
        _set = object.__setattr__
        _set(copy, "type", self.type)
        _set(copy, "id", self.id)
        _set(copy, "ts", self.ts)
        _set(copy, "node", self.node)
        _set(copy, "data", self.data)
        _set(copy, "seq", seq)
        return copy

    def to_dict(self) -> dict[str, Any]:
        """Return the envelope as a plain mapping: the five contract keys, and ``seq`` once it has one."""
        out = {"type": self.type, "id": self.id, "ts": self.ts, "node": self.node, "data": self.data}
        if self.seq is not None:
            out["seq"] = self.seq
        return out

    @classmethod
    def from_dict(cls, raw: object) -> Envelope:
        """Build an envelope from a decoded mapping; ``seq`` is optional; unknown top-level keys are ignored.

        Raises:
            EnvelopeError: not a mapping, a key is missing, or a value has the wrong type.
        """
        if not isinstance(raw, Mapping):
            raise EnvelopeError(f"envelope must be an object, got {type(raw).__name__}")
        missing = [key for key in _ENVELOPE_KEYS if key not in raw]
        if missing:
            raise EnvelopeError(f"envelope is missing {', '.join(missing)}")
        ts = float(raw["ts"]) if type(raw["ts"]) is int else raw["ts"]  # JSON may carry whole seconds
        return cls(type=raw["type"], id=raw["id"], ts=ts, node=raw["node"], data=raw["data"], seq=raw.get("seq"))

    def to_json(self) -> bytes:
        """Encode as compact UTF-8 JSON.

        Raises:
            EnvelopeError: ``data`` holds a value JSON cannot carry.
        """
        try:
            return jsonbytes.dumps(self.to_dict())
        except (TypeError, ValueError) as exc:
            raise EnvelopeError(f"cannot encode {self.type} as JSON: {exc}") from exc

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        """Decode a JSON envelope.

        Raises:
            EnvelopeError: the bytes are not JSON or not a valid envelope.
        """
        try:
            decoded = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise EnvelopeError(f"not a JSON envelope: {exc}") from exc
        return cls.from_dict(decoded)

    def to_msgpack(self) -> bytes:
        """Encode as msgpack (the ``cti.msgpack`` WebSocket subprotocol); ``ts`` is a float64.

        Raises:
            EnvelopeError: ``data`` holds a value msgpack cannot carry.
        """
        try:
            return bytes(msgpack.packb(self.to_dict(), use_bin_type=True))
        except (TypeError, ValueError, OverflowError) as exc:
            raise EnvelopeError(f"cannot encode {self.type} as msgpack: {exc}") from exc

    @classmethod
    def from_msgpack(cls, raw: bytes) -> Envelope:
        """Decode a msgpack envelope.

        Raises:
            EnvelopeError: the bytes are not msgpack or not a valid envelope.
        """
        try:
            decoded = msgpack.unpackb(raw, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises several unrelated exception types on garbage
            raise EnvelopeError(f"not a msgpack envelope: {exc}") from exc
        return cls.from_dict(decoded)



class FieldKind(enum.Enum):
    """The JSON shape a data field carries."""

    STR = "string"
    INT = "integer"
    NUMBER = "number"
    BOOL = "boolean"
    STR_LIST = "array of strings"
    OBJECT = "object"

    # Members are singletons and compare by identity: hash them so too (Enum's own __hash__ is Python code, run
    # for every field of an event checked against its schema).
    __hash__ = object.__hash__


_KIND_CHECKS: Final[Mapping[FieldKind, Callable[[object], bool]]] = {
    FieldKind.STR: lambda v: isinstance(v, str),
    FieldKind.INT: lambda v: isinstance(v, int) and not isinstance(v, bool),  # bool is an int subclass
    FieldKind.NUMBER: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    FieldKind.BOOL: lambda v: isinstance(v, bool),
    FieldKind.STR_LIST: lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
    FieldKind.OBJECT: lambda v: isinstance(v, dict) and all(isinstance(key, str) for key in v),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """One key of an event's ``data``. ``nullable`` fields are present but may be ``null``."""

    name: str
    kind: FieldKind
    doc: str
    nullable: bool = False
    choices: frozenset[str] | None = None

    def check(self, value: object) -> str | None:
        """Return why ``value`` does not fit this field, or ``None`` if it does."""
        if value is None:
            return None if self.nullable else "must not be null"
        if not _KIND_CHECKS[self.kind](value):
            return f"must be {self.kind.value}, got {type(value).__name__}"
        if self.choices is not None and value not in self.choices:
            return f"must be one of {sorted(self.choices)}, got {value!r}"
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventSchema:
    """The registered shape of one event type: every field listed is required (``nullable`` allows ``null``)."""

    type: str
    version: int
    doc: str
    fields: tuple[Field, ...]


AGENT_STATES: Final = frozenset(
    {"logged_out", "available", "reserved", "ringing", "on_call", "held", "wrap_up", "paused"}
)
SUPERVISION_MODES: Final = frozenset({"listen", "whisper", "barge"})
SEVERITIES: Final = frozenset({"info", "warning", "critical"})
PHONE_STATES: Final = frozenset({"off", "ready", "ringing", "in_call"})
PHONE_REASONS: Final = frozenset({"turned_off", "replaced", "disconnected", "ice_failed", "failed", "shutdown",
                                  "caller_cancelled", "declined", "hung_up", "remote_hangup"})
"""``phone.state_changed`` ``reason``: why a browser phone went off (the first six) or its call ended (the rest)."""
NOTICE_PRIORITIES: Final = frozenset({"info", "urgent"})
CALL_REASON_SOURCES: Final = frozenset({"ivr", "disposition"})
CALL_END_REASONS: Final = frozenset({
    "caller-hangup", "agent-hangup", "operator-hangup", "ivr-hangup", "ivr-ended", "callback-requested",
    "transfer-failed", "transfer-unavailable", "voicemail-unavailable", "enqueue-refused", "caller-sdp",
    "no-media-port", "rtp-timeout", "local", "timeout", "error", "shutdown", "system", "interrupted", "ended",
    "voicemail",
} | {f"flowout:{reason.value}" for reason in ExitReason})
"""``call.ended`` ``reason``: the values the call path and the stored CDRs (``end_reason``) really use
(``callback-requested``, ``transfer-unavailable`` and ``voicemail-unavailable`` only in CDRs of earlier versions)."""
FLOWOUT_REASONS: Final = frozenset(reason.value for reason in ExitReason if reason is not ExitReason.INTERRUPTED)
"""``call.flowed_out`` ``reason``: why the ACD let the call go (``interrupted`` is only ever a stored leg's)."""
CALL_FAILED_WHERE: Final = frozenset({"leg", "acd", "task", "digit", "rtp-timeout", "core", "command"})
TRANSFER_METHODS: Final = frozenset({"refer", "desktop"})
SUPERVISION_END_REASONS: Final = frozenset({
    "supervisor_left", "supervisor_hung_up", "taken_over", "call_ended", "rtp_timeout", "no_media_port",
    "unreachable", "not_answered", "bad_answer",
})

_S, _I, _N, _B, _L, _O = (FieldKind.STR, FieldKind.INT, FieldKind.NUMBER, FieldKind.BOOL, FieldKind.STR_LIST,
                          FieldKind.OBJECT)


def _f(name: str, kind: FieldKind, doc: str, *, null: bool = False, choices: frozenset[str] | None = None) -> Field:
    return Field(name=name, kind=kind, doc=doc, nullable=null, choices=choices)


_CALL_ID = _f("call_id", _S, "call identifier, stable for the whole call")
_AGENT_ID = _f("agent_id", _S, "agent identifier (login)")
_QUEUE = _f("queue", _S, "queue name")
_SUP_ID = _f("supervision_id", _S, "supervision session identifier")


def _schema(type: str, doc: str, *fields: Field, version: int = 1) -> EventSchema:
    return EventSchema(type=type, version=version, doc=doc, fields=fields)


_SCHEMAS: Final = (
    _schema("agent.state_changed", "an agent moved between ACD states", _AGENT_ID,
            _f("state", _S, "new state", choices=AGENT_STATES),
            _f("previous_state", _S, "state before the change", choices=AGENT_STATES),
            _f("reason", _S, "pause reason or cause of the change", null=True),
            _f("call_id", _S, "call the change relates to", null=True),
            _f("wrap_up_s", _N, "into wrap_up: the queue's wrap-up time in seconds, for a countdown (null when "
                                "unlimited); null for every other state", null=True)),
    _schema("agent.logged_in", "an agent logged in", _AGENT_ID,
            _f("device", _S, "SIP contact or device the agent uses"),
            _f("queues", _L, "queues the agent serves"),
            _f("skills", _O, "skill name to level (integer)"),
            _f("by", _S, "who logged the agent in: user (the agent), operator (admin API), reconfigured (skills "
                         "changed: logged out and in again)")),
    _schema("agent.logged_out", "an agent logged out", _AGENT_ID,
            _f("reason", _S, "who logged the agent out: user (the agent), operator (admin API), reconfigured "
                             "(skills changed: logged out and in again)")),
    _schema("call.arrived", "a call reached the server", _CALL_ID,
            _f("caller_number", _S, "calling number (redacted if configured)"),
            _f("caller_name", _S, "calling name", null=True),
            _f("dialled_number", _S, "number the caller dialled"),
            _f("trunk", _S, "trunk the call came in on")),
    _schema("call.ivr_input", "the caller answered an IVR prompt", _CALL_ID,
            _f("flow", _S, "IVR flow name"), _f("node", _S, "flow node that collected the input"),
            _f("digits", _S, "digits collected (may be empty on timeout)"),
            _f("result", _S, "accepted, invalid (not an option, too short, wrong pattern) or no_input (timed out)",
               choices=frozenset({"accepted", "invalid", "no_input"}))),
    _schema("call.queued", "a call entered a queue", _CALL_ID, _QUEUE,
            _f("priority", _I, "queue priority (higher first)"), _f("position", _I, "1-based position on entry"),
            _f("vip", _B, "caller is on the VIP list"),
            _f("caller_number", _S, "calling number (redacted if configured), as in call.offered")),
    _schema("call.offered", "screen pop: a call is offered to an agent", _CALL_ID, _AGENT_ID, _QUEUE,
            _f("caller_number", _S, "calling number (redacted if configured)"),
            _f("caller_name", _S, "calling name", null=True),
            _f("dialled_number", _S, "number the caller dialled"),
            _f("wait_seconds", _N, "time waited in queue so far"),
            _f("ivr_inputs", _O, "IVR variable name to collected value"),
            _f("crm", _O, "CRM look-up results (free-form object, empty if none)"),
            _f("vip", _B, "caller is on the VIP list"),
            _f("recording_serial", _S, "serial the recording will carry", null=True)),
    _schema("call.answered", "an agent answered a call", _CALL_ID, _AGENT_ID, _QUEUE,
            _f("wait_seconds", _N, "time waited in queue"),
            _f("recording_serial", _S, "the call's recording serial (allocated when its first agent is dialled); "
               "null when the queue does not record, or the store could not allocate one then", null=True)),
    _schema("call.ended", "a call was released", _CALL_ID,
            _f("reason", _S, "why the call ended (the CDR's end_reason)", choices=CALL_END_REASONS),
            _f("duration_seconds", _N, "from arrival to release"),
            _f("talk_seconds", _N, "time connected to an agent", null=True),
            _f("agent_id", _S, "last agent on the call", null=True),
            _f("queue", _S, "last queue of the call", null=True),
            _f("recording_serial", _S, "recording serial number", null=True)),
    _schema("call.failed", "an internal error ended this call (the node goes on); call.ended follows", _CALL_ID,
            _f("phase", _S, "phase the call was in",
               choices=frozenset({"ivr", "queued", "offering", "connected", "ended"})),
            _f("where", _S, "what failed: an input (leg, acd, digit, rtp-timeout), a task, the call core "
               "refusing an event (core) or carrying out one of its commands (command)", choices=CALL_FAILED_WHERE),
            _f("error", _S, "the error, shortened to 300 characters")),
    _schema("call.transferred", "an agent transferred its call blind to a queue or to an agent", _CALL_ID,
            _f("agent_id", _S, "the agent who transferred the call"),
            _f("queue", _S, "queue the caller waits in now"),
            _f("to_agent", _S, "the one agent the caller waits for (a transfer to an agent)", null=True),
            _f("method", _S, "refer (from the agent's phone) or desktop (API, WebSocket, cti)",
               choices=TRANSFER_METHODS)),
    _schema("call.abandoned", "the caller hung up while queued", _CALL_ID, _QUEUE,
            _f("wait_seconds", _N, "time waited before hanging up"),
            _f("position", _I, "position when abandoned", null=True)),
    _schema("call.flowed_out", "the call left its queue without an agent and without hanging up: a hard limit "
            "(max_wait, queue_full) or an overflow exit", _CALL_ID, _QUEUE,
            _f("reason", _S, "why it left (the queue leg's flowout_reason)", choices=FLOWOUT_REASONS),
            _f("wait_seconds", _N, "time waited in the queue (0 for queue_full: it never entered)"),
            _f("flow", _S, "the IVR flow the caller goes on in (on_max_wait, on_full, an overflow rule's flow); "
               "null: the call ends", null=True)),
    _schema("queue.stats", "periodic queue statistics", _QUEUE,
            _f("waiting", _I, "calls waiting now"), _f("longest_wait_seconds", _N, "oldest waiting call's wait"),
            _f("agents_logged_in", _I, "agents logged in"), _f("agents_available", _I, "agents ready"),
            _f("agents_busy", _I, "agents on a call or in wrap-up"),
            _f("agents_offering", _I, "agents reserved for or ringing with an offered call (part of agents_busy)"),
            _f("offered", _I, "calls offered in the window"), _f("answered", _I, "calls answered in the window"),
            _f("abandoned", _I, "calls abandoned in the window"),
            _f("service_level", _N, "fraction answered within target (0..1)", null=True),
            _f("asa_seconds", _N, "average speed of answer: total queue wait of the calls answered in the window "
                                  "/ calls answered (abandons excluded); null when none was answered", null=True),
            _f("window_seconds", _I, "seconds since the site's local midnight (node.timezone): offered, answered, "
               "abandoned, service_level and asa_seconds cover the site's day so far")),
    _schema("alert.raised", "a supervisor alert was raised", _f("alert_id", _S, "alert identifier"),
            _f("kind", _S, "alert kind: vip_in_queue, vip_wait, vip_abandoned, surge, threshold:<metric>, ..."),
            _f("severity", _S, "severity", choices=SEVERITIES), _f("message", _S, "human-readable text"),
            _f("queue", _S, "related queue", null=True), _f("call_id", _S, "related call", null=True),
            _f("agent_id", _S, "related agent", null=True)),
    _schema("alert.cleared", "a supervisor alert was cleared", _f("alert_id", _S, "alert identifier"),
            _f("kind", _S, "alert kind"), _f("reason", _S, "why it cleared", null=True)),
    _schema("alert.acknowledged", "a supervisor acknowledged an active alert (for every supervisor)",
            _f("alert_id", _S, "alert identifier"), _f("by", _S, "supervisor who acknowledged it"),
            _f("at", _N, "UTC epoch seconds of the acknowledgement"),
            _f("queue", _S, "the alert's queue (who may see it)", null=True)),
    _schema("notice.broadcast", "a supervisor broadcast a notice", _f("notice_id", _S, "notice identifier"),
            _f("sender", _S, "supervisor who sent it"), _f("text", _S, "notice text"),
            _f("audience", _L, "queue names, or ['*'] for everyone"),
            _f("expires_at", _N, "UTC epoch seconds after which it is stale", null=True),
            _f("priority", _S, "info, or urgent (pops up on the desktop)", choices=NOTICE_PRIORITIES),
            _f("require_ack", _B, "the agent must acknowledge it (notice_read with ack)")),
    _schema("notice.read", "an agent read (or acknowledged) a notice", _f("notice_id", _S, "notice identifier"),
            _AGENT_ID, _f("read_at", _N, "UTC epoch seconds when the agent read it"),
            _f("ack_at", _N, "UTC epoch seconds when the agent acknowledged it", null=True),
            _f("sender", _S, "supervisor who sent the notice"),
            _f("audience", _L, "the notice's audience (who may see the receipt)")),
    _schema("call.reason", "the call reason became known (IVR menu path or agent disposition)", _CALL_ID,
            _f("reason", _S, "call reason code (IVR node or disposition code)"),
            _f("source", _S, "where the reason came from", choices=CALL_REASON_SOURCES)),
    _schema("adherence.exception", "an agent has been out of adherence with its schedule longer than the tolerance",
            _AGENT_ID, _f("activity", _S, "the scheduled activity now: phone, break, lunch, meeting, training, "
                                          "offline_work (an approved exception's override if one is in force)"),
            _f("state", _S, "the agent's ACD state", choices=AGENT_STATES),
            _f("reason", _S, "the agent's not-ready reason", null=True),
            _f("out_since", _N, "UTC epoch seconds since when the agent is out of adherence"),
            _f("out_seconds", _N, "how long so far"),
            _f("tolerance_seconds", _N, "the configured tolerance (adherence.tolerance_min)")),
    _schema("adherence.exception_ended", "an agent with an adherence.exception is back in adherence (or its shift "
            "or the judged activity ended)", _AGENT_ID,
            _f("out_since", _N, "UTC epoch seconds since when the agent was out of adherence"),
            _f("out_seconds", _N, "how long it lasted"),
            _f("verdict", _S, "in (back in adherence) or neutral (not judged: outside the shift, leave, no state)",
               choices=frozenset({"in", "neutral"}))),
    _schema("supervision.started", "a supervisor joined an agent's call", _SUP_ID,
            _f("supervisor_id", _S, "supervisor identifier"), _AGENT_ID, _CALL_ID,
            _f("mode", _S, "supervision mode", choices=SUPERVISION_MODES)),
    _schema("supervision.changed", "a supervisor switched mode", _SUP_ID,
            _f("supervisor_id", _S, "supervisor identifier"), _AGENT_ID, _CALL_ID,
            _f("mode", _S, "new mode", choices=SUPERVISION_MODES),
            _f("previous_mode", _S, "mode before the change", choices=SUPERVISION_MODES)),
    _schema("supervision.ended", "a supervisor left the call", _SUP_ID,
            _f("supervisor_id", _S, "supervisor identifier"), _AGENT_ID, _CALL_ID,
            _f("reason", _S, "why the supervisor left", choices=SUPERVISION_END_REASONS)),
    _schema("phone.state_changed", "an agent's browser phone (docs/web.md, \"Browser phone\") changed state: turned on "
            "or off, an INVITE ringing in the page, a call answered or ended", _AGENT_ID,
            _f("phone_id", _S, "this web phone (phone_on's reply names it): a page follows its own phone's events"),
            _f("state", _S, "the web phone's state", choices=PHONE_STATES),
            _f("call_id", _S, "the node's call the ringing or answered INVITE is for (X-CTI-Call-ID)", null=True),
            _f("caller", _S, "the number shown for the call (the INVITE's From)", null=True),
            _f("reason", _S, "why the phone went off or the call ended", null=True, choices=PHONE_REASONS)),
    _schema("qa.rule.published", "a QA sampling rule was published with its seed commitment (docs/qa.md)",
            _f("rule_id", _S, "rule identifier"), _f("version", _I, "rule version"),
            _f("seed_commitment", _S, "sha256:<hex> of the seed, revealed when the period closes"),
            _f("rule_hash", _S, "sha256:<hex> of the canonical rule")),
    _schema("qa.sample.selected", "a QA rule's period closed: the seed is revealed and the sample stored",
            _f("rule_id", _S, "rule identifier"), _f("version", _I, "rule version"),
            _f("seed", _S, "the revealed seed"), _f("selection_digest", _S, "sha256:<hex> of the selection"),
            _f("samples", _I, "sample items, 'insufficient calls' included")),
    _schema("qa.evaluation.published", "an evaluation of an agent's recording was published",
            _f("evaluation_id", _I, "evaluation identifier"), _AGENT_ID,
            _f("evaluator", _S, "supervisor who scored it"), _f("recording_serial", _S, "recording serial"),
            _f("queue", _S, "queue of the call", null=True), _f("total", _N, "score 0..100", null=True),
            _f("failed", _B, "a critical item failed (total 0)")),
    _schema("qa.evaluation.finalised", "an evaluation became FINAL: its filing window closed with no appeal open "
            "(its score now counts in the score reports)", _f("evaluation_id", _I, "evaluation identifier"),
            _AGENT_ID, _f("evaluator", _S, "supervisor who scored it"), _f("recording_serial", _S, "recording serial"),
            _f("queue", _S, "queue of the call", null=True),
            _f("previous_state", _S, "the state it settled from", choices=frozenset({
                "published", "acknowledged", "confirmed", "corrected"})),
            _f("total", _N, "the final score 0..100 (the latest revision's)", null=True)),
    _schema("qa.appeal.filed", "an agent appealed an evaluation", _f("appeal_id", _I, "appeal identifier"),
            _f("evaluation_id", _I, "evaluation identifier"), _AGENT_ID,
            _f("evaluator", _S, "supervisor who scored it"), _f("queue", _S, "queue of the call", null=True),
            _f("item_ids", _L, "items appealed")),
    _schema("qa.appeal.admitted", "the agent's team leader admitted an appeal to the three-party panel",
            _f("appeal_id", _I, "appeal identifier"), _f("evaluation_id", _I, "evaluation identifier"), _AGENT_ID,
            _f("evaluator", _S, "supervisor who scored it"), _f("queue", _S, "queue of the call", null=True),
            _f("leader", _S, "the team leader (or the operator) who admitted it"),
            _f("decision_deadline", _N, "UTC epoch seconds by which the panel decides")),
    _schema("qa.appeal.refused", "the agent's team leader refused an appeal (terminal; its items cannot be "
            "appealed again)", _f("appeal_id", _I, "appeal identifier"),
            _f("evaluation_id", _I, "evaluation identifier"), _AGENT_ID,
            _f("evaluator", _S, "supervisor who scored it"), _f("queue", _S, "queue of the call", null=True),
            _f("leader", _S, "who refused it"), _f("reason", _S, "the reason given")),
    _schema("qa.appeal.withdrawn", "the agent withdrew its open appeal", _f("appeal_id", _I, "appeal identifier"),
            _f("evaluation_id", _I, "evaluation identifier"), _AGENT_ID,
            _f("evaluator", _S, "supervisor who scored it"), _f("queue", _S, "queue of the call", null=True)),
    _schema("qa.appeal.opinion", "a panel member recorded its opinion on an appeal",
            _f("appeal_id", _I, "appeal identifier"), _f("evaluation_id", _I, "evaluation identifier"), _AGENT_ID,
            _f("evaluator", _S, "supervisor who scored it"), _f("queue", _S, "queue of the call", null=True),
            _f("seat", _S, "leader, evaluator or supervisor", choices=frozenset({"leader", "evaluator",
                                                                                  "supervisor"})),
            _f("member", _S, "who sits in the seat"),
            _f("verdict", _S, "uphold, overturn or partial", choices=frozenset({"uphold", "overturn", "partial"}))),
    _schema("qa.appeal.decided", "the panel decided an appeal", _f("appeal_id", _I, "appeal identifier"),
            _f("evaluation_id", _I, "evaluation identifier"), _AGENT_ID,
            _f("evaluator", _S, "supervisor who scored it"), _f("queue", _S, "queue of the call", null=True),
            _f("reviewer", _S, "the panel member whose step decided it"),
            _f("outcome", _S, "upheld, overturned or partial",
               choices=frozenset({"upheld", "overturned", "partial"})),
            _f("rule", _S, "majority (2 or 3 seats agree), casting (the supervisor seat's opinion) or overdue",
               choices=frozenset({"majority", "casting", "overdue"})),
            _f("total", _N, "the score now (the latest revision)", null=True)),
    _schema("voicemail.left", "a caller left a voicemail message (also when the caller hung up while recording)",
            _f("voicemail_id", _S, "message identifier (GET /api/v1/voicemail/{id}/audio)"), _CALL_ID,
            _f("mailbox", _S, "the flow's mailbox"),
            _f("queue", _S, "the queue of the same name as the mailbox, whose supervisors see it; null: only the "
                            "operator", null=True),
            _f("caller_number", _S, "calling number (redacted if configured)"),
            _f("started", _N, "when the recording started (UTC epoch seconds)"),
            _f("duration_s", _N, "length of the message in seconds")),
    _schema("qa.library.published", "a good call was added to the library", _f("entry_id", _I, "library entry"),
            _f("recording_serial", _S, "recording serial"), _f("note", _S, "reviewer's note"),
            _f("tags", _L, "tags")),
)

REGISTRY: Final[Mapping[str, EventSchema]] = {schema.type: schema for schema in _SCHEMAS}


def validate(envelope: Envelope, *, strict: bool = False, registry: Mapping[str, EventSchema] = REGISTRY) -> None:
    """Check ``envelope.data`` against the schema of its type.

    Unknown keys are tolerated (additive changes keep the version) unless ``strict`` is set, which producers use in
    tests and debug mode to catch typos.

    Raises:
        SchemaError: the type is not registered, a field is missing or mistyped, or (strict) a key is unknown.
    """
    schema = registry.get(envelope.type)
    if schema is None:
        raise SchemaError(f"unregistered event type {envelope.type!r}", event_type=envelope.type)
    for spec in schema.fields:
        problem = spec.check(envelope.data[spec.name]) if spec.name in envelope.data else "is missing"
        if problem is not None:
            raise SchemaError(f"{envelope.type}: {spec.name!r} {problem}", event_type=envelope.type,
                              field_name=spec.name)
    if strict and len(envelope.data) != len(schema.fields):  # every field is present (above): equal counts, no other
        unknown = sorted(set(envelope.data) - {spec.name for spec in schema.fields})
        if unknown:
            raise SchemaError(f"{envelope.type}: unknown keys {unknown}", event_type=envelope.type,
                              field_name=unknown[0])


def catalog(schemas: Iterable[EventSchema] | None = None) -> dict[str, Any]:
    """Return the registry as JSON-compatible data (for an API endpoint or generated docs)."""
    return {
        schema.type: {
            "version": schema.version,
            "doc": schema.doc,
            "fields": {
                spec.name: {
                    "kind": spec.kind.value,
                    "nullable": spec.nullable,
                    "doc": spec.doc,
                    **({"choices": sorted(spec.choices)} if spec.choices is not None else {}),
                }
                for spec in schema.fields
            },
        }
        for schema in (REGISTRY.values() if schemas is None else schemas)
    }
