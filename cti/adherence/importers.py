"""Schedule files: CSV and iCalendar (RFC 5545, read with the ``icalendar`` library) into schedule entries.

Times in files are the site's local time (config ``node.timezone``) unless the file says otherwise (an iCalendar
``TZID`` or a UTC ``Z`` time); entries come out in UTC epoch seconds. A file is refused as a whole
(:class:`ImportFileError`, every problem with file, line and reason) when any row is bad, any shift overlaps
another shift of the same agent, an activity lies outside the agent's shifts or overlaps another activity:
:func:`check_plan` is the one place these rules live, and the store runs it again against what is already stored.

CSV (``docs/adherence.md``): a header ``agent,date,start,end,activity[,note]``; ``date`` is ``YYYY-MM-DD``,
``start``/``end`` ``HH:MM`` local time (an end at or before the start is the next day: a shift across midnight);
``leave``/``absence`` rows may leave both times empty for the whole day.

iCalendar: one ``VEVENT`` per entry; ``SUMMARY`` (or ``CATEGORIES``) is the activity, ``X-CTI-AGENT`` the agent (or
the ``agent`` given to the importer for a one-agent calendar); a ``DATE`` (all-day) event covers whole local days;
recurring events (``RRULE``/``RDATE``) are refused: export them expanded.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from cti.adherence.model import (
    WORK_ACTIVITIES,
    Activity,
    ApprovedException,
    ImportFileError,
    Problem,
    ScheduleEntry,
    ScheduleError,
)

__all__ = [
    "MAX_FILE_ENTRIES", "Numbered", "check_plan", "parse_approved", "parse_csv", "parse_ical", "parse_schedule_file",
    "parse_state_changes",
]

MAX_FILE_ENTRIES = 100_000
CSV_COLUMNS = ("agent", "date", "start", "end", "activity")
_TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_AGENT_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_ALIASES = {"offline": Activity.OFFLINE_WORK, "offline work": Activity.OFFLINE_WORK,
            "on_queue": Activity.PHONE, "on queue": Activity.PHONE}

Numbered = tuple[int, ScheduleEntry]
"""An entry and the line of the file it came from."""


def _activity(raw: str) -> Activity:
    key = raw.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    try:
        return Activity(key.replace(" ", "_").replace("-", "_"))
    except ValueError:
        known = ", ".join(a.value for a in Activity)
        raise ScheduleError(f"unknown activity {raw.strip()!r} (one of {known})") from None


def _local(day: dt.date, hhmm: str, zone: ZoneInfo, what: str) -> dt.datetime:
    match = _TIME_RE.match(hhmm.strip())
    if match is None:
        raise ScheduleError(f"{what} must be HH:MM, got {hhmm.strip()!r}")
    return dt.datetime.combine(day, dt.time(int(match[1]), int(match[2])), tzinfo=zone)


def _epoch(moment: dt.datetime) -> float:
    return moment.astimezone(dt.UTC).timestamp()


def parse_csv(text: str, source: str, zone: ZoneInfo) -> list[Numbered]:
    """Entries of a CSV schedule file.

    Raises:
        ImportFileError: a row or the header is malformed (every bad row is listed).
    """
    entries, problems = _read_csv(text, source, zone)
    if problems:
        raise ImportFileError(problems)
    return entries


def _read_csv(text: str, source: str, zone: ZoneInfo) -> tuple[list[Numbered], list[Problem]]:
    """The good rows and the problems of the bad ones. Raises: ImportFileError (no usable header)."""
    reader = csv.reader(io.StringIO(text))
    problems: list[Problem] = []
    out: list[Numbered] = []
    header: list[str] | None = None
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [c.strip().lower() for c in row]
            missing = [c for c in CSV_COLUMNS if c not in header]
            if missing:
                raise ImportFileError([Problem(source, line, f"the header lacks {', '.join(missing)} (expected "
                                                             f"{','.join(CSV_COLUMNS)}[,note])")])
            continue
        if len(row) != len(header):
            problems.append(Problem(source, line, f"{len(row)} fields, the header has {len(header)}"))
            continue
        cells = dict(zip(header, (c.strip() for c in row), strict=True))
        try:
            out.append((line, _csv_entry(cells, zone)))
        except ScheduleError as exc:
            problems.append(Problem(source, line, str(exc)))
        if len(out) > MAX_FILE_ENTRIES:
            raise ImportFileError([Problem(source, line, f"more than {MAX_FILE_ENTRIES} entries in one file")])
    if header is None:
        raise ImportFileError([Problem(source, 1, "empty file: no header line")])
    return out, problems


def _csv_entry(cells: dict[str, str], zone: ZoneInfo) -> ScheduleEntry:
    agent = cells["agent"]
    if not _AGENT_RE.match(agent):
        raise ScheduleError(f"agent must be letters, digits, '_', '.', '-', got {agent!r}")
    activity = _activity(cells["activity"])
    try:
        day = dt.date.fromisoformat(cells["date"])
    except ValueError:
        raise ScheduleError(f"date must be YYYY-MM-DD, got {cells['date']!r}") from None
    note = cells.get("note") or None
    if not cells["start"] and not cells["end"]:
        if activity not in (Activity.LEAVE, Activity.ABSENCE):
            raise ScheduleError(f"{activity.value} needs a start and an end (only leave/absence may be all day)")
        start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    else:
        start = _local(day, cells["start"], zone, "start")
        end = _local(day, cells["end"], zone, "end")
        if end <= start:
            end = _local(day + dt.timedelta(days=1), cells["end"], zone, "end")
    return ScheduleEntry(agent_id=agent, start=_epoch(start), end=_epoch(end), activity=activity, note=note)


def _vevent_lines(text: str) -> list[int]:
    return [i for i, raw in enumerate(text.splitlines(), start=1) if raw.strip().upper() == "BEGIN:VEVENT"]


def parse_ical(text: str, source: str, zone: ZoneInfo, agent: str | None = None) -> list[Numbered]:
    """Entries of an iCalendar file (one VEVENT each; see the module docstring).

    Raises:
        ImportFileError: the file does not parse, or an event is unusable (every bad event is listed, at the line
            of its ``BEGIN:VEVENT``).
    """
    entries, problems = _read_ical(text, source, zone, agent)
    if problems:
        raise ImportFileError(problems)
    return entries


def _read_ical(text: str, source: str, zone: ZoneInfo, agent: str | None) -> tuple[list[Numbered], list[Problem]]:
    """The good events and the problems of the bad ones. Raises: ImportFileError (not iCalendar at all)."""
    import icalendar  # imported here: only schedule imports need it

    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise ImportFileError([Problem(source, _bad_line(text), f"not iCalendar: {exc}")]) from exc
    events = list(calendar.walk("VEVENT"))
    lines = _vevent_lines(text)
    problems: list[Problem] = []
    out: list[Numbered] = []
    for index, event in enumerate(events):
        line = lines[index] if index < len(lines) else 1
        try:
            out.append((line, _ical_entry(event, zone, agent)))
        except ScheduleError as exc:
            problems.append(Problem(source, line, str(exc)))
    if not events:
        problems.append(Problem(source, 1, "no VEVENT in the calendar"))
    return out, problems


def _bad_line(text: str) -> int:
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw and not raw[0].isspace() and ":" not in raw:
            return number
    return 1


def _ical_time(value: object, zone: ZoneInfo, what: str) -> tuple[dt.datetime, bool]:
    """An aware datetime and whether it was a DATE (all-day)."""
    if isinstance(value, dt.datetime):
        return (value.replace(tzinfo=zone) if value.tzinfo is None else value), False
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=zone), True
    raise ScheduleError(f"{what} is not a date or date-time")


def _ical_entry(event: Any, zone: ZoneInfo, agent: str | None) -> ScheduleEntry:
    errors = getattr(event, "errors", None)
    if errors:
        name, message = errors[0]
        raise ScheduleError(f"{name}: {message}")
    if event.get("RRULE") is not None or event.get("RDATE") is not None:
        raise ScheduleError("recurring events (RRULE/RDATE) are not supported: export the calendar expanded")
    summary = event.get("SUMMARY") or event.get("CATEGORIES")
    if summary is None:
        raise ScheduleError("no SUMMARY (the activity)")
    if not isinstance(summary, str) and hasattr(summary, "cats"):
        summary = summary.cats[0] if summary.cats else ""
    activity = _activity(str(summary))
    who = str(event.get("X-CTI-AGENT") or agent or "")
    if not who:
        raise ScheduleError("no agent: add X-CTI-AGENT to the event or give the agent for the whole calendar")
    if not _AGENT_RE.match(who):
        raise ScheduleError(f"agent must be letters, digits, '_', '.', '-', got {who!r}")
    start_prop, end_prop = event.get("DTSTART"), event.get("DTEND")
    if start_prop is None:
        raise ScheduleError("no DTSTART")
    start, all_day = _ical_time(start_prop.dt, zone, "DTSTART")
    if end_prop is not None:
        end, _ = _ical_time(end_prop.dt, zone, "DTEND")
    elif event.get("DURATION") is not None:
        end = start + event.get("DURATION").dt
    elif all_day:
        end = start + dt.timedelta(days=1)
    else:
        raise ScheduleError("no DTEND or DURATION")
    if all_day and activity not in (Activity.LEAVE, Activity.ABSENCE):
        raise ScheduleError(f"an all-day {activity.value}: only leave/absence may be all day")
    note = event.get("DESCRIPTION")
    return ScheduleEntry(agent_id=who, start=_epoch(start), end=_epoch(end), activity=activity,
                         note=str(note) if note else None)


def parse_schedule_file(data: bytes, source: str, zone: ZoneInfo, *, agent: str | None = None) -> list[Numbered]:
    """A CSV or iCalendar file (recognised by its content: ``BEGIN:VCALENDAR``), checked with :func:`check_plan`
    (the rows that parsed are checked too, so one refusal lists every problem, by line).

    Raises:
        ImportFileError: the file is malformed or its plan is inconsistent.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError([Problem(source, line, "not UTF-8 text")]) from exc
    if text.lstrip().upper().startswith("BEGIN:VCALENDAR"):
        entries, problems = _read_ical(text, source, zone, agent)
    else:
        entries, problems = _read_csv(text, source, zone)
    problems = sorted(problems + check_plan(entries, source), key=lambda p: p.line)
    if problems:
        raise ImportFileError(problems)
    return entries


