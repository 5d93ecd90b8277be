"""Direct access to a test database behind the store's back (SQLite file or PostgreSQL URL).

For what a test must do outside the store: list the tables, run raw SQL (a hand-edited row),
or hold the write lock the way another process would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosqlite

from cti.store import is_postgres_url


async def fetch(target: str, sql: str) -> list[tuple[object, ...]]:
    """Rows of one statement run on its own connection (committed)."""
    if is_postgres_url(target):
        import asyncpg

        conn = await asyncpg.connect(target)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()
    async with aiosqlite.connect(target) as db, db.execute(sql) as cursor:
        found = [tuple(r) for r in await cursor.fetchall()]
        await db.commit()
        return found


async def tables(target: str) -> set[str]:
    """The tables of the store's database (its schema, on PostgreSQL)."""
    if is_postgres_url(target):
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    return {str(row[0]) for row in await fetch(target, sql)}


@asynccontextmanager
async def write_locked(target: str) -> AsyncIterator[None]:
    """Another process holding the lock a write of ``calls`` needs, until the block ends."""
    if is_postgres_url(target):
        import asyncpg

        conn = await asyncpg.connect(target)
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE calls IN EXCLUSIVE MODE")
                yield
        finally:
            await conn.close()
        return
    async with aiosqlite.connect(target, isolation_level=None) as db:
        await db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            await db.execute("ROLLBACK")
