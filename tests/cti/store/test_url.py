"""Store targets: path or PostgreSQL URL, the URL's password hidden, the storage config key. No database."""

from __future__ import annotations

import sys

import pytest
from pydantic import ValidationError

from config.schema import ServerConfig, StorageConfig
from cti.store import StoreOpenError, is_postgres_url, open_store, redact_url
from cti.store.url import scrub, url_secrets


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://cti:s3cret@db1:5432/cti", "postgresql://cti:***@db1:5432/cti"),
        ("postgres://cti@db1/cti?sslmode=require", "postgres://cti@db1/cti?sslmode=require"),
        ("postgresql://db1/cti?user=cti&password=s3cret&sslmode=require",
         "postgresql://db1/cti?user=cti&password=***&sslmode=require"),
        ("postgresql://cti:pa/ss@w0rd@db1/cti", "postgresql://cti:***@db1/cti"),  # unescaped / and @
        ("postgresql://cti:s%40cret@[::1]:5432/cti", "postgresql://cti:***@[::1]:5432/cti"),
        ("postgresql:///cti?host=/run/postgresql", "postgresql:///cti?host=/run/postgresql"),
    ],
)  # fmt: skip
def test_redact_url_hides_every_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_secrets_of_a_url_are_scrubbed_as_written_and_decoded() -> None:
    url = "postgresql://cti:s%40cret@db1/cti?sslpassword=other1"
    assert set(url_secrets(url)) == {"s%40cret", "s@cret", "other1"}
    text = "password for s@cret refused (s%40cret), key other1"
    assert scrub(text, url_secrets(url)) == "password for *** refused (***), key ***"


def test_targets_are_paths_unless_postgres_urls() -> None:
    assert is_postgres_url("postgresql://h/db") and is_postgres_url("postgres://h/db")
    assert is_postgres_url("PostgreSQL://h/db")
    assert not is_postgres_url("var/cti.sqlite3")
    assert not is_postgres_url("postgresql.sqlite3")


async def test_a_url_without_asyncpg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # import asyncpg now raises ImportError
    monkeypatch.delitem(sys.modules, "cti.store.postgres", raising=False)
    with pytest.raises(StoreOpenError) as caught:
        await open_store("postgresql://cti:s3cret@127.0.0.1:1/cti")
    message = str(caught.value)
    assert "cti-server[postgres]" in message and "s3cret" not in message and "cti:***@" in message


def test_storage_config_defaults_to_sqlite_and_takes_a_postgres_url() -> None:
    assert ServerConfig().storage == StorageConfig(url=None, pool_size=10)
    config = ServerConfig.model_validate({"storage": {"url": "postgresql://cti:s3cret@db1/cti", "pool_size": 4}})
    assert config.storage.url == "postgresql://cti:s3cret@db1/cti" and config.storage.pool_size == 4
    assert "s3cret" not in repr(config)
    for bad in ({"url": "mysql://db1/cti"}, {"url": "var/cti.sqlite3"}, {"pool_size": 0}):
        with pytest.raises(ValidationError):
            ServerConfig.model_validate({"storage": bad})
