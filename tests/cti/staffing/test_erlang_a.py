"""Erlang A staffing against domain spec §2.3: the table, the Erlang C limit, the spec's uniformised chain."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acd.config import SlFormula
from cti.staffing import Model, StaffingInput, StaffingInputError, erlang_a_figures, figures, required_agents
from cti.staffing.erlang import _absorbed_within, _stationary
from tests.cti.staffing.oracle import death_chain_absorb

# 100 calls / 30 min, AHT 180 s, patience 120 s, T = 20 s: N -> (Pw, P(ab), P(ab <= T), SL offered,
# SL excluding abandons <= T, SL answered-only, occupancy), printed to 4 decimals.
TABLE = {
    10: (0.4969, 0.1375, 0.0650, 0.6399, 0.6845, 0.7419, 0.8625),
    11: (0.3828, 0.0942, 0.0483, 0.7422, 0.7799, 0.8194, 0.8235),
    12: (0.2798, 0.0616, 0.0340, 0.8256, 0.8546, 0.8798, 0.7820),
    13: (0.1937, 0.0384, 0.0226, 0.8886, 0.9091, 0.9241, 0.7397),
    14: (0.1270, 0.0228, 0.0143, 0.9327, 0.9462, 0.9545, 0.6980),
}
FORMULAS = (SlFormula.ABANDONS_NEGATIVE, SlFormula.ABANDONS_AFTER_T_NEGATIVE, SlFormula.ANSWERED_ONLY)


def _inp(formula: SlFormula = SlFormula.ABANDONS_AFTER_T_NEGATIVE, patience_s: float = 120.0) -> StaffingInput:
    return StaffingInput(calls=100, interval_s=1800, aht_s=180, sl_target=0.80, answer_within_s=20,
                         model=Model.ERLANG_A, patience_s=patience_s, sl_formula=formula)


@pytest.mark.parametrize("n", sorted(TABLE))
def test_table(n: int) -> None:
    """Every figure to the spec's 4 decimals (half a unit in the last place)."""
    pw, p_ab, p_ab_t, sl_offered, sl_excl, sl_answered, occupancy = TABLE[n]
    got = {formula: figures(_inp(formula), n) for formula in FORMULAS}
    f = got[SlFormula.ABANDONS_NEGATIVE]
    assert f.wait_probability == pytest.approx(pw, abs=5e-5)
    assert f.abandon_probability == pytest.approx(p_ab, abs=5e-5)
    assert f.abandon_within_t_probability == pytest.approx(p_ab_t, abs=5e-5)
    assert f.occupancy == pytest.approx(occupancy, abs=5e-5)
    assert f.service_level == pytest.approx(sl_offered, abs=5e-5)
    assert got[SlFormula.ABANDONS_AFTER_T_NEGATIVE].service_level == pytest.approx(sl_excl, abs=5e-5)
    assert got[SlFormula.ANSWERED_ONLY].service_level == pytest.approx(sl_answered, abs=5e-5)


def test_simulated_point() -> None:
    """The spec's discrete-event simulation at N = 12 (2e6 s): Pw 0.2779, P_ab 0.0617, SL 0.8265, SL_excl 0.8559.
    The formula's values are within the simulation's noise (0.003)."""
    offered, excl = figures(_inp(SlFormula.ABANDONS_NEGATIVE), 12), figures(_inp(), 12)
    assert offered.wait_probability == pytest.approx(0.2779, abs=3e-3)
    assert offered.abandon_probability == pytest.approx(0.0617, abs=3e-3)
    assert offered.service_level == pytest.approx(0.8265, abs=3e-3)
    assert excl.service_level == pytest.approx(0.8559, abs=3e-3)


@pytest.mark.parametrize("formula", [SlFormula.ABANDONS_NEGATIVE, SlFormula.ABANDONS_AFTER_T_NEGATIVE])
def test_required_agents_is_12_against_14_for_erlang_c(formula: SlFormula) -> None:
    result = required_agents(_inp(formula))
    assert (result.agents, result.limited_by) == (12, "service_level")
    assert result.to_json()["abandon_probability"] == pytest.approx(0.0616, abs=5e-5)


def test_answered_only_needs_11() -> None:
    """At 11 agents answered-only SL is 0.8194 (the table), so that variant needs one agent fewer."""
    assert required_agents(_inp(SlFormula.ANSWERED_ONLY)).agents == 11


def test_endless_patience_is_erlang_c() -> None:
    """Patience 1e7 s: N = 14, SL 0.88835, mean wait 7.836 s, as Erlang C (spec §2.3)."""
    result = required_agents(_inp(patience_s=1e7))
    assert result.agents == 14
    assert result.figures.service_level == pytest.approx(0.88835, abs=5e-6)
    assert result.figures.asa_s == pytest.approx(7.836, abs=5e-4)
    erlang_c = figures(StaffingInput(calls=100, interval_s=1800, aht_s=180), 14)
    assert result.figures.wait_probability == pytest.approx(erlang_c.wait_probability, abs=1e-5)


