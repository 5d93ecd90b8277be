"""Reports from a real database (SQLite and PostgreSQL): the same rows give the same figures, and the live
"today" counters are rebuilt from the records after a restart (an injected clock), then reset at midnight."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from acd import AgentId, AgentState, Answer, CallId, Enqueue, Hangup, LoginAgent, QueueId, Router, SiteCalendar
from config.schema import AgentConfig, QueueConfig, ReportsConfig, ReportTargets, ServerConfig
from cti.clock import NodeClock
from cti.node.routing import agent_config, queue_config
from cti.reports import Period
from cti.reports.fetch import build_report, report_spec
from cti.reports.live import restore_live_stats
from cti.store import Store
from tests.cti.reports.legs import leg

ZONE = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 12, 7)
MIDNIGHT = dt.datetime(2026, 12, 7, tzinfo=ZONE).timestamp()


def config() -> ServerConfig:
    return ServerConfig.model_validate({
        "node": {"timezone": "Asia/Shanghai"},
        "queues": [QueueConfig(name="sales", sl_threshold_s=20.0, sl_target=0.8).model_dump()],
        "agents": [AgentConfig(id="1001", password="secret1", skills={}, team="red").model_dump()],
        "reports": ReportsConfig(queue_targets={"sales": ReportTargets(aht_s=300.0, abandon_rate=0.05)}).model_dump(),
    })


async def seed(store: Store) -> None:
    t = MIDNIGHT + 9 * 3600  # 09:00 local
    legs = [leg("sales", at=t, answered=20.0, agent="1001", talk=100.0, hold=10.0, acw=20.0, caller="+8613800000001"),
            leg("sales", at=t + 60, answered=25.0, agent="1001", talk=200.0, caller="+8613800000001"),
            leg("sales", at=t + 120, abandoned=3.0), leg("sales", at=t + 130, abandoned=40.0),
            leg("sales", at=t + 1800, answered=5.0, agent="1001", talk=50.0),
            leg("sales", at=MIDNIGHT - 60, answered=5.0, agent="1001", talk=10.0)]  # yesterday
    for one in legs:
        await store.save_queue_leg(one)
    for state, at in ((AgentState.AVAILABLE, t), (AgentState.RINGING, t + 15), (AgentState.ON_CALL, t + 20),
                      (AgentState.WRAP_UP, t + 120), (AgentState.AVAILABLE, t + 140)):
        await store.record_agent_state(AgentId("1001"), state, at)


async def test_a_day_report_from_the_store(store: Store) -> None:
    await seed(store)
    start, end = MIDNIGHT, MIDNIGHT + 86400
    cfg = config()
    spec = report_spec(cfg, start=start, end=end, period=Period.MIN30, now=end + 3600)
    report = await build_report(store, spec, "queues")
    total = next(r for r in report.rows if r["group"] == "sales" and r["interval"] == "total")
    f = total["figures"]
    assert (f["offered"], f["answered"], f["abandoned"], f["abandoned_short"]) == (5, 3, 2, 1)
    assert f["service_level"] == pytest.approx(2 / 4)  # 20 s met (<=), 25 s missed, 5 s met; abandon > T counts
    assert f["asa_s"] == pytest.approx(50 / 3) and f["longest_wait_s"] == 40.0
    assert f["aht_s"] == pytest.approx((120 + 200 + 50) / 3)
    assert f["abandon_rate"] == pytest.approx(1 / 4) and f["answer_rate"] == pytest.approx(3 / 4)
    assert (f["contacts"], f["repeat_contacts"]) == (2, 1)
    assert f["avg_ring_s"] == 5.0 and f["answered_within_rings"] == 1.0
    assert total["targets"]["service_level"]["gap"] == pytest.approx(0.5 - 0.8)
    assert total["targets"]["aht_s"]["met"] is True and total["targets"]["abandon_rate"]["met"] is False
    nine = next(r for r in report.rows if r["group"] == "sales" and r["interval"] == "2026-12-07T09:00+08:00")
    assert nine["figures"]["offered"] == 4
    agents = await build_report(store, spec, "agents")
    team = next(r for r in agents.rows if r["group"] == "team:red" and r["interval"] == "total")
    assert team["figures"]["state_s"]["on_call"] == 100.0 and team["figures"]["answered"] == 3


class _Clock:
    def __init__(self, wall: float) -> None:
        self.mono = 1000.0
        self.offset = wall - self.mono

    def node_clock(self) -> NodeClock:
        return NodeClock(monotonic=lambda: self.mono, wall=lambda: self.mono + self.offset)


async def test_today_is_rebuilt_at_start_up_and_reset_at_midnight(store: Store) -> None:
    await seed(store)
    cfg = config()
    clock = _Clock(MIDNIGHT + 86400 - 120)  # restart at 23:58 local
    node = clock.node_clock()
    router = Router([queue_config(q) for q in cfg.queues], calendar=SiteCalendar(offset=node.offset, zone=ZONE))
    assert await restore_live_stats(router, store, cfg, node) == 5
    snap = router.queue_stats(QueueId("sales"), clock.mono)
    assert (snap.today.answered, snap.today.abandoned, snap.today.abandoned_short) == (3, 2, 1)
    assert snap.today_service_level == pytest.approx(2 / 4) and snap.asa_s == pytest.approx(50 / 3)
    router.handle(LoginAgent(agent=agent_config(cfg.agents[0], cfg.queues), ready=True), clock.mono)
    out = router.handle(Enqueue(call_id=CallId("new"), queue_id=QueueId("sales")), clock.mono)
    offer = next(o for o in out if type(o).__name__ == "OfferCall")
    clock.mono += 30
    router.handle(Answer(offer_id=offer.offer_id), clock.mono)  # type: ignore[attr-defined]
    router.handle(Hangup(call_id=CallId("new")), clock.mono)
    snap = router.queue_stats(QueueId("sales"), clock.mono)
    assert (snap.today.answered, snap.today.answered_in_t) == (4, 2)
    clock.mono += 120  # 00:00:30 the next day
    snap = router.queue_stats(QueueId("sales"), clock.mono)
    assert snap.today.answered == 0 and snap.today_service_level is None
