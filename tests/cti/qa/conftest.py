"""QA tests reuse the store fixtures: every store-backed case runs on SQLite and on PostgreSQL."""

from tests.cti.store.conftest import backend, db_path, pg_url, postgres_dsn, store, target

__all__ = ["backend", "db_path", "pg_url", "postgres_dsn", "store", "target"]
