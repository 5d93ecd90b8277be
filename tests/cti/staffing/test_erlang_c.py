"""Erlang C staffing against domain spec §2.1-2.2: every published vector, the nonlinearity table, large loads."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.staffing import StaffingInput, erlang_b, erlang_c_figures, figures, plan, required_agents, scheduled
from tests.cti.staffing.oracle import erlang_b_direct

# (id, calls, interval_s, aht_s, sl_target, T, A, N, SL, Pw, ASA, occupancy): domain spec §2.2's table
TABLE = [
    ("TV-3", 360, 1800, 240, 0.80, 20, 48.0, 54, 0.817248, 0.301308, 12.052, 0.8889),
    ("TV-5", 30, 1800, 600, 0.80, 30, 10.0, 14, 0.857433, 0.174132, 26.120, 0.7143),
    ("TV-7", 100, 1800, 180, 0.90, 15, 10.0, 15, 0.932730, 0.102042, 3.674, 0.6667),
    ("TV-8", 200, 3600, 180, 0.80, 20, 10.0, 14, 0.888350, 0.174132, 7.836, 0.7143),
]


def test_tv1_the_briefs_example() -> None:
    inp = StaffingInput(calls=100, interval_s=1800, aht_s=180, sl_target=0.80, answer_within_s=20, shrinkage=0.30,
                        max_occupancy=0.85)
    result = required_agents(inp)
    assert inp.traffic == pytest.approx(10.0, abs=1e-12)
    assert (result.agents, result.agents_scheduled, result.limited_by) == (14, 20, "service_level")
    f = result.figures
    assert f.service_level == pytest.approx(0.8883500191794669, abs=1e-12)
    assert f.wait_probability == pytest.approx(0.1741319335950498, abs=1e-12)
    assert f.asa_s == pytest.approx(7.835937, abs=1e-6)
    assert f.occupancy == pytest.approx(0.7142857, abs=1e-6)
    assert figures(inp, 11).service_level == pytest.approx(0.38961381, abs=1e-8)
    assert figures(inp, 13).service_level == pytest.approx(0.79559479, abs=1e-8)
    assert result.meets_target and not figures(inp, 13).service_level >= 0.80  # type: ignore[operator]


@pytest.mark.parametrize(("name", "calls", "interval_s", "aht_s", "target", "t", "a", "n", "sl", "pw", "asa", "occ"),
                         TABLE, ids=[row[0] for row in TABLE])
def test_table_vectors(name: str, calls: float, interval_s: float, aht_s: float, target: float, t: float, a: float,
                       n: int, sl: float, pw: float, asa: float, occ: float) -> None:
    """Each figure to the precision the spec prints it (6 decimals: 1e-6; ASA 3 decimals; occupancy 4)."""
    result = required_agents(StaffingInput(calls=calls, interval_s=interval_s, aht_s=aht_s, sl_target=target,
                                           answer_within_s=t))
    f = result.figures
    assert result.inputs.traffic == pytest.approx(a, abs=1e-12)
    assert result.agents == n
    assert f.service_level == pytest.approx(sl, abs=1e-6)
    assert f.wait_probability == pytest.approx(pw, abs=1e-6)
    assert f.asa_s == pytest.approx(asa, abs=5e-4)
    assert f.occupancy == pytest.approx(occ, abs=5e-5)


def test_nonlinearity_table() -> None:
    """Domain spec §2.1: 100 calls / 30 min, AHT 180 s, T = 20 s, from 17 agents down to 11."""
    inp = StaffingInput(calls=100, interval_s=1800, aht_s=180, sl_target=0.80, answer_within_s=20)
    expected = {17: (98.6, 0.8), 16: (97.1, 1.7), 15: (94.1, 3.7), 14: (88.8, 7.8), 13: (79.6, 17.1),
                12: (64.0, 40.4), 11: (39.0, 122.8)}
    curve = {f.agents: f for f in plan(inp, 14).what_if}
    assert sorted(curve) == list(range(11, 18))  # the default what-if curve is this table
    for n, (sl_pct, asa) in expected.items():
        assert round(100 * curve[n].service_level, 1) == sl_pct  # type: ignore[operator]
        assert round(curve[n].asa_s, 1) == asa  # type: ignore[arg-type]


def test_occupancy_cap_binds() -> None:
    inp = StaffingInput(calls=360, interval_s=1800, aht_s=240, sl_target=0.80, answer_within_s=20,
                        max_occupancy=0.85)
    result = required_agents(inp)
    assert (result.agents, result.limited_by) == (57, "occupancy")  # ⌈48 / 0.85⌉ = 57 > N_sl = 54
    assert figures(inp, 56).occupancy > 0.85  # type: ignore[operator]


def test_rounding_ignores_float_noise() -> None:
    """11.05 / 0.85 is 13.000000000000002 in floats: 13 agents reach 85 % exactly and must be enough."""
    inp = StaffingInput(calls=110.5, interval_s=1800, aht_s=180, sl_target=0.01, answer_within_s=0,
                        max_occupancy=0.85)
    assert inp.traffic / 0.85 > 13
    assert required_agents(inp).agents == 13
    assert 21 / (1 - 0.3) > 30 and scheduled(21, 0.3) == 30  # 30 % shrinkage on 21 agents: 30 scheduled
    assert scheduled(14, 0.3) == 20 and scheduled(14, 0.0) == 14 and scheduled(15, 0.3) == 22


def test_understaffed_is_flagged_not_computed() -> None:
    f = erlang_c_figures(10.0, 10, aht_s=180, answer_within_s=20)
    assert (f.service_level, f.wait_probability, f.asa_s, f.queue_length, f.understaffed) == (0.0, 1.0, None, None,
                                                                                               True)


def test_zero_volume_needs_nobody() -> None:
    result = required_agents(StaffingInput(calls=0, aht_s=180))
    assert (result.agents, result.agents_scheduled, result.figures.service_level) == (0, 0, None)
    assert result.to_json()["wait_probability"] == 0.0


@pytest.mark.parametrize("traffic", [1e3, 1e4, 2e4])
def test_large_traffic_is_finite(traffic: float) -> None:
    inp = StaffingInput(calls=traffic * 1800 / 180, aht_s=180, sl_target=0.80, answer_within_s=20, shrinkage=0.3)
    result = required_agents(inp)
    assert traffic < result.agents < traffic + 3 * math.sqrt(traffic)  # square-root staffing's range
    for f in result.what_if:
        for value in (f.service_level, f.wait_probability, f.asa_s, f.occupancy, f.queue_length):
            assert value is None or math.isfinite(value)
    assert not figures(inp, result.agents - 1).service_level >= 0.80  # type: ignore[operator]
    assert 0 < erlang_b(traffic, int(traffic)) < 1


@given(st.floats(0.01, 60), st.integers(0, 90))
def test_erlang_b_recurrence_matches_the_definition(traffic: float, agents: int) -> None:
    assert erlang_b(traffic, agents) == pytest.approx(erlang_b_direct(traffic, agents), rel=1e-9, abs=1e-300)


loads = st.builds(lambda calls, aht, target, t, occ: StaffingInput(calls=calls, aht_s=aht, sl_target=target,
                                                                   answer_within_s=t, max_occupancy=occ),
                  st.floats(0.5, 3000), st.floats(5, 1200), st.floats(0.05, 0.99), st.floats(0, 120),
                  st.floats(0.5, 1.0))


@settings(max_examples=200, deadline=None)
@given(loads, st.integers(0, 400))
def test_sl_is_monotone_in_agents(inp: StaffingInput, n: int) -> None:
    here, more = figures(inp, n), figures(inp, n + 1)
    assert here.service_level is not None and more.service_level is not None
    assert more.service_level >= here.service_level - 1e-12
    assert more.wait_probability <= here.wait_probability + 1e-12


@settings(max_examples=200, deadline=None)
@given(loads)
def test_required_agents_is_minimal(inp: StaffingInput) -> None:
    result = required_agents(inp, what_if_span=0)
    assert result.meets_target
    fewer = figures(inp, result.agents - 1)
    sl_fails = not fewer.service_level >= inp.sl_target  # type: ignore[operator]
    occupancy_fails = fewer.occupancy is None or fewer.occupancy > inp.max_occupancy * (1 + 1e-9)
    assert sl_fails or occupancy_fails
    assert result.limited_by == ("service_level" if sl_fails else "occupancy")


def test_occupancy_exactly_at_the_cap_meets_it_despite_float_noise() -> None:
    """A = 180 x 5.000000000000001 / 1800 is 0.5 plus float noise; one agent is at the 0.5 cap, as _ceil says."""
    inp = StaffingInput(calls=180.0, aht_s=5.000000000000001, sl_target=0.5, answer_within_s=1.0, max_occupancy=0.5)
    result = required_agents(inp, what_if_span=0)
    assert (result.agents, result.meets_target) == (1, True)
