"""The server's garbage-collection tuning: no automatic collection, a periodic full one, and one sooner when the
tracked objects grew past a limit."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from cti.app import collect_garbage, tune_gc


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    if enabled:
        gc.enable()


def _cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: reference counting alone never frees it
    return weakref.ref(a)


async def _freed_by(task: asyncio.Task[None], gone: weakref.ref[Node]) -> bool:
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if gone() is None:
                return True
        return False
    finally:
        task.cancel()


def test_tune_gc_freezes_start_up_and_turns_automatic_collection_off(restore_gc: None) -> None:
    survivor = [object() for _ in range(100)]
    tune_gc()
    assert not gc.isenabled() and gc.get_freeze_count() >= len(survivor)


async def test_the_periodic_collection_frees_cycles_automatic_collection_leaves(restore_gc: None) -> None:
    tune_gc()
    gone = _cycle()
    assert gone() is not None  # automatic collection is off
    assert await _freed_by(asyncio.create_task(collect_garbage(every_s=0.01, check_s=0.01)), gone)


async def test_growth_past_the_limit_collects_before_the_period(restore_gc: None) -> None:
    tune_gc()
    gone = _cycle()
    task = asyncio.create_task(collect_garbage(every_s=3600.0, growth_min=5_000, check_s=0.01))
    await asyncio.sleep(0.05)
    assert gone() is not None  # neither the period nor the limit is reached
    kept = [[] for _ in range(10_000)]  # 10,000 more tracked objects: past the limit
    assert await _freed_by(task, gone)
    del kept
