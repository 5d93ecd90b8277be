"""The calculator against domain.md §3.3's worked example, to the digit, and its invariants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cti.adherence import (
    Activity,
    AdherenceSettings,
    ApprovedException,
    ScheduleEntry,
    StateSpan,
    ToleranceMode,
    compute_shift,
)

M = 60.0
BASE = 1_780_000_000.0 - 1_780_000_000.0 % 86400  # a UTC midnight


def t(hhmm: str) -> float:
    h, m = hhmm.split(":")
    return BASE + int(h) * 3600 + int(m) * M


def worked_example() -> tuple[ScheduleEntry, list[ScheduleEntry], list[StateSpan], list[ApprovedException]]:
    a = "1001"
    shift = ScheduleEntry(agent_id=a, start=t("09:00"), end=t("12:00"), activity=Activity.SHIFT)
    entries = [
        shift,
        ScheduleEntry(agent_id=a, start=t("09:00"), end=t("10:30"), activity=Activity.PHONE),
        ScheduleEntry(agent_id=a, start=t("10:30"), end=t("10:45"), activity=Activity.BREAK),
        ScheduleEntry(agent_id=a, start=t("10:45"), end=t("11:30"), activity=Activity.PHONE),
        ScheduleEntry(agent_id=a, start=t("11:30"), end=t("12:00"), activity=Activity.MEETING),
    ]
    states = [
        StateSpan(start=t("08:57"), end=t("09:10"), state="available"),
        StateSpan(start=t("09:10"), end=t("09:40"), state="on_call"),
        StateSpan(start=t("09:40"), end=t("09:52"), state="paused", reason="personal"),
        StateSpan(start=t("09:52"), end=t("10:33"), state="on_call"),
        StateSpan(start=t("10:33"), end=t("10:52"), state="paused", reason="break"),
        StateSpan(start=t("10:52"), end=t("11:05"), state="available"),
        StateSpan(start=t("11:05"), end=t("11:20"), state="paused", reason="coaching"),
        StateSpan(start=t("11:20"), end=t("11:32"), state="available"),
        StateSpan(start=t("11:32"), end=t("11:58"), state="paused", reason="meeting"),
        StateSpan(start=t("11:58"), end=t("13:00"), state="logged_out"),
    ]
    exc = [ApprovedException(agent_id=a, start=t("11:05"), end=t("11:20"), reason="coaching session",
                             approved_by="sup1", approved_at=t("11:04"))]
    return shift, entries, states, exc


def pct(x: float | None) -> str:
    assert x is not None
    return f"{x * 100:.2f}%"


def test_worked_example_raw() -> None:
    shift, entries, states, _ = worked_example()
    r = compute_shift(shift, entries, states, (), AdherenceSettings(tolerance_s=0))
    assert [(s.start, s.duration_s / M) for s in r.segments] == [
        (t("09:40"), 12), (t("10:30"), 3), (t("10:45"), 7), (t("11:05"), 15), (t("11:30"), 2), (t("11:58"), 2)]
    assert r.out_s / M == 41 and r.in_s / M == 139 and r.neutral_s == 0
    assert pct(r.adherence) == "77.22%" and pct(r.raw_adherence) == "77.22%"


def test_worked_example_with_the_approved_exception() -> None:
    shift, entries, states, exc = worked_example()
    r = compute_shift(shift, entries, states, exc, AdherenceSettings(tolerance_s=0))
    assert r.out_s / M == 26 and pct(r.adherence) == "85.56%"
    assert pct(r.raw_adherence) == "77.22%"  # the raw value is kept


def test_worked_example_min_duration() -> None:
    shift, entries, states, exc = worked_example()
    r = compute_shift(shift, entries, states, exc,
                      AdherenceSettings(tolerance_s=5 * M, tolerance_mode=ToleranceMode.MIN_DURATION))
    assert r.out_s / M == 19 and pct(r.adherence) == "89.44%"


def test_worked_example_grace_is_the_default() -> None:
    shift, entries, states, exc = worked_example()
    r = compute_shift(shift, entries, states, exc)
    assert r.out_s / M == 14 and r.in_s / M == 166 and pct(r.adherence) == "92.22%"
    assert [s.counted_s / M for s in r.segments] == [12, 0, 2, 0, 0, 0]


def test_worked_example_conformance() -> None:
    shift, entries, states, exc = worked_example()
    r = compute_shift(shift, entries, states, exc)
    assert r.scheduled_productive_s / M == 135 and r.productive_s / M == 106
    assert pct(r.conformance) == "78.52%"
    # the exception sits in PHONE time: with the option it counts as productive
    r2 = compute_shift(shift, entries, states, exc, AdherenceSettings(exceptions_count_as_productive=True))
    assert r2.productive_s / M == 121


def test_escort_exception_turns_a_phone_span_adherent() -> None:
    """The seed's example: an agent sent to escort a visitor 9:30-10:00 (logged out) is in adherence."""
    a = "1002"
    shift = ScheduleEntry(agent_id=a, start=t("09:00"), end=t("11:00"), activity=Activity.SHIFT)
    states = [StateSpan(start=t("09:00"), end=t("09:30"), state="available"),
              StateSpan(start=t("09:30"), end=t("10:00"), state="logged_out"),
              StateSpan(start=t("10:00"), end=t("11:00"), state="on_call")]
    escort = ApprovedException(agent_id=a, start=t("09:30"), end=t("10:00"), reason="escort a visitor",
                               approved_by="sup1", approved_at=t("09:29"))
    before = compute_shift(shift, [shift], states)
    after = compute_shift(shift, [shift], states, [escort])
    assert before.out_s / M == 30 and after.out_s == 0 and after.adherence == 1.0 and before.raw_adherence == 0.75
    assert after.raw_adherence == 0.75


