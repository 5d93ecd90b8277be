"""The server's garbage-collection tuning: young generations only, plus a periodic full collection."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from cti.app import GC_THRESHOLDS, collect_garbage, tune_gc


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
