"""Report jobs in a real worker process on both backends: ``cti kpi verify --date`` for a past day (its legs
replayed through the live statistics agree with its report, except a call still queued at midnight), the
IVR figures from the CDRs and the patience estimate from the legs."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from config.schema import ServerConfig
from cti.ids import CallId
from cti.node.routing import queue_config
from cti.reports import Period, local_day_bounds
from cti.reports.fetch import report_spec
from cti.reports.live import live_differences
from cti.reports.work import ReportJob
from cti.reports.worker import ReportWorkers
from cti.store import CallRecord, HangupParty, Store
from tests.cti.reports.legs import leg

ZONE = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 12, 5)
START, END = local_day_bounds(DAY, ZONE)
NINE = START + 9 * 3600
CONFIG = ServerConfig.model_validate({"node": {"timezone": "Asia/Shanghai"},
                                      "queues": [{"name": "sales"}, {"name": "support"}]})


async def _run(workers: ReportWorkers, target: str, kind: str, start: float = START, end: float = END,
               **options: Any) -> Any:
    spec = report_spec(CONFIG, start=start, end=end, period=Period.DAY, now=END + 5 * 86400)
    out = await workers.run(ReportJob(target=target, kind=kind, spec=spec, options=options), 60.0)
    assert out.status == 200, out.body
    return json.loads(out.body)


async def test_a_past_day_replayed_agrees_with_its_report_and_ivr_and_patience(store: Store, target: str) -> None:
    for one in (leg("sales", at=NINE, answered=20.0, agent="1001", talk=30.0),  # exactly T: met
                leg("sales", at=NINE + 60, answered=21.0, agent="1001", talk=30.0),
                leg("sales", at=NINE + 120, abandoned=2.0), leg("sales", at=NINE + 180, abandoned=45.0),
                leg("sales", at=NINE + 240, flowout=100.0), leg("sales", at=START - 20, answered=40.0),
                leg("support", at=NINE, answered=5.0), leg("support", at=END - 15, answered=30.0)):  # across midnight
        await store.save_queue_leg(one)
    for n, (queued, by, reason) in enumerate([(False, HangupParty.CALLER, "caller-hangup"),
                                              (False, HangupParty.SYSTEM, "ivr-ended"),
                                              (True, HangupParty.AGENT, "agent-hangup")]):
        await store.save_call(CallRecord(call_id=CallId(f"i{n}"), node="n", t_arrived=NINE, dialled_number="100",
                                         t_ivr_answered=NINE + 1, t_queued=NINE + 9 if queued else None,
                                         t_ended=NINE + 20, hangup_by=by, end_reason=reason))
    workers = ReportWorkers()
    try:
        replayed = await _run(workers, target, "replay", queues=tuple(queue_config(q) for q in CONFIG.queues))
        report = await _run(workers, target, "queues")
        ivr = await _run(workers, target, "ivr", flows={"100": "main"})
        patience = await _run(workers, target, "patience", queue="sales")
    finally:
        await workers.close()
    queues = {q["queue"]: q for q in replayed["queues"]}
    assert replayed["date"] == "2026-12-05" and queues["sales"]["queued_at_day_end"] == 0
    assert queues["sales"]["offered"] == 5  # 1 met of 2 answered and 1 abandoned after T:
    assert queues["sales"]["service_level"] == pytest.approx(1 / 3)
    differences = live_differences(replayed["queues"], report["rows"])
    # Only the support call still queued at midnight: the live day never counted it, the report does.
    assert queues["support"]["queued_at_day_end"] == 1
    assert {(d.queue, d.figure) for d in differences} == {("support", "offered"), ("support", "answered"),
                                                          ("support", "service_level"), ("support", "asa_seconds")}
    total = next(r for r in ivr["rows"] if r["group"] == "100" and r["interval"] == "total")
    assert total["flow"] == "main"
    assert (total["figures"]["ivr_abandoned"], total["figures"]["ivr_contained"],
            total["figures"]["to_queue"]) == (1, 1, 1)
    assert (patience["abandoned"], patience["legs"]) == (2, 5)
    assert patience["patience_s"] == pytest.approx((20 + 21 + 2 + 45 + 100) / 2)