def test_gaps_are_neutral_and_leave_is_not_counted() -> None:
    a = "1003"
    shift = ScheduleEntry(agent_id=a, start=t("09:00"), end=t("10:00"), activity=Activity.SHIFT)
    leave = ScheduleEntry(agent_id=a, start=t("09:30"), end=t("10:00"), activity=Activity.LEAVE)
    states = [StateSpan(start=t("09:10"), end=t("09:20"), state="available")]
    r = compute_shift(shift, [shift, leave], states, (), AdherenceSettings(tolerance_s=0))
    assert r.in_s / M == 10 and r.out_s == 0 and r.neutral_s / M == 50
    assert r.scheduled_productive_s / M == 30  # leave is not planned phone time


_STATES = st.sampled_from(["available", "on_call", "wrap_up", "paused", "logged_out", "ringing"])
_REASONS = st.sampled_from([None, "break", "lunch", "meeting", "personal"])


@st.composite
def _day(draw: st.DrawFn) -> tuple[ScheduleEntry, list[ScheduleEntry], list[StateSpan], list[ApprovedException]]:
    a = "9"
    start, end = t("08:00"), t("12:00")
    shift = ScheduleEntry(agent_id=a, start=start, end=end, activity=Activity.SHIFT)
    cuts = sorted(set(draw(st.lists(st.integers(1, 239), max_size=6))))
    points = [start] + [start + c * M for c in cuts] + [end]
    acts = st.sampled_from([Activity.PHONE, Activity.BREAK, Activity.MEETING, Activity.LUNCH])
    entries = [shift] + [ScheduleEntry(agent_id=a, start=x, end=y, activity=draw(acts))
                         for x, y in zip(points, points[1:], strict=False)]
    scuts = sorted(set(draw(st.lists(st.integers(-30, 270), max_size=12))))
    spoints = [start - 60 * M] + [start + c * M for c in scuts] + [end + 60 * M]
    states = [StateSpan(start=x, end=y, state=draw(_STATES), reason=draw(_REASONS))
              for x, y in zip(spoints, spoints[1:], strict=False) if y > x]
    excs = []
    if draw(st.booleans()):
        x = start + draw(st.integers(0, 200)) * M
        excs.append(ApprovedException(agent_id=a, start=x, end=x + draw(st.integers(1, 60)) * M, reason="r",
                                      approved_by="s", approved_at=x))
    return shift, entries, states, excs


@settings(max_examples=150, deadline=None)
@given(_day(), st.integers(0, 15), st.sampled_from(list(ToleranceMode)))
def test_properties(day: tuple[ScheduleEntry, list[ScheduleEntry], list[StateSpan], list[ApprovedException]],
                    tol_min: int, mode: ToleranceMode) -> None:
    shift, entries, states, excs = day
    cfg = AdherenceSettings(tolerance_s=tol_min * M, tolerance_mode=mode)
    r = compute_shift(shift, entries, states, excs, cfg)
    length = shift.end - shift.start
    assert abs(r.in_s + r.out_s + r.neutral_s - length) < 1e-6
    assert abs(r.raw_in_s + r.raw_out_s + r.neutral_s - length) < 1e-6 or excs
    assert 0 <= r.out_s <= r.raw_out_s + 1e-6  # exceptions and tolerance only ever forgive
    assert r.adherence is None or 0.0 <= r.adherence <= 1.0
    # no tolerance and no exceptions: adjusted == raw
    bare = compute_shift(shift, entries, states, (), AdherenceSettings(tolerance_s=0))
    assert abs(bare.out_s - bare.raw_out_s) < 1e-6
    # a larger tolerance never makes it worse (same mode)
    wider = compute_shift(shift, entries, states, excs, AdherenceSettings(tolerance_s=(tol_min + 5) * M,
                                                                         tolerance_mode=mode))
    assert wider.out_s <= r.out_s + 1e-6
    for seg in r.segments:
        assert abs(seg.counted_s + seg.excused_s + seg.tolerated_s - seg.duration_s) < 1e-6


def test_cli_compute_reproduces_the_worked_example_from_the_docs_files() -> None:
    """docs/adherence.md's commands, on docs/adherence-example/: the four lines of domain.md §3.3."""
    from pathlib import Path

    from click.testing import CliRunner

    from cti.cli.adherence import adherence

    ex = Path(__file__).resolve().parents[3] / "docs" / "adherence-example"
    base = ["compute", "--schedule", str(ex / "schedule.csv"), "--states", str(ex / "states.csv"),
            "--timezone", "Asia/Shanghai"]
    withx = [*base, "--exceptions", str(ex / "exceptions.csv")]
    expected = [(base + ["--tolerance-min", "0"], "77.22%     77.22%  78.52%       139     41"),
                (withx + ["--tolerance-min", "0"], "85.56%     77.22%  78.52%       154     26"),
                (withx + ["--mode", "min_duration"], "89.44%     77.22%  78.52%       161     19"),
                (withx, "92.22%     77.22%  78.52%       166     14")]
    for args, line in expected:
        result = CliRunner().invoke(adherence, args)
        assert result.exit_code == 0 and line in result.output, (args, result.output)
    bad = CliRunner().invoke(adherence, [*base[:4], str(ex / "schedule.csv")])  # a schedule is not a states file
    assert bad.exit_code == 2 and "schedule.csv:1: the header lacks time, state" in bad.output
