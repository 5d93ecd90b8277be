"""Business-hour calendars and time-of-day conditions: midnight, holidays, DST (zoneinfo)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ivr.conditions import is_open
from ivr.engine import Session
from ivr.events import EnqueueCall
from tests.ivr.helpers import FakeCall, flows

FLOWS = """
calendars:
  office:
    timezone: Europe/Paris
    hours:
      weekdays: ["09:00-12:00", "13:00-17:00"]
      fri: ["22:00-24:00"]
      sat: ["00:00-02:00"]
    holidays: [2026-12-25, "2027-01-01"]
flows:
  main:
    start: check
    nodes:
      check:
        type: branch
        cases:
          - when: {business_hours: office}
            goto: open
          - when: {time_of_day: {from: "20:00", to: "06:00", timezone: America/New_York}}
            goto: night
        default: closed
      open: {type: queue, queue: open}
      night: {type: queue, queue: night}
      closed: {type: queue, queue: closed}
"""


def utc(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


def route(now: float) -> str:
    c = FakeCall(Session(flows(FLOWS), "main", caller="1"), now=now)
    out = c.start()
    assert len(out) == 1 and isinstance(out[0], EnqueueCall)
    return out[0].queue


def office_open(now: float) -> bool:
    return is_open(flows(FLOWS).calendars["office"], now)  # type: ignore[index]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (utc(2026, 11, 25, 8, 0), True),  # Wed 09:00 Paris (UTC+1): opening minute
        (utc(2026, 11, 25, 7, 59, 59), False),  # one second before
        (utc(2026, 11, 25, 11, 30), False),  # lunch break 12:30
        (utc(2026, 11, 25, 15, 59), True),  # 16:59
        (utc(2026, 11, 25, 16, 0), False),  # 17:00: end is exclusive
        (utc(2026, 11, 28, 10, 0), False),  # Saturday late morning
    ],
)
def test_weekday_hours(when: float, expected: bool) -> None:
    assert office_open(when) is expected


def test_night_shift_across_midnight_fri_to_sat() -> None:
    assert office_open(utc(2026, 11, 27, 22, 59, 59))  # Fri 23:59:59 local
    assert office_open(utc(2026, 11, 27, 23, 0))  # Sat 00:00 local: Saturday's interval
    assert office_open(utc(2026, 11, 28, 0, 59))  # Sat 01:59
    assert not office_open(utc(2026, 11, 28, 1, 0))  # Sat 02:00
    assert not office_open(utc(2026, 11, 25, 23, 0))  # Thu 00:00: no night hours on Thursday


def test_holidays_are_closed_all_day_in_local_time() -> None:
    assert not office_open(utc(2026, 12, 25, 9, 0))  # Friday Christmas 10:00 Paris
    assert office_open(utc(2026, 12, 24, 9, 0))  # the day before
    # Friday 2027-01-01 is a holiday; 23:30 UTC on 2026-12-31 is already 00:30 on 1 Jan in Paris
    assert not office_open(utc(2026, 12, 31, 23, 30))
    # ... and 22:30 UTC is Thursday 23:30 local, outside the weekday hours
    assert not office_open(utc(2026, 12, 31, 22, 30))


def test_dst_spring_forward_keeps_local_opening_time() -> None:
    # Paris moves to UTC+2 on Sunday 2026-03-29; Monday 30 March opens at 09:00 CEST = 07:00 UTC
    assert office_open(utc(2026, 3, 30, 7, 0))
    assert not office_open(utc(2026, 3, 30, 6, 59))
    # the Friday before (UTC+1), 07:00 UTC is only 08:00 local: closed
    assert not office_open(utc(2026, 3, 27, 7, 0))
    assert office_open(utc(2026, 3, 27, 8, 0))


def test_dst_fall_back_keeps_local_closing_time() -> None:
    # Paris back to UTC+1 on Sunday 2026-10-25; Friday 23 Oct closes at 17:00 CEST = 15:00 UTC
    assert not office_open(utc(2026, 10, 23, 15, 0))
    assert office_open(utc(2026, 10, 26, 15, 30))  # Monday 16:30 CET


def test_branch_uses_calendar_then_time_of_day() -> None:
    assert route(utc(2026, 11, 25, 10, 0)) == "open"
    # Wednesday 23:00 UTC = 18:00 in New York: not night yet
    assert route(utc(2026, 11, 25, 23, 0)) == "closed"
    # 02:00 UTC Thursday = 21:00 New York and 03:00 Paris (closed): night
    assert route(utc(2026, 11, 26, 2, 0)) == "night"
    # 11:30 UTC = 06:30 New York, 12:30 Paris lunch: neither
    assert route(utc(2026, 11, 26, 11, 30)) == "closed"


def test_time_of_day_follows_new_york_dst() -> None:
    # New York springs forward on 2026-03-08: 20:00 EDT = 00:00 UTC next day
    assert route(utc(2026, 3, 10, 0, 0)) == "night"
    assert route(utc(2026, 3, 9, 23, 59)) == "closed"  # 19:59 EDT (and 00:59 Paris Tue: closed)
