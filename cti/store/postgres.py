"""The PostgreSQL backend (asyncpg): a connection pool, one transaction per store call.

- Same SQL as SQLite: ``SqlOperations`` runs on ``PostgresExecutor``, which rewrites the ``?``
  placeholders to ``$1..$n`` and reads the changed-row count from the command status; the
  migrations run their PostgreSQL DDL (``Migration.statements_for``).
- Transactions: a write takes a pooled connection and runs ``BEGIN`` … ``COMMIT`` at
  ``READ COMMITTED``; a read runs its one statement outside any transaction. Several processes
  (nodes, each with its pool) may write at once: ``allocate_serial`` is one atomic upsert (the
  counter row's lock orders concurrent increments), and the read-then-write operations lock what
  they read (``Dialect.POSTGRES`` in ``cti.store.queries``).
- Durability: sessions run with ``synchronous_commit = on``, so a commit is on the server's disk
  when the coroutine that made it returns.
- Every wait is bounded: connecting by ``connect_timeout_s``; a lock held by another transaction
  by ``lock_timeout`` = ``busy_timeout_s``, and a free pool connection by the same
  (``StoreBusyError`` past them); each statement by ``statement_timeout_s`` (client side).
- Migrations run at open in one transaction under an advisory lock on a fixed key, so nodes
  starting together migrate once (the others wait, then find the schema up to date).
- asyncpg exceptions are translated in ``translate``; the URL's password is never logged nor put
  in an error (``cti.store.url``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import TypeAlias
from urllib.parse import parse_qsl

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from cti.store import migrate
from cti.store.dialect import Dialect
from cti.store.errors import (
    BackendError,
    ConflictError,
    InvalidRecordError,
    SchemaError,
    StoreBusyError,
    StoreClosedError,
    StoreError,
    StoreOpenError,
    StoreUsageError,
)
from cti.store.queries import SqlOperations
from cti.store.rows import Row, SqlParam
from cti.store.schema import MIGRATIONS, Migration
from cti.store.sqlstore import ScopedExecutor, SqlStore
from cti.store.url import redact_url, scrub, url_secrets

_log = structlog.get_logger("cti.store")

Connection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"  # generic in the stubs only
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
MIN_SERVER_VERSION = 10  # GENERATED ... AS IDENTITY; ON CONFLICT and SKIP LOCKED need 9.5
_MIGRATION_LOCK = 72_010_001  # advisory-lock key held while migrating (one bigint key, its own namespace)
_MIGRATION_WAIT_S = 300.0  # a migration may wait for locks and build indexes much longer than a call
_CLOSE_TIMEOUT_S = 10.0
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|\?", re.S)


@functools.lru_cache(maxsize=1024)
def numbered_placeholders(sql: str) -> str:
    """``sql`` with each ``?`` outside quotes and comments replaced by ``$1``, ``$2``... (asyncpg)."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match[0] != "?":
            return match[0]
        count += 1
        return f"${count}"

    return _PLACEHOLDER.sub(number, sql)


