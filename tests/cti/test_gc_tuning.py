"""The server's garbage-collection tuning: young generations only, plus a periodic full collection."""

from __future__ import annotations

import asyncio
import gc
import types
import weakref
from collections.abc import Iterator

import pytest
import structlog

from cti.app import GC_THRESHOLDS, collect_garbage, tune_gc
from cti.logging import bind_module_loggers


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tune_gc_freezes_start_up_and_sets_the_thresholds(restore_gc: None) -> None:
    survivor = [object() for _ in range(100)]
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS and gc.get_freeze_count() >= len(survivor)


async def test_the_periodic_collection_frees_cycles_the_thresholds_leave(restore_gc: None) -> None:
    tune_gc()
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: reference counting alone never frees it
    gone = weakref.ref(a)
    del a, b
    assert gone() is not None  # automatic collection is held back
    task = asyncio.create_task(collect_garbage(every_s=0.01))
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if gone() is None:
                break
    finally:
        task.cancel()
    assert gone() is None


def test_module_loggers_are_built_once_at_start_up() -> None:
    saved = structlog.get_config()
    structlog.configure(cache_logger_on_first_use=True)  # as the node's configure_logging does
    module = types.ModuleType("cti._test_loggers")
    module.log = structlog.get_logger("cti._test_loggers")  # type: ignore[attr-defined]
    try:
        assert "bind" not in vars(module.log)  # a lazy proxy: nothing built yet
        assert bind_module_loggers([module]) == 1
        assert "bind" in vars(module.log)  # built and cached on the proxy
        assert module.log.bind() is module.log.bind()  # the same logger from now on
    finally:
        structlog.configure(**saved)
