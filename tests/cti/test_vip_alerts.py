"""cti.floor.alerts.vip (stepped by hand) and the AlertService adapter on a real bus."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cti.events.bus import Bus
from cti.events.registry import Envelope
from cti.floor.alerts import AlertCleared, AlertRaised, AlertService, AlertSettings, Severity, VipSettings, VipWatch

T0 = 1_700_000_000.0


def kinds(events: list[AlertRaised | AlertCleared]) -> list[tuple[str, str]]:
    return [("raised" if isinstance(e, AlertRaised) else "cleared", e.kind) for e in events]


def test_vip_alert_at_once_then_cleared_on_answer() -> None:
    watch = VipWatch()
    (raised,) = watch.call_queued("c1", "sales", T0)
    assert isinstance(raised, AlertRaised)
    assert (raised.kind, raised.severity, raised.queue, raised.call_id, raised.at) == (
        "vip_in_queue", Severity.WARNING, "sales", "c1", T0)
    assert watch.get_timer() == T0 + 10.0  # vip_wait_alert_s = T/2
    assert watch.handle_timer(T0 + 9.9) == []
    (cleared,) = watch.call_answered("c1", T0 + 5)
    assert isinstance(cleared, AlertCleared) and cleared.alert_id == raised.alert_id and cleared.reason == "answered"
    assert watch.get_timer() is None and watch.call_answered("c1", T0 + 6) == []


def test_escalation_on_a_long_wait_then_both_clear_on_answer() -> None:
    watch = VipWatch(VipSettings(vip_wait_alert_s=8.0))
    watch.call_queued("c1", "sales", T0)
    assert watch.call_queued("c1", "vip", T0 + 3) == []  # re-queued: same alert, same entry time
    escalated = watch.handle_timer(T0 + 8.0)
    assert kinds(escalated) == [("raised", "vip_wait")]
    assert isinstance(escalated[0], AlertRaised) and escalated[0].severity is Severity.CRITICAL
    assert escalated[0].queue == "vip" and watch.get_timer() is None
    assert watch.handle_timer(T0 + 20) == []  # escalates once
    assert kinds(watch.call_answered("c1", T0 + 21)) == [("cleared", "vip_in_queue"), ("cleared", "vip_wait")]


def test_abandon_escalates_and_the_abandon_alert_expires() -> None:
    watch = VipWatch()
    watch.call_queued("c1", "sales", T0)
    events = watch.call_abandoned("c1", T0 + 4)
    assert kinds(events) == [("cleared", "vip_in_queue"), ("raised", "vip_abandoned")]
    abandoned = events[1]
    assert isinstance(abandoned, AlertRaised) and abandoned.severity is Severity.CRITICAL
    assert watch.get_timer() == T0 + 4 + 300.0
    (expired,) = watch.handle_timer(T0 + 304)
    assert isinstance(expired, AlertCleared) and expired.alert_id == abandoned.alert_id
    assert expired.reason == "expired"
    assert watch.call_abandoned("c9", T0) == []  # not a VIP


def test_a_call_ending_without_answer_clears() -> None:
    watch = VipWatch()
    watch.call_queued("c1", "sales", T0)
    assert kinds(watch.call_ended("c1", T0 + 2)) == [("cleared", "vip_in_queue")]
    assert watch.waiting() == []


def env(type_: str, now: float, **data: Any) -> Envelope:
    return Envelope.new(type_, data, node="t", now=now)


def test_service_maps_bus_events_to_alert_envelopes() -> None:
    bus = Bus(validate_schemas=True)
    out = bus.subscribe("alert.*")
    service = AlertService(bus, "n1", clock=lambda: T0)
    service.handle(env("call.queued", T0, call_id="c1", queue="sales", priority=0, position=1, vip=False), T0)
    service.handle(env("call.queued", T0, call_id="c2", queue="sales", priority=5, position=1, vip=True), T0)
    raised = out.get_nowait()
    assert raised.type == "alert.raised" and raised.node == "n1" and raised.ts == T0
    assert raised.data["kind"] == "vip_in_queue" and raised.data["call_id"] == "c2"
    assert raised.data["severity"] == "warning" and raised.data["agent_id"] is None
    assert service.get_timer() == T0 + 10.0
    (wait,) = service.handle_timer(T0 + 10.0)
    assert wait.data["kind"] == "vip_wait" and wait.data["severity"] == "critical"
    service.handle(env("call.answered", T0 + 11, call_id="c2", agent_id="a1", queue="sales", wait_seconds=11.0,
                       recording_serial=None), T0 + 11)
    cleared = [out.get_nowait(), out.get_nowait(), out.get_nowait()][1:]
    assert [(c.type, c.data["kind"], c.data["reason"]) for c in cleared] == [
        ("alert.cleared", "vip_in_queue", "answered"), ("alert.cleared", "vip_wait", "answered")]
    assert service.active == {}
    stats = {"queue": "sales", "waiting": 2, "longest_wait_seconds": 3.0, "agents_logged_in": 1, "agents_available": 0,
             "agents_busy": 1, "agents_offering": 0, "offered": 1, "answered": 1, "abandoned": 0, "service_level": None,
             "window_seconds": 86400}
    for t in range(0, 12, 2):
        service.handle(env("queue.stats", T0 + t, **stats), T0 + 20 + t)
    assert out.get_nowait().data["kind"] == "threshold:no_agents_ready"
    service.handle(env("call.reason", T0, call_id="c3", reason="billing", source="ivr"), T0 + 40)
    assert service.surge.stats("billing", T0 + 41).count == 1


async def test_service_loop_raises_and_escalates_on_its_timer() -> None:
    bus = Bus(validate_schemas=True)
    out = bus.subscribe("alert.*")
    clock = {"now": T0}
    service = AlertService(bus, "n1", AlertSettings(vip=VipSettings(vip_wait_alert_s=0.05)),
                           clock=lambda: clock["now"])
    task = asyncio.get_running_loop().create_task(service.run(), name="alerts-test")
    try:
        await asyncio.sleep(0)
        bus.publish(env("call.queued", T0, call_id="c1", queue="sales", priority=0, position=1, vip=True,
                        caller_number="5550100"))
        async with asyncio.timeout(1.0):
            first = await out.get()
        assert first.data["kind"] == "vip_in_queue"
        clock["now"] = T0 + 0.06
        async with asyncio.timeout(1.0):
            second = await out.get()
        assert second.data["kind"] == "vip_wait"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert bus.stats().subscriptions == 1  # the service's own subscription was closed