def changed_rows(status: str) -> int:
    """The row count in a command status (``INSERT 0 1``, ``UPDATE 3``, ``DELETE 0``); 0 if it has none."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def translate(exc: Exception) -> StoreError:
    """Map an asyncpg (or socket) exception to the ``StoreError`` tree (the caller raises it ``from exc``)."""
    text = str(exc)
    match exc:
        case asyncpg.UniqueViolationError():
            return ConflictError(f"duplicate key: {text}")
        case (asyncpg.LockNotAvailableError() | asyncpg.DeadlockDetectedError() | asyncpg.SerializationError()
              | asyncpg.QueryCanceledError()):  # fmt: skip
            return StoreBusyError(f"database is busy: {type(exc).__name__}: {text}")
        case asyncpg.InFailedSQLTransactionError():
            return StoreUsageError("an earlier statement of this transaction failed, so PostgreSQL refuses the "
                                   "rest; let the error leave the transaction() block (it is rolled back)")  # fmt: skip
        case asyncpg.DataError():
            return InvalidRecordError(f"the database refused a value: {text}")
        case TimeoutError():
            return BackendError("the database did not answer in time")
        case asyncpg.PostgresConnectionError() | asyncpg.InterfaceError() | OSError():
            return BackendError(f"database connection failed: {type(exc).__name__}: {text}")
    return BackendError(f"{type(exc).__name__}: {text}")


class PostgresExecutor:
    """``Executor`` on a pooled asyncpg connection; every driver error is translated."""

    def __init__(self, conn: Connection, timeout_s: float | None) -> None:
        self.conn = conn
        self._timeout_s = timeout_s

    async def fetch_all(self, sql: str, params: Sequence[SqlParam] = ()) -> list[Row]:
        try:
            found = await self.conn.fetch(numbered_placeholders(sql), *params, timeout=self._timeout_s)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc
        return [tuple(record) for record in found]

    async def execute(self, sql: str, params: Sequence[SqlParam] = ()) -> int:
        try:
            status = await self.conn.execute(numbered_placeholders(sql), *params, timeout=self._timeout_s)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc
        return changed_rows(status)


class PostgresStore(SqlStore):
    """``Store`` on a PostgreSQL database. Build it with ``cti.store.open_store(url)``.

    Unlike SQLite, other tasks' calls do not wait for a ``transaction()`` block: they run at the
    same time on other pooled connections, and see its writes only once it commits.
    """

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], url: str, *, pool_size: int, busy_timeout_s: float,
                 statement_timeout_s: float | None) -> None:  # fmt: skip
        self._pool = pool
        self._pool_size = pool_size
        self._busy_timeout_s = busy_timeout_s
        self._statement_timeout_s = statement_timeout_s
        self._owners: set[asyncio.Task[object]] = set()
        self._closed = False
        self.url = redact_url(url)  # safe to log

    # ------------------------------------------------------------------------------ transactions
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlOperations]:
        """One atomic write transaction; see ``cti.store.Store.transaction``.

        An error inside the block aborts the whole transaction (PostgreSQL runs no further
        statement in it): let it leave the block, and retry outside if needed.

        Raises:
            StoreUsageError: the current task already holds a transaction of this store.
            StoreClosedError: the store is closed.
            StoreBusyError: no pooled connection, or a lock, could be had within the busy timeout.
        """
        async with self._hold(write=True) as x:
            yield SqlOperations(x, Dialect.POSTGRES)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[SqlOperations]:
        async with self._hold(write=False) as x:
            yield SqlOperations(x, Dialect.POSTGRES)

    @asynccontextmanager
    async def _hold(self, *, write: bool, timeout_s: float | None = None) -> AsyncIterator[ScopedExecutor]:
        task = asyncio.current_task()
        if task is not None and task in self._owners:
            raise StoreUsageError("store called from inside this task's own transaction(); use the tx object")
        async with self._connection() as conn:
            scoped = ScopedExecutor(PostgresExecutor(conn, timeout_s or self._statement_timeout_s))
            if task is not None:
                self._owners.add(task)
            try:
                if not write:
                    yield scoped
                    self.completed += 1
                    return
                xact = conn.transaction()
                await _xact_step(xact.start())
                try:
                    yield scoped
                except BaseException:
                    with contextlib.suppress(StoreError):  # the body's exception matters more
                        await _xact_step(xact.rollback())
                    raise
                await _xact_step(xact.commit())
                self.completed += 1
            finally:
                scoped.open = False
                if task is not None:
                    self._owners.discard(task)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        if self._closed:
            raise StoreClosedError("the store is closed")
        try:
            conn = await self._pool.acquire(timeout=self._busy_timeout_s)
        except TimeoutError as exc:
            raise StoreBusyError(f"no database connection within {self._busy_timeout_s} s (all "
                                 f"{self._pool_size} in use, or the server does not answer)") from exc  # fmt: skip
        except DRIVER_ERRORS as exc:
            if self._closed:
                raise StoreClosedError("the store is closed") from exc
            raise translate(exc) from exc
        try:
            yield conn
        finally:
            with contextlib.suppress(*DRIVER_ERRORS):  # asyncpg closes a connection it cannot reset
                await self._pool.release(conn, timeout=self._busy_timeout_s)

    async def schema_version(self) -> int:
        """The version of the schema in the database."""
        async with self._hold(write=False) as x:
            return await migrate.current_version(x)

    async def close(self) -> None:
        """Close the pool (idempotent): running calls get a few seconds to finish, then are cut."""
        if self._closed:
            return
        self._closed = True
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                await self._pool.close()
        except TimeoutError:
            self._pool.terminate()
            _log.warning("store.database.close_timed_out", url=self.url, timeout_s=_CLOSE_TIMEOUT_S)
        except DRIVER_ERRORS as exc:
            self._pool.terminate()
            raise translate(exc) from exc
        _log.info("store.database.closed", url=self.url)


async def _xact_step(step: Awaitable[None]) -> None:
    """Await BEGIN, COMMIT or ROLLBACK, translating driver errors."""
    try:
        await step
    except DRIVER_ERRORS as exc:
        raise translate(exc) from exc


async def open_postgres_store(
    url: str,
    *,
    pool_size: int = 10,
    busy_timeout_s: float = 5.0,
    connect_timeout_s: float = 10.0,
    statement_timeout_s: float | None = 60.0,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> PostgresStore:
    """Connect a pool of up to ``pool_size`` connections to ``url`` and migrate the database.

    ``cti.store.open_store`` calls this for a ``postgresql://`` URL. Query parameters of the URL
    that asyncpg does not know are set as server settings for every session (for example
    ``?search_path=cti`` to keep the tables in the schema ``cti``).

    Raises:
        StoreOpenError: bad URL, server unreachable or not answering within ``connect_timeout_s``,
            authentication refused, no such database, or a server older than PostgreSQL 10.
        SchemaTooNewError: the database was written by a newer release.
        SchemaError: a migration failed; the database stays at its previous version.
        StoreBusyError: another node held the migration lock too long.
    """
    safe = redact_url(url)
    if pool_size < 1 or busy_timeout_s <= 0 or connect_timeout_s <= 0:
        raise StoreOpenError(f"cannot open {safe}: pool_size, busy_timeout_s and connect_timeout_s must be positive")
    settings = {"lock_timeout": f"{max(1, round(busy_timeout_s * 1000))}ms", "synchronous_commit": "on"}
    if "application_name" not in {k for k, _ in parse_qsl(url.partition("?")[2])}:
        settings["application_name"] = "cti-server"
    try:
        async with asyncio.timeout(connect_timeout_s + 1.0):  # asyncpg's own timeout fires first
            pool = await asyncpg.create_pool(
                url, min_size=1, max_size=pool_size, timeout=connect_timeout_s,
                command_timeout=statement_timeout_s, server_settings=settings,
            )  # fmt: skip
    except TimeoutError as exc:
        raise StoreOpenError(f"cannot connect to {safe}: no answer within {connect_timeout_s} s") from exc
    except (*DRIVER_ERRORS, ValueError) as exc:
        secrets = url_secrets(url)
        reason = scrub(f"{type(exc).__name__}: {exc}", secrets)
        leaked = reason != f"{type(exc).__name__}: {exc}"
        raise StoreOpenError(f"cannot connect to {safe}: {reason}") from (None if leaked else exc)
    store = PostgresStore(pool, url, pool_size=pool_size, busy_timeout_s=busy_timeout_s,
                          statement_timeout_s=statement_timeout_s)  # fmt: skip
    try:
        version = await _check_and_migrate(store, migrations, safe)
    except BaseException:
        await store.close()
        raise
    _log.info("store.database.opened", url=safe, schema_version=version, pool_size=pool_size)
    return store


async def _check_and_migrate(store: PostgresStore, migrations: Sequence[Migration], safe: str) -> int:
    async with store._connection() as conn:
        server = conn.get_server_version()
    if server.major < MIN_SERVER_VERSION:
        raise StoreOpenError(f"{safe}: PostgreSQL {MIN_SERVER_VERSION} or newer is needed, the server is "
                             f"{server.major}.{server.minor}")  # fmt: skip
    async with store._hold(write=True, timeout_s=_MIGRATION_WAIT_S) as x:
        await x.execute(f"SET LOCAL lock_timeout = '{int(_MIGRATION_WAIT_S)}s'")
        await x.fetch_all(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        try:
            return await migrate.migrate(x, migrations, time.time(), Dialect.POSTGRES)
        except BackendError as exc:
            raise SchemaError(f"migration of {safe} failed: {exc}") from exc
