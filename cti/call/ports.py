"""The call's ports: the narrow services one call uses, handed to it once, at start-up, in one bundle.

A :class:`~cti.call.shell.Call` holds one :class:`CallPorts` and reaches the rest of the node only through
it. Each port is a small :class:`~typing.Protocol` for one concern, so a test fakes just the concern it
needs and a new feature (queue announcements, call-back, outbound calls, cross-node offers) adds or
swaps one port, not a method on a wide owner:

- :class:`AcdPort`: apply an ACD request now (a refusal raises) — :class:`cti.node.routing.AcdDriver`;
- :class:`PhonePort`: a user's registered phone, a leg's SRTP policy, the phone INVITE —
  :class:`cti.node.phones.Phones` (the registrar's bindings, the leg table, :mod:`cti.call.useragent`);
- :class:`RecordsPort`: CDR milestones, waiting for a CDR's commit, recording serials, a voicemail's row —
  :class:`cti.node.records.CallRecords`;
- :class:`EventSink`: the events a call publishes — :class:`cti.events.publish.Publisher`;
- :class:`TransferTargets`: where a transfer to a queue or an agent goes — :class:`cti.node.transfers.Transfers`;
- :class:`CallOwner`: the call is over (free its place, final CDR) — the registry,
  :class:`cti.node.controller.CallController`;
- :class:`CallSettings`: plain values (flows, queues, RTP timeout, directories, whether a queue's calls are
  recorded) — a frozen dataclass built from the config.

The node's clock (:class:`cti.clock.NodeClock`) and the HTTP session of the IVR's look-ups come in the
same bundle. Nothing here imports the node: the registry (``cti.node.controller``) builds the bundle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import aiohttp

    from acd import AcdRequest, CallId
    from config.schema import QueueConfig
    from cti.call.detail import CallDetail
    from cti.call.legs import LegOwner, OutboundLeg
    from cti.call.shell import Call
    from cti.call.srtp import SrtpPolicy
    from cti.call.useragent import PhoneInvite
    from cti.clock import NodeClock
    from cti.events.registry import Envelope
    from cti.voicemail import VoicemailMessage
    from ivr import FlowCatalog, InputRecord
    from sip.registrar import Binding


@dataclass(frozen=True, slots=True)
class Transfer:
    """Where a blind transfer sends the caller: a queue, and optionally the one agent to wait for."""

    queue: str
    agent: str | None = None


class AcdPort(Protocol):
    """The ACD as a call sees it: apply a request now. Raises: acd.AcdError (refused, nothing changed)."""

    def handle(self, request: AcdRequest) -> None: ...


class PhonePort(Protocol):
    """The phones a call reaches: where a user is registered, how a leg is secured, the INVITE itself."""

    def binding(self, user: str) -> Binding | None:
        """The user's best current binding (None: not registered)."""
        ...

    def srtp_policy(self, *, trunk: str | None = None, agent: str | None = None) -> SrtpPolicy:
        """``media.srtp``, or the trunk's / the agent's own ``srtp`` when set (docs/tls.md)."""
        ...

    def invite(self, owner: LegOwner, binding: Binding, invite: PhoneInvite, sdp: bytes) -> OutboundLeg:
        """INVITE the phone of ``binding``; the new leg reports to ``owner``.
        Raises: LocalSipError (no usable address in the binding)."""
        ...


class RecordsPort(Protocol):
    """The durable side of one call: its CDR as it stands, recording serials, a voicemail's row."""

    def milestone(self, call_id: CallId, detail: CallDetail) -> None:
        """The CDR as it stands now (coalesced with the call's other unwritten milestones)."""
        ...

    def cdr_committed(self, call_id: CallId) -> asyncio.Future[None]:
        """Resolves once the call's CDR, as queued so far, is committed."""
        ...

    async def allocate_serial(self) -> str:
        """A new recording serial (unique, human-quotable). Raises: StoreError."""
        ...

    def keep_voicemail(self, message: VoicemailMessage) -> asyncio.Future[None]:
        """Queue a message's row; resolves once it is committed (see :func:`cti.call.ivrchannel.keep_message`)."""
        ...


class EventSink(Protocol):
    """The events a call publishes (the envelope and its outbox rows are the sink's business)."""

    def publish(self, type_: str, data: Mapping[str, Any], *, durable: bool = True) -> Envelope: ...
    def call_transferred(self, call_id: CallId, agent_id: str, queue: str, to_agent: str | None,
                         method: str) -> None: ...
    def call_failed(self, detail: CallDetail, where: str, error: str, phase: str) -> None: ...
    def call_ivr_input(self, call_id: CallId, record: InputRecord) -> None: ...
    def alert(self, alert_id: str, kind: str, severity: str, message: str, *, queue: str | None = None,
              call_id: CallId | None = None) -> None: ...


class TransferTargets(Protocol):
    """Where a blind transfer goes. Both raise ControlError (stable codes) for a target that cannot take it."""

    def queue_transfer(self, queue: str) -> Transfer: ...
    def agent_transfer(self, agent_id: str, current_queue: str | None, current_agent: str | None) -> Transfer: ...


class CallOwner(Protocol):
    """Who holds the live call (the registry): told once, when the call is over."""

    def call_finished(self, call: Call) -> asyncio.Future[None]:
        """Free the call's place, publish ``call.ended`` and write the final CDR; the future of that
        commit. Never raises."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSettings:
    """The plain values a call reads (from the config, fixed at start-up).

    ``flows`` is the catalog itself (a reload swaps its current set, never the catalog)."""

    flows: FlowCatalog
    queues: Mapping[str, QueueConfig]
    rtp_timeout: float
    recordings_dir: Path
    voicemail_dir: Path
    record_calls: bool

    def should_record(self, queue_id: str) -> bool:
        """``media.record_calls``, unless the queue says ``record: false``."""
        queue = self.queues.get(queue_id)
        return self.record_calls and (queue is None or queue.record)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPorts:
    """Every port of a call, built once by the registry and shared by all its calls."""

    acd: AcdPort
    phones: PhonePort
    records: RecordsPort
    events: EventSink
    transfers: TransferTargets
    owner: CallOwner
    settings: CallSettings
    clock: NodeClock
    http: Callable[[], aiohttp.ClientSession]  # the node's session (exists while the registry runs)


__all__ = ["AcdPort", "CallOwner", "CallPorts", "CallSettings", "EventSink", "PhonePort", "RecordsPort",
           "Transfer", "TransferTargets"]
