"""Durable data of the server: CDRs, queue legs, agent-state history, recordings, the outbox.

``await open_store(path)`` returns a ``Store`` on an SQLite file (WAL, migrated to the latest
schema); ``await open_store("postgresql://user:password@host/db")`` one on PostgreSQL
(``cti.store.postgres``, which needs the optional ``asyncpg``; imported only then).
Every method commits before it returns; ``async with store.transaction() as tx:`` batches
several writes atomically (e.g. a state change and the webhook outbox entry announcing it).
Records are frozen dataclasses (``records``); errors form the ``StoreError`` tree (``errors``).
The contract, table by table, is in ``docs/storage.md``.
"""

from cti.ids import LegId, RecordingSerial
from cti.store.dialect import Dialect
from cti.store.errors import (
    BackendError,
    ConflictError,
    InvalidRecordError,
    NotFoundError,
    OutboxStateError,
    SchemaError,
    SchemaTooNewError,
    StoreBusyError,
    StoreClosedError,
    StoreError,
    StoreOpenError,
    StoreUsageError,
)
from cti.store.opening import open_store
from cti.store.protocol import Store, StoreOperations
from cti.store.queries import Executor, LegTime, SqlOperations
from cti.store.records import (
    AgentStateRow,
    CallRecord,
    HangupParty,
    JsonObject,
    JsonValue,
    LegOutcome,
    OutboxEntry,
    OutboxId,
    OutboxStatus,
    Party,
    PartyRole,
    QueueLeg,
    Recording,
    StateRowId,
)
from cti.store.schema import LATEST_VERSION, MIGRATIONS, Migration
from cti.store.serial import SerialParts, format_serial, parse_serial
from cti.store.sqlite import SqliteStore, open_sqlite_store
from cti.store.url import is_postgres_url, redact_url

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "AgentStateRow",
    "BackendError",
    "CallRecord",
    "ConflictError",
    "Dialect",
    "Executor",
    "HangupParty",
    "InvalidRecordError",
    "JsonObject",
    "JsonValue",
    "LegId",
    "LegOutcome",
    "LegTime",
    "Migration",
    "NotFoundError",
    "OutboxEntry",
    "OutboxId",
    "OutboxStateError",
    "OutboxStatus",
    "Party",
    "PartyRole",
    "QueueLeg",
    "Recording",
    "RecordingSerial",
    "SchemaError",
    "SchemaTooNewError",
    "SerialParts",
    "SqlOperations",
    "SqliteStore",
    "StateRowId",
    "Store",
    "StoreBusyError",
    "StoreClosedError",
    "StoreError",
    "StoreOpenError",
    "StoreOperations",
    "StoreUsageError",
    "format_serial",
    "is_postgres_url",
    "open_sqlite_store",
    "open_store",
    "parse_serial",
    "redact_url",
]