def test_no_agents_everybody_waits_and_nobody_is_answered() -> None:
    f = figures(_inp(), 0)
    assert (f.service_level, f.wait_probability, f.abandon_probability, f.occupancy) == (0.0, 1.0, 1.0, None)


def test_queue_that_never_settles_is_refused() -> None:
    with pytest.raises(StaffingInputError, match="does not settle") as caught:
        erlang_a_figures(1e4, 10, aht_s=180, answer_within_s=20, patience_s=1e9,
                         sl_formula=SlFormula.ABANDONS_NEGATIVE)
    assert caught.value.field == "patience_s"


@pytest.mark.parametrize("patience_s", [30.0, 120.0, 600.0])
def test_large_traffic_is_finite(patience_s: float) -> None:
    inp = StaffingInput(calls=1e5, interval_s=1800, aht_s=180, model=Model.ERLANG_A, patience_s=patience_s)
    assert inp.traffic == 1e4
    result = required_agents(inp, what_if_span=1)
    assert 0 < result.agents <= 10_013  # never more than Erlang C's answer for the same load
    for f in result.what_if:
        for value in (f.service_level, f.wait_probability, f.asa_s, f.occupancy, f.abandon_probability):
            assert value is not None and math.isfinite(value) and value >= 0
    assert not figures(inp, result.agents - 1).service_level >= 0.80  # type: ignore[operator]


chains = st.tuples(st.floats(0.1, 40), st.integers(0, 50), st.floats(10, 900), st.floats(5, 3000),
                   st.sampled_from([0.0, 1.0, 20.0, 60.0, 300.0]))


@settings(max_examples=60, deadline=None)
@given(chains)
def test_closed_form_matches_the_uniformised_chain(chain: tuple[float, int, float, float, float]) -> None:
    """The product's closed form against the spec's method (a death chain per k, uniformised)."""
    traffic, agents, aht_s, patience_s, within_s = chain
    _, queue = _stationary(traffic, agents, aht_s / patience_s)
    queue = queue[:120]  # the oracle is O(k²·steps): keep the bulk of the mass, enough to compare
    served, abandoned = _absorbed_within(queue, agents=agents, aht_s=aht_s, patience_s=patience_s,
                                         within_s=within_s)
    ref = [death_chain_absorb(k, agents=agents, aht_s=aht_s, patience_s=patience_s, within_s=within_s)
           for k in range(len(queue))]
    assert served == pytest.approx(math.fsum(w * s for w, (s, _) in zip(queue, ref, strict=True)), abs=1e-9)
    assert abandoned == pytest.approx(math.fsum(w * a for w, (_, a) in zip(queue, ref, strict=True)), abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.1, 40), st.integers(0, 60), st.floats(0.3, 5))
def test_stationary_distribution_matches_plain_products(traffic: float, agents: int, ratio: float) -> None:
    """π_j ∝ A^j/j! up to N, then π_N·Π A/(N + i·θ/μ): the log-space version against plain floats (kept to
    loads whose plain products stay below 1e300; the large-load tests cover the rest)."""
    below, queue = _stationary(traffic, agents, ratio)
    weights = [traffic**j / math.factorial(j) for j in range(agents + 1)]
    tail = [weights[-1]]
    while len(tail) < 3000 and (agents + len(tail) * ratio <= traffic or tail[-1] > 1e-18 * max(weights)):
        tail.append(tail[-1] * traffic / (agents + len(tail) * ratio))
    total = sum(weights[:-1]) + sum(tail)
    assert below == pytest.approx(sum(weights[:-1]) / total, abs=1e-12)
    assert math.fsum(queue) == pytest.approx(sum(tail) / total, abs=1e-12)


patient = st.builds(lambda calls, aht, patience, target, t, formula, occ: StaffingInput(
    calls=calls, aht_s=aht, model=Model.ERLANG_A, patience_s=patience, sl_target=target, answer_within_s=t,
    sl_formula=formula, max_occupancy=occ),
    st.floats(1, 1500), st.floats(30, 900), st.floats(10, 1800), st.floats(0.05, 0.95), st.floats(0, 90),
    st.sampled_from(FORMULAS), st.floats(0.6, 1.0))


@settings(max_examples=60, deadline=None)
@given(patient, st.integers(0, 120))
def test_sl_monotone_and_occupancy_falling_in_agents(inp: StaffingInput, n: int) -> None:
    here, more = figures(inp, n), figures(inp, n + 1)
    assert here.service_level is not None and more.service_level is not None
    assert more.service_level >= here.service_level - 1e-9
    assert more.abandon_probability <= here.abandon_probability + 1e-9  # type: ignore[operator]
    if n > 0:
        assert more.occupancy <= here.occupancy + 1e-9  # type: ignore[operator]


@settings(max_examples=40, deadline=None)
@given(patient)
def test_required_agents_is_minimal(inp: StaffingInput) -> None:
    result = required_agents(inp, what_if_span=0)
    assert result.meets_target
    fewer = figures(inp, result.agents - 1)
    sl_fails = fewer.service_level is None or fewer.service_level < inp.sl_target
    assert sl_fails or fewer.occupancy is None or fewer.occupancy > inp.max_occupancy
    assert result.limited_by == ("service_level" if sl_fails else "occupancy")
