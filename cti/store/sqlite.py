"""The SQLite backend (aiosqlite): one connection, WAL journal, one transaction at a time.

- Durability: ``journal_mode=WAL`` with ``synchronous=FULL``, so a commit has reached the disk
  when the coroutine that made it returns (``NORMAL`` could lose the last commits on power loss).
- Writes run in ``BEGIN IMMEDIATE`` transactions: the write lock is taken up front, so two
  processes sharing the file queue on ``busy_timeout`` instead of failing a read-to-write
  upgrade half-way. Reads run in deferred transactions and never block writers (WAL).
- An ``asyncio.Lock`` serialises the coroutines of this process on the single connection; a
  task that calls the store while holding ``transaction()`` gets ``StoreUsageError`` instead of a
  deadlock. The driver runs in aiosqlite's thread: the event loop never waits on disk.
- ``sqlite3`` exceptions are translated to the ``StoreError`` tree in ``_translate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import structlog

from acd import AgentId, AgentState, CallId, QueueId
from cti.store import migrate
from cti.store.errors import (
    BackendError,
    ConflictError,
    SchemaError,
    StoreBusyError,
    StoreClosedError,
    StoreError,
    StoreOpenError,
    StoreUsageError,
)
from cti.store.queries import LegTime, SqlOperations
from cti.store.records import (
    AgentStateRow,
    CallRecord,
    JsonObject,
    LegId,
    OutboxEntry,
    OutboxId,
    OutboxStatus,
    QueueLeg,
    Recording,
)
from cti.store.rows import Row, SqlParam
from cti.store.schema import MIGRATIONS, Migration
from cti.store.serial import RecordingSerial

_log = structlog.get_logger("cti.store")


def translate(exc: Exception) -> BackendError | ConflictError | StoreBusyError | StoreClosedError:
    """Map a driver exception to the ``StoreError`` tree (the caller raises it ``from exc``)."""
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in text:
        return ConflictError(f"duplicate key: {text}")
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return StoreBusyError(f"database is locked: {text}")
    if (isinstance(exc, sqlite3.ProgrammingError) and "closed" in text) or isinstance(exc, ValueError):
        return StoreClosedError(f"connection closed: {text}")
    return BackendError(f"{type(exc).__name__}: {text}")


class SqliteExecutor:
    """``Executor`` on an aiosqlite connection; every driver error is translated."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetch_all(self, sql: str, params: Sequence[SqlParam] = ()) -> list[Row]:
        try:
            async with self._conn.execute(sql, tuple(params)) as cursor:
                return list(await cursor.fetchall())
        except (sqlite3.Error, ValueError) as exc:
            raise translate(exc) from exc

    async def execute(self, sql: str, params: Sequence[SqlParam] = ()) -> int:
        try:
            async with self._conn.execute(sql, tuple(params)) as cursor:
                return int(cursor.rowcount)
        except (sqlite3.Error, ValueError) as exc:
            raise translate(exc) from exc

    async def run(self, sql: str) -> None:
        """Run a control statement (BEGIN, COMMIT, ROLLBACK, PRAGMA)."""
        await self.execute(sql)


class _ScopedExecutor:
    """Forwards to the connection only while its transaction is open, so a ``tx`` kept past its
    ``async with`` block fails loudly instead of writing outside any transaction."""

    def __init__(self, inner: SqliteExecutor) -> None:
        self._inner = inner
        self.open = True

    def _check(self) -> None:
        if not self.open:
            raise StoreUsageError("this transaction object is used after its 'async with' block ended")

    async def fetch_all(self, sql: str, params: Sequence[SqlParam] = ()) -> list[Row]:
        self._check()
        return await self._inner.fetch_all(sql, params)

    async def execute(self, sql: str, params: Sequence[SqlParam] = ()) -> int:
        self._check()
        return await self._inner.execute(sql, params)


