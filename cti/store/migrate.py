"""Forward schema migrations, applied when a store opens (backend-neutral).

The caller runs ``migrate`` inside one write transaction that it holds exclusively (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock), so two processes opening the same database
at once cannot both apply a step. Each migration is recorded in ``schema_version``; a database
whose version is newer than the newest known migration is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from cti.store import rows
from cti.store.dialect import Dialect
from cti.store.errors import SchemaError, SchemaTooNewError
from cti.store.queries import Executor
from cti.store.schema import SCHEMA_VERSION_DDL, Migration

_log = structlog.get_logger("cti.store")


async def current_version(x: Executor) -> int:
    """The highest applied migration, 0 for a new database."""
    found = await x.fetch_all("SELECT MAX(version) FROM schema_version")
    value = found[0][0] if found else None
    return 0 if value is None else rows.int_value(value)


async def migrate(x: Executor, migrations: Sequence[Migration], now: float, dialect: Dialect = Dialect.SQLITE) -> int:
    """Apply every migration newer than the database's version; return the resulting version.

    Each migration runs its statements for ``dialect`` (``Migration.statements_for``).

    Raises:
        SchemaTooNewError: the database is at a version newer than the last of ``migrations``.
        SchemaError: ``migrations`` are not numbered 1, 2, 3...
    """
    if [m.version for m in migrations] != list(range(1, len(migrations) + 1)):
        raise SchemaError("migrations must be numbered 1, 2, 3... without gaps")
    await x.execute(SCHEMA_VERSION_DDL)
    version = await current_version(x)
    if version > len(migrations):
        raise SchemaTooNewError(f"database schema is version {version}; this code knows up to {len(migrations)}")
    for migration in migrations[version:]:
        for statement in migration.statements_for(dialect):
            await x.execute(statement)
        await x.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.description, now),
        )
        _log.info("store.schema.migrated", version=migration.version, description=migration.description)
        version = migration.version
    return version
