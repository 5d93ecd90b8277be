"""Local-time buckets (site zone, DST) and agent figures (domain.md §1.6) with known answers."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from acd import AgentState
from cti.reports import Period, ReportSpec, agent_figures, agent_report, buckets, local_day_bounds, parse_period

from .legs import leg, row

SHANGHAI = ZoneInfo("Asia/Shanghai")
PARIS = ZoneInfo("Europe/Paris")


def test_day_buckets_start_at_local_midnight() -> None:
    start, end = local_day_bounds(dt.date(2026, 12, 6), SHANGHAI)
    assert start == dt.datetime(2026, 12, 5, 16, 0, tzinfo=dt.UTC).timestamp()
    assert end - start == 86400
    half_hours = buckets(start, end, Period.MIN30, SHANGHAI)
    assert len(half_hours) == 48 and half_hours[0].label == "2026-12-06T00:00+08:00"
    assert half_hours[-1].label == "2026-12-06T23:30+08:00"
    assert [b.label for b in buckets(start, end + 3 * 86400, Period.DAY, SHANGHAI)] == [
        "2026-12-06", "2026-12-07", "2026-12-08", "2026-12-09"]


def test_a_dst_day_has_23_hours_and_weeks_and_months_follow_the_calendar() -> None:
    start, end = local_day_bounds(dt.date(2026, 3, 29), PARIS)  # clocks go forward at 02:00
    assert end - start == 23 * 3600
    assert len(buckets(start, end, Period.MIN60, PARIS)) == 23
    assert len(buckets(start, end, Period.MIN15, PARIS)) == 92
    m_start, _ = local_day_bounds(dt.date(2026, 1, 15), PARIS)
    m_end, _ = local_day_bounds(dt.date(2026, 4, 2), PARIS)
    months = buckets(m_start, m_end, Period.MONTH, PARIS)
    assert [b.label for b in months] == ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"]
    assert months[0].start == m_start  # clipped to the range
    weeks = buckets(m_start, m_start + 14 * 86400, Period.WEEK, PARIS)
    assert weeks[0].label == "2026-01-12" and weeks[1].label == "2026-01-19"  # Mondays


def test_partial_bucket_at_the_edges_is_clipped() -> None:
    start = dt.datetime(2026, 12, 6, 9, 10, tzinfo=SHANGHAI).timestamp()
    spans = buckets(start, start + 3600, Period.MIN30, SHANGHAI)
    assert [b.label for b in spans] == ["2026-12-06T09:00+08:00", "2026-12-06T09:30+08:00", "2026-12-06T10:00+08:00"]
    assert spans[0].start == start and spans[-1].end == start + 3600


@pytest.mark.parametrize("bad", ["10m", "", "daily"])
def test_unknown_period_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="15m, 30m, 60m, day, week, month"):
        parse_period(bad)


def test_occupancy_utilisation_and_time_per_state_and_reason() -> None:
    rows = [row("a1", AgentState.AVAILABLE, 0, 300), row("a1", AgentState.RINGING, 300, 310),
            row("a1", AgentState.ON_CALL, 310, 610), row("a1", AgentState.WRAP_UP, 610, 700),
            row("a1", AgentState.PAUSED, 700, 1000, "lunch"), row("a1", AgentState.AVAILABLE, 1000, None)]
    f = agent_figures(rows, [], [], 0.0, 1200.0, now=1100.0, ring_limit_s=18.0)
    assert f.state_s == {"available": 400.0, "ringing": 10.0, "on_call": 300.0, "wrap_up": 90.0, "paused": 300.0}
    assert f.reason_s == {"lunch": 300.0}
    assert (f.logged_in_s, f.handle_s, f.available_s) == (1100.0, 390.0, 400.0)
    assert f.occupancy == pytest.approx(390 / 790)  # not ready excluded from the denominator
    assert f.utilisation == pytest.approx(390 / 1100)
    assert (f.avg_ring_s, f.answered_within_rings) == (10.0, 1.0)
    clipped = agent_figures(rows, [], [], 600.0, 700.0, now=1100.0, ring_limit_s=18.0)
    assert clipped.state_s == {"on_call": 10.0, "wrap_up": 90.0} and clipped.occupancy == 1.0
    idle = agent_figures([], [], [], 0.0, 10.0, now=5.0, ring_limit_s=18.0)
    assert (idle.occupancy, idle.utilisation, idle.aht_s) == (None, None, None)


def test_agent_report_has_agents_teams_and_team_targets() -> None:
    rows = [row("a1", AgentState.AVAILABLE, 0, 100), row("a1", AgentState.ON_CALL, 100, 400),
            row("a2", AgentState.AVAILABLE, 0, 400)]
    legs = [leg(at=90, answered=10, agent="a1", talk=300, acw=0)]
    spec = ReportSpec(start=0.0, end=1800.0, period=Period.MIN30, zone=ZoneInfo("UTC"), now=400.0,
                      teams={"a1": "red", "a2": "red"}, team_targets={"red": {"occupancy": 0.5}})
    report = agent_report(legs, rows, spec)
    totals = {r["group"]: r for r in report.rows if r["interval"] == "total"}
    assert set(totals) == {"a1", "a2", "team:red"}
    team = totals["team:red"]
    assert team["figures"]["occupancy"] == pytest.approx(300 / 800)
    assert team["targets"]["occupancy"]["gap"] == pytest.approx(300 / 800 - 0.5)
    assert team["targets"]["occupancy"]["met"] is False
    assert totals["a1"]["figures"]["aht_s"] == 300.0 and totals["a1"]["figures"]["answered"] == 1
