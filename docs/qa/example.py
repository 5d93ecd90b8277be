"""The worked example of docs/qa.md: a day of answered calls in a new SQLite database, the rule published the day
before (with the seed commitment of a seed the author keeps) and closed the day after, with a clock stepped by hand.

    python docs/qa/example.py /tmp/qa-example.sqlite3 "correct horse battery staple"

Then anyone with the file runs ``cti qa verify QA-2026-06-03-01 --db /tmp/qa-example.sqlite3``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from acd import AgentId, CallId, QueueId
from cti.logging import configure_logging
from cti.qa import commitment
from cti.qa.service import QaService
from cti.store import LegId, LegOutcome, QueueLeg, RecordingSerial, open_store

ZONE = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 6, 3)
HERE = Path(__file__).resolve().parent
# (agent, local answer time, talk seconds), in answer order
CALLS = [("1001", "09:05", 400), ("1001", "10:59", 500), ("1001", "11:00", 250), ("1001", "11:30", 120),
         ("1001", "13:10", 200), ("1001", "14:00", 201), ("1001", "16:45", 900), ("1002", "11:15", 300),
         ("1002", "12:00", 90), ("1002", "12:20", 210), ("1003", "09:00", 700), ("1003", "15:00", 600),
         ("1004", "10:00", 800)]


def at(local: str, day: dt.date = DAY) -> float:
    return dt.datetime.combine(day, dt.time.fromisoformat(local), ZONE).timestamp()


async def main(path: str, seed: str) -> None:
    configure_logging("warning")
    store = await open_store(path)
    now = [at("09:00", DAY - dt.timedelta(days=1))]
    qa = QaService(store, zone="Asia/Shanghai", clock=lambda: now[0])
    try:
        rule = json.loads((HERE / "rule.json").read_text())
        published = await qa.publish_rule(rule, actor="operator", seed_commitment=commitment(seed))
        print("published", published["rule_id"], "commitment", published["seed_commitment"])
        for i, (agent, local, talk) in enumerate(CALLS, start=1):
            answer = at(local)
            await store.save_queue_leg(QueueLeg(
                leg_id=LegId(f"leg-{i}"), call_id=CallId(f"call-{i}"), queue_id=QueueId("sales"),
                t_enter_queue=answer - 12, outcome=LegOutcome.ANSWERED, t_answer=answer, t_end=answer + talk,
                agent_id=AgentId(agent), talk_s=float(talk), recording_serial=RecordingSerial(f"20260603-s1-{i:04d}")))
        now[0] = at("00:10", DAY + dt.timedelta(days=1))
        closed = await qa.close_rule(rule["rule_id"], actor="operator", seed=seed)
        print("closed; seed", closed["seed"], "digest", closed["selection_digest"])
        for item in closed["samples"]:
            print(f"  {item['agent_id']}  {item['recording_serial'] or '(no sample)':18}  {item['reason']:20}  "
                  f"eligible {item['eligible']}")
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
