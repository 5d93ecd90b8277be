"""The asyncio adapter of the alerting cores (domain.md §5.1–5.3, docs/alerts.md).

:class:`AlertService` subscribes to ``call.*`` and ``queue.stats`` on the bus, feeds :class:`VipWatch`,
:class:`SurgeDetector` and :class:`ThresholdMonitor` with the wall clock (UTC epoch seconds), and publishes
``alert.raised`` / ``alert.cleared`` envelopes on the same bus. It owns one timer: the loop waits for the next
envelope at most until the earliest core timer. Inputs:

- ``call.queued`` with ``vip: true`` → VIP watch; ``call.answered``, ``call.abandoned``, ``call.ended`` → VIP watch;
- ``call.reason`` (``{call_id, reason, source}``) → surge detector (the first reason of a call counts);
- ``queue.stats`` → threshold rules.

``call.ended``'s ``reason`` is the hang-up cause, never the call reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from cti.events.bus import Bus, Subscription, SubscriptionClosed
from cti.events.registry import Envelope
from cti.floor.alerts.events import AlertCleared, AlertRaised
from cti.floor.alerts.surge import SurgeDetector, SurgeSettings
from cti.floor.alerts.thresholds import ThresholdMonitor, ThresholdRule, default_rules
from cti.floor.alerts.vip import VipSettings, VipWatch

__all__ = ["AlertService", "AlertSettings"]

_log = structlog.get_logger(__name__)

PATTERNS = ("call.*", "queue.stats")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSettings:
    """Everything the integrator maps from configuration; defaults are domain.md §6."""

    enabled: bool = True
    vip: VipSettings = field(default_factory=VipSettings)
    surge: SurgeSettings = field(default_factory=SurgeSettings)
    thresholds: tuple[ThresholdRule, ...] = field(default_factory=default_rules)
    subscription_size: int = 10_000


class AlertService:
    """Runs the three alert cores on one node. ``clock`` gives UTC epoch seconds."""

    def __init__(self, bus: Bus, node: str, settings: AlertSettings | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings or AlertSettings()
        self._bus = bus
        self._node = node
        self._clock = clock
        prefix = f"{node}-{int(clock() * 1000):x}-"
        self.vip = VipWatch(self.settings.vip, id_prefix=prefix)
        self.surge = SurgeDetector(self.settings.surge, id_prefix=prefix)
        self.thresholds = ThresholdMonitor(self.settings.thresholds, id_prefix=prefix)
        self.active: dict[str, AlertRaised] = {}

    # -- the sans-I/O step, public for tests ------------------------------------------------------------------
    def handle(self, envelope: Envelope, now: float) -> list[Envelope]:
        """Feed one bus envelope to the cores; publish and return the alert envelopes that result."""
        data = envelope.data
        call_id = data.get("call_id")
        events: list[AlertRaised | AlertCleared] = []
        match envelope.type:
            case "call.queued" if data.get("vip") is True and isinstance(call_id, str):
                events = self.vip.call_queued(call_id, str(data.get("queue") or ""), now)
            case "call.answered" if isinstance(call_id, str):
                events = self.vip.call_answered(call_id, now)
            case "call.abandoned" if isinstance(call_id, str):
                events = self.vip.call_abandoned(call_id, now)
            case "call.ended" if isinstance(call_id, str):
                events = self.vip.call_ended(call_id, now)
            case "call.reason" if isinstance(data.get("reason"), str):
                self.surge.record(data["reason"], now, call_id=call_id if isinstance(call_id, str) else None)
            case "queue.stats" if isinstance(data.get("queue"), str):
                events = self.thresholds.observe(data["queue"], data, now)
            case _:
                pass
        return self._publish(events)

    def get_timer(self) -> float | None:
        """The earliest timer of the cores."""
        timers = [t for t in (self.vip.get_timer(), self.surge.get_timer()) if t is not None]
        return min(timers, default=None)

    def handle_timer(self, now: float) -> list[Envelope]:
        """Run the cores' due timers; publish and return the alert envelopes that result."""
        events: list[AlertRaised | AlertCleared] = []
        vip_timer, surge_timer = self.vip.get_timer(), self.surge.get_timer()
        if vip_timer is not None and vip_timer <= now:
            events.extend(self.vip.handle_timer(now))
        if surge_timer is not None and surge_timer <= now:
            events.extend(self.surge.handle_timer(now))
        return self._publish(events)

    def _publish(self, events: list[AlertRaised | AlertCleared]) -> list[Envelope]:
        out: list[Envelope] = []
        for event in events:
            match event:
                case AlertRaised():
                    self.active[event.alert_id] = event
                    _log.warning("alert.alert.raised", alert_id=event.alert_id, kind=event.kind,
                                 severity=event.severity.value, queue=event.queue, call_id=event.call_id)
                    envelope = Envelope.new("alert.raised", {
                        "alert_id": event.alert_id, "kind": event.kind, "severity": event.severity.value,
                        "message": event.message, "queue": event.queue, "call_id": event.call_id,
                        "agent_id": event.agent_id}, node=self._node, now=event.at)
                case AlertCleared():
                    self.active.pop(event.alert_id, None)
                    _log.info("alert.alert.cleared", alert_id=event.alert_id, kind=event.kind, reason=event.reason)
                    envelope = Envelope.new("alert.cleared", {
                        "alert_id": event.alert_id, "kind": event.kind, "reason": event.reason},
                        node=self._node, now=event.at)
            out.append(self._bus.publish(envelope))
        return out

    # -- the asyncio loop -------------------------------------------------------------------------------------
    def subscribe(self) -> Subscription:
        """The bus subscription :meth:`run` reads (subscribe before the producers start to miss nothing)."""
        return self._bus.subscribe(PATTERNS, maxsize=self.settings.subscription_size, name="alerts")

    async def run(self, subscription: Subscription | None = None) -> None:
        """Consume the bus until cancelled or the subscription closes; the subscription is closed on exit."""
        sub = subscription or self.subscribe()
        _log.info("alert.service.started", node=self._node)
        try:
            while True:
                timer = self.get_timer()
                if timer is not None and timer <= self._clock():
                    self.handle_timer(self._clock())
                    continue
                try:
                    envelope = sub.get_nowait()  # a busy node: no timeout object per event
                except asyncio.QueueEmpty:
                    delay = None if timer is None else max(0.0, timer - self._clock())
                    try:
                        async with asyncio.timeout(delay):
                            envelope = await sub.get()
                    except TimeoutError:
                        self.handle_timer(self._clock())
                        continue
                try:
                    self.handle(envelope, self._clock())
                except (KeyError, TypeError, ValueError):  # one malformed event must not stop alerting
                    _log.exception("alert.event.rejected", type=envelope.type, event_id=envelope.id)
        except SubscriptionClosed:
            pass
        finally:
            sub.close()
            _log.info("alert.service.stopped", node=self._node)
