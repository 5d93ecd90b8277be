"""The store watchdog (cti/app.py ``watch_store``): a store that stops answering is fatal after
``storage.fatal_after_s``; a node that was itself stalled (its loop blocked) is not a dead store, and
neither is a busy one (the probe waits behind a backlog the store is working through)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cti.app import STALL_S, StoreUnavailableError, watch_store


class HangingStore:
    """Never answers the probe, while the event loop runs freely."""

    completed = 0

    async def schema_version(self) -> int:
        await asyncio.sleep(3600)
        return 3


class StallingStore:
    """Answers, but only after blocking the whole event loop past the probe's timeout (a stalled node)."""

    def __init__(self, block_s: float) -> None:
        self.block_s = block_s
        self.probes = 0
        self.completed = 0

    async def schema_version(self) -> int:
        self.probes += 1
        time.sleep(self.block_s)  # noqa: ASYNC251 -- deliberately blocks the loop: the stall under test
        await asyncio.sleep(0.05)  # the answer comes after the probe's deadline has passed
        return 3


class BusyStore:
    """The probe waits behind a backlog (never answered in time), but other transactions keep ending."""

    def __init__(self) -> None:
        self.completed = 0
        self.probes = 0

    async def schema_version(self) -> int:
        self.probes += 1
        while True:
            await asyncio.sleep(0.05)
            self.completed += 1  # the backlog's transactions commit one after the other


def _server(store: object, fatal_after_s: float) -> SimpleNamespace:
    return SimpleNamespace(store=store, controller=SimpleNamespace(records=SimpleNamespace(failing_since=None)),
                           config=SimpleNamespace(storage=SimpleNamespace(fatal_after_s=fatal_after_s)))


async def test_a_store_that_stops_answering_is_fatal() -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="no answer"):
        await asyncio.wait_for(watch_store(_server(HangingStore(), 0.5)), 10)  # type: ignore[arg-type]
    assert time.monotonic() - started < 5


async def test_a_stalled_node_is_not_a_dead_store() -> None:
    store = StallingStore(block_s=0.5 + STALL_S + 0.3)
    with pytest.raises(TimeoutError):  # still watching after two stalled probes: not fatal
        await asyncio.wait_for(watch_store(_server(store, 0.5)), 2 * (1 + store.block_s) + 0.5)
    assert store.probes >= 2


async def test_a_busy_store_that_still_commits_is_not_fatal() -> None:
    store = BusyStore()
    with pytest.raises(TimeoutError):  # still watching after probes that all timed out: not fatal
        await asyncio.wait_for(watch_store(_server(store, 0.5)), 4)
    assert store.probes >= 2 and store.completed > 0


class AnsweringStore:
    """Answers every probe at once; its database file is ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.completed = 0

    async def schema_version(self) -> int:
        return 3


async def test_a_database_file_whose_stat_hangs_counts_as_no_answer(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    """A file system that stops answering (a hung network mount) must not hang the watchdog with it."""
    path = tmp_path / "cti.db"
    path.write_bytes(b"")
    release, real_stat, stats = threading.Event(), os.stat, []

    def stat(target: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if Path(target) == path:
            stats.append(target)
            if len(stats) > 1:  # the inode is read at start; every later look hangs
                release.wait(30)
        return real_stat(target, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    try:
        with pytest.raises(StoreUnavailableError, match="no answer"):
            await asyncio.wait_for(watch_store(_server(AnsweringStore(path), 0.5)), 10)  # type: ignore[arg-type]
    finally:
        release.set()
