"""The one-expression checks of ``CallRecord`` and ``QueueLeg`` (the common case, for the call path) accept
exactly the records the step-by-step checks accept, and a refused record raises the step-by-step error.

Every combination of the time fields over values absent, equal, before, after, negative, NaN and infinite; every
outcome with and without its times, reason and agent; bad durations, offers, ids, caller numbers and serials.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import fields
from typing import Any

import pytest

from acd import AgentId, CallId, ExitReason, QueueId
from cti.store import CallRecord, InvalidRecordError, LegId, LegOutcome, QueueLeg

T0 = 1.8e9
# Every time field takes each of these in turn: absent, at, before and after the others, and not a time at all.
TIMES = (None, T0, T0 + 1.0, T0 + 2.0, math.nan, math.inf)  # T0 is before T0 + 1: the start times below
NUMBERS = (None, "100", "+33123456789", "12a", "", "+" + "1" * 40)
SERIALS = (None, "20261207-bench-0001", "20261307-bench-0001", "2026-bench-1", "20261207-bench-0000")


def _unchecked(kind: type[Any], values: dict[str, Any]) -> Any:
    """An instance of ``kind`` holding ``values`` (the defaults elsewhere), built without its checks."""
    record = object.__new__(kind)
    for spec in fields(kind):
        default = spec.default_factory() if callable(spec.default_factory) else spec.default
        object.__setattr__(record, spec.name, values.get(spec.name, default))
    return record


def _outcome(build: Any, values: dict[str, Any]) -> str | None:
    try:
        build(values)
    except InvalidRecordError as exc:
        return str(exc)
    return None


def _agree(kind: type[Any], values: dict[str, Any]) -> None:
    fast = _outcome(lambda v: kind(**v), values)
    slow = _outcome(lambda v: _unchecked(kind, v)._check(), values)
    assert fast == slow


def test_call_record_fast_check_is_the_full_check() -> None:
    for arrived, ivr, left, queued, answered, ended in itertools.product((T0 + 1.0, -1.0), *[TIMES] * 5):
        _agree(CallRecord, dict(call_id=CallId("c1"), node="n", t_arrived=arrived, t_ivr_answered=ivr,
                                t_ivr_left=left, t_queued=queued, t_answered=answered, t_ended=ended))
    for call_id, node, number, serial in itertools.product(("c1", ""), ("n", ""), NUMBERS, SERIALS):
        for ended in (None, T0 - 1.0):
            _agree(CallRecord, dict(call_id=CallId(call_id), node=node, t_arrived=T0, t_ended=ended,
                                    caller_number=number, recording_serial=serial))


def test_queue_leg_fast_check_is_the_full_check() -> None:
    answered = dict(outcome=LegOutcome.ANSWERED, agent_id=AgentId("3001"))
    for entered, answer, abandon, flowout, end in itertools.product((T0 + 1.0, math.inf), *[TIMES] * 4):
        for outcome, reason, agent in itertools.product(LegOutcome, (None, ExitReason.MAX_WAIT), (None, "3001")):
            _agree(QueueLeg, dict(leg_id=LegId("l"), call_id=CallId("c1"), queue_id=QueueId("load"),
                                  t_enter_queue=entered, outcome=outcome, t_answer=answer, t_abandon=abandon,
                                  t_flowout=flowout, t_end=end, flowout_reason=reason, agent_id=agent))
    for talk, hold, acw, offers in itertools.product(*[(0.0, 1.5, -0.5, math.nan, math.inf)] * 3, (0, 2, -1)):
        _agree(QueueLeg, dict(leg_id=LegId("l"), call_id=CallId("c1"), queue_id=QueueId("load"), t_enter_queue=T0,
                              t_answer=T0 + 1, t_end=T0 + 2, talk_s=talk, hold_s=hold, acw_s=acw, offers=offers,
                              **answered))
    for ids, number, serial in itertools.product((("l", "c1", "q"), ("", "c1", "q"), ("l", "", "q"), ("l", "c1", "")),
                                                 NUMBERS, SERIALS):
        _agree(QueueLeg, dict(leg_id=LegId(ids[0]), call_id=CallId(ids[1]), queue_id=QueueId(ids[2]),
                              t_enter_queue=T0, caller_number=number, recording_serial=serial))


def test_a_value_of_the_wrong_type_fails_as_the_full_check_says() -> None:
    with pytest.raises(TypeError):
        CallRecord(call_id=CallId("c1"), node="n", t_arrived="soon")  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="t_answer"):
        QueueLeg(leg_id=LegId("l"), call_id=CallId("c1"), queue_id=QueueId("q"), t_enter_queue=T0,
                 outcome=LegOutcome.ANSWERED, agent_id=AgentId("a"))
