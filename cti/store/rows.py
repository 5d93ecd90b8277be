"""Mapping between records and SQL rows (backend-neutral).

Rows come back from a driver as tuples of plain values; every column is decoded with a checking
helper so a row that does not fit its record (a hand-edited database, a driver returning an
unexpected type) raises ``BackendError`` instead of building a record with the wrong types.
JSON columns are compact, key-sorted UTF-8 text.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from typing import TypeAlias, TypeVar

from acd import AgentId, AgentState, CallId, ExitReason, QueueId, SkillName
from cti import jsonbytes
from cti.ids import LegId, RecordingSerial
from cti.store.errors import BackendError, InvalidRecordError, StoreError
from cti.store.records import (
    AgentStateRow,
    CallRecord,
    HangupParty,
    JsonObject,
    JsonValue,
    LegOutcome,
    OutboxEntry,
    OutboxId,
    OutboxStatus,
    Party,
    PartyRole,
    QueueLeg,
    Recording,
    StateRowId,
)

SqlParam: TypeAlias = str | int | float | bool | None
Row: TypeAlias = Sequence[object]

CALL_COLUMNS = (
    "call_id", "node", "sip_call_id", "trunk", "caller_number", "caller_name", "dialled_number",
    "t_arrived", "t_ivr_answered", "t_ivr_left", "t_queued", "t_answered", "t_ended", "hangup_by",
    "end_reason", "disposition", "ivr_inputs", "crm_data", "vip", "call_reason", "recording_serial",
    "final_agent", "final_queue", "problems", "wrap_up_notes",
)  # fmt: skip
LEG_COLUMNS = (
    "leg_id", "call_id", "queue_id", "outcome", "skills", "priority", "vip_flag", "caller_number",
    "call_reason", "t_enter_queue", "t_answer", "t_abandon", "t_flowout", "flowout_reason", "t_end",
    "agent_id", "talk_s", "hold_s", "acw_s", "offers", "recording_serial",
)  # fmt: skip
STATE_COLUMNS = ("row_id", "agent_id", "state", "reason", "start_ts", "end_ts")
RECORDING_COLUMNS = (
    "serial", "call_id", "path", "started", "ended", "duration_s", "parties", "queue_id", "agent_id",
)  # fmt: skip
OUTBOX_COLUMNS = (
    "entry_id", "endpoint", "event_id", "event_type", "payload", "created", "status", "attempts",
    "next_attempt_at", "lease_until", "last_error", "delivered_at",
)  # fmt: skip

_E = TypeVar("_E", bound=enum.Enum)


def upsert_sql(table: str, columns: Sequence[str], key: str, guard: str | None = None) -> str:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` (SQLite ≥ 3.24 and PostgreSQL ≥ 9.5 alike).

    With ``guard`` (a column), an existing row is only overwritten when that column is unchanged,
    so the statement then reports 0 changed rows.
    """
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
    where = f" WHERE {table}.{guard} = excluded.{guard}" if guard else ""
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}{where}")


def select_sql(table: str, columns: Sequence[str]) -> str:
    return f"SELECT {', '.join(columns)} FROM {table}"


def dump_json(value: JsonValue) -> str:
    """Serialise to compact JSON.

    Raises:
        InvalidRecordError: the value is not JSON-serialisable (or holds NaN/infinity).
    """
    try:
        return jsonbytes.dumps(value, sort_keys=True).decode()
    except (TypeError, ValueError) as exc:
        raise InvalidRecordError(f"value is not JSON-serialisable: {exc}") from exc


def _load_json(value: object) -> JsonValue:
    if not isinstance(value, str):
        raise BackendError(f"JSON column holds {type(value).__name__}, not text")
    try:
        loaded: JsonValue = json.loads(value)
    except ValueError as exc:
        raise BackendError("JSON column holds malformed JSON") from exc
    return loaded


def _load_object(value: object) -> JsonObject:
    loaded = _load_json(value)
    if not isinstance(loaded, dict):
        raise BackendError("JSON column does not hold an object")
    return loaded


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise BackendError(f"expected text, got {type(value).__name__}")
    return value


def _opt_text(value: object) -> str | None:
    return None if value is None else _text(value)


def int_value(value: object) -> int:
    """Decode an integer column.

    Raises:
        BackendError: the value is not an integer.
    """
    return _int(value)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BackendError(f"expected an integer, got {type(value).__name__}")
    return value


def _float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BackendError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _opt_float(value: object) -> float | None:
    return None if value is None else _float(value)


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return value == 1
    raise BackendError(f"expected a boolean, got {value!r}")


def _enum(kind: type[_E], value: object) -> _E:
    try:
        return kind(_text(value))
    except ValueError as exc:
        raise BackendError(f"{value!r} is not a {kind.__name__}") from exc


def _opt_enum(kind: type[_E], value: object) -> _E | None:
    return None if value is None else _enum(kind, value)



def _decoded(kind: str, exc: StoreError) -> BackendError:
    return BackendError(f"stored {kind} row is invalid: {exc}")


def call_params(c: CallRecord) -> tuple[SqlParam, ...]:
    return (
        c.call_id, c.node, c.sip_call_id, c.trunk, c.caller_number, c.caller_name, c.dialled_number,
        c.t_arrived, c.t_ivr_answered, c.t_ivr_left, c.t_queued, c.t_answered, c.t_ended,
        c.hangup_by.value if c.hangup_by else None, c.end_reason, c.disposition,
        dump_json(dict(c.ivr_inputs)), dump_json(dict(c.crm_data)), c.vip, c.call_reason, c.recording_serial,
        c.final_agent, c.final_queue, c.problems, c.wrap_up_notes,
    )  # fmt: skip


