"""The outbox on both backends: per-endpoint order, leases, back-off, dead letters and replay."""

from __future__ import annotations

import pytest

from cti.store import (
    ConflictError,
    InvalidRecordError,
    NotFoundError,
    OutboxId,
    OutboxStateError,
    OutboxStatus,
    Store,
)

CRM = "https://crm.example/hook"
BI = "https://bi.example/hook"


async def put(store: Store, endpoint: str, event_id: str, created: float = 100.0) -> OutboxId:
    return await store.enqueue(
        endpoint=endpoint, event_id=event_id, event_type="call.ended", payload={"id": event_id, "n": [1, 2]},
        created=created,
    )  # fmt: skip


async def test_enqueue_and_claim_round_trip(store: Store) -> None:
    entry_id = await put(store, CRM, "e1")
    assert await store.claim_due(99.0) == []  # not due before it was created
    [entry] = await store.claim_due(100.0, lease_s=30.0)
    assert entry.entry_id == entry_id
    assert (entry.endpoint, entry.event_id, entry.event_type) == (CRM, "e1", "call.ended")
    assert entry.payload == {"id": "e1", "n": [1, 2]}
    assert (entry.status, entry.attempts, entry.lease_until) == (OutboxStatus.PENDING, 1, 130.0)
    await store.mark_delivered(entry_id, 101.0)
    delivered = await store.get_outbox_entry(entry_id)
    assert delivered is not None
    assert (delivered.status, delivered.delivered_at, delivered.lease_until) == (OutboxStatus.DELIVERED, 101.0, None)
    assert await store.claim_due(1000.0) == []


async def test_per_endpoint_order_only_the_head_is_due(store: Store) -> None:
    crm1, crm2, crm3 = [await put(store, CRM, f"c{i}") for i in range(3)]
    bi1 = await put(store, BI, "b1")
    claimed = await store.claim_due(100.0)
    assert [e.entry_id for e in claimed] == [crm1, bi1]  # one head per endpoint, in enqueue order
    assert await store.claim_due(100.0) == []  # heads are leased; the next ones wait behind them
    await store.mark_delivered(crm1, 100.5)
    assert [e.entry_id for e in await store.claim_due(101.0)] == [crm2]
    await store.mark_delivered(crm2, 101.5)
    assert [e.entry_id for e in await store.claim_due(102.0, endpoint=CRM)] == [crm3]


async def test_failed_head_blocks_its_endpoint_until_back_off_expires(store: Store) -> None:
    first, second = await put(store, CRM, "c1"), await put(store, CRM, "c2")
    other = await put(store, BI, "b1")
    await store.claim_due(100.0, endpoint=CRM)
    status = await store.mark_failed(first, next_attempt_at=110.0, error="HTTP 503")
    assert status is OutboxStatus.PENDING
    # During the back-off the CRM line is blocked (second waits behind first); BI is unaffected.
    assert [e.entry_id for e in await store.claim_due(105.0)] == [other]
    [retry] = await store.claim_due(110.0)
    assert (retry.entry_id, retry.attempts, retry.last_error) == (first, 2, "HTTP 503")
    await store.mark_delivered(first, 111.0)
    assert [e.entry_id for e in await store.claim_due(111.0)] == [second]


async def test_expired_lease_makes_the_entry_due_again(store: Store) -> None:
    entry_id = await put(store, CRM, "c1")
    await store.claim_due(100.0, lease_s=10.0)  # the worker crashes without reporting
    assert await store.claim_due(109.0) == []
    [again] = await store.claim_due(110.0, lease_s=10.0)
    assert (again.entry_id, again.attempts) == (entry_id, 2)


async def test_limit_and_endpoint_filter(store: Store) -> None:
    ids = [await put(store, f"https://h{i}.example/", "e") for i in range(5)]
    assert [e.entry_id for e in await store.claim_due(100.0, limit=2)] == ids[:2]
    assert [e.entry_id for e in await store.claim_due(100.0, endpoint="https://h4.example/")] == [ids[4]]


