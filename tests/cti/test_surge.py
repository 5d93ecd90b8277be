"""cti.floor.alerts.surge: replayed synthetic histories, stepped by hand (no event loop, no clock)."""

from __future__ import annotations

import math
import random

import pytest

from cti.floor.alerts import AlertCleared, AlertRaised, Severity, Significance, SurgeDetector, SurgeSettings, poisson_sf

T0 = 1_700_000_000.0
MIN = 60.0
HOUR = 3600.0


def poisson_process(rng: random.Random, reason: str, per_window: float, start: float, end: float
                    ) -> list[tuple[float, str]]:
    """Arrivals of ``reason`` at ``per_window`` calls per 15 min on average, between ``start`` and ``end``."""
    rate, t, out = per_window / 900.0, start, []
    while True:
        t += rng.expovariate(rate)
        if t >= end:
            return out
        out.append((t, reason))


def regular(reason: str, every_s: float, start: float, end: float) -> list[tuple[float, str]]:
    n = int((end - start) // every_s)
    return [(start + (i + 0.37) * every_s, reason) for i in range(n)]


def replay(detector: SurgeDetector, arrivals: list[tuple[float, str]], end: float
           ) -> list[tuple[str, str, float]]:
    """Feed arrivals in time order, running evaluate() whenever the detector's timer is due; return
    (raised|cleared, alert id, time) in order."""
    events: list[AlertRaised | AlertCleared] = []
    if detector.get_timer() is None:
        detector.evaluate(T0)  # start the step and window grid at T0
    for t, reason in sorted(arrivals):
        timer = detector.get_timer()
        while timer is not None and timer <= t:
            events.extend(detector.evaluate(timer))
            timer = detector.get_timer()
        detector.record(reason, t)
    timer = detector.get_timer()
    while timer is not None and timer <= end:
        events.extend(detector.evaluate(timer))
        timer = detector.get_timer()
    return [("raised" if isinstance(e, AlertRaised) else "cleared", e.alert_id, e.at) for e in events]


def history(rng: random.Random, reasons: tuple[str, ...], start: float, end: float,
            per_window: float = 5.0) -> list[tuple[float, str]]:
    return [a for r in reasons for a in poisson_process(rng, r, per_window, start, end)]


def test_poisson_tail_matches_a_direct_sum() -> None:
    for mu in (0.5, 3.0, 5.0, 12.5):
        for x in (0, 1, 3, 8, 15, 30):
            direct = 1.0 - sum(math.exp(-mu) * mu**k / math.factorial(k) for k in range(x))
            assert poisson_sf(x, mu) == pytest.approx(direct, rel=1e-9, abs=1e-15), (x, mu)
    assert poisson_sf(10, 5.0) == pytest.approx(0.031828, rel=1e-4)
    assert poisson_sf(400, 5.0) > 0.0 or poisson_sf(400, 5.0) == 0.0  # no overflow far in the tail
    assert poisson_sf(3, 0.0) == 0.0 and poisson_sf(0, 0.0) == 1.0


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_one_spike_gives_exactly_one_alert_then_one_clear(seed: int) -> None:
    rng = random.Random(seed)
    end = T0 + 5 * HOUR
    spike_start, spike_end = T0 + 3 * HOUR, T0 + 3 * HOUR + 15 * MIN
    arrivals = history(rng, ("billing", "outage", "sales"), T0, end)
    arrivals += poisson_process(rng, "billing", 40.0, spike_start, spike_end)  # ~8x the baseline for 15 min
    detector = SurgeDetector()
    got = replay(detector, arrivals, end)
    assert [kind for kind, _, _ in got] == ["raised", "cleared"], got
    (_, raised_id, raised_at), (_, cleared_id, cleared_at) = got
    assert raised_id == cleared_id
    assert spike_start < raised_at <= spike_start + 10 * MIN  # caught while the spike builds
    assert spike_end < cleared_at <= spike_end + 16 * MIN  # cleared once the window drains


def test_the_raised_alert_names_the_reason_and_the_baseline_stays_frozen() -> None:
    detector = SurgeDetector(id_prefix="n1-")
    arrivals = regular("billing", 180.0, T0, T0 + 2 * HOUR)  # exactly 5 per window
    replay(detector, arrivals, T0 + 2 * HOUR)
    assert detector.stats("billing", T0 + 2 * HOUR).mu == pytest.approx(5.0, abs=0.5)
    spike = regular("billing", 20.0, T0 + 2 * HOUR, T0 + 2 * HOUR + 15 * MIN)
    events: list[AlertRaised | AlertCleared] = []
    for t, reason in spike:
        detector.record(reason, t)
        timer = detector.get_timer()
        if timer is not None and timer <= t:
            events.extend(detector.evaluate(timer))
    raised = [e for e in events if isinstance(e, AlertRaised)]
    assert len(raised) == 1 and raised[0].kind == "surge" and raised[0].alert_id.startswith("n1-surge-")
    assert "'billing'" in raised[0].message
    mu_at_raise = detector.stats("billing", raised[0].at).mu
    later = detector.evaluate(T0 + 2 * HOUR + 15 * MIN + 1)  # a baseline window closes during the alert
    assert not later and detector.active() == {"billing": raised[0].alert_id}
    assert detector.stats("billing", T0 + 2 * HOUR + 15 * MIN).mu == mu_at_raise


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_smaller_rise_raises_nothing(seed: int) -> None:
    rng = random.Random(seed)
    end = T0 + 6 * HOUR
    arrivals = history(rng, ("billing",), T0, T0 + 3 * HOUR)
    arrivals += history(rng, ("billing",), T0 + 3 * HOUR, end, per_window=8.0)  # +60 %: below ratio_min 2
    assert replay(SurgeDetector(), arrivals, end) == []


def test_the_volume_floor_stops_alerts_on_tiny_numbers() -> None:
    detector = SurgeDetector()
    detector.seed_baseline("fax", 1.0, 0.5)
    for i in range(9):
        detector.record("fax", T0 + i * 60.0)
    assert detector.evaluate(T0 + 540.0) == []
    stats = detector.stats("fax", T0 + 540.0)
    assert stats.count == 9 and stats.ratio >= 2 and stats.p_value < 1e-5 and stats.z >= 3  # only the floor stops it
    detector.record("fax", T0 + 545.0)
    (event,) = detector.evaluate(T0 + 600.0)
    assert isinstance(event, AlertRaised) and event.severity is Severity.CRITICAL


def test_cooldown_blocks_a_second_alert_for_30_minutes_after_the_clear() -> None:
    base = regular("billing", 180.0, T0, T0 + 8 * HOUR)
    first = regular("billing", 20.0, T0 + 2 * HOUR, T0 + 2 * HOUR + 15 * MIN)
    probe = replay(SurgeDetector(), base + first, T0 + 3 * HOUR)
    assert [k for k, _, _ in probe] == ["raised", "cleared"]
    cleared_at = probe[1][2]
    second = regular("billing", 20.0, cleared_at, cleared_at + 10 * MIN)  # as big, but inside the cool-down
    third_start = cleared_at + 2 * HOUR
    third = regular("billing", 15.0, third_start, third_start + 15 * MIN)  # after the cool-down
    got = replay(SurgeDetector(), base + first + second + third, T0 + 8 * HOUR)
    assert [k for k, _, _ in got] == ["raised", "cleared", "raised", "cleared"], got
    assert got[:2] == probe
    assert got[2][2] > third_start and got[2][1] != got[0][1]


def test_reasons_are_independent() -> None:
    rng = random.Random(21)
    end = T0 + 5 * HOUR
    arrivals = history(rng, ("billing", "outage", "sales"), T0, end)
    arrivals += poisson_process(rng, "billing", 40.0, T0 + 3 * HOUR, T0 + 3 * HOUR + 15 * MIN)
    arrivals += poisson_process(rng, "outage", 40.0, T0 + 3.5 * HOUR, T0 + 3.5 * HOUR + 15 * MIN)
    detector = SurgeDetector()
    events: list[tuple[str, str, float]] = []
    seen: dict[str, str] = {}
    for t, reason in sorted(arrivals):
        timer = detector.get_timer()
        while timer is not None and timer <= t:
            for e in detector.evaluate(timer):
                if isinstance(e, AlertRaised):
                    seen[e.alert_id] = next(r for r, a in detector.active().items() if a == e.alert_id)
                events.append(("raised" if isinstance(e, AlertRaised) else "cleared", e.alert_id, e.at))
            timer = detector.get_timer()
        detector.record(reason, t)
    assert sorted(seen.values()) == ["billing", "outage"]
    assert [k for k, _, _ in events].count("raised") == 2 and [k for k, _, _ in events].count("cleared") == 2
    billing_id = next(a for a, r in seen.items() if r == "billing")
    billing_cleared = next(at for k, a, at in events if k == "cleared" and a == billing_id)
    outage_raised = next(at for k, a, at in events if k == "raised" and a != billing_id)
    assert billing_cleared < outage_raised + 20 * MIN  # the first clears on its own schedule


def test_severity_warning_and_critical_on_a_seeded_baseline() -> None:
    for count, expected in ((25, Severity.WARNING), (45, Severity.CRITICAL)):
        detector = SurgeDetector()
        detector.seed_baseline("billing", 10.0, 9.0)
        for i in range(count):
            detector.record("billing", T0 + i * (800.0 / count))
        events = detector.evaluate(T0 + 840.0)
        assert len(events) == 1 and isinstance(events[0], AlertRaised), (count, events)
        assert events[0].severity is expected, (count, events[0].message)


def test_z_test_variant_and_warm_up() -> None:
    detector = SurgeDetector(SurgeSettings(test=Significance.Z))
    for i in range(30):  # a new detector has no baseline yet: no alert before warm-up
        detector.record("billing", T0 + i * 20.0)
    assert detector.evaluate(T0 + 600.0) == []
    detector.seed_baseline("billing", 5.0, 4.0)
    (event,) = detector.evaluate(T0 + 610.0)
    assert isinstance(event, AlertRaised)


def test_a_call_is_counted_once_and_the_timer_steps_every_minute() -> None:
    detector = SurgeDetector()
    assert detector.get_timer() is None
    detector.record("billing", T0, call_id="c1")
    detector.record("refund", T0 + 1, call_id="c1")  # the disposition of a call already counted from the IVR
    assert detector.get_timer() == T0 + MIN
    assert detector.stats("billing", T0 + 2).count == 1 and detector.stats("refund", T0 + 2).count == 0
    detector.evaluate(T0 + MIN)
    assert detector.get_timer() == T0 + 2 * MIN
    detector.evaluate(T0 + 5.5 * MIN)  # a late evaluation does not schedule in the past
    assert detector.get_timer() == T0 + 6 * MIN
    with pytest.raises(ValueError):
        detector.seed_baseline("x", -1.0, 0.0)
