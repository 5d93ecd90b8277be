"""What the ACD's facts become outside it: log lines, stored agent states and queue legs, events.

:class:`AcdEventPublisher` takes every :class:`acd.AcdEvent` (in the router's order, from the
ACD adapter's outbox), writes it to the records (agent-state history, queue legs), publishes
``agent.state_changed``, ``call.queued``, ``call.offered``, ``call.answered``, ``call.abandoned``, ``call.flowed_out``
(docs/events.md), and keeps ``queue.stats`` fresh: changes within :data:`STATS_COALESCE_S` share one
event, and every queue gets one at least every :data:`STATS_PERIOD` seconds (``run_stats``).
Times are converted once, from the ACD's monotonic readings to wall time, by the node's clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import structlog

from acd import (
    AcdEvent,
    AgentState,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallExited,
    CallId,
    CallOffered,
    CallQueued,
    QueueId,
    Router,
)
from cti.events.publish import Publisher, queue_stats_data

if TYPE_CHECKING:
    from cti.call.shell import Call
    from cti.clock import NodeClock
    from cti.node.records import CallRecords

log = structlog.get_logger(__name__)
STATS_PERIOD = 2.0
STATS_COALESCE_S = 0.25


class AcdEventPublisher:
    """The ACD's events to records and subscribers; ``queue.stats`` coalesced."""

    def __init__(self, router: Router, publisher: Publisher, records: CallRecords, clock: NodeClock,
                 calls: Callable[[CallId], Call | None], queues: Iterable[str]) -> None:
        self.router = router
        self.publisher = publisher
        self.records = records
        self.clock = clock
        self._call = calls
        self.queues = tuple(queues)
        self.state_since: dict[str, float] = {}  # agent -> wall time of its current state
        self.wrap_up_s: dict[str, float | None] = {}  # agent -> wrap-up length of its current state (None: none)
        self._stats_dirty: set[str] = set()

    async def run_stats(self) -> None:
        """``queue.stats`` for every queue at least every STATS_PERIOD seconds, until cancelled."""
        while True:
            await asyncio.sleep(STATS_PERIOD)
            for queue in self.queues:
                self.publish_queue_stats(queue)

    def stats_changed(self, queue: str) -> None:
        """Publish the queue's stats soon: changes within STATS_COALESCE_S share one event (a busy
        queue changes hundreds of times a second; wallboards need a fresh figure, not each step)."""
        if not self._stats_dirty:
            asyncio.get_running_loop().call_later(STATS_COALESCE_S, self._flush_stats)
        self._stats_dirty.add(queue)

    def _flush_stats(self) -> None:
        dirty, self._stats_dirty = self._stats_dirty, set()
        for queue in dirty:
            self.publish_queue_stats(queue)

    def publish_queue_stats(self, queue: str) -> None:
        self.publisher.publish("queue.stats", self.queue_stats_data(queue))

    def queue_stats_data(self, queue: str) -> dict[str, Any]:
        snap = self.router.queue_stats(QueueId(queue), self.clock.monotonic())
        logged_in = sum(n for state, n in snap.agents_by_state.items() if state is not AgentState.LOGGED_OUT)
        return queue_stats_data(snap, logged_in)

    def on_acd_event(self, event: AcdEvent) -> None:
        wall = self.clock.wall(event.at)
        self.records.on_acd_event(event, wall)
        match event:
            case AgentStateChanged():
                log.info("acd.agent.state_changed", agent=event.agent_id, state=event.state.name,
                         reason=event.reason, previous=event.previous.name)
                self.publisher.agent_state(event)
                self.state_since[event.agent_id] = wall
                self.wrap_up_s[event.agent_id] = event.wrap_up_s
            case CallQueued():
                log.info("acd.call.queued", call_id=event.call_id, queue=event.queue_id, priority=event.priority)
                call = self._call(event.call_id)
                if call is not None:
                    position = self.router.position(event.call_id, event.at).position
                    self.publisher.call_queued(call.detail, position)
                    if call.detail.reason:
                        self.publisher.call_reason(call.id, call.detail.reason, "ivr")
                self.stats_changed(event.queue_id)
            case CallOffered():
                log.info("acd.call.offered", call_id=event.call_id, agent=event.agent_id)
                offered = self._call(event.call_id)
                if offered is not None:
                    now = self.clock.wall()
                    waited = now - (offered.detail.queued_at or now)
                    self.publisher.call_offered(offered.detail, event.agent_id, event.queue_id, waited,
                                                offered.variables)
            case CallAnswered():
                log.info("acd.call.answered", call_id=event.call_id, agent=event.agent_id, wait_s=event.wait_s)
                answered = self._call(event.call_id)
                if answered is not None:
                    self.publisher.call_answered(answered.detail, event.agent_id, event.queue_id, event.wait_s)
                self.stats_changed(event.queue_id)
            case CallAbandoned():
                log.info("acd.call.abandoned", call_id=event.call_id, wait_s=event.wait_s)
                gone = self._call(event.call_id)
                self.publisher.call_abandoned(gone.detail if gone else None, event.call_id, event.queue_id,
                                              event.wait_s)
                self.stats_changed(event.queue_id)
            case CallExited():
                log.info("acd.call.exited", call_id=event.call_id, reason=event.reason.value, target=event.target)
                # The target is the flow the caller goes on in for every exit the node configures (overflow
                # to_flow/voicemail, on_max_wait, on_full); the router's own exits (caller_exit) name none.
                self.publisher.call_flowed_out(event.call_id, event.queue_id, event.reason.value, event.wait_s,
                                               event.target)
                self.stats_changed(event.queue_id)
            case _:
                log.debug("acd.event.seen", kind=type(event).__name__)
