"""Internal facts → public events: the one place that builds envelopes (docs/events.md).

Internal events (ACD, call details) are never serialised directly; this module maps them to the
versioned schemas of :mod:`cti.events.registry` and publishes them on the bus, from where the WebSocket
gateway, the webhooks outbox and the MQTT bridge take them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from acd import AgentState, AgentStateChanged, QueueSnapshot
from cti.events.bus import Bus
from cti.events.registry import Envelope
from cti.ids import AgentId, CallId
from ivr import InputRecord

if TYPE_CHECKING:
    from cti.call.shell import CallDetail
    from cti.store import CallRecord

_BUSY = (AgentState.RESERVED, AgentState.RINGING, AgentState.ON_CALL, AgentState.HELD, AgentState.WRAP_UP)


class Publisher:
    """Builds and publishes envelopes for one node; ``clock`` gives UTC epoch seconds."""

    def __init__(self, bus: Bus, node: str, *, clock: Callable[[], float] = time.time) -> None:
        self.bus = bus
        self.node = node
        self._clock = clock
        # Where durable events (cti.node.records.DURABLE_EVENTS) also go: the record writer, which puts them
        # in the webhook outbox in the transaction of the record change that caused them.
        self.durable: Callable[[Envelope], None] | None = None

    def publish(self, type_: str, data: Mapping[str, Any], *, durable: bool = True) -> Envelope:
        """Publish on the bus; with ``durable`` (the default) hand durable types to the record writer
        too. ``durable=False``: the caller writes the event's outbox rows itself (``call.ended``)."""
        envelope = self.bus.publish(Envelope.new(type_, data, node=self.node, now=self._clock()))
        if durable and self.durable is not None:
            self.durable(envelope)  # after the bus: the outbox copy carries the seq too
        return envelope

    def agent_state(self, event: AgentStateChanged) -> None:
        self.publish("agent.state_changed", {
            "agent_id": event.agent_id, "state": event.state.value, "previous_state": event.previous.value,
            "reason": event.reason, "call_id": event.call_id, "wrap_up_s": event.wrap_up_s,
        })

    def call_arrived(self, detail: CallDetail) -> None:
        self.publish("call.arrived", {
            "call_id": detail.call_id, "caller_number": detail.caller,
            "caller_name": detail.caller_name or None, "dialled_number": detail.dialled, "trunk": detail.trunk,
        })

    def call_queued(self, detail: CallDetail, position: int) -> None:
        self.publish("call.queued", {
            "call_id": detail.call_id, "queue": detail.queue or "", "priority": detail.priority,
            "position": position, "vip": detail.vip, "caller_number": detail.caller,
        })

    def call_offered(self, detail: CallDetail, agent_id: AgentId, queue: str, wait_s: float,
                     variables: Mapping[str, Any]) -> None:
        """The screen pop: who calls, what they pressed, what the CRM said, VIP, recording serial."""
        crm: dict[str, Any] = {}
        for lookup in detail.crm:
            if lookup.get("ok"):
                crm.update(lookup.get("result") or {})
        self.publish("call.offered", {
            "call_id": detail.call_id, "agent_id": agent_id, "queue": queue,
            "caller_number": detail.caller, "caller_name": detail.caller_name or None,
            "dialled_number": detail.dialled, "wait_seconds": round(wait_s, 3),
            "ivr_inputs": {k: v for k, v in variables.items() if isinstance(v, str | int | float | bool)},
            "crm": crm, "vip": detail.vip, "recording_serial": detail.recording_serial,
        })

    def call_ivr_input(self, call_id: CallId, record: InputRecord) -> None:
        """One answer of the caller at a menu or collect node (also the wrong and the missing ones)."""
        self.publish("call.ivr_input", {"call_id": call_id, "flow": record.flow, "node": record.node,
                                        "digits": record.digits, "result": record.result.value})

    def call_reason(self, call_id: CallId, reason: str, source: str) -> None:
        """Why the caller called (IVR choice or the agent's wrap-up code): the surge detector counts these."""
        self.publish("call.reason", {"call_id": call_id, "reason": reason, "source": source})

    def call_answered(self, detail: CallDetail, agent_id: AgentId, queue: str, wait_s: float) -> None:
        self.publish("call.answered", {
            "call_id": detail.call_id, "agent_id": agent_id, "queue": queue, "wait_seconds": round(wait_s, 3),
            "recording_serial": detail.recording_serial,
        })

    def call_transferred(self, call_id: CallId, agent_id: str, queue: str, to_agent: str | None, method: str) -> None:
        self.publish("call.transferred", {"call_id": call_id, "agent_id": agent_id, "queue": queue,
                                          "to_agent": to_agent, "method": method})

    def call_abandoned(self, detail: CallDetail | None, call_id: CallId, queue: str, wait_s: float) -> None:
        self.publish("call.abandoned", {"call_id": call_id, "queue": queue, "wait_seconds": round(wait_s, 3),
                                        "position": None})

    def call_flowed_out(self, call_id: CallId, queue: str, reason: str, wait_s: float, flow: str | None) -> None:
        self.publish("call.flowed_out", {"call_id": call_id, "queue": queue, "reason": reason,
                                         "wait_seconds": round(wait_s, 3), "flow": flow})

    def call_ended(self, detail: CallDetail) -> Envelope:
        """``call.ended``, on the bus only: its outbox rows go with the final CDR (the caller writes them)."""
        ended = detail.ended_at or self._clock()
        talk = ended - detail.agent_answered_at if detail.agent_answered_at else None
        return self.publish("call.ended", {
            "call_id": detail.call_id, "reason": detail.end_reason or "ended",
            "duration_seconds": round(max(0.0, ended - detail.arrived_at), 3),
            "talk_seconds": round(talk, 3) if talk is not None else None, "agent_id": detail.agent,
            "queue": detail.queue, "recording_serial": detail.recording_serial,
        }, durable=False)

    def interrupted_call_ended(self, record: CallRecord) -> Envelope:
        """``call.ended`` of a call a crash left open (built, not published: it enters the outbox with
        the record that closes it, and the bus once that is committed)."""
        assert record.t_ended is not None
        talk = record.t_ended - record.t_answered if record.t_answered is not None else None
        return Envelope.new("call.ended", {
            "call_id": record.call_id, "reason": record.end_reason or "interrupted",
            "duration_seconds": round(max(0.0, record.t_ended - record.t_arrived), 3),
            "talk_seconds": round(talk, 3) if talk is not None else None, "agent_id": record.final_agent,
            "queue": record.final_queue, "recording_serial": record.recording_serial,
        }, node=self.node, now=self._clock())

    def call_failed(self, detail: CallDetail, where: str, error: str, phase: str) -> None:
        """An internal error ended this call (the node goes on); ``call.ended`` follows."""
        self.publish("call.failed", {"call_id": detail.call_id, "phase": phase, "where": where,
                                     "error": error[:300]})

    def alert(self, alert_id: str, kind: str, severity: str, message: str, *, queue: str | None = None,
              call_id: CallId | None = None, agent_id: AgentId | None = None) -> None:
        self.publish("alert.raised", {"alert_id": alert_id, "kind": kind, "severity": severity, "message": message,
                                      "queue": queue, "call_id": call_id, "agent_id": agent_id})

    def queue_stats(self, snap: QueueSnapshot, logged_in: int) -> None:
        self.publish("queue.stats", queue_stats_data(snap, logged_in))


def queue_stats_data(snap: QueueSnapshot, logged_in: int) -> dict[str, Any]:
    """The data of a ``queue.stats`` event (also what the API and the gateway show for a queue)."""
    by_state = snap.agents_by_state
    return {
        "queue": snap.queue_id, "waiting": snap.waiting, "longest_wait_seconds": round(snap.longest_wait_s, 3),
        "agents_logged_in": logged_in, "agents_available": by_state.get(AgentState.AVAILABLE, 0),
        "agents_busy": sum(by_state.get(s, 0) for s in _BUSY),
        "agents_offering": by_state.get(AgentState.RESERVED, 0) + by_state.get(AgentState.RINGING, 0),
        "offered": snap.today.answered + snap.today.abandoned + snap.today.flowouts,
        "answered": snap.today.answered, "abandoned": snap.today.abandoned,
        "service_level": snap.today_service_level,
        "asa_seconds": None if snap.asa_s is None else round(snap.asa_s, 3),
        "window_seconds": max(0, int(snap.at - snap.day_start)),  # the site's day so far
    }
