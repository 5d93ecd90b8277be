"""``Store.run_batch``: a whole unit of work in one transaction, on both backends."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import pytest

from acd import AgentId, AgentState, CallId, QueueId
from cti.store import LegId, QueueLeg, Store, StoreClosedError, StoreOperations, StoreUsageError, open_store


def leg(n: int) -> QueueLeg:
    return QueueLeg(leg_id=LegId(f"c-{n}-0"), call_id=CallId(f"c-{n}"), queue_id=QueueId("sales"),
                    t_enter_queue=1000.0 + n)


async def test_batch_commits_every_write_and_returns_the_result(target: str) -> None:
    async def work(tx: StoreOperations) -> int:
        for n in range(50):
            await tx.save_queue_leg(leg(n))
        await tx.record_agent_state(AgentId("1001"), AgentState.AVAILABLE, 1000.0)
        await tx.record_agent_state(AgentId("1001"), AgentState.ON_CALL, 1010.0)
        return len(await tx.queue_legs_between(0, 2000))

    store = await open_store(target)
    try:
        assert await store.run_batch(work) == 50
    finally:
        await store.close()
    reopened = await open_store(target)  # durable: another connection sees all of it
    try:
        assert len(await reopened.queue_legs_between(0, 2000)) == 50
        states = await reopened.agent_states_between(AgentId("1001"), 0, 2000)
        assert [(s.state, s.start, s.end) for s in states] == [
            (AgentState.AVAILABLE, 1000.0, 1010.0), (AgentState.ON_CALL, 1010.0, None)]
    finally:
        await reopened.close()


async def test_a_failing_batch_leaves_nothing(store: Store) -> None:
    async def work(tx: StoreOperations) -> None:
        await tx.save_queue_leg(leg(1))
        await tx.record_agent_state(AgentId("1001"), AgentState.AVAILABLE, 1000.0)
        raise RuntimeError("half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        await store.run_batch(work)
    assert await store.get_queue_leg(LegId("c-1-0")) is None
    assert await store.current_agent_state(AgentId("1001")) is None
    await store.save_queue_leg(leg(2))  # the store goes on
    assert await store.get_queue_leg(LegId("c-2-0")) is not None


async def test_a_batch_that_awaits_something_else_is_refused_on_sqlite(store: Store, backend: str) -> None:
    async def work(tx: StoreOperations) -> None:
        await tx.save_queue_leg(leg(1))
        await asyncio.sleep(0)

    if backend == "sqlite":  # runs in the driver's thread: only the store's own awaits can run there
        with pytest.raises(StoreUsageError, match="may await only"):
            await store.run_batch(work)
        assert await store.get_queue_leg(LegId("c-1-0")) is None
    else:  # PostgreSQL runs the batch as a plain transaction, where any await is fine
        await store.run_batch(work)
        assert await store.get_queue_leg(LegId("c-1-0")) is not None


async def test_batch_inside_the_tasks_own_transaction_is_refused(store: Store) -> None:
    async def work(tx: StoreOperations) -> None:
        await tx.save_queue_leg(leg(1))

    async with store.transaction():
        with pytest.raises(StoreUsageError):
            await store.run_batch(work)


async def test_concurrent_batches_and_calls_are_serialised(store: Store) -> None:
    async def work(first: int) -> None:
        async def body(tx: StoreOperations) -> None:
            for n in range(first, first + 20):
                await tx.save_queue_leg(leg(n))
        await store.run_batch(body)

    await asyncio.gather(*(work(k * 20) for k in range(5)), *(store.save_queue_leg(leg(1000 + k)) for k in range(5)))
    assert len(await store.queue_legs_between(0, 3000)) == 105


async def test_batch_after_close_is_refused(target: str) -> None:
    store = await open_store(target)
    await store.close()

    async def work(tx: StoreOperations) -> None:
        await tx.save_queue_leg(leg(1))

    with pytest.raises(StoreClosedError):
        await store.run_batch(work)


async def test_sqlite_batches_run_on_one_cursor(tmp_path: Path) -> None:
    """A cursor per statement would leave the connection a weak reference each (the last ~200 are kept):
    made during a burst of calls, they pin the allocator's arenas after it (docs/reliability.md)."""
    async def work(tx: StoreOperations, legs: int) -> int:
        for n in range(legs):
            await tx.save_queue_leg(leg(n))
        return len(await tx.queue_legs_between(0, 2000))

    def weakrefs() -> int:
        return sum(1 for o in gc.get_objects() if type(o) is weakref.ReferenceType)

    store = await open_store(tmp_path / "batch.sqlite3")
    try:
        assert await store.run_batch(lambda tx: work(tx, 2)) == 2  # warm: the connection's cursor made
        before = weakrefs()
        assert await store.run_batch(lambda tx: work(tx, 150)) == 150  # 150 writes and a read, one cursor
        assert weakrefs() - before < 10
    finally:
        await store.close()
