"""Parse the ``lists`` and ``calendars`` sections of a flow file.

Lists are named sets of caller numbers (quoted strings). Calendars hold opening hours per
weekday (``mon``..``sun``, ``weekdays``, ``weekend``, ``daily``) as ``HH:MM-HH:MM`` local
intervals (``24:00`` allowed as an end), a tz-database time zone and local holiday dates.
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.yamlsource import PathKey
from ivr.fields import Fields
from ivr.flow import Calendar, CalendarName, ListName

if TYPE_CHECKING:
    from ivr.parse import Parsed

_DAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
_DAY_GROUPS = {"weekdays": (1, 2, 3, 4, 5), "weekend": (6, 7), "daily": (1, 2, 3, 4, 5, 6, 7)}
_INTERVAL_RE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def parse_list(p: Parsed, name: str, data: Any) -> None:
    path: PathKey = ("lists", name)
    if not isinstance(data, list):
        p.problems.append(p.src.problem(path, f"list '{name}' must be a list of quoted numbers"))
        return
    numbers: set[str] = set()
    for index, item in enumerate(data):
        if not isinstance(item, str):
            p.problems.append(
                p.src.problem((*path, index), f"list '{name}': entry {item!r} must be a quoted string "
                              "(YAML reads unquoted digits as a number and drops leading zeros)")
            )
        else:
            numbers.add(item)
    p.lists[ListName(name)] = frozenset(numbers)


def parse_zone(f: Fields, key: str, value: str | None) -> str:
    if value is None:
        return "UTC"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        f.error((key,), f"{f.what}: unknown time zone {value!r}")
        return "UTC"
    return value


def parse_time(text: str, *, allow_24: bool) -> time | None:
    """``HH:MM`` (``24:00`` allowed as an end: returned as ``None``). Raises ValueError."""
    hours, minutes = (int(part) for part in text.split(":"))
    if allow_24 and (hours, minutes) == (24, 0):
        return None
    return time(hours, minutes)


def parse_calendar(p: Parsed, name: str, data: Any) -> None:
    f = Fields(p.src, p.problems, ("calendars", name), data, f"calendar '{name}'")
    tz = parse_zone(f, "timezone", f.text("timezone"))
    hours: dict[int, list[tuple[time, time | None]]] = {}
    for day, intervals in f.mapping("hours", required=True).items():
        days = (_DAYS[day],) if day in _DAYS else _DAY_GROUPS.get(str(day))
        if days is None:
            f.error(("hours", day), f"{f.what}: unknown day {day!r} (mon..sun, weekdays, weekend, daily)")
            continue
        if not isinstance(intervals, list):
            intervals = [intervals]
        for index, interval in enumerate(intervals):
            parsed = _interval(interval)
            if parsed is None:
                f.error(("hours", day, index), f"{f.what}: interval {interval!r} must be 'HH:MM-HH:MM' with "
                        "start before end (split a night shift at 24:00)")
                continue
            for weekday in days:
                hours.setdefault(weekday, []).append(parsed)
    holidays: set[date] = set()
    raw_holidays = f.raw("holidays", [])
    for index, item in enumerate(raw_holidays if isinstance(raw_holidays, list) else [raw_holidays]):
        try:
            holidays.add(item if isinstance(item, date) else date.fromisoformat(str(item)))
        except ValueError:
            f.error(("holidays", index), f"{f.what}: holiday {item!r} must be a date YYYY-MM-DD")
    f.finish()
    p.calendars[CalendarName(name)] = Calendar(
        name=CalendarName(name),
        timezone=tz,
        hours={day: tuple(spans) for day, spans in hours.items()},
        holidays=frozenset(holidays),
    )


def _interval(raw: Any) -> tuple[time, time | None] | None:
    match = _INTERVAL_RE.match(str(raw)) if isinstance(raw, str) else None
    if match is None:
        return None
    try:
        start = parse_time(f"{match.group(1)}:{match.group(2)}", allow_24=False)
        end = parse_time(f"{match.group(3)}:{match.group(4)}", allow_24=True)
    except ValueError:
        return None
    if start is None or (end is not None and end <= start):
        return None
    return start, end
