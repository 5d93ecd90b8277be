"""The store fixtures of tests/cti/store: schedule tests run on SQLite and PostgreSQL alike."""

from tests.cti.store.conftest import backend, db_path, pg_url, postgres_dsn, store, target

__all__ = ["backend", "db_path", "pg_url", "postgres_dsn", "store", "target"]
