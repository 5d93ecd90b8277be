"""PostgreSQL only: several nodes (stores, each with its own pool) on one database, connection
failures that must end quickly with a clear ``StoreOpenError``, and what differs from SQLite
(concurrent transactions, aborted transactions, NUL characters, a bounded pool)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from tests.support import postgres as pg

try:
    import asyncpg
except ImportError:  # the optional extra; CI installs it and sets CTI_REQUIRE_POSTGRES=1
    if pg.required():
        raise
    pytest.skip("asyncpg is not installed", allow_module_level=True)

from acd import AgentId, AgentState, CallId
from cti.store import (
    LATEST_VERSION,
    CallRecord,
    ConflictError,
    InvalidRecordError,
    OutboxId,
    Store,
    StoreBusyError,
    StoreOpenError,
    StoreUsageError,
    open_store,
)
from cti.store.postgres import changed_rows, numbered_placeholders, translate
from cti.store.url import url_secrets
from tests.support.procs import free_port

DAY = dt.date(2026, 5, 9)


def call(call_id: str) -> CallRecord:
    return CallRecord(call_id=CallId(call_id), node="n1", t_arrived=10.0)


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[Store]:
    opened = await open_store(pg_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def nodes(pg_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on one database, like two server nodes (4 pooled connections each)."""
    first = await open_store(pg_url, pool_size=4)
    second = await open_store(pg_url, pool_size=4)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


# ---------------------------------------------------------------------------------- the executor
def test_placeholders_are_numbered_outside_quotes_and_comments() -> None:
    assert numbered_placeholders("SELECT a FROM t WHERE b = ? AND c < ?") == "SELECT a FROM t WHERE b = $1 AND c < $2"
    sql = "SELECT '?', 'it''s ?', \"odd?\" FROM t -- why?\nWHERE x = ? /* or ? */ AND y = ?"
    assert numbered_placeholders(sql) == (
        "SELECT '?', 'it''s ?', \"odd?\" FROM t -- why?\nWHERE x = $1 /* or ? */ AND y = $2"
    )


def test_changed_rows_from_the_command_status() -> None:
    assert [changed_rows(s) for s in ("INSERT 0 1", "INSERT 0 0", "UPDATE 3", "DELETE 12", "CREATE TABLE")] == [
        1, 0, 3, 12, 0,
    ]  # fmt: skip


def test_driver_errors_are_translated() -> None:
    assert isinstance(translate(asyncpg.UniqueViolationError("dup")), ConflictError)
    assert isinstance(translate(asyncpg.LockNotAvailableError("lock")), StoreBusyError)
    assert isinstance(translate(asyncpg.DeadlockDetectedError("deadlock")), StoreBusyError)
    assert isinstance(translate(asyncpg.InFailedSQLTransactionError("aborted")), StoreUsageError)
    assert translate(ConnectionResetError("reset")).code == "store.backend_failed"


# ---------------------------------------------------------------------------------- two nodes
async def test_two_nodes_allocate_unique_consecutive_serials(nodes: tuple[Store, Store]) -> None:
    serials = await asyncio.gather(*(node.allocate_serial("par1", DAY) for _ in range(150) for node in nodes))
    assert sorted(int(s.rsplit("-", 1)[1]) for s in serials) == list(range(1, 301))


async def test_two_nodes_never_lease_one_entry(nodes: tuple[Store, Store]) -> None:
    first, _ = nodes
    ids: dict[str, list[OutboxId]] = {}
    for i in range(40):
        for n in range(3):
            entry_id = await first.enqueue(endpoint=f"ep{i}", event_id=f"e{n}", event_type="t", payload={}, created=0.0)
            ids.setdefault(f"ep{i}", []).append(entry_id)
    for round_ in range(3):
        batches = await asyncio.gather(*(node.claim_due(1.0, limit=7) for _ in range(10) for node in nodes))
        claimed = [e.entry_id for batch in batches for e in batch]
        assert len(claimed) == len(set(claimed))  # never the same entry twice
        assert set(claimed) == {line[round_] for line in ids.values()}  # each endpoint's head, and only it
        await asyncio.gather(*(nodes[k % 2].mark_delivered(entry_id, 2.0) for k, entry_id in enumerate(claimed)))


