"""The storage interface every backend implements (``SqliteStore`` now, PostgreSQL later).

``StoreOperations`` is the data API; ``Store`` adds transactions and closing. Each ``Store``
method is its own transaction and is durable (committed) when its coroutine returns. To make
several writes atomic — a state change and the outbox entry announcing it — use
``async with store.transaction() as tx:`` and call the same methods on ``tx``: all of them are
committed together when the block exits normally and none of them if it raises.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar

from acd import AgentId, AgentState, CallId, QueueId
from cti.ids import LegId, RecordingSerial
from cti.store.queries import LegTime
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

T = TypeVar("T")


class StoreOperations(Protocol):
    """Reads and writes; see ``cti.store.queries.SqlOperations`` for each method's contract."""

    async def save_call(self, record: CallRecord) -> None: ...
    async def get_call(self, call_id: CallId) -> CallRecord | None: ...
    async def calls_between(self, start: float, end: float) -> list[CallRecord]: ...
    async def calls_of_caller(self, caller_number: str, *, before: float, limit: int) -> list[CallRecord]: ...
    async def open_calls(self, node: str) -> list[CallRecord]: ...
    async def legs_of_call(self, call_id: CallId) -> list[QueueLeg]: ...
    async def save_queue_leg(self, leg: QueueLeg) -> None: ...
    async def get_queue_leg(self, leg_id: LegId) -> QueueLeg | None: ...
    async def queue_legs_between(
        self, start: float, end: float, queue: QueueId | None = None, *, by: LegTime = LegTime.ENTERED
    ) -> list[QueueLeg]: ...
    async def record_agent_state(
        self, agent_id: AgentId, state: AgentState, at: float, reason: str | None = None
    ) -> AgentStateRow: ...
    async def current_agent_state(self, agent_id: AgentId) -> AgentStateRow | None: ...
    async def agent_states_between(self, agent_id: AgentId, start: float, end: float) -> list[AgentStateRow]: ...
    async def all_agent_states_between(self, start: float, end: float) -> list[AgentStateRow]: ...
    async def allocate_serial(self, site: str, day: dt.date) -> RecordingSerial: ...
    async def save_recording(self, recording: Recording) -> None: ...
    async def get_recording(self, serial: RecordingSerial) -> Recording | None: ...
    async def enqueue(
        self, *, endpoint: str, event_id: str, event_type: str, payload: JsonObject, created: float
    ) -> OutboxId: ...
    async def claim_due(
        self, now: float, *, endpoint: str | None = None, limit: int = 100, lease_s: float = 60.0
    ) -> list[OutboxEntry]: ...
    async def get_outbox_entry(self, entry_id: OutboxId) -> OutboxEntry | None: ...
    async def mark_delivered(self, entry_id: OutboxId, now: float) -> None: ...
    async def mark_failed(
        self, entry_id: OutboxId, *, next_attempt_at: float, error: str, max_attempts: int | None = None
    ) -> OutboxStatus: ...
    async def dead_letter(self, entry_id: OutboxId, error: str) -> None: ...
    async def list_dead_letters(self, endpoint: str | None = None, limit: int = 1000) -> list[OutboxEntry]: ...
    async def replay_dead_letter(self, entry_id: OutboxId, now: float) -> None: ...
    async def purge_delivered(self, before: float) -> int: ...


class Store(StoreOperations, Protocol):
    """A durable store: every method commits before returning."""

    completed: int
    """Transactions that ended normally since the store was opened (it moves while the store works)."""

    def transaction(self) -> AbstractAsyncContextManager[StoreOperations]:
        """Batch several operations atomically (see the module docstring).

        Raises:
            StoreUsageError: called again by the task that already holds the transaction.
        """
        ...

    async def run_batch(self, work: Callable[[StoreOperations], Awaitable[T]]) -> T:
        """Run ``work(tx)`` as one atomic transaction and return its result: the same as
        ``async with store.transaction() as tx: return await work(tx)``, except that ``work`` may
        await nothing but ``tx``'s methods. In return a backend may run all of it in one step:
        SQLite runs BEGIN, every statement and COMMIT in one hand-over to its driver thread.

        Raises:
            StoreUsageError: ``work`` awaited something else (nothing is committed).
            StoreError: as the operations and ``transaction()`` raise them (nothing is committed).
        """
        ...

    async def schema_version(self) -> int:
        """The version of the schema in the database."""
        ...

    async def close(self) -> None:
        """Close the connection; later calls raise ``StoreClosedError``. Idempotent."""
        ...
