"""cti.floor.alerts.thresholds: sustain, clear, cool-down and scope over queue.stats data, stepped by hand."""

from __future__ import annotations

from typing import Any

import pytest

from cti.floor.alerts import AlertCleared, AlertRaised, Comparator, Metric, Severity, ThresholdMonitor, ThresholdRule

T0 = 1_700_000_000.0


def stats(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"queue": "sales", "waiting": 0, "longest_wait_seconds": 0.0, "agents_logged_in": 3,
                            "agents_available": 1, "agents_busy": 2, "offered": 10, "answered": 10, "abandoned": 0,
                            "service_level": 0.9, "window_seconds": 86400}
    data.update(over)
    return data


def run(monitor: ThresholdMonitor, series: list[tuple[float, dict[str, Any]]], queue: str = "sales"
        ) -> list[tuple[str, str, float]]:
    out = []
    for t, data in series:
        for e in monitor.observe(queue, data, T0 + t):
            out.append(("raised" if isinstance(e, AlertRaised) else "cleared", e.kind, e.at - T0))
    return out


def test_longest_wait_must_be_sustained_then_clears_once() -> None:
    monitor = ThresholdMonitor()  # default rules: longest_wait > 60 s sustained 10 s
    series = [(t, stats(waiting=1, longest_wait_seconds=50 + t)) for t in range(0, 40, 2)]  # > 60 from t=12
    series += [(40.0, stats(waiting=0, longest_wait_seconds=0.0))]
    assert run(monitor, series) == [("raised", "threshold:longest_wait", 22.0),
                                    ("cleared", "threshold:longest_wait", 40.0)]


def test_a_blip_shorter_than_sustain_raises_nothing() -> None:
    monitor = ThresholdMonitor()
    series = [(0.0, stats(longest_wait_seconds=70.0, waiting=1)), (2.0, stats(longest_wait_seconds=75.0, waiting=1)),
              (4.0, stats()), (6.0, stats(longest_wait_seconds=70.0, waiting=1)), (14.0, stats())]
    assert run(monitor, series) == []


def test_service_level_below_target_minus_ten_points() -> None:
    monitor = ThresholdMonitor()  # SL < 0.70 for 60 s
    series = [(float(t), stats(service_level=0.65)) for t in range(0, 62, 2)]
    series += [(62.0, stats(service_level=None)), (64.0, stats(service_level=0.69)), (130.0, stats(service_level=0.69))]
    got = run(monitor, series)
    assert got[:2] == [("raised", "threshold:service_level", 60.0), ("cleared", "threshold:service_level", 62.0)]
    assert got[2:] == []  # the cool-down (300 s) stops a re-raise at 130 s


def test_no_agent_ready_while_calls_wait_is_critical() -> None:
    monitor = ThresholdMonitor()
    series = [(float(t), stats(waiting=2, agents_available=0, longest_wait_seconds=5.0)) for t in range(0, 12, 2)]
    events = [e for t, d in series for e in monitor.observe("sales", d, T0 + t)]
    assert len(events) == 1 and isinstance(events[0], AlertRaised)
    assert events[0].kind == "threshold:no_agents_ready" and events[0].severity is Severity.CRITICAL
    assert events[0].queue == "sales" and "sales" in events[0].message
    # nobody waiting with nobody ready is fine
    (cleared,) = monitor.observe("sales", stats(waiting=0, agents_available=0), T0 + 12)
    assert isinstance(cleared, AlertCleared) and cleared.kind == "threshold:no_agents_ready"


def test_a_call_ringing_its_agent_is_not_a_call_without_agents() -> None:
    """One call waiting, its agent ringing (15 s ring timeout): no agent is available, but one is on its way."""
    monitor = ThresholdMonitor()
    ringing = [(float(t), stats(waiting=1, agents_available=0, agents_offering=1)) for t in range(0, 16, 2)]
    assert [e for t, d in ringing for e in monitor.observe("sales", d, T0 + t)] == []
    # a second call with nobody for it does count
    both = [(float(t), stats(waiting=2, agents_available=0, agents_offering=1)) for t in range(16, 28, 2)]
    events = [e for t, d in both for e in monitor.observe("sales", d, T0 + t)]
    assert len(events) == 1 and events[0].kind == "threshold:no_agents_ready"


def test_waiting_count_cooldown_then_raises_again() -> None:
    rule = ThresholdRule(metric=Metric.WAITING, comparator=Comparator.GT, threshold=5, sustain_s=0, cooldown_s=100)
    monitor = ThresholdMonitor((rule,), id_prefix="n1-")
    got = run(monitor, [(0.0, stats(waiting=6)), (2.0, stats(waiting=5)), (50.0, stats(waiting=9)),
                        (102.0, stats(waiting=9)), (104.0, stats(waiting=9))])
    assert got == [("raised", "threshold:waiting", 0.0), ("cleared", "threshold:waiting", 2.0),
                   ("raised", "threshold:waiting", 102.0)]
    assert list(monitor.active()) == [("threshold:waiting", "sales")]
    assert all(a.startswith("n1-threshold-") for a in monitor.active().values())


def test_scope_and_queues_are_independent() -> None:
    rule = ThresholdRule(metric=Metric.WAITING, comparator=Comparator.GE, threshold=3, scope="support")
    monitor = ThresholdMonitor((rule,))
    assert monitor.observe("sales", stats(waiting=10), T0) == []
    (raised,) = monitor.observe("support", stats(queue="support", waiting=3), T0)
    assert isinstance(raised, AlertRaised) and raised.queue == "support"
    wide = ThresholdMonitor((ThresholdRule(metric=Metric.WAITING, comparator=Comparator.GE, threshold=3),))
    a = wide.observe("sales", stats(waiting=3), T0)
    b = wide.observe("support", stats(waiting=3), T0)
    assert len(a) == len(b) == 1 and a[0].alert_id != b[0].alert_id
    (cleared,) = wide.observe("sales", stats(waiting=0), T0 + 2)
    assert isinstance(cleared, AlertCleared) and cleared.alert_id == a[0].alert_id
    assert list(wide.active()) == [("threshold:waiting", "support")]


def test_bad_rule_is_refused() -> None:
    with pytest.raises(ValueError):
        ThresholdRule(metric=Metric.WAITING, comparator=Comparator.GT, threshold=1, sustain_s=-1)
