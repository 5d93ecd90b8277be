"""What every SQL backend's ``Store`` shares: one transaction per call, and transaction objects
that die with their block (backend-neutral).

A backend subclasses ``SqlStore`` and provides ``transaction()`` (an atomic write transaction)
and ``_read()`` (a read); every data method of ``cti.store.Store`` is written here once, as one
of those around the matching ``SqlOperations`` method, so the backends cannot drift apart.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager

from acd import AgentId, AgentState, CallId, QueueId
from cti.ids import LegId, RecordingSerial
from cti.store.errors import StoreUsageError
from cti.store.protocol import StoreOperations, T
from cti.store.queries import Executor, LegTime, SqlOperations
from cti.store.records import (
    AgentStateRow,
    CallRecord,
    JsonObject,
    OutboxEntry,
    OutboxId,
    OutboxStatus,
    QueueLeg,
    Recording,
)
from cti.store.rows import Row, SqlParam


class ScopedExecutor:
    """Forwards to a connection only while its transaction is open, so a ``tx`` kept past its
    ``async with`` block fails loudly instead of writing outside any transaction."""

    def __init__(self, inner: Executor) -> None:
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


class SqlStore(abc.ABC):
    """The data methods of a ``Store``, each in its own transaction of the backend."""

    completed: int = 0
    """Transactions (reads included) that ended normally since the store was opened: the watchdog
    (``cti.app.watch_store``) tells a store that is busy from one that is stuck by whether it moves."""

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[SqlOperations]:
        """One atomic write transaction (committed when the block exits normally, else rolled back)."""

    @abc.abstractmethod
    def _read(self) -> AbstractAsyncContextManager[SqlOperations]:
        """Where a read-only operation runs."""

    async def run_batch(self, work: Callable[[StoreOperations], Awaitable[T]]) -> T:
        """``work(tx)`` in one transaction (see ``cti.store.Store.run_batch``)."""
        async with self.transaction() as tx:
            return await work(tx)

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

    async def calls_of_caller(self, caller_number: str, *, before: float, limit: int) -> list[CallRecord]:
        async with self._read() as tx:
            return await tx.calls_of_caller(caller_number, before=before, limit=limit)

    async def open_calls(self, node: str) -> list[CallRecord]:
        async with self._read() as tx:
            return await tx.open_calls(node)

    async def legs_of_call(self, call_id: CallId) -> list[QueueLeg]:
        async with self._read() as tx:
            return await tx.legs_of_call(call_id)

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

    async def all_agent_states_between(self, start: float, end: float) -> list[AgentStateRow]:
        async with self._read() as tx:
            return await tx.all_agent_states_between(start, end)

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
