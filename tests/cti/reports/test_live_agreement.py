"""Property: the live statistics (acd/stats.py QueueStats) and the report calculator (cti/reports) count the same
legs the same way, whatever the waits (around T and S) and outcomes: the §1 counters, every SL variant and ASA."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acd import CallId, ExitReason, QueueConfig, QueueId, SlFormula, service_level
from acd.stats import QueueStats
from cti.reports import QueueRules, queue_figures

from .legs import leg

waits = st.one_of(st.sampled_from([0.0, 4.999, 5.0, 5.001, 19.999, 20.0, 20.001]), st.floats(0, 200))
outcomes = st.lists(st.tuples(st.sampled_from(["answered", "abandoned", "flowout"]), waits), max_size=40)


@settings(max_examples=200, deadline=None)
@given(outcomes, st.sampled_from(list(SlFormula)), st.booleans())
def test_live_counters_equal_the_reports(events: list[tuple[str, float]], formula: SlFormula,
                                         include_flowouts: bool) -> None:
    config = QueueConfig(id=QueueId("q"), sl_threshold_s=20.0, short_abandon_s=5.0, sl_formula=formula,
                         include_flowouts=include_flowouts)
    live = QueueStats(config)
    legs = []
    for i, (outcome, wait) in enumerate(events):
        at = 1000.0 + i
        call = CallId(f"c{i}")
        live.entered(call, at)
        if outcome == "answered":
            live.answered(call, at, at + wait)
            legs.append(leg(at=at, answered=wait))
        elif outcome == "abandoned":
            live.abandoned(call, at, at + wait)
            legs.append(leg(at=at, abandoned=wait))
        else:
            live.flowed_out(call, at, at + wait)
            legs.append(leg(at=at, flowout=wait, reason=ExitReason.MAX_WAIT))
    snap = live.snapshot(5000.0, {}, {})
    figures = queue_figures(legs, [], QueueRules(sl_threshold_s=20.0, short_abandon_s=5.0, sl_formula=formula,
                                                 include_flowouts=include_flowouts))
    assert figures.counters == snap.today
    assert figures.service_level == snap.today_service_level
    assert figures.service_level == service_level(snap.today, formula, include_flowouts=include_flowouts)
    if snap.asa_s is None:
        assert figures.asa_s is None
    else:
        assert figures.asa_s == pytest.approx(snap.asa_s)
    if snap.abandon_rate is None:
        assert figures.abandon_rate is None
    else:
        assert figures.abandon_rate == pytest.approx(snap.abandon_rate)
