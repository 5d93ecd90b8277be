"""A whole call through its shell with every port faked (tests/cti/call/fakes.py): no SIP, no sockets, no store.

The caller is answered, the flow queues it, the ACD offers agent 1001, whose phone rings and answers; the call is
bridged and recorded; the caller hangs up; the registry is told once. What each port saw is the call's contract
with the node. A second test pins the ports a REFER uses (transfer targets, settings' queues) and a third the IVR
alert and the voicemail keeping, which go through the event sink and the records port.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from acd import (
    AcdError,
    AgentId,
    Answer,
    CallId,
    CancelOffer,
    CancelReason,
    Enqueue,
    Hangup,
    OfferCall,
    OfferId,
    QueueId,
    Ringing,
)
from config.schema import QueueConfig
from cti.call import LegPhase, Role
from cti.call.detail import CallDetail, CallPhase
from cti.call.ivrchannel import CallIvrChannel, keep_message
from cti.call.legs import HangupCause, LegAnswered, LegEnded, LegReferred, LegRinging, LegState
from cti.call.shell import Call
from cti.voicemail import VoicemailMessage
from ivr import FlowCatalog, RaiseAlert
from sip.message import parse_message
from tests.cti.call.fakes import (
    FakeAcd,
    FakeEvents,
    FakeOwner,
    FakePhones,
    FakeRecords,
    FakeTransfers,
    make_ports,
    settings,
)


class Leg:
    """A SIP leg as the call drives it: state, answers, BYE/CANCEL, the held 200 to a BYE."""

    def __init__(self) -> None:
        self.state = LegState.CALLING
        self.source = cast(Any, type("Source", (), {"transport": "UDP"}))
        self.hold_bye_answer = False
        self.sent: list[str] = []
        self.released: list[int] = []
        self.refers: list[int] = []

    def ringing(self, sdp: bytes = b"") -> None:
        self.sent.append("180")

    def answer(self, sdp: bytes) -> None:
        self.state = LegState.ESTABLISHED
        self.sent.append("200")

    def reject(self, status: int) -> None:
        self.sent.append(str(status))

    def bye(self) -> None:
        self.state = LegState.TERMINATED
        self.sent.append("BYE")

    def cancel(self) -> None:
        self.sent.append("CANCEL")

    def release_bye(self, status: int = 200) -> None:
        self.released.append(status)

    def answer_refer(self, request: object, status: int) -> None:
        self.refers.append(status)


class Recording:
    def __init__(self) -> None:
        self.ran = asyncio.Event()

    async def run(self) -> None:
        self.ran.set()


class Pending:
    """A port opened for an agent's offer, not yet the call's."""

    def __init__(self, media: Media, port: int) -> None:
        self.media, self.port = media, port

    def discard(self) -> None:
        self.media.discarded.append(self.port)


class Media:
    """The call's media as the shell drives it (what was asked, in order)."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.recording: Recording | None = None
        self.recorded_to: Path | None = None
        self.agent: int | None = None  # the port of the agent leg's media, by the order it was opened
        self.opened = 0
        self.discarded: list[int] = []
        self.port_opens = asyncio.Event()  # cleared: opening a port waits (the store or the OS is slow)
        self.port_opens.set()

    async def answer_caller(self, offer: bytes, transport: str, policy: object) -> bytes:
        self.asked.append("answer_caller")
        return b"v=0 (our answer)"

    async def play(self, files: object) -> None:
        self.asked.append("play")

    async def open_agent(self, transport: str, policy: object) -> Pending:
        self.asked.append("open_agent")
        self.opened += 1
        port = self.opened
        await self.port_opens.wait()
        return Pending(self, port)

    def use_agent(self, pending: Pending) -> bytes:
        self.asked.append("use_agent")
        self.agent = pending.port
        return b"v=0 (our offer on port %d)" % pending.port

    def agent_answered(self, sdp: bytes) -> None:
        assert self.agent is not None, "an answer to an offer whose media is gone"
        self.asked.append("agent_answered")

    def bridge(self) -> None:
        self.asked.append("bridge")

    def drop_agent(self) -> None:
        self.asked.append("drop_agent")
        self.agent = None

    async def start_recording(self, directory: Path, info: object) -> None:
        self.recorded_to = directory
        self.recording = Recording()

    async def close(self) -> Path | None:
        self.asked.append("close")
        return Path("rec.wav") if self.recording is not None else None


def _catalog(tmp: Path, flow: str) -> FlowCatalog:
    flows, prompts = tmp / "flows", tmp / "prompts"
    flows.mkdir()
    prompts.mkdir()
    (flows / "f.yaml").write_text(textwrap.dedent(flow))
    catalog = FlowCatalog(flows, prompts)
    catalog.load()
    return catalog


QUEUE_AT_ONCE = """\
    flows:
      direct:
        start: queue
        nodes:
          queue: {type: queue, queue: sales}
    """


