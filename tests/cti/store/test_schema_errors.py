"""Migrations at open, WAL mode, and driver errors translated into the StoreError tree.

The migration, closing, locking and bad-row tests run on both backends (``target``); file and
folder behaviour is SQLite's own (``db_path``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from acd import CallId
from cti.store import (
    LATEST_VERSION,
    MIGRATIONS,
    BackendError,
    CallRecord,
    Migration,
    SchemaError,
    SchemaTooNewError,
    StoreBusyError,
    StoreClosedError,
    StoreError,
    StoreOpenError,
    open_store,
)
from tests.cti.store import backends


def write_file(path: Path, data: bytes) -> None:
    """Prepare a file before the test's event loop work (a tiny, deliberate blocking call)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def driver_error(backend: str) -> type[Exception]:
    if backend == "sqlite":
        return sqlite3.Error
    import asyncpg

    return asyncpg.PostgresError


async def test_open_migrates_a_new_database(target: str, backend: str) -> None:
    if backend == "sqlite":
        write_file(Path(target), b"")  # an empty file is an empty database
    with capture_logs() as logs:
        store = await open_store(target)
    try:
        assert await store.schema_version() == LATEST_VERSION
    finally:
        await store.close()
    migrated = [e["version"] for e in logs if e["event"] == "store.schema.migrated"]
    assert migrated == list(range(1, LATEST_VERSION + 1))
    expected = {"calls", "queue_legs", "agent_state_history", "recordings", "serial_counters", "outbox"}
    assert expected | {"schema_version"} <= await backends.tables(target)


async def test_open_creates_missing_folders(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "a" / "b" / "c.sqlite")
    await store.close()
    assert await asyncio.to_thread((tmp_path / "a" / "b" / "c.sqlite").is_file)


async def test_reopen_is_idempotent(target: str) -> None:
    await (await open_store(target)).close()
    with capture_logs() as logs:
        store = await open_store(target)
    await store.close()
    assert [e for e in logs if e["event"] == "store.schema.migrated"] == []
    assert await backends.fetch(target, "SELECT COUNT(*) FROM schema_version") == [(LATEST_VERSION,)]


async def test_sqlite_uses_wal(db_path: Path) -> None:
    await (await open_store(db_path)).close()
    assert await backends.fetch(str(db_path), "PRAGMA journal_mode") == [("wal",)]


async def test_forward_migration_keeps_data(target: str) -> None:
    old = await open_store(target, migrations=MIGRATIONS[:1])
    assert await old.schema_version() == 1
    await old.close()
    # A row written by the version-1 code (its columns only), behind the store's back.
    await backends.fetch(target, "INSERT INTO calls (call_id, node, t_arrived, ivr_inputs, crm_data, vip) "
                                 "VALUES ('c1', 'n', 1.0, '{}', '{}', FALSE)")
    store = await open_store(target)
    try:
        assert await store.schema_version() == LATEST_VERSION
        kept = await store.get_call(CallId("c1"))
        assert kept is not None and kept.problems is None and kept.t_ended is None
        assert [c.call_id for c in await store.open_calls("n")] == ["c1"]
    finally:
        await store.close()


async def test_newer_schema_is_refused(target: str) -> None:
    await (await open_store(target)).close()
    with pytest.raises(SchemaTooNewError) as caught:
        await open_store(target, migrations=MIGRATIONS[:1])
    assert caught.value.code == "store.schema_too_new"


async def test_failed_migration_is_rolled_back_entirely(target: str) -> None:
    await (await open_store(target)).close()
    broken = Migration(
        version=LATEST_VERSION + 1, description="broken",
        statements=("CREATE TABLE extra (x TEXT)", "CREATE TABLE calls (x TEXT)"),
    )  # fmt: skip
    with pytest.raises(SchemaError) as caught:
        await open_store(target, migrations=(*MIGRATIONS, broken))
    assert isinstance(caught.value.__cause__, BackendError)
    assert "extra" not in await backends.tables(target)
    store = await open_store(target)
    try:
        assert await store.schema_version() == LATEST_VERSION
    finally:
        await store.close()


async def test_misnumbered_migrations_are_refused(target: str) -> None:
    with pytest.raises(SchemaError):
        await open_store(target, migrations=(MIGRATIONS[1],))


async def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    write_file(path, b"this is not a database, just text" * 100)
    with pytest.raises(StoreOpenError) as caught:
        await open_store(path)
    assert isinstance(caught.value.__cause__, StoreError | sqlite3.Error)


async def test_a_folder_that_cannot_be_created(tmp_path: Path) -> None:
    write_file(tmp_path / "file", b"x")
    with pytest.raises(StoreOpenError) as caught:
        await open_store(tmp_path / "file" / "db.sqlite")
    assert isinstance(caught.value.__cause__, OSError)


async def test_closed_store(target: str) -> None:
    store = await open_store(target)
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreClosedError):
        await store.get_call(CallId("c1"))


async def test_locked_database_is_a_busy_error(target: str, backend: str) -> None:
    store = await open_store(target, busy_timeout_s=0.05)
    try:
        async with backends.write_locked(target):
            with pytest.raises(StoreBusyError) as caught:
                await store.save_call(CallRecord(call_id=CallId("c1"), node="n", t_arrived=1.0))
            assert isinstance(caught.value.__cause__, driver_error(backend))
        await store.save_call(CallRecord(call_id=CallId("c1"), node="n", t_arrived=1.0))  # usable again
    finally:
        await store.close()


async def test_a_corrupt_row_is_a_backend_error_not_a_bad_record(target: str) -> None:
    store = await open_store(target)
    try:
        await store.save_call(CallRecord(call_id=CallId("c1"), node="n", t_arrived=1.0))
        await backends.fetch(target, "UPDATE calls SET hangup_by = 'martian', ivr_inputs = '[1]'")
        with pytest.raises(BackendError):
            await store.get_call(CallId("c1"))
    finally:
        await store.close()
