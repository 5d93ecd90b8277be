"""Errors raised by the storage layer (``cti.store``).

Exception tree::

    StoreError (CtiError)          store.error              base of everything the store raises
    ├── StoreOpenError             store.open_failed        the database cannot be opened or created
    ├── SchemaError                store.schema_invalid     the schema cannot be brought up to date
    │   └── SchemaTooNewError      store.schema_too_new     the file was written by a newer version
    ├── InvalidRecordError         store.record_invalid     a record's fields are inconsistent (also a ValueError)
    ├── NotFoundError              store.not_found          no row with that id
    ├── ConflictError              store.conflict           a unique key is already taken
    ├── OutboxStateError           store.outbox_state       the outbox entry is not in a state that allows this
    ├── StoreBusyError             store.busy               another writer held the lock past the busy timeout
    ├── StoreClosedError           store.closed             the store was closed
    ├── StoreUsageError            store.usage              the API was misused (e.g. a nested call that would
    │                                                       deadlock inside ``transaction()``)
    └── BackendError               store.backend_failed     any other database failure

Driver exceptions (``sqlite3.Error`` and friends) never leave the package: the backend
translates them with ``raise ... from exc`` so the original stays in ``__cause__``. ``code``
strings are part of the admin API; never rename one.
"""

from __future__ import annotations

from cti.errors import CtiError


class StoreError(CtiError):
    """Base class of every storage error."""

    code: str = "store.error"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class StoreOpenError(StoreError):
    """The database file cannot be opened or created (permissions, not a database, bad path)."""

    code = "store.open_failed"


class SchemaError(StoreError):
    """A migration failed; the database is left at its previous version."""

    code = "store.schema_invalid"


class SchemaTooNewError(SchemaError):
    """The database has a schema version this code does not know (written by a newer release)."""

    code = "store.schema_too_new"


class InvalidRecordError(StoreError, ValueError):
    """A record was built with inconsistent fields (checked in ``__post_init__``)."""

    code = "store.record_invalid"


class NotFoundError(StoreError):
    """The row addressed by id does not exist."""

    code = "store.not_found"


class ConflictError(StoreError):
    """A unique key (serial number, outbox ``(endpoint, event_id)``...) is already taken."""

    code = "store.conflict"


class OutboxStateError(StoreError):
    """The outbox entry's status forbids the operation (e.g. failing an entry already delivered)."""

    code = "store.outbox_state"


class StoreBusyError(StoreError):
    """The database stayed locked by another writer longer than the busy timeout."""

    code = "store.busy"


class StoreClosedError(StoreError):
    """The store was used after ``close()``."""

    code = "store.closed"


class StoreUsageError(StoreError):
    """The API was misused; the message says how."""

    code = "store.usage"


class BackendError(StoreError):
    """Any other failure reported by the database driver."""

    code = "store.backend_failed"
