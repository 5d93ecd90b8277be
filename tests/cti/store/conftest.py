"""Fixtures: a real SQLite file in ``tmp_path``, opened and migrated, closed after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.store import SqliteStore, open_store


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "cti.sqlite"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_store(db_path)
    try:
        yield opened
    finally:
        await opened.close()