async def test_two_nodes_never_open_two_states_for_one_agent(nodes: tuple[Store, Store]) -> None:
    agents = [AgentId(f"10{i:02d}") for i in range(10)]
    # The first state of an agent, from both nodes at once: there is no row to lock yet.
    await asyncio.gather(*(node.record_agent_state(a, AgentState.AVAILABLE, 10.0) for a in agents for node in nodes))

    async def walk(node: Store, agent: AgentId, times: range) -> None:
        for t in times:
            with contextlib.suppress(InvalidRecordError):  # the other node may already be later
                await node.record_agent_state(agent, AgentState.PAUSED, float(t), "break")

    await asyncio.gather(*(walk(node, a, range(11 + k, 40, 2)) for a in agents for k, node in enumerate(nodes)))
    for agent in agents:
        rows = await nodes[0].agent_states_between(agent, 0.0, 1e9)
        assert [r.end for r in rows].count(None) == 1 and rows[-1].end is None
        assert all(r.end == after.start for r, after in zip(rows, rows[1:], strict=False))  # no gap, no overlap


async def test_two_nodes_opening_a_new_database_migrate_it_once(pg_url: str) -> None:
    with capture_logs() as logs:
        stores = await asyncio.gather(open_store(pg_url), open_store(pg_url))
    try:
        assert [await s.schema_version() for s in stores] == [LATEST_VERSION, LATEST_VERSION]
    finally:
        for s in stores:
            await s.close()
    assert len([e for e in logs if e["event"] == "store.schema.migrated"]) == LATEST_VERSION


# ---------------------------------------------------------------------------------- opening fails
def with_password(dsn: str, password: str) -> str:
    scheme, _, rest = dsn.partition("://")
    userinfo, _, hosts = rest.rpartition("@")
    return f"{scheme}://{userinfo.partition(':')[0]}:{password}@{hosts}"


async def refused(url: str, **kwargs: float) -> StoreOpenError:
    started = time.monotonic()
    async with asyncio.timeout(10):
        with pytest.raises(StoreOpenError) as caught:
            await open_store(url, **kwargs)  # type: ignore[arg-type]
    assert time.monotonic() - started < 5
    return caught.value


async def test_nothing_listening_is_an_open_error_without_the_password() -> None:
    error = await refused(f"postgresql://cti:hunter2secret@127.0.0.1:{free_port('tcp')}/cti", connect_timeout_s=2.0)
    assert "hunter2secret" not in str(error) and "cti:***@127.0.0.1" in str(error)
    assert error.code == "store.open_failed"


async def test_a_server_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads the start-up packet, answers nothing until the client gives up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        error = await refused(f"postgresql://cti:hunter2secret@127.0.0.1:{port}/cti", connect_timeout_s=0.5)
    assert "no answer within 0.5 s" in str(error) and "hunter2secret" not in str(error)


async def test_a_malformed_url_is_an_open_error() -> None:
    error = await refused("postgresql://cti:hunter2secret@127.0.0.1:notaport/cti")
    assert "hunter2secret" not in str(error)


async def test_a_wrong_password_or_database_is_an_open_error(postgres_dsn: str) -> None:
    if not url_secrets(postgres_dsn):
        pytest.skip("the test server's URL has no password")
    error = await refused(with_password(postgres_dsn, "wrong-password-123"))
    assert "wrong-password-123" not in str(error) and "***" in str(error)
    assert isinstance(error.__cause__, asyncpg.InvalidPasswordError)
    error = await refused(postgres_dsn.rpartition("/")[0] + "/no_such_database")
    assert "no_such_database" in str(error)
    assert not any(secret in str(error) for secret in url_secrets(postgres_dsn))