def _fmt(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _running_ends(spans: Sequence[tuple[float, float, int]]) -> list[tuple[float, int]]:
    """For each prefix of time-sorted spans, the latest end so far and the line of the span that has it."""
    out: list[tuple[float, int]] = []
    best: tuple[float, int] = (float("-inf"), 0)
    for _start, end, line in spans:
        if end > best[0]:
            best = (end, line)
        out.append(best)
    return out


def check_plan(entries: Sequence[Numbered], source: str, existing: Iterable[ScheduleEntry] = ()) -> list[Problem]:
    """The consistency rules of a plan: shifts of one agent never overlap; every work activity lies inside one
    shift of its agent; activities of one agent never overlap each other (leave and absence may cover anything).
    ``existing`` entries (already stored, line 0) take part in the checks but are never reported themselves."""
    by_agent: dict[str, list[Numbered]] = defaultdict(list)
    for item in [(0, e) for e in existing] + list(entries):
        by_agent[item[1].agent_id].append(item)
    problems: list[Problem] = []
    for agent, items in sorted(by_agent.items()):
        shifts = sorted((e.start, e.end, line) for line, e in items if e.activity is Activity.SHIFT)
        for (b0, _b1, l1), (a1, l0) in zip(shifts[1:], _running_ends(shifts), strict=False):
            if b0 < a1 and max(l0, l1):
                other = f"line {min(l0, l1)}" if min(l0, l1) else "a stored shift"
                problems.append(Problem(source, max(l0, l1), f"shift of {agent} from {_fmt(b0)} overlaps {other} "
                                                             f"(until {_fmt(a1)})"))
        work = sorted((e.start, e.end, line, e.activity) for line, e in items if e.activity in WORK_ACTIVITIES)
        for start, end, line, activity in work:
            if line and not any(s0 <= start and end <= s1 for s0, s1, _ in shifts):
                problems.append(Problem(source, line, f"{activity.value} of {agent} {_fmt(start)}–{_fmt(end)} "
                                                      "is outside the agent's shifts"))
        ends = _running_ends([(w[0], w[1], w[2]) for w in work])
        for (b0, _b1, l1, act1), (a1, l0) in zip(work[1:], ends, strict=False):
            if b0 < a1 and max(l0, l1):
                other = f"line {min(l0, l1)}" if min(l0, l1) else "a stored activity"
                problems.append(Problem(source, max(l0, l1), f"{act1.value} of {agent} from {_fmt(b0)} overlaps "
                                                             f"{other} (until {_fmt(a1)})"))
    return sorted(problems, key=lambda p: p.line)


_STATES = ("logged_out", "available", "reserved", "ringing", "on_call", "held", "wrap_up", "paused")


def _when(raw: str, zone: ZoneInfo, what: str) -> float:
    try:
        moment = dt.datetime.fromisoformat(raw.strip().replace(" ", "T", 1))
    except ValueError:
        raise ScheduleError(f"{what} must be YYYY-MM-DD HH:MM[:SS], got {raw.strip()!r}") from None
    return (moment.replace(tzinfo=zone) if moment.tzinfo is None else moment).timestamp()


def _rows(text: str, source: str, columns: tuple[str, ...]) -> Iterable[tuple[int, dict[str, str]]]:
    """Header-checked CSV rows with their line numbers. Raises: ImportFileError (the header)."""
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    for row in reader:
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [c.strip().lower() for c in row]
            missing = [c for c in columns if c not in header]
            if missing:
                raise ImportFileError([Problem(source, reader.line_num, f"the header lacks {', '.join(missing)}")])
            continue
        if len(row) != len(header):
            raise ImportFileError([Problem(source, reader.line_num, f"{len(row)} fields, the header has "
                                                                     f"{len(header)}")])
        yield reader.line_num, dict(zip(header, (c.strip() for c in row), strict=True))


def parse_state_changes(text: str, source: str, zone: ZoneInfo) -> list[tuple[str, float, str, str | None]]:
    """An agent-state file (``agent,time,state[,reason]``, one row per change, as the agent-state history
    holds them): ``(agent, at, state, reason)`` in file order.

    Raises:
        ImportFileError: a bad row (file, line, reason), or an agent's changes out of time order.
    """
    out: list[tuple[str, float, str, str | None]] = []
    problems: list[Problem] = []
    last: dict[str, float] = {}
    for line, cells in _rows(text, source, ("agent", "time", "state")):
        try:
            at = _when(cells["time"], zone, "time")
            if cells["state"] not in _STATES:
                raise ScheduleError(f"unknown state {cells['state']!r} (one of {', '.join(_STATES)})")
            if at < last.get(cells["agent"], at):
                raise ScheduleError("state changes of one agent must be in time order")
            last[cells["agent"]] = at
            out.append((cells["agent"], at, cells["state"], cells.get("reason") or None))
        except ScheduleError as exc:
            problems.append(Problem(source, line, str(exc)))
    if problems:
        raise ImportFileError(problems)
    return out


def parse_approved(text: str, source: str, zone: ZoneInfo) -> list[ApprovedException]:
    """An approved-exceptions file (``agent,start,end,reason,approved_by[,activity]``).

    Raises:
        ImportFileError: a bad row (file, line, reason).
    """
    out: list[ApprovedException] = []
    problems: list[Problem] = []
    for line, cells in _rows(text, source, ("agent", "start", "end", "reason", "approved_by")):
        try:
            start = _when(cells["start"], zone, "start")
            activity = _activity(cells["activity"]) if cells.get("activity") else None
            out.append(ApprovedException(agent_id=cells["agent"], start=start, end=_when(cells["end"], zone, "end"),
                                         reason=cells["reason"], approved_by=cells["approved_by"], approved_at=start,
                                         activity=activity))
        except ScheduleError as exc:
            problems.append(Problem(source, line, str(exc)))
    if problems:
        raise ImportFileError(problems)
    return out
