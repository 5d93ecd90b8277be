"""Evaluation of flow conditions and business-hour calendars (pure; wall time passed in).

``now`` is POSIX time (seconds since the epoch, UTC). Local time comes from :mod:`zoneinfo`,
so daylight-saving changes follow the tz database: 09:00 local stays 09:00 local on the day
the clocks move, and an hour that does not exist locally simply never matches.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time
from functools import lru_cache
from typing import assert_never
from zoneinfo import ZoneInfo

from ivr.flow import (
    AllOf,
    AnyOf,
    BusinessHours,
    Calendar,
    Compare,
    CompareOp,
    Condition,
    FlowSet,
    InList,
    Not,
    TimeOfDay,
    Value,
)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """A cached :class:`ZoneInfo` (the loader has already checked that the name exists)."""
    return ZoneInfo(name)


def local_time(now: float, timezone: str) -> datetime:
    return datetime.fromtimestamp(now, tz=zone(timezone))


def _in_interval(moment: time, start: time, end: time | None) -> bool:
    """``start <= moment < end``; ``end is None`` means 24:00 (open until midnight)."""
    return start <= moment and (end is None or moment < end)


def is_open(calendar: Calendar, now: float) -> bool:
    """Whether the calendar is open at ``now`` (holidays are closed all day, local date)."""
    local = local_time(now, calendar.timezone)
    if local.date() in calendar.holidays:
        return False
    moment = local.time().replace(tzinfo=None)
    return any(_in_interval(moment, start, end) for start, end in calendar.hours.get(local.isoweekday(), ()))


def _time_of_day(cond: TimeOfDay, now: float) -> bool:
    moment = local_time(now, cond.timezone).time().replace(tzinfo=None)
    if cond.start == cond.end:
        return True
    if cond.start < cond.end:
        return cond.start <= moment < cond.end
    return moment >= cond.start or moment < cond.end


def _compare(cond: Compare, variables: Mapping[str, Value]) -> bool:
    present = cond.var in variables
    if cond.op is CompareOp.EXISTS:
        return present
    if not present:
        return cond.op is CompareOp.NE
    actual = variables[cond.var]
    expected = cond.value
    match cond.op:
        case CompareOp.EQ:
            return actual == expected
        case CompareOp.NE:
            return actual != expected
        case CompareOp.IN:
            return isinstance(expected, tuple) and actual in expected
        case CompareOp.MATCHES:
            return cond.pattern is not None and isinstance(actual, str) and cond.pattern.fullmatch(actual) is not None
        case CompareOp.LT | CompareOp.LE | CompareOp.GT | CompareOp.GE:
            if not isinstance(actual, int) or not isinstance(expected, int):
                return False
            return _ordered(cond.op, actual, expected)
        case _:
            assert_never(cond.op)


def _ordered(op: CompareOp, actual: int, expected: int) -> bool:
    if op is CompareOp.LT:
        return actual < expected
    if op is CompareOp.LE:
        return actual <= expected
    if op is CompareOp.GT:
        return actual > expected
    return actual >= expected


def evaluate(cond: Condition, variables: Mapping[str, Value], flows: FlowSet, now: float) -> bool:
    """Evaluate a validated condition. Never raises for a condition the loader accepted."""
    match cond:
        case Compare():
            return _compare(cond, variables)
        case InList():
            value = variables.get(cond.var)
            return isinstance(value, str) and value in flows.lists.get(cond.list_name, frozenset())
        case BusinessHours():
            calendar = flows.calendars.get(cond.calendar)
            return calendar is not None and is_open(calendar, now)
        case TimeOfDay():
            return _time_of_day(cond, now)
        case AllOf():
            return all(evaluate(c, variables, flows, now) for c in cond.conditions)
        case AnyOf():
            return any(evaluate(c, variables, flows, now) for c in cond.conditions)
        case Not():
            return not evaluate(cond.condition, variables, flows, now)
        case _:
            assert_never(cond)
