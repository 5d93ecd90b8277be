"""Durability across re-opens, atomic transactions, and serial allocation under concurrency (both backends)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from acd import AgentId, AgentState, CallId, QueueId
from cti.store import (
    CallRecord,
    ConflictError,
    LegId,
    OutboxStatus,
    QueueLeg,
    Recording,
    SqliteStore,
    Store,
    StoreUsageError,
    open_store,
)

DAY = dt.date(2026, 5, 9)


def call(call_id: str, t: float = 10.0) -> CallRecord:
    return CallRecord(call_id=CallId(call_id), node="n1", t_arrived=t)


async def test_every_record_survives_close_and_reopen(target: str) -> None:
    store = await open_store(target)
    await store.save_call(call("c1"))
    leg = QueueLeg(leg_id=LegId("c1/1"), call_id=CallId("c1"), queue_id=QueueId("sales"), t_enter_queue=11.0)
    await store.save_queue_leg(leg)
    await store.record_agent_state(AgentId("1001"), AgentState.AVAILABLE, 5.0)
    serial = await store.allocate_serial("par1", DAY)
    rec = Recording(serial=serial, call_id=CallId("c1"), path="r.wav", started=12.0)
    await store.save_recording(rec)
    entry_id = await store.enqueue(endpoint="crm", event_id="e1", event_type="call.ended", payload={}, created=1.0)
    await store.close()

    store = await open_store(target)
    try:
        assert await store.get_call(CallId("c1")) == call("c1")
        assert await store.get_queue_leg(leg.leg_id) == leg
        current = await store.current_agent_state(AgentId("1001"))
        assert current is not None and current.state is AgentState.AVAILABLE
        assert await store.get_recording(serial) == rec
        assert await store.allocate_serial("par1", DAY) == "20260509-par1-0002"  # the counter survived too
        entry = await store.get_outbox_entry(entry_id)
        assert entry is not None and entry.status is OutboxStatus.PENDING
    finally:
        await store.close()


async def test_transaction_commits_state_change_and_outbox_together(target: str) -> None:
    store = await open_store(target)
    async with store.transaction() as tx:
        await tx.save_call(call("c1"))
        await tx.enqueue(endpoint="crm", event_id="e1", event_type="call.ended", payload={"id": "c1"}, created=1.0)
    await store.close()
    store = await open_store(target)
    try:
        assert await store.get_call(CallId("c1")) is not None
        assert len(await store.claim_due(1.0)) == 1
    finally:
        await store.close()


async def test_transaction_failing_half_way_leaves_nothing(target: str) -> None:
    store = await open_store(target)
    await store.enqueue(endpoint="crm", event_id="taken", event_type="t", payload={}, created=1.0)
    with pytest.raises(ConflictError):
        async with store.transaction() as tx:
            await tx.save_call(call("c1"))
            await tx.allocate_serial("par1", DAY)
            await tx.enqueue(endpoint="crm", event_id="taken", event_type="t", payload={}, created=2.0)
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.save_call(call("c2"))
            raise RuntimeError("the caller gave up")
    assert await store.get_call(CallId("c1")) is None
    await store.close()

    store = await open_store(target)
    try:
        assert await store.get_call(CallId("c1")) is None
        assert await store.get_call(CallId("c2")) is None
        assert await store.allocate_serial("par1", DAY) == "20260509-par1-0001"  # the rolled-back one was not used
        assert len(await store.claim_due(10.0)) == 1
    finally:
        await store.close()


async def test_nested_call_from_the_transaction_task_is_refused(store: Store) -> None:
    with pytest.raises(StoreUsageError):
        async with store.transaction() as tx:
            await tx.save_call(call("c1"))
            await store.save_call(call("c2"))  # would deadlock on the store's own lock
    assert await store.get_call(CallId("c1")) is None
    assert await store.get_call(CallId("c2")) is None


async def test_other_tasks_stay_out_of_a_rolled_back_transaction(store: Store, backend: str) -> None:
    """SQLite: other tasks wait for the transaction. PostgreSQL: they run beside it on another
    pooled connection. On both, nothing of theirs is mixed into it."""
    inside = asyncio.Event()
    release = asyncio.Event()

    async def failing_batch() -> None:
        async with store.transaction() as tx:
            await tx.save_call(call("in-tx"))
            inside.set()
            await release.wait()
            raise RuntimeError("abort")

    async with asyncio.timeout(5):
        batch = asyncio.create_task(failing_batch(), name="failing-batch")
        await inside.wait()
        outside = asyncio.create_task(store.save_call(call("outside")), name="outside-write")
        await asyncio.sleep(0.05)
        if backend == "sqlite":
            assert not outside.done()  # it waits for the transaction instead of joining it
        else:  # committed on its own connection while the transaction is open (a busy host may take a while)
            await asyncio.wait_for(asyncio.shield(outside), 3)
            assert await store.get_call(CallId("in-tx")) is None  # not visible before commit
        release.set()
        with pytest.raises(RuntimeError):
            await batch
        await outside
    assert await store.get_call(CallId("in-tx")) is None
    assert await store.get_call(CallId("outside")) is not None


async def test_200_concurrent_serial_allocations_are_unique_and_dense(store: Store) -> None:
    serials = await asyncio.gather(*(store.allocate_serial("par1", DAY) for _ in range(200)))
    assert len(set(serials)) == 200
    assert sorted(int(s.rsplit("-", 1)[1]) for s in serials) == list(range(1, 201))


async def test_serials_are_unique_across_two_stores_on_one_database(target: str) -> None:
    first, second = await open_store(target), await open_store(target)
    try:
        serials = await asyncio.gather(
            *(s.allocate_serial("par1", DAY) for _ in range(100) for s in (first, second))
        )
    finally:
        await first.close()
        await second.close()
    assert len(serials) == 200
    assert sorted(int(s.rsplit("-", 1)[1]) for s in serials) == list(range(1, 201))


async def test_claims_from_two_stores_never_hand_out_an_entry_twice(target: str) -> None:
    first, second = await open_store(target), await open_store(target)
    try:
        for i in range(20):
            await first.enqueue(endpoint=f"ep{i}", event_id="e", event_type="t", payload={}, created=0.0)
        batches = await asyncio.gather(*(s.claim_due(1.0, limit=3) for _ in range(10) for s in (first, second)))
    finally:
        await first.close()
        await second.close()
    claimed = [e.entry_id for batch in batches for e in batch]
    assert len(claimed) == 20 and len(set(claimed)) == 20


async def test_a_transaction_object_is_dead_after_its_block(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.save_call(call("c1"))
    with pytest.raises(StoreUsageError):
        await tx.save_call(call("c2"))
    assert await store.get_call(CallId("c2")) is None


def test_open_store_picks_the_backend_of_the_target(store: Store, backend: str) -> None:
    # That each backend class satisfies ``Store`` is checked by mypy (``open_store`` returns ``Store``).
    assert type(store).__name__ == {"sqlite": "SqliteStore", "postgres": "PostgresStore"}[backend]
    assert isinstance(store, SqliteStore) == (backend == "sqlite")


async def test_a_call_cancelled_at_any_step_leaves_the_store_usable(store: Store) -> None:
    """A task cancelled while its BEGIN was still queued on the driver's thread left SQLite inside a transaction,
    and the next call failed with "cannot start a transaction within a transaction"."""
    for steps in range(40):
        async def write(n: int = steps) -> None:
            async with store.transaction() as tx:
                await tx.save_call(call(f"w{n}"))

        for op in (store.list_dead_letters, write):
            task = asyncio.create_task(op(), name="test-cancelled-store-call")
            for _ in range(steps % 8):
                await asyncio.sleep(0)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            assert await store.list_dead_letters() == []  # the next call works
    await store.save_call(call("after"))
    assert (await store.get_call(CallId("after"))) is not None
