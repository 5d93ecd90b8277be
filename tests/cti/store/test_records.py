"""Record validation and serial numbers: pure, no database."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from acd import AgentId, CallId, ExitReason, QueueId
from cti.store import (
    CallRecord,
    InvalidRecordError,
    LegId,
    LegOutcome,
    QueueLeg,
    Recording,
    RecordingSerial,
    format_serial,
    parse_serial,
)


def leg(**changes: object) -> QueueLeg:
    fields: dict[str, object] = {
        "leg_id": LegId("L1"), "call_id": CallId("c1"), "queue_id": QueueId("sales"), "t_enter_queue": 100.0,
    }  # fmt: skip
    fields.update(changes)
    return QueueLeg(**fields)  # type: ignore[arg-type]


def test_serial_format_and_parse_round_trip() -> None:
    serial = format_serial("par1", dt.date(2026, 5, 9), 42)
    assert serial == "20260509-par1-0042"
    parts = parse_serial(serial)
    assert (parts.day, parts.site, parts.seq) == (dt.date(2026, 5, 9), "par1", 42)
    assert format_serial("x", dt.date(2026, 1, 1), 123456) == "20260101-x-123456"


@pytest.mark.parametrize(
    "text", ["", "20260509-par1-42", "20261309-par1-0001", "20260509-Par1-0001", "20260509-a-b-0001",
             "20260509-par1-0000", "2026059-par1-0001"],
)  # fmt: skip
def test_parse_serial_refuses_malformed(text: str) -> None:
    with pytest.raises(InvalidRecordError):
        parse_serial(text)


@pytest.mark.parametrize("site", ["", "with-hyphen", "UPPER", "x" * 17])
def test_format_serial_refuses_bad_site(site: str) -> None:
    with pytest.raises(InvalidRecordError):
        format_serial(site, dt.date(2026, 5, 9), 1)


def test_leg_outcome_rules() -> None:
    assert leg().wait_s is None
    assert leg(outcome=LegOutcome.ANSWERED, t_answer=112.5, agent_id=AgentId("1001")).wait_s == 12.5
    assert leg(outcome=LegOutcome.ABANDONED, t_abandon=103.0).wait_s == 3.0
    flowout = leg(outcome=LegOutcome.FLOWOUT, t_flowout=160.0, flowout_reason=ExitReason.MAX_WAIT)
    assert flowout.wait_s == 60.0


@pytest.mark.parametrize(
    "changes",
    [
        {"outcome": LegOutcome.ANSWERED, "t_answer": 110.0},  # no agent
        {"outcome": LegOutcome.ANSWERED, "agent_id": "1001"},  # no t_answer
        {"outcome": LegOutcome.ABANDONED, "t_abandon": 110.0, "t_answer": 105.0, "agent_id": "1001"},
        {"outcome": LegOutcome.FLOWOUT, "t_flowout": 110.0},  # no reason
        {"outcome": LegOutcome.IN_QUEUE, "flowout_reason": ExitReason.MAX_WAIT},
        {"outcome": LegOutcome.IN_QUEUE, "t_abandon": 110.0},
        {"outcome": LegOutcome.ABANDONED, "t_abandon": 99.0},  # before entering
        {"outcome": LegOutcome.ABANDONED, "t_abandon": 110.0, "t_end": 120.0},
        {"talk_s": -1.0},
        {"hold_s": math.nan},
        {"offers": -1},
        {"caller_number": "0601 02 03 04"},
        {"t_enter_queue": math.inf},
    ],
)
def test_leg_refuses_inconsistent_fields(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidRecordError):
        leg(**changes)


def test_call_record_checks_times_and_number() -> None:
    CallRecord(call_id=CallId("c"), node="n", t_arrived=10.0, caller_number="+33612345678", t_ended=20.0)
    with pytest.raises(InvalidRecordError):
        CallRecord(call_id=CallId("c"), node="n", t_arrived=10.0, t_answered=5.0)
    with pytest.raises(InvalidRecordError):
        CallRecord(call_id=CallId("c"), node="n", t_arrived=10.0, t_answered=30.0, t_ended=20.0)
    with pytest.raises(InvalidRecordError):
        CallRecord(call_id=CallId("c"), node="n", t_arrived=10.0, caller_number="anonymous")
    with pytest.raises(InvalidRecordError):
        CallRecord(call_id=CallId(""), node="n", t_arrived=10.0)


def test_recording_checks_serial_and_times() -> None:
    with pytest.raises(InvalidRecordError):
        Recording(serial=RecordingSerial("nope"), call_id=CallId("c"), path="/r.wav", started=1.0)
    with pytest.raises(InvalidRecordError):
        Recording(serial=RecordingSerial("20260509-a-0001"), call_id=CallId("c"), path="/r.wav", started=5.0,
                  ended=4.0)  # fmt: skip
