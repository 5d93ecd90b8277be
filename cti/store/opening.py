"""``open_store``: a path opens the SQLite backend, a ``postgresql://`` URL the PostgreSQL one.

The PostgreSQL backend needs the optional dependency ``asyncpg`` (``pip install
'cti-server[postgres]'``); it is imported only when a URL asks for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cti.store.errors import StoreOpenError
from cti.store.protocol import Store
from cti.store.schema import MIGRATIONS, Migration
from cti.store.sqlite import open_sqlite_store
from cti.store.url import is_postgres_url, redact_url


async def open_store(
    target: str | Path,
    *,
    busy_timeout_s: float = 5.0,
    migrations: Sequence[Migration] = MIGRATIONS,
    pool_size: int = 10,
    connect_timeout_s: float = 10.0,
) -> Store:
    """Open and migrate the store at ``target``: an SQLite file path, or a PostgreSQL URL.

    ``busy_timeout_s`` bounds the wait for another writer's lock (both backends) and for a free
    pooled connection (PostgreSQL). ``pool_size`` and ``connect_timeout_s`` apply to PostgreSQL
    only. See ``open_sqlite_store`` and ``cti.store.postgres.open_postgres_store``.

    Raises:
        StoreOpenError: the database cannot be opened or reached (the message never shows a password).
        SchemaTooNewError: the database was written by a newer release.
        SchemaError: a migration failed; the database stays at its previous version.
        StoreBusyError: another process kept the database locked past ``busy_timeout_s``.
    """
    if not is_postgres_url(target):
        return await open_sqlite_store(target, busy_timeout_s=busy_timeout_s, migrations=migrations)
    url = str(target)
    try:
        from cti.store.postgres import open_postgres_store
    except ImportError as exc:
        raise StoreOpenError(f"cannot open {redact_url(url)}: the PostgreSQL backend needs asyncpg "
                             "(pip install 'cti-server[postgres]')") from exc  # fmt: skip
    return await open_postgres_store(
        url, pool_size=pool_size, busy_timeout_s=busy_timeout_s, connect_timeout_s=connect_timeout_s,
        migrations=migrations,
    )  # fmt: skip
