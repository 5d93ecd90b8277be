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
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import structlog

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
from cti.store.protocol import StoreOperations, T
from cti.store.queries import SqlOperations
from cti.store.rows import Row, SqlParam
from cti.store.schema import MIGRATIONS, Migration
from cti.store.sqlite_batch import BatchConnection
from cti.store.sqlstore import ScopedExecutor, SqlStore

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


class SqliteStore(SqlStore):
    """``Store`` on one SQLite file. Build it with ``cti.store.open_store``."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._x = SqliteExecutor(conn)
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[object] | None = None
        self._closed = False
        self.path = path
        self._batch: BatchConnection | None = None  # set by open_sqlite_store

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
            scoped = ScopedExecutor(self._x)
            try:
                if self._conn.in_transaction:  # a rollback interrupted by cancellation
                    await self._x.run("ROLLBACK")
                try:
                    await self._x.run(begin)
                except BaseException:
                    # Cancelled (or failed) while BEGIN was queued on the driver's thread: it may still start a
                    # transaction after we left. A ROLLBACK queued behind it ends it (and fails harmlessly if not).
                    with contextlib.suppress(StoreError):
                        await self._x.run("ROLLBACK")
                    raise
                try:
                    yield SqlOperations(scoped)
                except BaseException:
                    with contextlib.suppress(StoreError):  # the body's exception matters more
                        await self._x.run("ROLLBACK")
                    raise
                await self._x.run("COMMIT")
                self.completed += 1
            finally:
                scoped.open = False
                self._owner = None

    async def run_batch(self, work: Callable[[StoreOperations], Awaitable[T]]) -> T:
        """``work(tx)`` as one transaction run in one step on the batch connection's thread
        (``cti.store.sqlite_batch``); see ``cti.store.Store.run_batch``.

        Raises:
            StoreUsageError: called inside this task's own transaction, or ``work`` awaited
                something other than ``tx``. StoreClosedError: the store is closed.
        """
        task = asyncio.current_task()
        if task is not None and self._owner is task:
            raise StoreUsageError("store called from inside this task's own transaction(); use the tx object")
        async with self._lock:
            if self._closed or self._batch is None:
                raise StoreClosedError("the store is closed")
            self._owner = task
            try:
                result = await self._batch.run(work)
                self.completed += 1
                return result
            finally:
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
            if self._batch is not None:
                await self._batch.close()
            try:
                await self._conn.close()
            except sqlite3.Error as exc:
                raise translate(exc) from exc
        _log.info("store.database.closed", path=str(self.path))


async def open_sqlite_store(
    path: str | Path,
    *,
    busy_timeout_s: float = 5.0,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> SqliteStore:
    """Open (creating the file and its folder if missing) and migrate the SQLite store at ``path``.

    ``cti.store.open_store`` calls this for a path.

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
        store._batch = BatchConnection(path, translate)
        await store._batch.open(busy_timeout_s)
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