async def test_dead_letter_after_max_attempts_unblocks_the_endpoint(store: Store) -> None:
    first, second = await put(store, CRM, "c1"), await put(store, CRM, "c2")
    now = 100.0
    for attempt in (1, 2, 3):
        [entry] = await store.claim_due(now)
        assert (entry.entry_id, entry.attempts) == (first, attempt)
        status = await store.mark_failed(first, next_attempt_at=now + 2**attempt, error=f"timeout #{attempt}",
                                         max_attempts=3)  # fmt: skip
        now += 2**attempt
    assert status is OutboxStatus.DEAD
    [dead] = await store.list_dead_letters()
    assert (dead.entry_id, dead.status, dead.attempts, dead.last_error) == (first, OutboxStatus.DEAD, 3, "timeout #3")
    assert [e.entry_id for e in await store.claim_due(now)] == [second]


async def test_explicit_dead_letter_and_replay(store: Store) -> None:
    first = await put(store, CRM, "c1")
    other = await put(store, BI, "b1")
    await store.claim_due(100.0)
    await store.dead_letter(first, "HTTP 410 Gone")
    await store.dead_letter(other, "bad URL")
    assert [e.entry_id for e in await store.list_dead_letters(endpoint=CRM)] == [first]
    assert len(await store.list_dead_letters()) == 2

    await store.replay_dead_letter(first, 500.0)
    replayed = await store.get_outbox_entry(first)
    assert replayed is not None
    assert (replayed.status, replayed.attempts, replayed.next_attempt_at) == (OutboxStatus.PENDING, 0, 500.0)
    assert await store.claim_due(499.0) == []
    [entry] = await store.claim_due(500.0)
    assert (entry.entry_id, entry.attempts) == (first, 1)
    assert [e.entry_id for e in await store.list_dead_letters()] == [other]


async def test_state_errors(store: Store) -> None:
    entry_id = await put(store, CRM, "c1")
    with pytest.raises(OutboxStateError):
        await store.replay_dead_letter(entry_id, 100.0)  # pending, not dead
    await store.mark_delivered(entry_id, 100.0)
    await store.mark_delivered(entry_id, 100.0)  # idempotent
    with pytest.raises(OutboxStateError):
        await store.mark_failed(entry_id, next_attempt_at=200.0, error="late")
    with pytest.raises(OutboxStateError):
        await store.dead_letter(entry_id, "late")
    with pytest.raises(NotFoundError):
        await store.mark_delivered(OutboxId(999), 100.0)
    with pytest.raises(NotFoundError):
        await store.mark_failed(OutboxId(999), next_attempt_at=1.0, error="x")


async def test_duplicate_event_per_endpoint_is_refused(store: Store) -> None:
    await put(store, CRM, "e1")
    await put(store, BI, "e1")  # the same event to another endpoint is a separate delivery
    with pytest.raises(ConflictError) as caught:
        await put(store, CRM, "e1")
    assert caught.value.code == "store.conflict"


async def test_enqueue_validation(store: Store) -> None:
    with pytest.raises(InvalidRecordError):
        await store.enqueue(endpoint="", event_id="e", event_type="t", payload={}, created=1.0)
    with pytest.raises(InvalidRecordError):
        await store.enqueue(endpoint=CRM, event_id="e", event_type="t", payload={"x": float("nan")}, created=1.0)
    assert await store.claim_due(10.0) == []


async def test_purge_delivered(store: Store) -> None:
    old, new, pending = await put(store, "a", "1"), await put(store, "b", "1"), await put(store, "c", "1")
    await store.mark_delivered(old, 100.0)
    await store.mark_delivered(new, 300.0)
    assert await store.purge_delivered(200.0) == 1
    assert await store.get_outbox_entry(old) is None
    assert await store.get_outbox_entry(new) is not None
    assert await store.get_outbox_entry(pending) is not None


async def test_claim_arguments_are_checked(store: Store) -> None:
    with pytest.raises(InvalidRecordError):
        await store.claim_due(1.0, limit=0)
    with pytest.raises(InvalidRecordError):
        await store.claim_due(1.0, lease_s=0.0)
