"""Schedule files (CSV, iCalendar) and the schedule store, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from cti.adherence import Activity, ApprovedException, ImportFileError, ScheduleEntry, ScheduleError
from cti.adherence.importers import parse_schedule_file
from cti.adherence.store import ScheduleStore
from cti.store import NotFoundError, Store

SH = ZoneInfo("Asia/Shanghai")

GOOD_CSV = """agent,date,start,end,activity,note
# the worked example of domain.md §3.3
1001,2026-05-09,09:00,12:00,shift,
1001,2026-05-09,10:30,10:45,break,
1001,2026-05-09,11:30,12:00,meeting,weekly
1002,2026-05-09,22:00,06:00,shift,night
1002,2026-05-10,01:00,01:30,lunch,
1003,2026-05-09,,,leave,annual leave
"""


def local(day: str, hhmm: str, zone: ZoneInfo = SH) -> float:
    return dt.datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=zone).timestamp()


def test_csv_in_site_time() -> None:
    entries = [e for _, e in parse_schedule_file(GOOD_CSV.encode(), "week.csv", SH)]
    assert [(e.agent_id, e.activity, e.start, e.end) for e in entries[:3]] == [
        ("1001", Activity.SHIFT, local("2026-05-09", "09:00"), local("2026-05-09", "12:00")),
        ("1001", Activity.BREAK, local("2026-05-09", "10:30"), local("2026-05-09", "10:45")),
        ("1001", Activity.MEETING, local("2026-05-09", "11:30"), local("2026-05-09", "12:00"))]
    night = entries[3]
    assert night.end - night.start == 8 * 3600 and night.note == "night"  # across midnight
    leave = entries[5]
    assert leave.activity is Activity.LEAVE and leave.end - leave.start == 86400
    assert local("2026-05-09", "09:00") == dt.datetime(2026, 5, 9, 1, 0, tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("agent,date,start,end\n", 1, "the header lacks activity"),
    ("agent,date,start,end,activity\n1001,2026-05-09,09:00,12:00,shift\n1001,2026-05-9x,09:00,12:00,shift\n",
     3, "date must be YYYY-MM-DD"),
    ("agent,date,start,end,activity\n1001,2026-05-09,9h,12:00,shift\n", 2, "start must be HH:MM"),
    ("agent,date,start,end,activity\n1001,2026-05-09,09:00,12:00,nap\n", 2, "unknown activity 'nap'"),
    ("agent,date,start,end,activity\n1001,2026-05-09,09:00,12:00\n", 2, "4 fields, the header has 5"),
    ("agent,date,start,end,activity\n1001,2026-05-09,,,phone\n", 2, "phone needs a start and an end"),
    ("agent,date,start,end,activity\n1001,2026-05-09,09:00,12:00,shift\n1001,2026-05-09,11:00,13:00,shift\n",
     3, "overlaps line 2"),
    ("agent,date,start,end,activity\n1001,2026-05-09,09:00,12:00,shift\n1001,2026-05-09,11:50,12:10,break\n",
     3, "is outside the agent's shifts"),
    ("agent,date,start,end,activity\n1001,2026-05-09,13:00,13:30,lunch\n", 2, "is outside the agent's shifts"),
    ("agent,date,start,end,activity\n1001,2026-05-09,09:00,12:00,shift\n1001,2026-05-09,10:00,10:30,break\n"
     "1001,2026-05-09,10:15,10:45,meeting\n", 4, "overlaps line 3"),
    ("", 1, "empty file"),
])
def test_bad_csv_is_refused_with_file_line_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(ImportFileError) as info:
        parse_schedule_file(text.encode(), "bad.csv", SH)
    first = info.value.problems[0]
    assert (first.file, first.line) == ("bad.csv", line) and reason in first.reason, info.value.problems


def test_not_utf8() -> None:
    with pytest.raises(ImportFileError) as info:
        parse_schedule_file(b"agent,date,start,end,activity\n\xff\n", "x.csv", SH)
    assert info.value.problems[0].line == 2


ICS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VEVENT\r
UID:1\r
SUMMARY:shift\r
DTSTART;TZID=Asia/Shanghai:20260509T090000\r
DTEND;TZID=Asia/Shanghai:20260509T120000\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:2\r
SUMMARY:Break\r
DTSTART:20260509T023000Z\r
DTEND:20260509T024500Z\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:3\r
SUMMARY:training\r
DTSTART:20260509T113000\r
DURATION:PT30M\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:4\r
SUMMARY:absence\r
X-CTI-AGENT:1009\r
DTSTART;VALUE=DATE:20260511\r
DTEND;VALUE=DATE:20260513\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_icalendar() -> None:
    entries = [e for _, e in parse_schedule_file(ICS.encode(), "a.ics", SH, agent="1001")]
    assert [(e.agent_id, e.activity, e.start, e.end) for e in entries] == [
        ("1001", Activity.SHIFT, local("2026-05-09", "09:00"), local("2026-05-09", "12:00")),
        ("1001", Activity.BREAK, local("2026-05-09", "10:30"), local("2026-05-09", "10:45")),
        ("1001", Activity.TRAINING, local("2026-05-09", "11:30"), local("2026-05-09", "12:00")),  # floating: site
        ("1009", Activity.ABSENCE, local("2026-05-11", "00:00"), local("2026-05-13", "00:00"))]


def test_bad_icalendar_names_the_event_line() -> None:
    bad = ICS.replace("DTSTART:20260509T023000Z", "DTSTART:2026xx").replace("SUMMARY:training", "SUMMARY:siesta")
    with pytest.raises(ImportFileError) as info:
        parse_schedule_file(bad.encode(), "a.ics", SH, agent="1001")
    lines = [(p.line, p.reason.split(":")[0]) for p in info.value.problems]
    assert lines == [(10, "DTSTART"), (16, "unknown activity 'siesta' (one of shift, phone, break, lunch, meeting, "
                                           "training, offline_work, leave, absence)")]
    with pytest.raises(ImportFileError) as info:
        parse_schedule_file(ICS.encode(), "a.ics", SH)  # no agent for the events without X-CTI-AGENT
    assert "no agent" in info.value.problems[0].reason
    rrule = ICS.replace("UID:1\r\n", "UID:1\r\nRRULE:FREQ=DAILY;COUNT=5\r\n")
    with pytest.raises(ImportFileError, match="recurring"):
        parse_schedule_file(rrule.encode(), "a.ics", SH, agent="1001")


async def test_store_import_is_all_or_nothing(store: Store) -> None:
    schedules = ScheduleStore(store)
    entries = parse_schedule_file(GOOD_CSV.encode(), "week.csv", SH)
    summary = await schedules.import_entries(entries, "week.csv", now=1.0)
    assert (summary.agents, summary.imported, summary.replaced) == (3, 6, 0)
    day = (local("2026-05-09", "00:00"), local("2026-05-11", "00:00"))
    stored = await schedules.entries_between(*day)
    assert [(e.agent_id, e.activity) for e in stored] == [(e.agent_id, e.activity) for _, e in entries]
    # importing the same file again replaces, never doubles
    again = await schedules.import_entries(entries, "week.csv", now=2.0)
    assert again.replaced == 6 and len(await schedules.entries_between(*day)) == 6
    # a file that conflicts with what stays stored is refused whole
    clash = parse_schedule_file(b"agent,date,start,end,activity\n1004,2026-05-09,09:00,10:00,shift\n"
                                b"1002,2026-05-10,05:00,08:00,shift\n", "clash.csv", SH)
    with pytest.raises(ImportFileError) as info:
        await schedules.import_entries(clash, "clash.csv", now=3.0)
    assert info.value.problems[0].line == 3 and "overlaps a stored shift" in info.value.problems[0].reason
    assert len(await schedules.entries_between(*day)) == 6  # 1004's valid row was not half-imported


async def test_store_edits_and_exceptions(store: Store) -> None:
    schedules = ScheduleStore(store)
    await schedules.import_entries(parse_schedule_file(GOOD_CSV.encode(), "w.csv", SH), "w.csv", now=1.0)
    lunch = ScheduleEntry(agent_id="1001", start=local("2026-05-09", "11:00"), end=local("2026-05-09", "11:20"),
                          activity=Activity.LUNCH)
    added = await schedules.add_entry(lunch, now=2.0)
    assert added.entry_id is not None
    with pytest.raises(ScheduleError, match="overlaps"):
        await schedules.add_entry(ScheduleEntry(agent_id="1001", start=local("2026-05-09", "11:10"),
                                                end=local("2026-05-09", "11:40"), activity=Activity.TRAINING), now=3.0)
    with pytest.raises(ScheduleError, match="outside"):
        await schedules.add_entry(ScheduleEntry(agent_id="1001", start=local("2026-05-09", "12:10"),
                                                end=local("2026-05-09", "12:40"), activity=Activity.TRAINING), now=3.0)
    moved = await schedules.add_entry(
        ScheduleEntry(agent_id="1001", start=local("2026-05-09", "11:05"), end=local("2026-05-09", "11:25"),
                      activity=Activity.LUNCH), now=4.0, replacing=added.entry_id)
    assert moved.entry_id == added.entry_id
    lunches = [e for e in await schedules.entries_between(0, 2e9, "1001") if e.activity is Activity.LUNCH]
    assert [(e.entry_id, e.start) for e in lunches] == [(added.entry_id, local("2026-05-09", "11:05"))]
    shift = next(e for e in await schedules.entries_between(0, 2e9, "1001") if e.activity is Activity.SHIFT)
    assert shift.entry_id is not None
    with pytest.raises(ScheduleError, match="still holds activities"):
        await schedules.delete_entry(shift.entry_id)
    with pytest.raises(NotFoundError):
        await schedules.delete_entry(999_999)
    exc = await schedules.add_exception(ApprovedException(
        agent_id="1001", start=local("2026-05-09", "09:30"), end=local("2026-05-09", "10:00"),
        reason="escort a visitor", approved_by="sup1", approved_at=5.0))
    assert [x.reason for x in await schedules.exceptions_between(0, 2e9, "1001")] == ["escort a visitor"]
    assert exc.exception_id is not None
    await schedules.delete_exception(exc.exception_id)
    assert await schedules.exceptions_between(0, 2e9) == []
