"""A synthetic day of answered calls for the sampling tests (site zone Asia/Shanghai, 2026-06-03).

``EXPECTED`` is the brief's example rule worked by hand: each agent's 2nd call answered at or after 11:00 local time
with talk over 200 s.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from acd import AgentId, CallId, QueueId
from cti.store import LegId, LegOutcome, QueueLeg, RecordingSerial

ZONE = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 6, 3)

# (agent, local answer time, talk_s) in answer order; serials are numbered in this order
CALLS: list[tuple[str, str, float]] = [
    ("1001", "09:05", 400.0),  # before 11:00
    ("1001", "10:59", 500.0),  # before 11:00
    ("1001", "11:00", 250.0),  # 1st eligible (11:00 counts: >=)
    ("1001", "11:30", 120.0),  # too short
    ("1001", "13:10", 200.0),  # not over 200 s
    ("1001", "14:00", 201.0),  # 2nd eligible  <- sampled
    ("1001", "16:45", 900.0),  # 3rd eligible
    ("1002", "11:15", 300.0),  # 1st eligible
    ("1002", "12:00", 90.0),
    ("1002", "12:20", 210.0),  # 2nd eligible  <- sampled
    ("1003", "15:00", 600.0),  # only one eligible -> insufficient
    ("1003", "09:00", 700.0),
    ("1004", "10:00", 800.0),  # none eligible -> insufficient
]

EXAMPLE_RULE = {
    "rule_id": "QA-2026-06-03-01",
    "version": 1,
    "title": "each agent's 2nd call after 11:00 lasting over 200 s",
    "period": {"start": "2026-06-03", "end": "2026-06-03", "tz": "Asia/Shanghai"},
    "scope": {"agents": "*", "queues": "*", "direction": "inbound"},
    "filter": {"all": [{"field": "answer_local_time", "op": ">=", "value": "11:00"},
                       {"field": "talk_s", "op": ">", "value": 200}]},
    "partition_by": ["agent_id"],
    "order_by": [{"field": "t_answer", "dir": "asc"}, {"field": "recording_serial", "dir": "asc"}],
    "select": {"method": "nth", "n": 2},
}


def serial(i: int) -> str:
    return f"{DAY:%Y%m%d}-qa-{i:04d}"


EXPECTED = {"1001": serial(6), "1002": serial(10), "1003": None, "1004": None}


def at(local: str, day: dt.date = DAY) -> float:
    hh, mm = (int(x) for x in local.split(":"))
    return dt.datetime.combine(day, dt.time(hh, mm), ZONE).timestamp()


def legs() -> list[QueueLeg]:
    out = []
    for i, (agent, local, talk) in enumerate(CALLS, start=1):
        answer = at(local)
        out.append(QueueLeg(leg_id=LegId(f"leg-{i}"), call_id=CallId(f"call-{i}"), queue_id=QueueId("sales"),
                            t_enter_queue=answer - 12.0, outcome=LegOutcome.ANSWERED, skills=("sales",),
                            t_answer=answer, t_end=answer + talk, agent_id=AgentId(agent), talk_s=talk,
                            recording_serial=RecordingSerial(serial(i))))
    # an abandoned call and an unrecorded one are never candidates
    out.append(QueueLeg(leg_id=LegId("leg-ab"), call_id=CallId("call-ab"), queue_id=QueueId("sales"),
                        t_enter_queue=at("12:00"), outcome=LegOutcome.ABANDONED, t_abandon=at("12:01")))
    out.append(QueueLeg(leg_id=LegId("leg-norec"), call_id=CallId("call-norec"), queue_id=QueueId("sales"),
                        t_enter_queue=at("11:01"), outcome=LegOutcome.ANSWERED, t_answer=at("11:02"),
                        agent_id=AgentId("1003"), talk_s=999.0))
    return out
