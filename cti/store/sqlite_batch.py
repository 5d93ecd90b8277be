"""Whole transactions in one hand-over to a thread, for the SQLite backend's ``run_batch``.

Through aiosqlite every statement costs two or three round trips between the event loop and the
driver's thread (execute, fetch, close the cursor), each a queue put, a thread wake-up and a
``call_soon_threadsafe`` back. The call path writes a dozen rows per call, so at a few hundred
calls a second those hand-overs cost the event loop more than the SQL does.

``BatchConnection`` is a second connection to the same file, used only from its own single
worker thread. ``run(work)`` sends ``work`` there once; the thread runs BEGIN IMMEDIATE, then
drives ``work(tx)`` to completion on a ``ThreadExecutor`` (plain ``sqlite3`` calls: the shared
``SqlOperations`` code, whose awaits on it never suspend), then COMMIT — or ROLLBACK if anything
raised. ``work`` that awaits anything else (a sleep, a future) cannot run there: it is closed and
refused with ``StoreUsageError`` before COMMIT.

The store's ``asyncio.Lock`` is held around each run, so within the process this connection and
aiosqlite's never wait on each other; across processes SQLite's own lock and ``busy_timeout``
order them, as for any two connections.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from cti.store.errors import StoreClosedError, StoreError, StoreUsageError
from cti.store.queries import SqlOperations
from cti.store.rows import Row, SqlParam
from cti.store.sqlstore import ScopedExecutor

T = TypeVar("T")
Translate = Callable[[Exception], StoreError]


class ThreadExecutor:
    """``Executor`` on a ``sqlite3`` connection, called only from the connection's own thread.

    Every statement runs on the one ``cursor`` given (the connection's): ``Connection.execute`` would make
    a cursor per statement, and the connection keeps a weak reference to each of the last ~200 made. Made
    during a burst of calls, those stay until 200 more statements, scattered over the allocator's arenas
    that the burst took, and keep them (docs/reliability.md, "What stays after the drain").
    """

    def __init__(self, cursor: sqlite3.Cursor, translate: Translate) -> None:
        self._cursor = cursor
        self._translate = translate

    async def fetch_all(self, sql: str, params: Sequence[SqlParam] = ()) -> list[Row]:
        try:
            return list(self._cursor.execute(sql, tuple(params)).fetchall())
        except (sqlite3.Error, ValueError) as exc:
            raise self._translate(exc) from exc

    async def execute(self, sql: str, params: Sequence[SqlParam] = ()) -> int:
        try:
            return int(self._cursor.execute(sql, tuple(params)).rowcount)
        except (sqlite3.Error, ValueError) as exc:
            raise self._translate(exc) from exc


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, in the calling thread.

    Raises:
        StoreUsageError: it suspended (awaited something that is not the store); it is closed.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise StoreUsageError("run_batch work may await only the store's operations on its tx")


class BatchConnection:
    """A connection to ``path`` owned by one worker thread; see the module docstring."""

    def __init__(self, path: Path, translate: Translate) -> None:
        self._path = path
        self._translate = translate
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cti-store-batch")
        self._conn: sqlite3.Connection | None = None
        self._cursor: sqlite3.Cursor | None = None  # the connection's one cursor (see ThreadExecutor)

    async def open(self, busy_timeout_s: float) -> None:
        """Connect in the worker thread (the file exists and is migrated by now).

        Raises:
            StoreError: the file cannot be opened (translated).
        """
        await self._call(self._open, busy_timeout_s)

    def _open(self, busy_timeout_s: float) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            conn.execute("PRAGMA synchronous = FULL")  # per connection; WAL is the file's own
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        self._conn, self._cursor = conn, conn.cursor()

    async def run(self, work: Callable[[SqlOperations], Awaitable[T]]) -> T:
        """``work(tx)`` between BEGIN IMMEDIATE and COMMIT, all in the worker thread.

        If the awaiting task is cancelled the thread still finishes (commits or rolls back)
        before the cancellation goes on, so the caller's lock covers the whole transaction.
        """
        future = asyncio.get_running_loop().run_in_executor(self._pool, self._transaction, work)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])
            raise

    def _transaction(self, work: Callable[[SqlOperations], Awaitable[T]]) -> T:
        conn, cursor = self._conn, self._cursor
        if conn is None or cursor is None:
            raise StoreClosedError("the store is closed")
        x = ThreadExecutor(cursor, self._translate)
        scoped = ScopedExecutor(x)  # a tx kept past the batch fails loudly
        drive(x.execute("BEGIN IMMEDIATE"))
        try:
            result = drive(_await(work(SqlOperations(scoped))))
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            scoped.open = False
        drive(x.execute("COMMIT"))
        return result

    async def close(self) -> None:
        """Close the connection and stop the thread (idempotent)."""
        if self._conn is not None:
            await self._call(self._close)
        self._pool.shutdown(wait=False)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = self._cursor = None

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable
