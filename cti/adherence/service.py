"""The asyncio adapter of live adherence: the bus in, ``adherence.*`` envelopes out (docs/adherence.md).

:class:`AdherenceService` subscribes to ``agent.state_changed``, feeds :class:`AdherenceTracker` with the injected
clock (UTC epoch seconds), and publishes ``adherence.exception`` / ``adherence.exception_ended`` on the bus (the
WebSocket gateway shows them to the agent's supervisors, the MQTT bridge forwards them). Plans come from the store:
every agent with a schedule entry within a day of now, reloaded every ``reload_s`` and at once after an API change
(:meth:`reload`). An agent's state before its first event is its open row of the agent-state history.
It owns one timer: the loop waits for the next envelope at most until the tracker's timer or the next reload.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from acd import AgentId
from config.schema import AdherenceConfig, ServerConfig
from cti.adherence.calc import DEFAULT_RULES, AdherenceSettings, ToleranceMode, Verdict
from cti.adherence.model import Activity
from cti.adherence.reports import ReportOptions
from cti.adherence.store import ScheduleStore
from cti.adherence.tracker import AdherenceTracker, ExceptionEnded, ExceptionRaised, LiveEvent
from cti.events.bus import Bus, Subscription, SubscriptionClosed
from cti.events.registry import Envelope
from cti.store import Store, StoreError

__all__ = ["AdherenceService", "report_options", "settings_from_config"]

_log = structlog.get_logger(__name__)
PATTERNS = ("agent.state_changed",)
_DAY = 86_400.0


def settings_from_config(config: AdherenceConfig) -> AdherenceSettings:
    """The calculator's settings from the ``adherence`` section (its ``rules`` added to the defaults)."""
    rules = dict(DEFAULT_RULES)
    for rule in config.rules:
        rules[(Activity(rule.activity), rule.state, rule.reason)] = Verdict(rule.verdict)
    return AdherenceSettings(tolerance_s=config.tolerance_min * 60, tolerance_mode=ToleranceMode(config.tolerance_mode),
                             exceptions_count_as_productive=config.exceptions_count_as_productive, rules=rules)


def report_options(config: ServerConfig) -> ReportOptions:
    """The report options of a node's configuration."""
    cfg = config.adherence
    return ReportOptions(zone=config.node.zone, conformance_window=cfg.conformance_window,
                         key_minority_share=cfg.key_minority_share,
                         gaming_session_max_s=cfg.gaming_session_max_min * 60,
                         gaming_repeats=cfg.gaming_repeats, gaming_window_s=cfg.gaming_window_min * 60,
                         sl_thresholds={q.name: q.sl_threshold_s for q in config.queues})


class AdherenceService:
    """Live adherence on one node (see the module docstring)."""

    def __init__(self, bus: Bus, store: Store, node: str, settings: AdherenceSettings | None = None, *,
                 clock: Callable[[], float] = time.time, reload_s: float = 60.0) -> None:
        self.settings = settings or AdherenceSettings()
        self.schedules = ScheduleStore(store)
        self.tracker = AdherenceTracker(self.settings)
        self.store = store
        self._bus = bus
        self._node = node
        self._clock = clock
        self._reload_s = reload_s
        self._next_reload = 0.0
        self._lock = asyncio.Lock()

    def now(self) -> float:
        return self._clock()

    # -- the sans-I/O step, public for tests ------------------------------------------------------------------
    def handle(self, envelope: Envelope, now: float) -> list[Envelope]:
        """Feed one bus envelope to the tracker; publish and return the envelopes that result."""
        data = envelope.data
        agent, state = data.get("agent_id"), data.get("state")
        if envelope.type != "agent.state_changed" or not isinstance(agent, str) or not isinstance(state, str):
            return []
        reason = data.get("reason")
        return self._publish(self.tracker.state_changed(agent, state, reason if isinstance(reason, str) else None,
                                                        now))

    def handle_timer(self, now: float) -> list[Envelope]:
        return self._publish(self.tracker.handle_timer(now))

    def _publish(self, events: list[LiveEvent]) -> list[Envelope]:
        out: list[Envelope] = []
        for event in events:
            data: dict[str, Any]
            match event:
                case ExceptionRaised():
                    _log.info("adherence.exception.raised", agent_id=event.agent_id, activity=event.activity.value,
                              state=event.state, reason=event.reason, out_since=event.out_since)
                    data = {"agent_id": event.agent_id, "activity": event.activity.value, "state": event.state,
                            "reason": event.reason, "out_since": event.out_since,
                            "out_seconds": round(event.at - event.out_since, 3),
                            "tolerance_seconds": event.tolerance_s}
                    envelope = Envelope.new("adherence.exception", data, node=self._node, now=event.at)
                case ExceptionEnded():
                    _log.info("adherence.exception.ended", agent_id=event.agent_id, out_since=event.out_since)
                    data = {"agent_id": event.agent_id, "out_since": event.out_since,
                            "out_seconds": round(event.at - event.out_since, 3), "verdict": event.verdict.value}
                    envelope = Envelope.new("adherence.exception_ended", data, node=self._node, now=event.at)
            self._bus.publish(envelope)
            out.append(envelope)
        return out

    # -- plans from the store ---------------------------------------------------------------------------------
    async def reload(self) -> list[Envelope]:
        """Load every plan around now from the store and re-judge (after an import or an edit, and periodically).

        Raises:
            StoreError: the store failed (the previous plans stay).
        """
        async with self._lock:
            now = self._clock()
            entries = await self.schedules.entries_between(now - _DAY, now + _DAY)
            exceptions = await self.schedules.exceptions_between(now - _DAY, now + _DAY)
            agents = sorted({e.agent_id for e in entries} | set(self.tracker.agents))
            first_states = {}
            for agent in agents:
                if agent not in self.tracker.agents:
                    row = await self.store.current_agent_state(AgentId(agent))
                    if row is not None:
                        first_states[agent] = (row.state.value, row.reason)
            now = self._clock()
            events: list[LiveEvent] = []
            for agent in agents:
                if agent in first_states:
                    events += self.tracker.state_changed(agent, *first_states[agent], now)
                events += self.tracker.set_plan(agent, [e for e in entries if e.agent_id == agent],
                                                [x for x in exceptions if x.agent_id == agent], now)
            self._next_reload = now + self._reload_s
            return self._publish(events)

    # -- the asyncio loop -------------------------------------------------------------------------------------
    def subscribe(self) -> Subscription:
        """The bus subscription :meth:`run` reads (subscribe before the producers start to miss nothing)."""
        return self._bus.subscribe(PATTERNS, maxsize=10_000, name="adherence")

    async def run(self, subscription: Subscription | None = None) -> None:
        """Consume the bus until cancelled or the subscription closes; the subscription is closed on exit."""
        sub = subscription or self.subscribe()
        _log.info("adherence.service.started", node=self._node)
        try:
            while True:
                now = self._clock()
                if now >= self._next_reload:
                    try:
                        await self.reload()
                    except StoreError:
                        _log.exception("adherence.plans.reload_failed")
                        self._next_reload = now + self._reload_s
                    continue
                timer = self.tracker.get_timer(now)
                if timer is not None and timer <= now:
                    self.handle_timer(now)
                    continue
                try:
                    envelope = sub.get_nowait()  # a busy node: no timeout object (and timer handle) per event
                except asyncio.QueueEmpty:
                    wake = self._next_reload if timer is None else min(timer, self._next_reload)
                    try:
                        async with asyncio.timeout(max(0.0, wake - now)):
                            envelope = await sub.get()
                    except TimeoutError:
                        continue
                try:
                    self.handle(envelope, self._clock())
                except (KeyError, TypeError, ValueError):  # one malformed event must not stop the tracker
                    _log.exception("adherence.event.rejected", type=envelope.type, event_id=envelope.id)
        except SubscriptionClosed:
            pass
        finally:
            sub.close()
            _log.info("adherence.service.stopped", node=self._node)
