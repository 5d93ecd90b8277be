"""The store's operations in portable SQL, run on any ``Executor`` (backend-neutral).

Every statement here is standard SQL plus three forms SQLite and PostgreSQL share:
``INSERT ... ON CONFLICT ... DO UPDATE`` (upserts, the serial counter), ``RETURNING`` (ids of new
rows) and ``LIMIT``. Placeholders are ``?``; a backend whose driver wants ``$1`` or ``%s``
rewrites them in its ``Executor``. An ``SqlOperations`` never begins or commits: the backend
runs each call inside one transaction (see ``SqliteStore.transaction``).

On PostgreSQL several nodes write at once (``READ COMMITTED``), so the read-then-write operations
lock what they read (``Dialect.POSTGRES``): ``claim_due`` locks the heads it leases with
``FOR UPDATE ... SKIP LOCKED`` (two nodes never lease one entry; a head another node is leasing is
skipped, not waited for), ``record_agent_state`` takes a transaction-level advisory lock per agent
(two nodes cannot open two rows at once, even for an agent with no row yet), and the outbox state
changes lock the entry row. SQLite needs none of this: its writes hold the database's write lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from acd import AgentId, AgentState, CallId, QueueId
from cti.ids import LegId, RecordingSerial
from cti.store import rows
from cti.store.dialect import Dialect
from cti.store.errors import ConflictError, InvalidRecordError, NotFoundError, OutboxStateError
from cti.store.records import (
    AgentStateRow,
    CallRecord,
    JsonObject,
    OutboxEntry,
    OutboxId,
    OutboxStatus,
    QueueLeg,
    Recording,
    StateRowId,
)
from cti.store.rows import Row, SqlParam
from cti.store.serial import check_site, format_serial


class Executor(Protocol):
    """What the operations need from a backend connection inside an open transaction."""

    async def fetch_all(self, sql: str, params: Sequence[SqlParam] = ()) -> list[Row]:
        """Run one statement and return its rows (``RETURNING`` rows for a write)."""
        ...

    async def execute(self, sql: str, params: Sequence[SqlParam] = ()) -> int:
        """Run one statement and return the number of rows it changed."""
        ...


class LegTime(enum.Enum):
    """Which time of a queue leg ``queue_legs_between`` selects on (domain.md §0 attribution)."""

    ENTERED = "entered"  # t_enter_queue: "arrival" attribution, the default
    RESOLVED = "resolved"  # t_answer / t_abandon / t_flowout: "event" attribution; unresolved legs excluded


_CALL_UPSERT = rows.upsert_sql("calls", rows.CALL_COLUMNS, "call_id")
_LEG_UPSERT = rows.upsert_sql("queue_legs", rows.LEG_COLUMNS, "leg_id", guard="call_id")
_RECORDING_UPSERT = rows.upsert_sql("recordings", rows.RECORDING_COLUMNS, "serial", guard="call_id")
_CALLS = rows.select_sql("calls", rows.CALL_COLUMNS)
_LEGS = rows.select_sql("queue_legs", rows.LEG_COLUMNS)
_STATES = rows.select_sql("agent_state_history", rows.STATE_COLUMNS)
# An agent's open state row, read and closed at every state change: both look-ups go through the partial index
# agent_state_history_open (schema migration 10), never through the agent's history.
_OPEN_STATE = f"{_STATES} WHERE agent_id = ? AND end_ts IS NULL ORDER BY start_ts DESC, row_id DESC"
_CLOSE_STATE = "UPDATE agent_state_history SET end_ts = ? WHERE agent_id = ? AND end_ts IS NULL"
_RECORDINGS = rows.select_sql("recordings", rows.RECORDING_COLUMNS)
_OUTBOX = rows.select_sql("outbox", rows.OUTBOX_COLUMNS)
_OUTBOX_O = "SELECT " + ", ".join(f"o.{c}" for c in rows.OUTBOX_COLUMNS) + " FROM outbox o"
_PENDING = OutboxStatus.PENDING.value
_DEAD = OutboxStatus.DEAD.value
_DELIVERED = OutboxStatus.DELIVERED.value
_AGENT_LOCKS = 7_201  # PostgreSQL advisory-lock namespace of record_agent_state (the key is hashtext(agent))


_R = TypeVar("_R")
_DECODE_ON_LOOP = 200  # rows; larger results (reports over days) are decoded in a worker thread


async def _decode_all(found: list[Row], decode: Callable[[Row], _R]) -> list[_R]:
    """Decode rows; many rows (a report's range: ~50 µs each) in a worker thread so the event loop (RTP,
    signalling) never waits seconds for them. The range reads that use this are not for ``run_batch``."""
    if len(found) <= _DECODE_ON_LOOP:
        return [decode(r) for r in found]
    return await asyncio.to_thread(lambda: [decode(r) for r in found])


class SqlOperations:
    """All reads and writes of the store, on one executor (one open transaction)."""

    def __init__(self, executor: Executor, dialect: Dialect = Dialect.SQLITE) -> None:
        self._x = executor
        self._dialect = dialect
        locking = dialect is Dialect.POSTGRES
        self._claim_lock = " FOR UPDATE OF o SKIP LOCKED" if locking else ""
        self._row_lock = " FOR UPDATE" if locking else ""

    @property
    def executor(self) -> Executor:
        """The open transaction's executor, for the SQL of feature packages' own tables (``cti.qa.store``,
        ``cti.adherence.store``)."""
        return self._x

    @property
    def dialect(self) -> Dialect:
        """The backend's SQL dialect."""
        return self._dialect

    # ------------------------------------------------------------------------------ calls
    async def save_call(self, record: CallRecord) -> None:
        """Insert the CDR, or replace every field of the one with the same ``call_id``."""
        await self._x.execute(_CALL_UPSERT, rows.call_params(record))

    async def get_call(self, call_id: CallId) -> CallRecord | None:
        """The CDR of ``call_id``, or None."""
        found = await self._x.fetch_all(f"{_CALLS} WHERE call_id = ?", (call_id,))
        return rows.call_from_row(found[0]) if found else None

    async def calls_between(self, start: float, end: float) -> list[CallRecord]:
        """CDRs with ``start <= t_arrived < end``, oldest first."""
        found = await self._x.fetch_all(
            f"{_CALLS} WHERE t_arrived >= ? AND t_arrived < ? ORDER BY t_arrived, call_id", (start, end)
        )
        return [rows.call_from_row(r) for r in found]

    async def calls_of_caller(self, caller_number: str, *, before: float, limit: int) -> list[CallRecord]:
        """The caller's last ``limit`` CDRs that arrived before ``before``, newest first."""
        found = await self._x.fetch_all(
            f"{_CALLS} WHERE caller_number = ? AND t_arrived < ? ORDER BY t_arrived DESC, call_id LIMIT ?",
            (caller_number, before, limit))
        return [rows.call_from_row(r) for r in found]

    async def open_calls(self, node: str) -> list[CallRecord]:
        """CDRs of ``node`` that have no end yet (live calls, or calls a crash left open), oldest first."""
        found = await self._x.fetch_all(
            f"{_CALLS} WHERE node = ? AND t_ended IS NULL ORDER BY t_arrived, call_id", (node,))
        return [rows.call_from_row(r) for r in found]

    async def legs_of_call(self, call_id: CallId) -> list[QueueLeg]:
        """Every queue leg of ``call_id``, in the order it entered its queues."""
        found = await self._x.fetch_all(f"{_LEGS} WHERE call_id = ? ORDER BY t_enter_queue, leg_id", (call_id,))
        return [rows.leg_from_row(r) for r in found]

    # ------------------------------------------------------------------------------ queue legs
    async def save_queue_leg(self, leg: QueueLeg) -> None:
        """Insert the leg, or replace the one with the same ``leg_id`` (its ``call_id`` may not change).

        Raises:
            ConflictError: ``leg_id`` is already used by a leg of another call.
        """
        if await self._x.execute(_LEG_UPSERT, rows.leg_params(leg)) == 0:
            raise ConflictError(f"leg {leg.leg_id!r} belongs to another call")

    async def get_queue_leg(self, leg_id: LegId) -> QueueLeg | None:
        """The leg ``leg_id``, or None."""
        found = await self._x.fetch_all(f"{_LEGS} WHERE leg_id = ?", (leg_id,))
        return rows.leg_from_row(found[0]) if found else None

    async def queue_legs_between(
        self, start: float, end: float, queue: QueueId | None = None, *, by: LegTime = LegTime.ENTERED
    ) -> list[QueueLeg]:
        """Legs whose ``by`` time is in ``[start, end)``, optionally of one queue, in that time's order."""
        column = "t_enter_queue" if by is LegTime.ENTERED else "COALESCE(t_answer, t_abandon, t_flowout)"
        sql = f"{_LEGS} WHERE {column} >= ? AND {column} < ?"
        params: list[SqlParam] = [start, end]
        if queue is not None:
            sql += " AND queue_id = ?"
            params.append(queue)
        found = await self._x.fetch_all(f"{sql} ORDER BY {column}, leg_id", params)
        return await _decode_all(found, rows.leg_from_row)

    # ------------------------------------------------------------------------------ agent states
    async def record_agent_state(
        self, agent_id: AgentId, state: AgentState, at: float, reason: str | None = None
    ) -> AgentStateRow:
        """Close the agent's open row at ``at`` and open a new one in ``state``.

        Raises:
            InvalidRecordError: ``at`` is before the start of the agent's current state.
        """
        row = AgentStateRow(row_id=StateRowId(0), agent_id=agent_id, state=state, reason=reason, start=at, end=None)
        if row.reason == "":
            raise InvalidRecordError("reason must be None or a non-empty code")
        if self._dialect is Dialect.POSTGRES:  # held to commit; taken before reading the current row
            await self._x.fetch_all(f"SELECT pg_advisory_xact_lock({_AGENT_LOCKS}, hashtext(?))", (agent_id,))
        current = await self.current_agent_state(agent_id)
        if current is not None and at < current.start:
            raise InvalidRecordError(f"agent {agent_id} state at {at} is before the current one ({current.start})")
        await self._x.execute(_CLOSE_STATE, (at, agent_id))
        new = await self._x.fetch_all(
            "INSERT INTO agent_state_history (agent_id, state, reason, start_ts, end_ts) "
            "VALUES (?, ?, ?, ?, NULL) RETURNING row_id",
            (agent_id, state.value, reason, at),
        )
        return dataclasses.replace(row, row_id=StateRowId(rows.int_value(new[0][0])))

    async def current_agent_state(self, agent_id: AgentId) -> AgentStateRow | None:
        """The agent's open row, or None if it never had a state."""
        found = await self._x.fetch_all(_OPEN_STATE, (agent_id,))
        return rows.state_from_row(found[0]) if found else None

    async def agent_states_between(self, agent_id: AgentId, start: float, end: float) -> list[AgentStateRow]:
        """The agent's rows overlapping ``[start, end)`` (not clipped), oldest first; an open row counts."""
        found = await self._x.fetch_all(
            f"{_STATES} WHERE agent_id = ? AND start_ts < ? AND (end_ts IS NULL OR end_ts > ?) "
            "ORDER BY start_ts, row_id",
            (agent_id, end, start),
        )
        return [rows.state_from_row(r) for r in found]

    async def all_agent_states_between(self, start: float, end: float) -> list[AgentStateRow]:
        """Every agent's rows overlapping ``[start, end)`` (not clipped), by agent then oldest first
        (the reports' agent figures and ring times)."""
        # An agent's rows never overlap, so the only row that began before ``start`` and reaches into the range
        # is the agent's last one begun before it: each part reads an index range, never the whole history.
        found = await self._x.fetch_all(
            f"{_STATES} WHERE start_ts >= ? AND start_ts < ? UNION ALL "
            f"{_STATES} WHERE row_id IN (SELECT (SELECT x.row_id FROM agent_state_history x "
            "WHERE x.agent_id = a.agent_id AND x.start_ts < ? ORDER BY x.start_ts DESC, x.row_id DESC LIMIT 1) "
            "FROM (SELECT DISTINCT agent_id FROM agent_state_history) a) AND (end_ts IS NULL OR end_ts > ?) "
            "ORDER BY agent_id, start_ts, row_id",
            (start, end, start, start),
        )
        return await _decode_all(found, rows.state_from_row)

    # ------------------------------------------------------------------------------ recordings
    async def allocate_serial(self, site: str, day: dt.date) -> RecordingSerial:
        """Take the next serial of ``site`` on ``day`` (1, 2, 3...; never handed out twice).

        Raises:
            InvalidRecordError: bad site name.
        """
        check_site(site)
        found = await self._x.fetch_all(
            "INSERT INTO serial_counters (site, day, last_seq) VALUES (?, ?, 1) "
            "ON CONFLICT (site, day) DO UPDATE SET last_seq = serial_counters.last_seq + 1 RETURNING last_seq",
            (site, day.isoformat()),
        )
        return format_serial(site, day, rows.int_value(found[0][0]))

    async def save_recording(self, recording: Recording) -> None:
        """Insert the recording, or update the one with the same serial (same ``call_id`` only).

        Raises:
            ConflictError: the serial is already used by a recording of another call.
        """
        if await self._x.execute(_RECORDING_UPSERT, rows.recording_params(recording)) == 0:
            raise ConflictError(f"serial {recording.serial} belongs to a recording of another call")

    async def get_recording(self, serial: RecordingSerial) -> Recording | None:
        """The recording ``serial``, or None."""
        found = await self._x.fetch_all(f"{_RECORDINGS} WHERE serial = ?", (serial,))
        return rows.recording_from_row(found[0]) if found else None

    # ------------------------------------------------------------------------------ outbox
    async def enqueue(
        self, *, endpoint: str, event_id: str, event_type: str, payload: JsonObject, created: float
    ) -> OutboxId:
        """Add a pending delivery, due at once (``next_attempt_at = created``).

        Raises:
            InvalidRecordError: empty endpoint, event id or type, or a payload that is not JSON.
            ConflictError: ``(endpoint, event_id)`` was already enqueued.
        """
        for name, value in (("endpoint", endpoint), ("event_id", event_id), ("event_type", event_type)):
            if not value:
                raise InvalidRecordError(f"{name} must not be empty")
        found = await self._x.fetch_all(
            "INSERT INTO outbox (endpoint, event_id, event_type, payload, created, status, attempts, "
            "next_attempt_at, lease_until, last_error, delivered_at) "
            "VALUES (?, ?, ?, ?, ?, ?, 0, ?, NULL, NULL, NULL) RETURNING entry_id",
            (endpoint, event_id, event_type, rows.dump_json(dict(payload)), created, _PENDING, created),
        )
        return OutboxId(rows.int_value(found[0][0]))

    async def claim_due(
        self, now: float, *, endpoint: str | None = None, limit: int = 100, lease_s: float = 60.0
    ) -> list[OutboxEntry]:
        """Lease the due entries: per endpoint only its oldest pending one, if due and not leased.

        Each returned entry has ``attempts`` counted and ``lease_until = now + lease_s``; it is not
        claimed again before that unless ``mark_failed`` reschedules it.

        Raises:
            InvalidRecordError: ``limit`` < 1 or ``lease_s`` <= 0.
        """
        if limit < 1 or not lease_s > 0:
            raise InvalidRecordError(f"claim_due needs limit >= 1 and lease_s > 0, got {limit} and {lease_s}")
        sql = (
            f"{_OUTBOX_O} WHERE o.status = ? AND o.next_attempt_at <= ? "
            "AND (o.lease_until IS NULL OR o.lease_until <= ?) "
            "AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.endpoint = o.endpoint AND e.status = ? "
            "AND e.entry_id < o.entry_id)"
        )
        params: list[SqlParam] = [_PENDING, now, now, _PENDING]
        if endpoint is not None:
            sql += " AND o.endpoint = ?"
            params.append(endpoint)
        params.append(limit)
        found = await self._x.fetch_all(f"{sql} ORDER BY o.entry_id LIMIT ?{self._claim_lock}", params)
        due = [rows.outbox_from_row(r) for r in found]
        for entry in due:
            await self._x.execute(
                "UPDATE outbox SET attempts = attempts + 1, lease_until = ? WHERE entry_id = ?",
                (now + lease_s, entry.entry_id),
            )
        return [await self._entry(e.entry_id) for e in due]

    async def get_outbox_entry(self, entry_id: OutboxId) -> OutboxEntry | None:
        """The entry ``entry_id``, or None."""
        found = await self._x.fetch_all(f"{_OUTBOX} WHERE entry_id = ?", (entry_id,))
        return rows.outbox_from_row(found[0]) if found else None

    async def mark_delivered(self, entry_id: OutboxId, now: float) -> None:
        """Record a successful delivery (idempotent; a dead entry that did arrive is delivered too).

        Raises:
            NotFoundError: no such entry.
        """
        await self._entry(entry_id, lock=True)
        await self._x.execute(
            "UPDATE outbox SET status = ?, delivered_at = ?, lease_until = NULL WHERE entry_id = ? AND status <> ?",
            (_DELIVERED, now, entry_id, _DELIVERED),
        )

    async def mark_failed(
        self, entry_id: OutboxId, *, next_attempt_at: float, error: str, max_attempts: int | None = None
    ) -> OutboxStatus:
        """Record a failed attempt: retry at ``next_attempt_at``, or dead-letter after ``max_attempts``.

        Returns the entry's new status (``PENDING`` or ``DEAD``).

        Raises:
            NotFoundError: no such entry.
            OutboxStateError: the entry is not pending.
        """
        entry = await self._pending(entry_id)
        if max_attempts is not None and entry.attempts >= max_attempts:
            await self._kill(entry_id, error)
            return OutboxStatus.DEAD
        await self._x.execute(
            "UPDATE outbox SET next_attempt_at = ?, last_error = ?, lease_until = NULL WHERE entry_id = ?",
            (next_attempt_at, error, entry_id),
        )
        return OutboxStatus.PENDING

    async def dead_letter(self, entry_id: OutboxId, error: str) -> None:
        """Give up on a pending entry; the endpoint's next entry becomes due.

        Raises:
            NotFoundError: no such entry.
            OutboxStateError: the entry is not pending.
        """
        await self._pending(entry_id)
        await self._kill(entry_id, error)

    async def list_dead_letters(self, endpoint: str | None = None, limit: int = 1000) -> list[OutboxEntry]:
        """Dead entries, oldest first, optionally of one endpoint."""
        sql = f"{_OUTBOX} WHERE status = ?"
        params: list[SqlParam] = [_DEAD]
        if endpoint is not None:
            sql += " AND endpoint = ?"
            params.append(endpoint)
        params.append(limit)
        return [rows.outbox_from_row(r) for r in await self._x.fetch_all(f"{sql} ORDER BY entry_id LIMIT ?", params)]

    async def replay_dead_letter(self, entry_id: OutboxId, now: float) -> None:
        """Put a dead entry back in line (its original place), due at ``now`` with attempts reset.

        Raises:
            NotFoundError: no such entry.
            OutboxStateError: the entry is not dead.
        """
        entry = await self._entry(entry_id, lock=True)
        if entry.status is not OutboxStatus.DEAD:
            raise OutboxStateError(f"outbox entry {entry_id} is {entry.status.value}, not dead")
        await self._x.execute(
            "UPDATE outbox SET status = ?, attempts = 0, next_attempt_at = ?, lease_until = NULL WHERE entry_id = ?",
            (_PENDING, now, entry_id),
        )

    async def purge_delivered(self, before: float) -> int:
        """Delete entries delivered before ``before``; returns how many."""
        return await self._x.execute("DELETE FROM outbox WHERE status = ? AND delivered_at < ?", (_DELIVERED, before))

    async def _entry(self, entry_id: OutboxId, *, lock: bool = False) -> OutboxEntry:
        """The entry, or NotFoundError; with ``lock``, its row is locked until commit (PostgreSQL)."""
        found = await self._x.fetch_all(f"{_OUTBOX} WHERE entry_id = ?{self._row_lock if lock else ''}", (entry_id,))
        entry = rows.outbox_from_row(found[0]) if found else None
        if entry is None:
            raise NotFoundError(f"no outbox entry {entry_id}")
        return entry

    async def _pending(self, entry_id: OutboxId) -> OutboxEntry:
        entry = await self._entry(entry_id, lock=True)
        if entry.status is not OutboxStatus.PENDING:
            raise OutboxStateError(f"outbox entry {entry_id} is {entry.status.value}, not pending")
        return entry

    async def _kill(self, entry_id: OutboxId, error: str) -> None:
        await self._x.execute(
            "UPDATE outbox SET status = ?, last_error = ?, lease_until = NULL WHERE entry_id = ?",
            (_DEAD, error, entry_id),
        )
