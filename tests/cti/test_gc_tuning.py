"""The server's garbage-collection tuning: start-up frozen, automatic collection off, full collections on a
schedule (every ``FULL_GC_EVERY_S``, or once the heap grew past a bound) and after a SIP burst drains."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from cti.app import FULL_GC_EVERY_S, GC_GROWTH_MIN, GcSchedule, collect_garbage, tune_gc


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def restore_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()


def _cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: reference counting alone never frees it
    return weakref.ref(a)


def test_tune_gc_freezes_start_up_and_turns_automatic_collection_off(restore_gc: None) -> None:
    survivor = [object() for _ in range(100)]
    tune_gc()
    assert not gc.isenabled() and gc.get_freeze_count() >= len(survivor)
    gone = _cycle()
    junk = [[] for _ in range(5_000)]  # far past CPython's default young threshold (700)
    del junk
    assert gone() is not None  # nothing collected it


def test_the_schedule_collects_every_period_and_after_growth_past_the_bound() -> None:
    schedule = GcSchedule(100.0, every_s=600.0, growth_min=1_000)
    assert schedule.due(100.5, 0) is None
    assert schedule.due(699.9, 1_000) is None  # at the bound is not past it
    assert schedule.due(300.0, 1_001) == "growth"
    assert schedule.due(700.0, 0) == "periodic"
    schedule.collected(700.0, kept=5_000)  # the heap the last collection kept sets the bound when it is larger
    assert schedule.due(1_299.0, 5_000) is None
    assert schedule.due(800.0, 5_001) == "growth"
    assert schedule.due(1_300.0, 0) == "periodic"
    schedule.collected(1_300.0, kept=10)
    assert schedule.due(1_301.0, 1_001) == "growth"  # never below growth_min


def test_the_defaults_leave_a_levelled_off_node_alone() -> None:
    # 250 calls/s keep about 1.2 million more tracked objects than an idle node (finished transactions held
    # 32 s): the bound is above what a 30 s step adds, so a loaded node is not paused for nothing.
    assert GC_GROWTH_MIN >= 1_000_000 and FULL_GC_EVERY_S == 600.0


async def test_the_periodic_collection_frees_cycles(restore_gc: None) -> None:
    tune_gc()
    gone = _cycle()
    assert gone() is not None  # automatic collection is off
    task = asyncio.create_task(collect_garbage(every_s=0.02, check_s=0.01))
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if gone() is None:
                break
    finally:
        task.cancel()
    assert gone() is None


async def test_growth_past_the_bound_collects_before_the_period(restore_gc: None) -> None:
    tune_gc()
    gone = _cycle()
    task = asyncio.create_task(collect_garbage(every_s=3600.0, check_s=0.01, growth_min=20_000))
    try:
        await asyncio.sleep(0.05)
        assert gone() is not None  # no growth yet, and the period is an hour
        leak = [[] for _ in range(30_000)]  # tracked objects the collector cannot free: growth
        for _ in range(100):
            await asyncio.sleep(0.01)
            if gone() is None:
                break
        del leak
    finally:
        task.cancel()
    assert gone() is None