class SqliteStore:
    """``Store`` on one SQLite file. Build it with ``cti.store.open_store``."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._x = SqliteExecutor(conn)
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[object] | None = None
        self._closed = False
        self.path = path

    # ------------------------------------------------------------------------------ transactions
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlOperations]:
        """One atomic write transaction; see ``cti.store.Store.transaction``.

        Raises:
            StoreUsageError: the current task already holds a transaction of this store.
            StoreClosedError: the store is closed.
            StoreBusyError: another process held the write lock past the busy timeout.
        """
        async with self._hold("BEGIN IMMEDIATE") as ops:
            yield ops

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[SqlOperations]:
        async with self._hold("BEGIN") as ops:
            yield ops

    @asynccontextmanager
    async def _hold(self, begin: str) -> AsyncIterator[SqlOperations]:
        task = asyncio.current_task()
        if task is not None and self._owner is task:
            raise StoreUsageError("store called from inside this task's own transaction(); use the tx object")
        if self._closed:
            raise StoreClosedError("the store is closed")
        async with self._lock:
            if self._closed:
                raise StoreClosedError("the store is closed")
            self._owner = task
            scoped = _ScopedExecutor(self._x)
            try:
                if self._conn.in_transaction:  # a rollback interrupted by cancellation
                    await self._x.run("ROLLBACK")
                await self._x.run(begin)
                try:
                    yield SqlOperations(scoped)
                except BaseException:
                    with contextlib.suppress(StoreError):  # the body's exception matters more
                        await self._x.run("ROLLBACK")
                    raise
                await self._x.run("COMMIT")
            finally:
                scoped.open = False
                self._owner = None

    async def schema_version(self) -> int:
        """The version of the schema in the database."""
        async with self._hold("BEGIN"):
            return await migrate.current_version(self._x)

    async def close(self) -> None:
        """Close the connection (idempotent); waits for a running transaction to finish."""
        if self._closed:
            return
        async with self._lock:
            self._closed = True
            try:
                await self._conn.close()
            except sqlite3.Error as exc:
                raise translate(exc) from exc
        _log.info("store.database.closed", path=str(self.path))

    # ------------------------------------------------------------------------------ calls
    async def save_call(self, record: CallRecord) -> None:
        async with self.transaction() as tx:
            await tx.save_call(record)

    async def get_call(self, call_id: CallId) -> CallRecord | None:
        async with self._read() as tx:
            return await tx.get_call(call_id)

    async def calls_between(self, start: float, end: float) -> list[CallRecord]:
        async with self._read() as tx:
            return await tx.calls_between(start, end)

    # ------------------------------------------------------------------------------ queue legs
    async def save_queue_leg(self, leg: QueueLeg) -> None:
        async with self.transaction() as tx:
            await tx.save_queue_leg(leg)

    async def get_queue_leg(self, leg_id: LegId) -> QueueLeg | None:
        async with self._read() as tx:
            return await tx.get_queue_leg(leg_id)

    async def queue_legs_between(
        self, start: float, end: float, queue: QueueId | None = None, *, by: LegTime = LegTime.ENTERED
    ) -> list[QueueLeg]:
        async with self._read() as tx:
            return await tx.queue_legs_between(start, end, queue, by=by)

    # ------------------------------------------------------------------------------ agent states
    async def record_agent_state(
        self, agent_id: AgentId, state: AgentState, at: float, reason: str | None = None
    ) -> AgentStateRow:
        async with self.transaction() as tx:
            return await tx.record_agent_state(agent_id, state, at, reason)

    async def current_agent_state(self, agent_id: AgentId) -> AgentStateRow | None:
        async with self._read() as tx:
            return await tx.current_agent_state(agent_id)

    async def agent_states_between(self, agent_id: AgentId, start: float, end: float) -> list[AgentStateRow]:
        async with self._read() as tx:
            return await tx.agent_states_between(agent_id, start, end)

    # ------------------------------------------------------------------------------ recordings
    async def allocate_serial(self, site: str, day: dt.date) -> RecordingSerial:
        async with self.transaction() as tx:
            return await tx.allocate_serial(site, day)

    async def save_recording(self, recording: Recording) -> None:
        async with self.transaction() as tx:
            await tx.save_recording(recording)

    async def get_recording(self, serial: RecordingSerial) -> Recording | None:
        async with self._read() as tx:
            return await tx.get_recording(serial)

    # ------------------------------------------------------------------------------ outbox
    async def enqueue(
        self, *, endpoint: str, event_id: str, event_type: str, payload: JsonObject, created: float
    ) -> OutboxId:
        async with self.transaction() as tx:
            return await tx.enqueue(
                endpoint=endpoint, event_id=event_id, event_type=event_type, payload=payload, created=created
            )

    async def claim_due(
        self, now: float, *, endpoint: str | None = None, limit: int = 100, lease_s: float = 60.0
    ) -> list[OutboxEntry]:
        async with self.transaction() as tx:
            return await tx.claim_due(now, endpoint=endpoint, limit=limit, lease_s=lease_s)

    async def get_outbox_entry(self, entry_id: OutboxId) -> OutboxEntry | None:
        async with self._read() as tx:
            return await tx.get_outbox_entry(entry_id)

    async def mark_delivered(self, entry_id: OutboxId, now: float) -> None:
        async with self.transaction() as tx:
            await tx.mark_delivered(entry_id, now)

    async def mark_failed(
        self, entry_id: OutboxId, *, next_attempt_at: float, error: str, max_attempts: int | None = None
    ) -> OutboxStatus:
        async with self.transaction() as tx:
            return await tx.mark_failed(
                entry_id, next_attempt_at=next_attempt_at, error=error, max_attempts=max_attempts
            )

    async def dead_letter(self, entry_id: OutboxId, error: str) -> None:
        async with self.transaction() as tx:
            await tx.dead_letter(entry_id, error)

    async def list_dead_letters(self, endpoint: str | None = None, limit: int = 1000) -> list[OutboxEntry]:
        async with self._read() as tx:
            return await tx.list_dead_letters(endpoint, limit)

    async def replay_dead_letter(self, entry_id: OutboxId, now: float) -> None:
        async with self.transaction() as tx:
            await tx.replay_dead_letter(entry_id, now)

    async def purge_delivered(self, before: float) -> int:
        async with self.transaction() as tx:
            return await tx.purge_delivered(before)


async def open_store(
    path: str | Path,
    *,
    busy_timeout_s: float = 5.0,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> SqliteStore:
    """Open (creating the file and its folder if missing) and migrate the SQLite store at ``path``.

    Raises:
        StoreOpenError: the folder or file cannot be created, or the file is not a database.
        SchemaTooNewError: the database was written by a newer release.
        SchemaError: a migration failed; the database stays at its previous version.
        StoreBusyError: another process kept the database locked past ``busy_timeout_s``.
    """
    path = Path(path)
    try:
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StoreOpenError(f"cannot open {path}: {exc}") from exc
    store = SqliteStore(conn, path)
    try:
        await _configure(store, busy_timeout_s)
        async with store.transaction():
            try:
                version = await migrate.migrate(store._x, migrations, time.time())
            except BackendError as exc:
                raise SchemaError(f"migration of {path} failed: {exc}") from exc
    except BaseException:
        await store.close()
        raise
    _log.info("store.database.opened", path=str(path), schema_version=version)
    return store


async def _configure(store: SqliteStore, busy_timeout_s: float) -> None:
    x = store._x
    try:
        await x.run(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        mode = await x.fetch_all("PRAGMA journal_mode = WAL")
        await x.run("PRAGMA synchronous = FULL")
    except StoreBusyError:
        raise
    except StoreError as exc:
        raise StoreOpenError(f"cannot open {store.path}: {exc}") from exc
    if not mode or str(mode[0][0]).lower() != "wal":
        raise StoreOpenError(f"{store.path}: the WAL journal mode could not be enabled")
