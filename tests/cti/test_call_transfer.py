"""Call.transfer: the agent is released, the caller queued again (for one agent when named), and
``call.transferred`` is published before the new queue leg's events."""

from __future__ import annotations

from typing import Any, cast

from acd import Enqueue, Hangup, SkillRequirement
from cti.call import LegPhase, Role
from cti.call.detail import CallDetail, CallPhase
from cti.call.shell import Call, Transfer
from cti.clock import NodeClock
from cti.events.publish import Publisher
from cti.events.registry import Envelope, validate
from tests.cti.call.fakes import make_ports


class Bus:
    def __init__(self) -> None:
        self.events: list[Envelope] = []

    def publish(self, envelope: Envelope) -> None:
        self.events.append(envelope)


class Acd:
    def __init__(self) -> None:
        self.requests: list[object] = []

    def handle(self, request: object) -> None:
        self.requests.append(request)


class Media:
    def drop_agent(self) -> None:
        pass


class Records:
    def __init__(self) -> None:
        self.milestones: list[str] = []

    def milestone(self, call_id: str, detail: CallDetail) -> None:
        self.milestones.append(call_id)


class Controller:
    def __init__(self) -> None:
        self.bus = Bus()
        self.publisher = Publisher(cast(Any, self.bus), "node-a", clock=lambda: 1_700_000_000.0)
        self.acd = Acd()
        self.records = Records()
        self.clock = NodeClock(monotonic=lambda: 100.0, wall=lambda: 1_700_000_000.0)


def _call(controller: Controller) -> Call:
    detail = CallDetail(call_id="c-1", sip_call_id="x@y", trunk="carrier", caller="5551234", caller_name="",
                        dialled="100", arrived_at=0.0)
    detail.agent, detail.queue = "1003", "support"
    call = Call(make_ports(events=controller.publisher, acd=controller.acd, records=controller.records,
                           clock=controller.clock), "c-1", detail, cast(Any, Media()))
    # connected to agent 1003 (the core's state, as the offer and answer would leave it)
    call.core.phase = CallPhase.CONNECTED
    call.core.legs[Role.AGENT] = LegPhase.ESTABLISHED
    call.core.agent = "1003"
    return call


def test_a_transfer_to_an_agent_requires_its_personal_skill_and_is_published() -> None:
    controller = Controller()
    call = _call(controller)
    call.transfer(Transfer(queue="support", agent="1002"), method="refer")
    hangup, enqueue = controller.acd.requests
    assert isinstance(hangup, Hangup) and isinstance(enqueue, Enqueue)
    assert enqueue.queue_id == "support"
    assert enqueue.skills == (SkillRequirement(skill=cast(Any, "agent:1002"), min_level=1),)
    assert call.phase is CallPhase.QUEUED
    assert controller.records.milestones == ["c-1"]  # the new queue leg is recorded
    (event,) = controller.bus.events
    validate(event, strict=True)
    assert event.type == "call.transferred"
    assert event.data == {"call_id": "c-1", "agent_id": "1003", "queue": "support", "to_agent": "1002",
                          "method": "refer"}


def test_a_transfer_to_a_queue_requires_no_extra_skill() -> None:
    controller = Controller()
    call = _call(controller)
    call.transfer(Transfer(queue="sales"))
    enqueue = controller.acd.requests[1]
    assert isinstance(enqueue, Enqueue) and enqueue.queue_id == "sales" and enqueue.skills == ()
    (event,) = controller.bus.events
    validate(event, strict=True)
    assert event.data["to_agent"] is None and event.data["method"] == "desktop"
