"""Fixtures: every behavioural store test runs on both backends, ``sqlite`` and ``postgres``.

- ``target``: where the test's store lives: a fresh SQLite file in ``tmp_path``, or a fresh
  schema of the test PostgreSQL database (named in the URL's ``search_path``), dropped after the
  test. One server serves the whole session: the database named by ``CTI_TEST_PG_DSN``, or a
  throwaway cluster (``tests.support.postgres``) stopped at the end of the session, pass or fail.
- ``store``: a store opened on ``target``, closed after the test.
- ``db_path``: the SQLite file, for the SQLite-only tests (file, WAL and folder behaviour).

Without PostgreSQL on the machine the ``[postgres]`` cases are skipped, or fail when
``CTI_REQUIRE_POSTGRES=1`` (CI). Select one backend with ``-k sqlite`` or ``-k postgres``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cti.store import Store, open_store
from tests.support import postgres as pg

BACKENDS = ("sqlite", "postgres")


def _unavailable(reason: str) -> None:
    if pg.required():
        pytest.fail(f"PostgreSQL is required ({pg.REQUIRE_ENV}=1) but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """The URL of a database the tests may create schemas in, for the whole session."""
    if importlib.util.find_spec("asyncpg") is None:
        _unavailable("asyncpg is not installed (pip install -e '.[test]')")
    given = os.environ.get(pg.DSN_ENV)
    if given:
        yield given
        return
    bindir = pg.find_bindir()
    if bindir is None:
        _unavailable(f"no initdb/pg_ctl found (install postgresql, or set {pg.DSN_ENV})")
        return
    try:
        cluster = pg.ThrowawayCluster.start(bindir)
    except pg.PostgresUnavailable as exc:
        _unavailable(f"the throwaway cluster did not start: {exc}")
        return
    try:
        yield cluster.dsn
    finally:
        cluster.stop()


@pytest.fixture
async def pg_url(postgres_dsn: str) -> AsyncIterator[str]:
    """A URL whose tables land in a new, empty schema; the schema is dropped after the test."""
    import asyncpg

    schema = f"t_{secrets.token_hex(6)}"
    async with asyncio.timeout(30):
        admin = await asyncpg.connect(postgres_dsn)
        try:
            await admin.execute(f"CREATE SCHEMA {schema}")
        finally:
            await admin.close()
    try:
        yield pg.with_search_path(postgres_dsn, schema)
    finally:
        async with asyncio.timeout(30):
            admin = await asyncpg.connect(postgres_dsn)
            try:
                await admin.execute(f"DROP SCHEMA {schema} CASCADE")
            finally:
                await admin.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "cti.sqlite"


@pytest.fixture
def target(backend: str, db_path: Path, request: pytest.FixtureRequest) -> str:
    """A new, empty database of ``backend``: a file path or a PostgreSQL URL."""
    if backend == "sqlite":
        return str(db_path)
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def store(target: str) -> AsyncIterator[Store]:
    opened = await open_store(target)
    try:
        yield opened
    finally:
        await opened.close()
