"""Report worker processes: a job over its time limit kills its worker and the next job gets a new one; a worker
that died while idle is replaced; a job the worker cannot do answers an error, and the worker goes on."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cti.reports import Period, ReportSpec, local_day_bounds
from cti.reports.work import ReportJob
from cti.reports.worker import ReportWorkers
from cti.store import open_store

ZONE = ZoneInfo("UTC")


async def test_timeouts_dead_workers_and_failed_jobs(tmp_path: Path) -> None:
    target = str(tmp_path / "cti.sqlite3")
    await (await open_store(target)).close()
    start, end = local_day_bounds(dt.date(2026, 12, 5), ZONE)
    job = ReportJob(target=target, kind="patience", spec=ReportSpec(start=start, end=end, period=Period.DAY,
                                                                     zone=ZONE, now=end))
    workers = ReportWorkers(size=1)
    try:
        with pytest.raises(TimeoutError):
            await workers.run(job, 0.001)  # not even started: nothing left running
        out = await workers.run(job, 60.0)
        assert out.status == 200 and json.loads(out.body)["patience_s"] is None
        (first,) = workers._idle
        first.kill()
        await asyncio.wait_for(first.process.wait(), 10)
        assert (await workers.run(job, 60.0)).status == 200  # a new worker
        (second,) = workers._idle
        assert second is not first
        broken = await workers.run(ReportJob(target=str(tmp_path), kind="patience",  # a folder: no database
                                             spec=job.spec), 60.0)
        assert broken.status == 500 and json.loads(broken.body)["error"]["code"] == "reports.failed"
        assert workers._idle == [second]  # the worker survived the failed job
    finally:
        await workers.close()
    assert second.process.returncode is not None