def call_from_row(r: Row) -> CallRecord:
    try:
        return CallRecord(
            call_id=CallId(_text(r[0])), node=_text(r[1]), sip_call_id=_opt_text(r[2]), trunk=_opt_text(r[3]),
            caller_number=_opt_text(r[4]), caller_name=_opt_text(r[5]), dialled_number=_opt_text(r[6]),
            t_arrived=_float(r[7]), t_ivr_answered=_opt_float(r[8]), t_ivr_left=_opt_float(r[9]),
            t_queued=_opt_float(r[10]), t_answered=_opt_float(r[11]), t_ended=_opt_float(r[12]),
            hangup_by=_opt_enum(HangupParty, r[13]), end_reason=_opt_text(r[14]), disposition=_opt_text(r[15]),
            ivr_inputs=_load_object(r[16]), crm_data=_load_object(r[17]), vip=_bool(r[18]),
            call_reason=_opt_text(r[19]), recording_serial=_opt_serial(r[20]),
            final_agent=_opt_agent(r[21]), final_queue=_opt_queue(r[22]), problems=_opt_text(r[23]),
            wrap_up_notes=_opt_text(r[24]),
        )  # fmt: skip
    except InvalidRecordError as exc:
        raise _decoded("call", exc) from exc


def leg_params(g: QueueLeg) -> tuple[SqlParam, ...]:
    return (
        g.leg_id, g.call_id, g.queue_id, g.outcome.value, dump_json(list(g.skills)), g.priority, g.vip_flag,
        g.caller_number, g.call_reason, g.t_enter_queue, g.t_answer, g.t_abandon, g.t_flowout,
        g.flowout_reason.value if g.flowout_reason else None, g.t_end, g.agent_id, g.talk_s, g.hold_s,
        g.acw_s, g.offers, g.recording_serial,
    )  # fmt: skip


def leg_from_row(r: Row) -> QueueLeg:
    skills = _load_json(r[4])
    if not isinstance(skills, list) or not all(isinstance(s, str) for s in skills):
        raise BackendError("queue_legs.skills does not hold a list of names")
    try:
        return QueueLeg(
            leg_id=LegId(_text(r[0])), call_id=CallId(_text(r[1])), queue_id=QueueId(_text(r[2])),
            outcome=_enum(LegOutcome, r[3]), skills=tuple(SkillName(str(s)) for s in skills),
            priority=_int(r[5]), vip_flag=_bool(r[6]), caller_number=_opt_text(r[7]), call_reason=_opt_text(r[8]),
            t_enter_queue=_float(r[9]), t_answer=_opt_float(r[10]), t_abandon=_opt_float(r[11]),
            t_flowout=_opt_float(r[12]), flowout_reason=_opt_enum(ExitReason, r[13]), t_end=_opt_float(r[14]),
            agent_id=_opt_agent(r[15]), talk_s=_float(r[16]), hold_s=_float(r[17]), acw_s=_float(r[18]),
            offers=_int(r[19]), recording_serial=_opt_serial(r[20]),
        )  # fmt: skip
    except InvalidRecordError as exc:
        raise _decoded("queue leg", exc) from exc


def state_from_row(r: Row) -> AgentStateRow:
    try:
        return AgentStateRow(
            row_id=StateRowId(_int(r[0])), agent_id=AgentId(_text(r[1])), state=_enum(AgentState, r[2]),
            reason=_opt_text(r[3]), start=_float(r[4]), end=_opt_float(r[5]),
        )  # fmt: skip
    except InvalidRecordError as exc:
        raise _decoded("agent state", exc) from exc


def recording_params(rec: Recording) -> tuple[SqlParam, ...]:
    parties: list[JsonValue] = [{"role": p.role.value, "identity": p.identity} for p in rec.parties]
    return (
        rec.serial, rec.call_id, rec.path, rec.started, rec.ended, rec.duration_s,
        dump_json(parties), rec.queue_id, rec.agent_id,
    )  # fmt: skip


def _party(value: JsonValue) -> Party:
    if not isinstance(value, dict) or not isinstance(value.get("identity"), str):
        raise BackendError("recordings.parties holds a malformed party")
    return Party(role=_enum(PartyRole, value.get("role")), identity=str(value["identity"]))


def recording_from_row(r: Row) -> Recording:
    parties = _load_json(r[6])
    if not isinstance(parties, list):
        raise BackendError("recordings.parties does not hold a list")
    try:
        return Recording(
            serial=RecordingSerial(_text(r[0])), call_id=CallId(_text(r[1])), path=_text(r[2]),
            started=_float(r[3]), ended=_opt_float(r[4]), duration_s=_opt_float(r[5]),
            parties=tuple(_party(p) for p in parties), queue_id=_opt_queue(r[7]), agent_id=_opt_agent(r[8]),
        )  # fmt: skip
    except InvalidRecordError as exc:
        raise _decoded("recording", exc) from exc


def outbox_from_row(r: Row) -> OutboxEntry:
    return OutboxEntry(
        entry_id=OutboxId(_int(r[0])), endpoint=_text(r[1]), event_id=_text(r[2]), event_type=_text(r[3]),
        payload=_load_object(r[4]), created=_float(r[5]), status=_enum(OutboxStatus, r[6]), attempts=_int(r[7]),
        next_attempt_at=_float(r[8]), lease_until=_opt_float(r[9]), last_error=_opt_text(r[10]),
        delivered_at=_opt_float(r[11]),
    )  # fmt: skip


def _opt_serial(value: object) -> RecordingSerial | None:
    return None if value is None else RecordingSerial(_text(value))


def _opt_agent(value: object) -> AgentId | None:
    return None if value is None else AgentId(_text(value))


def _opt_queue(value: object) -> QueueId | None:
    return None if value is None else QueueId(_text(value))
