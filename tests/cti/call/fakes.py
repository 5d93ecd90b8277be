"""Small fakes of a call's ports (cti/call/ports.py): each a few lines that record what the call asked.

``make_ports(...)`` builds the :class:`~cti.call.ports.CallPorts` bundle from these, with any port replaced
by the test's own; a test fakes only the concern it looks at.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acd import AcdError, AcdRequest, CallId
from config.schema import QueueConfig
from cti.call.detail import CallDetail
from cti.call.legs import LegOwner, OutboundLeg
from cti.call.ports import CallPorts, CallSettings, Transfer
from cti.call.srtp import SrtpPolicy
from cti.call.useragent import PhoneInvite
from cti.clock import NodeClock
from cti.events.registry import Envelope
from cti.voicemail import VoicemailMessage
from ivr import FlowCatalog, InputRecord
from sip.registrar import Binding

WALL = 1_700_000_000.0


def done() -> asyncio.Future[None]:
    """A future already resolved (a commit that has happened)."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


class FakeAcd:
    """Takes every request (or refuses with ``refuse``)."""

    def __init__(self) -> None:
        self.requests: list[AcdRequest] = []
        self.refuse: AcdError | None = None

    def handle(self, request: AcdRequest) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.requests.append(request)


class FakePhones:
    """``bindings`` by user; ``invite`` hands out the legs of ``legs`` in order and notes the invites."""

    def __init__(self, bindings: Mapping[str, Binding] | None = None, legs: list[Any] | None = None) -> None:
        self.bindings = dict(bindings or {})
        self.legs = list(legs or [])
        self.invites: list[PhoneInvite] = []

    def binding(self, user: str) -> Binding | None:
        return self.bindings.get(user)

    def srtp_policy(self, *, trunk: str | None = None, agent: str | None = None) -> SrtpPolicy:
        return SrtpPolicy("off")

    def invite(self, owner: LegOwner, binding: Binding, invite: PhoneInvite, sdp: bytes) -> OutboundLeg:
        self.invites.append(invite)
        leg: OutboundLeg = self.legs.pop(0)
        return leg


class FakeRecords:
    """Notes each milestone (the CDR's phase then), hands out serials, keeps voicemail messages."""

    def __init__(self) -> None:
        self.milestones: list[str] = []
        self.kept: list[VoicemailMessage] = []
        self._serials = itertools.count(1)

    def milestone(self, call_id: CallId, detail: CallDetail) -> None:
        self.milestones.append(call_id)

    def cdr_committed(self, call_id: CallId) -> asyncio.Future[None]:
        return done()

    async def allocate_serial(self) -> str:
        return f"S-{next(self._serials):04d}"

    def keep_voicemail(self, message: VoicemailMessage) -> asyncio.Future[None]:
        self.kept.append(message)
        return done()


class FakeEvents:
    """Every event the call publishes, as (type, data) in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def publish(self, type_: str, data: Mapping[str, Any], *, durable: bool = True) -> Envelope:
        self.events.append((type_, dict(data)))
        return Envelope(type=type_, id=f"e{len(self.events)}", ts=WALL, node="n1", data=dict(data))

    def call_transferred(self, call_id: CallId, agent_id: str, queue: str, to_agent: str | None,
                         method: str) -> None:
        self.events.append(("call.transferred", {"call_id": call_id, "agent_id": agent_id, "queue": queue,
                                                 "to_agent": to_agent, "method": method}))

    def call_failed(self, detail: CallDetail, where: str, error: str, phase: str) -> None:
        self.events.append(("call.failed", {"call_id": detail.call_id, "where": where, "phase": phase}))

    def call_ivr_input(self, call_id: CallId, record: InputRecord) -> None:
        self.events.append(("call.ivr_input", {"call_id": call_id, "node": record.node}))

    def alert(self, alert_id: str, kind: str, severity: str, message: str, *, queue: str | None = None,
              call_id: CallId | None = None) -> None:
        self.events.append(("alert.raised", {"kind": kind, "call_id": call_id, "queue": queue}))

    def types(self) -> list[str]:
        return [type_ for type_, _ in self.events]


class FakeTransfers:
    """Every queue exists; an agent target goes through ``queue``."""

    def __init__(self, queue: str = "support") -> None:
        self.queue = queue

    def queue_transfer(self, queue: str) -> Transfer:
        return Transfer(queue=queue)

    def agent_transfer(self, agent_id: str, current_queue: str | None, current_agent: str | None) -> Transfer:
        return Transfer(queue=current_queue or self.queue, agent=agent_id)


class FakeOwner:
    """The registry as a call sees it: notes the calls that finished."""

    def __init__(self) -> None:
        self.finished: list[Any] = []

    def call_finished(self, call: Any) -> asyncio.Future[None]:
        self.finished.append(call)
        return done()


def settings(*, flows: FlowCatalog | None = None, queues: Mapping[str, QueueConfig] | None = None,
             record_calls: bool = True, data: Path = Path("var")) -> CallSettings:
    return CallSettings(flows=flows or FlowCatalog(data / "flows", data / "prompts"), queues=dict(queues or {}),
                        rtp_timeout=30.0, recordings_dir=data / "recordings", voicemail_dir=data / "voicemail",
                        record_calls=record_calls)


class NoHttp:
    """The HTTP session of a call whose flow makes no CRM look-up: any use of it fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"this call's flow makes no HTTP look-up (asked for {name!r})")


def no_http() -> Any:
    return NoHttp()


def make_ports(**given: Any) -> CallPorts:
    """The bundle of fakes, with any of ``acd``, ``phones``, ``records``, ``events``, ``transfers``, ``owner``,
    ``settings``, ``clock``, ``http`` replaced by the caller's."""
    parts: dict[str, Any] = {
        "acd": FakeAcd(), "phones": FakePhones(), "records": FakeRecords(), "events": FakeEvents(),
        "transfers": FakeTransfers(), "owner": FakeOwner(), "settings": settings(),
        "clock": NodeClock(monotonic=lambda: 100.0, wall=lambda: WALL), "http": no_http,
    }
    unknown = set(given) - set(parts)
    assert not unknown, f"no such port: {sorted(unknown)}"
    parts.update(given)
    return CallPorts(**parts)