def _detail() -> CallDetail:
    return CallDetail(call_id="c-1", sip_call_id="x@y", trunk="carrier", caller="5551234", caller_name="Ann",
                      dialled="100", arrived_at=0.0)


async def _until(check: Callable[[], bool]) -> None:
    """Let the call's tasks run until ``check`` holds (they only await fakes: a few loop turns)."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("the call never got there")


async def test_a_call_runs_end_to_end_on_fake_ports(tmp_path: Path) -> None:
    acd, records, events, owner = FakeAcd(), FakeRecords(), FakeEvents(), FakeOwner()
    agent_leg = Leg()
    phones = FakePhones({"1001": cast(Any, type("Binding", (), {"transport": "UDP"}))}, legs=[agent_leg])
    queues = {"sales": QueueConfig(name="sales")}
    ports = make_ports(acd=acd, records=records, events=events, owner=owner, phones=phones,
                       settings=settings(flows=_catalog(tmp_path, QUEUE_AT_ONCE), queues=queues, data=tmp_path))
    media, trunk = Media(), Leg()
    call = Call(ports, "c-1", _detail(), cast(Any, media))
    call.trunk = cast(Any, trunk)
    running = asyncio.create_task(call.run(b"v=0 (carrier offer)", "direct"))

    await _until(lambda: bool(acd.requests))  # answered, the flow queued the caller
    (enqueue,) = acd.requests
    assert isinstance(enqueue, Enqueue) and enqueue.queue_id == "sales" and call.phase is CallPhase.QUEUED
    assert trunk.sent == ["200"]

    offer = OfferCall(offer_id=OfferId(1), call_id=CallId("c-1"), agent_id=AgentId("1001"),
                      queue_id=QueueId("sales"), ring_timeout_s=15)
    call.on_acd_command(offer)
    await _until(lambda: bool(phones.invites))  # the agent's media opened, its phone INVITEd
    (invite,) = phones.invites
    assert (invite.callee, invite.caller, invite.display, invite.queue) == ("1001", "5551234", "Ann", "sales")
    assert call.detail.recording_serial == "S-0001"  # taken before the phone rings (sales is recorded)

    call.on_leg_event(LegRinging(leg=cast(Any, agent_leg)))
    agent_leg.state = LegState.ESTABLISHED
    call.on_leg_event(LegAnswered(leg=cast(Any, agent_leg), sdp=b"v=0 (phone answer)"))
    assert call.phase is CallPhase.CONNECTED
    assert [type(r) for r in acd.requests] == [Enqueue, Ringing, Answer]
    await _until(lambda: media.recording is not None and media.recording.ran.is_set())
    assert media.recorded_to == tmp_path / "recordings"  # the settings' directory

    call.on_leg_event(LegEnded(leg=cast(Any, trunk), cause=HangupCause.REMOTE_BYE))
    async with asyncio.timeout(5):
        await running
    assert type(acd.requests[-1]) is Hangup
    assert agent_leg.sent == ["BYE"]
    assert media.asked == ["answer_caller", "open_agent", "use_agent", "agent_answered", "bridge", "close"]
    assert owner.finished == [call]  # the registry is told once, at the end
    assert trunk.released == [200] and 200 in agent_leg.released  # the BYEs answered once the CDR committed
    assert call.detail.end_reason and call.detail.hung_up_by == "caller"
    assert call.detail.recording_path == "rec.wav"
    assert len(records.milestones) == 3  # answered, queued, agent answered
    assert events.events == []  # nothing failed, no transfer, no alert: the registry publishes the rest


def _connected(ports: Any) -> tuple[Call, Leg]:
    call = Call(ports, "c-1", _detail(), cast(Any, Media()))
    agent_leg = Leg()
    agent_leg.state = LegState.ESTABLISHED
    call.agent_leg = cast(Any, agent_leg)
    call.detail.agent, call.detail.queue = "1003", "support"
    call.core.phase = CallPhase.CONNECTED
    call.core.legs[Role.AGENT] = LegPhase.ESTABLISHED
    call.core.agent = "1003"
    return call, agent_leg


def _refer(leg: Leg, target: str) -> LegReferred:
    request = parse_message(b"REFER sip:cti@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
                            b"From: <sip:1003@127.0.0.1>;tag=a\r\nTo: <sip:cti@127.0.0.1>;tag=b\r\nCall-ID: r@x\r\n"
                            b"CSeq: 2 REFER\r\nContent-Length: 0\r\n\r\n")
    return LegReferred(leg=cast(Any, leg), target=target, request=cast(Any, request))


@pytest.mark.parametrize(("target", "queue", "agent"), [
    ("sip:sales@127.0.0.1", "sales", None),  # a queue of the settings
    ("sip:1002@127.0.0.1", "support", "1002"),  # not a queue: an agent, through the transfer targets
])
def test_a_refer_asks_the_transfer_targets_and_tells_the_event_sink(target: str, queue: str,
                                                                     agent: str | None) -> None:
    acd, events = FakeAcd(), FakeEvents()
    ports = make_ports(acd=acd, events=events, transfers=FakeTransfers(),
                       settings=settings(queues={"sales": QueueConfig(name="sales")}))
    call, agent_leg = _connected(ports)
    call.on_leg_event(_refer(agent_leg, target))
    assert agent_leg.refers == [202]
    assert [type(r) for r in acd.requests] == [Hangup, Enqueue]
    assert cast(Enqueue, acd.requests[1]).queue_id == queue
    assert events.types() == ["call.transferred"]
    assert events.events[0][1]["to_agent"] == agent and events.events[0][1]["method"] == "refer"


def test_a_refused_requeue_ends_the_call_and_nothing_is_published() -> None:
    acd = FakeAcd()
    ports = make_ports(acd=acd)
    call, agent_leg = _connected(ports)
    acd.refuse = AcdError("queue full")
    call.on_leg_event(_refer(agent_leg, "sip:sales@127.0.0.1"))
    assert agent_leg.refers == [202] and call.phase is CallPhase.ENDED


async def test_ivr_alerts_and_voicemail_go_through_the_event_sink_and_the_records_port() -> None:
    records, events = FakeRecords(), FakeEvents()
    ports = make_ports(records=records, events=events)
    call = Call(ports, "c-1", _detail(), cast(Any, Media()))
    call.detail.queue = "sales"
    channel = CallIvrChannel(call)
    # a VIP is noted only (the alert service raises vip_in_queue at queue entry)
    await channel.raise_alert(RaiseAlert(kind="vip", message="a VIP", caller="5551234"))
    await channel.raise_alert(RaiseAlert(kind="angry", message="caller pressed 0 five times", caller="5551234"))
    assert events.events == [("alert.raised", {"kind": "ivr_angry", "call_id": "c-1", "queue": "sales"})]
    message = VoicemailMessage(id="vm-1", call_id="c-1", mailbox="sales", queue="sales", caller="5551234",
                               started=1.0, duration_s=3.0, path="vm-1.wav")
    await keep_message(ports, message)
    assert records.kept == [message] and events.types()[-1] == "voicemail.left"


async def test_an_offer_withdrawn_while_its_port_opens_leaves_the_next_offers_media_alone(tmp_path: Path) -> None:
    """Offer 1 rings out (CancelOffer: ring timeout) while its port is still being opened, and offer 2 opens its
    own meanwhile; the ports then open in reverse order. Offer 1's port goes back; offer 2's is the agent leg,
    so the answer of offer 2's phone finds its media (the node once dropped it: AssertionError on the answer)."""
    acd = FakeAcd()
    agent_leg = Leg()
    binding = cast(Any, type("Binding", (), {"transport": "UDP"}))
    phones = FakePhones({"1001": binding, "1002": binding}, legs=[agent_leg])
    ports = make_ports(acd=acd, phones=phones, settings=settings(
        flows=_catalog(tmp_path, QUEUE_AT_ONCE), queues={"sales": QueueConfig(name="sales")}, data=tmp_path))
    media, trunk = Media(), Leg()
    call = Call(ports, "c-1", _detail(), cast(Any, media))
    call.trunk = cast(Any, trunk)
    running = asyncio.create_task(call.run(b"v=0 (carrier offer)", "direct"))
    await _until(lambda: bool(acd.requests))

    media.port_opens.clear()
    first = OfferCall(offer_id=OfferId(1), call_id=CallId("c-1"), agent_id=AgentId("1001"),
                      queue_id=QueueId("sales"), ring_timeout_s=15)
    call.on_acd_command(first)
    await _until(lambda: media.opened == 1)
    call.on_acd_command(CancelOffer(offer_id=OfferId(1), call_id=CallId("c-1"), agent_id=AgentId("1001"),
                                    reason=CancelReason.RING_TIMEOUT))
    second = OfferCall(offer_id=OfferId(2), call_id=CallId("c-1"), agent_id=AgentId("1002"),
                       queue_id=QueueId("sales"), ring_timeout_s=15)
    call.on_acd_command(second)
    await _until(lambda: media.opened == 2)
    media.port_opens.set()
    await _until(lambda: bool(phones.invites))

    (invite,) = phones.invites
    assert invite.callee == "1002"
    assert media.discarded == [1] and media.agent == 2  # offer 1's port given back, offer 2's is the agent leg
    call.on_leg_event(LegRinging(leg=cast(Any, agent_leg)))
    agent_leg.state = LegState.ESTABLISHED
    call.on_leg_event(LegAnswered(leg=cast(Any, agent_leg), sdp=b"v=0 (phone answer)"))
    assert call.phase is CallPhase.CONNECTED
    call.on_leg_event(LegEnded(leg=cast(Any, trunk), cause=HangupCause.REMOTE_BYE))
    async with asyncio.timeout(5):
        await running
