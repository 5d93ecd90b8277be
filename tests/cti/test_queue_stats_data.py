"""The data of ``queue.stats``: ASA (domain spec §1.3) from the ACD's tally, validated against the registry."""

from __future__ import annotations

import pytest

from acd.agent import AgentState
from acd.config import CallId, QueueConfig, QueueId
from acd.stats import QueueStats
from cti.events.publish import queue_stats_data
from cti.events.registry import Envelope, new_event_id, validate


def _data(stats: QueueStats, now: float) -> dict[str, object]:
    data = queue_stats_data(stats.snapshot(now, {AgentState.AVAILABLE: 1}, {}), 1)
    validate(Envelope(type="queue.stats", id=new_event_id(now), ts=now, node="n", data=data), strict=True)
    return data


def test_asa_is_null_until_a_call_is_answered() -> None:
    stats = QueueStats(QueueConfig(id=QueueId("sales")))
    stats.entered(CallId("c1"), 100.0)
    assert _data(stats, 101.0)["asa_seconds"] is None
    stats.abandoned(CallId("c1"), 100.0, 130.0)  # an abandon never counts toward ASA
    data = _data(stats, 131.0)
    assert data["asa_seconds"] is None and data["abandoned"] == 1


def test_asa_is_the_answered_calls_total_wait_over_their_count() -> None:
    stats = QueueStats(QueueConfig(id=QueueId("sales")))
    for call, enqueued in (("c1", 100.0), ("c2", 101.0), ("c3", 102.0)):
        stats.entered(CallId(call), enqueued)
    stats.answered(CallId("c1"), 100.0, 104.0)     # waited 4 s
    stats.abandoned(CallId("c2"), 101.0, 161.0)    # 60 s, excluded
    stats.answered(CallId("c3"), 102.0, 112.5)     # waited 10.5 s
    data = _data(stats, 170.0)
    assert data["answered"] == 2 and data["asa_seconds"] == pytest.approx((4.0 + 10.5) / 2)