async def test_the_password_is_never_logged(pg_url: str) -> None:
    with capture_logs() as logs:
        store = await open_store(pg_url)
        await store.save_call(call("c1"))
        await store.close()
    assert any(e["event"] == "store.database.opened" for e in logs)
    assert not any(secret in repr(logs) for secret in url_secrets(pg_url))


# ---------------------------------------------------------------------------------- what differs
async def test_an_error_inside_a_transaction_aborts_all_of_it(pg_store: Store) -> None:
    await pg_store.enqueue(endpoint="crm", event_id="e1", event_type="t", payload={}, created=1.0)
    with pytest.raises(StoreUsageError):
        async with pg_store.transaction() as tx:
            await tx.save_call(call("c1"))
            with pytest.raises(ConflictError):
                await tx.enqueue(endpoint="crm", event_id="e1", event_type="t", payload={}, created=2.0)
            await tx.save_call(call("c2"))  # PostgreSQL runs nothing more in an aborted transaction
    assert await pg_store.get_call(CallId("c1")) is None
    await pg_store.save_call(call("c3"))  # the connection went back to the pool clean
    assert await pg_store.get_call(CallId("c3")) is not None


async def test_text_with_a_nul_character_is_an_invalid_record(pg_store: Store) -> None:
    with pytest.raises(InvalidRecordError):
        await pg_store.save_call(CallRecord(call_id=CallId("c1"), node="n\x00", t_arrived=1.0))
    await pg_store.enqueue(endpoint="crm", event_id="e1", event_type="t", payload={"nul": "a\x00b"}, created=1.0)
    [entry] = await pg_store.claim_due(1.0)
    assert entry.payload == {"nul": "a\x00b"}  # JSON escapes it


async def test_a_full_pool_is_a_busy_error_not_a_hang(pg_url: str) -> None:
    store = await open_store(pg_url, pool_size=1, busy_timeout_s=0.2)
    inside, release = asyncio.Event(), asyncio.Event()

    async def long_batch() -> None:
        async with store.transaction() as tx:
            await tx.save_call(call("c1"))
            inside.set()
            await release.wait()

    try:
        async with asyncio.timeout(10):
            batch = asyncio.create_task(long_batch(), name="long-batch")
            await inside.wait()
            with pytest.raises(StoreBusyError):
                await store.get_call(CallId("c1"))
            release.set()
            await batch
            assert await store.get_call(CallId("c1")) is not None
    finally:
        await store.close()


async def test_a_cancelled_transaction_leaves_nothing_and_frees_its_connection(pg_url: str) -> None:
    store = await open_store(pg_url, pool_size=1)
    inside = asyncio.Event()

    async def stuck_batch() -> None:
        async with store.transaction() as tx:
            await tx.save_call(call("c1"))
            inside.set()
            await asyncio.Event().wait()

    try:
        async with asyncio.timeout(10):
            batch = asyncio.create_task(stuck_batch(), name="stuck-batch")
            await inside.wait()
            batch.cancel()
            with pytest.raises(asyncio.CancelledError):
                await batch
            assert await store.get_call(CallId("c1")) is None
            await store.save_call(call("c2"))  # the one pooled connection works again
    finally:
        await store.close()


async def test_close_lets_a_running_transaction_commit(pg_url: str) -> None:
    store = await open_store(pg_url)
    inside = asyncio.Event()

    async def batch() -> None:
        async with store.transaction() as tx:
            await tx.save_call(call("c1"))
            inside.set()
            await asyncio.sleep(0.2)

    async with asyncio.timeout(10):
        task = asyncio.create_task(batch(), name="closing-batch")
        await inside.wait()
        await store.close()
        await task
    reopened = await open_store(pg_url)
    try:
        assert await reopened.get_call(CallId("c1")) is not None
    finally:
        await reopened.close()
