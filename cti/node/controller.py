"""The call registry: the node's live calls, admission and drain; it builds the calls' ports once.

:class:`CallController` holds the live calls (one :class:`~cti.call.shell.Call` each, running as a named
task of its TaskGroup), admission and drain, and builds at start-up the one :class:`cti.call.ports.CallPorts`
bundle every call is given: the ACD (one :class:`~cti.node.routing.AcdDriver`), the phones
(:class:`~cti.node.phones.Phones`), the records (:class:`~cti.node.records.CallRecords`), the publisher,
the transfer targets (:class:`~cti.node.transfers.Transfers`), itself as the calls' owner (``call_finished``),
the plain settings and the node's clock. It also keeps the media port range and prompt cache calls share.
The ACD's commands are routed to their calls (queued there as events); its facts go to
:class:`cti.node.acdevents.AcdEventPublisher`; trunk INVITEs are admitted or refused by
:class:`cti.node.inbound.TrunkDoor`; operator actions on agents live in :mod:`cti.floor.operations`.
Times in stored rows are wall-clock UTC seconds from the one node clock (cti/clock.py).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog

from acd import (
    AcdCommand,
    AcdEvent,
    CallId,
    CancelOffer,
    ExitCall,
    OfferCall,
    Router,
    SiteCalendar,
)
from config.errors import ConfigFileError
from config.loader import LoadedConfig
from config.schema import ServerConfig
from cti.call.legs import InboundLeg, LegTable
from cti.call.media import CallMedia
from cti.call.ports import CallPorts, CallSettings
from cti.call.shell import Call, CallDetail
from cti.call.srtp import SrtpPolicy
from cti.clock import NodeClock
from cti.events.publish import Publisher
from cti.node.acdevents import AcdEventPublisher
from cti.node.admission import Admission, Limits, LoadMeter, Refusal
from cti.node.inbound import TrunkDoor
from cti.node.phones import Phones
from cti.node.records import CallRecords
from cti.node.routing import AcdDriver, overflow_flow_problems, queue_config, reason_codes
from cti.node.transfers import Transfers
from cti.node.trunks import TrunkMatch, TrunkTable, caller_identity
from ivr import FlowCatalog
from sip.events import RequestReceived
from sip.ids import new_tag
from sip.media.aio import PromptCache
from sip.rtp import PortAllocator

if TYPE_CHECKING:
    from cti.node.registration import RegistrationService
    from cti.store import Store

log = structlog.get_logger(__name__)
_FAULT_EVERY = int(os.environ.get("CTI_TEST_FAULT_EVERY", "0") or 0)  # test hook: docs/reliability.md


class CallController:
    """Every live call of this node, and the ACD that routes them."""

    def __init__(self, loaded: LoadedConfig, config: ServerConfig, legs: LegTable,
                 registration: RegistrationService, store: Store | None, publisher: Publisher) -> None:
        self.config = config
        self.publisher = publisher
        self.legs = legs
        self.registration = registration
        self.store = store
        self.trunks = TrunkTable(config.trunks)
        vip = {"vip": config.vip_numbers} if config.vip_numbers else {}
        self.flows = FlowCatalog(loaded.flows_dir, loaded.prompts_dir, extra_lists=vip)
        self._located = loaded.source  # where each config key is, for problems found once the flows are loaded
        self.queues = {q.name: q for q in config.queues}
        self.agents = {a.id: a for a in config.agents}  # live: agents are added and changed at run time
        self.supervisors = {s.id: s for s in config.supervisors}
        # agent -> the record of its last call (for the wrap-up disposition): the record only, not the call, whose
        # legs and media would stay in memory with it (one call per agent who ever answered one: ~35 KiB each).
        self.last_call_of: dict[str, CallDetail] = {}
        self.clock = NodeClock()  # one clock for every time a record holds (cti/clock.py)
        calendar = SiteCalendar(offset=self.clock.offset, zone=config.node.zone)  # "today" is the site's day
        router = Router([queue_config(q) for q in config.queues], calendar=calendar,
                        reason_codes=reason_codes(config.desk.codes_of(config.desk.pause_reasons)))
        self.acd = AcdDriver(router, self, clock=self.clock.monotonic)
        self.ports = PortAllocator(config.media.rtp_port_min, config.media.rtp_port_max)
        self.prompts = PromptCache()
        self.settings = CallSettings(
            flows=self.flows, queues=self.queues, rtp_timeout=config.media.rtp_timeout_s,
            recordings_dir=Path(config.data_dir) / "recordings",
            voicemail_dir=Path(config.data_dir) / "voicemail",  # messages (docs/voicemail.md)
            record_calls=config.media.record_calls)
        self.calls: dict[CallId, Call] = {}
        self.records = CallRecords(store, config.node.name, self._detail_of, clock=self.clock.wall,
                                   site=config.node.site)
        self._http: aiohttp.ClientSession | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._idle = asyncio.Event()
        self.counters = {"calls_total": 0}
        self.admission = Admission(
            Limits(config.limits.max_calls, config.limits.max_calls_per_second),
            {t.name: t.max_calls for t in config.trunks}, self.acd.now,
            LoadMeter(config.limits.max_loop_lag_ms / 1000))
        self.door = TrunkDoor(self.trunks, legs, registration, self.admission, self._start_call,
                              SrtpPolicy(config.media.srtp))
        self.acd_events = AcdEventPublisher(self.acd.router, publisher, self.records, self.clock, self.calls.get,
                                            self.queues)
        self.transfers = Transfers(self.queues, self.agents, self.acd.router)
        self.call_ports = CallPorts(
            acd=self.acd, phones=Phones(registration, legs, config, self.agents), records=self.records,
            events=publisher, transfers=self.transfers, owner=self, settings=self.settings, clock=self.clock,
            http=self._session)

    # ------------------------------------------------------------------------------ running

    def load(self) -> None:
        """Load the flows (blocking; before the loop serves calls). Raises: ConfigFileError (also for an
        overflow rule naming a flow the set lacks)."""
        flows = self.flows.load()
        problems = overflow_flow_problems(self._located, self.config.queues, flows)
        if problems:
            raise ConfigFileError(problems)

    async def run(self, started: asyncio.Event) -> None:
        """Own every call task and the store writer until cancelled."""
        await asyncio.to_thread(self.settings.recordings_dir.mkdir, parents=True, exist_ok=True)
        async with aiohttp.ClientSession() as http, asyncio.TaskGroup() as tg:
            self._http = http
            self._tg = tg
            tg.create_task(self.records.run(), name="cdr-writer")
            tg.create_task(self._measure_loop(), name="loop-meter")
            started.set()
            await self.acd_events.run_stats()  # queue.stats at least every 2 s, and on every change

    async def _measure_loop(self) -> None:
        """Tick every ``LoadMeter.EVERY_S`` and tell the meter how late each tick ran (overload)."""
        meter, loop = self.admission.meter, asyncio.get_running_loop()
        while True:
            due = loop.time() + meter.EVERY_S
            await asyncio.sleep(meter.EVERY_S)
            if meter.tick(max(0.0, loop.time() - due)):
                if meter.overloaded:
                    log.warning("server.node.overloaded", lag_ms=round(meter.lag_s * 1000, 1),
                                max_lag_ms=round(meter.max_lag_s * 1000, 1), live_calls=len(self.calls))
                else:
                    log.info("server.node.recovered", lag_ms=round(meter.lag_s * 1000, 1), live_calls=len(self.calls),
                             refused=self.door.refused[Refusal.OVERLOADED.value])

    # The parts the rest of the node reads (metrics, control, app).

    @property
    def draining(self) -> bool:
        return self.door.draining

    @property
    def refused(self) -> Counter[str]:
        return self.door.refused

    @property
    def state_since(self) -> dict[str, float]:
        return self.acd_events.state_since

    @property
    def wrap_up_s(self) -> dict[str, float | None]:
        """Agent -> the wrap-up length of its current wrap-up (None: unlimited, or not in wrap-up)."""
        return self.acd_events.wrap_up_s

    def queue_stats_data(self, queue: str) -> dict[str, Any]:
        return self.acd_events.queue_stats_data(queue)

    def publish_queue_stats(self, queue: str) -> None:
        self.acd_events.publish_queue_stats(queue)

    def _detail_of(self, call_id: CallId) -> CallDetail | None:
        call = self.calls.get(call_id)
        return call.detail if call is not None else None

    def _session(self) -> aiohttp.ClientSession:
        """The node's HTTP session (the IVR's look-ups), while the registry runs."""
        assert self._http is not None, "controller not running"
        return self._http

    async def drain(self, grace: float) -> None:
        """Refuse new calls (503) and let the live ones finish for up to ``grace`` seconds."""
        self.door.draining = True
        for attempt in (grace, 2.0):
            if self.calls:
                self._idle.clear()
                try:
                    async with asyncio.timeout(attempt):
                        await self._idle.wait()
                except TimeoutError:
                    pass
            for call in list(self.calls.values()):
                call.hangup("shutdown")
        await self.records.flush()

    # ------------------------------------------------------------------------------ inbound calls

    def on_trunk_invite(self, event: RequestReceived) -> None:
        """A dialog-creating INVITE: refused at the door (cti/node/inbound.py), or a new call."""
        self.door.on_invite(event)

    def _start_call(self, event: RequestReceived, match: TrunkMatch) -> None:
        """Make and run the call of an admitted INVITE; if it cannot start, give its place back, 500."""
        request = event.request
        assert match.flow is not None
        call: Call | None = None
        try:
            call = self._new_call(event, match)
            self.counters["calls_total"] += 1
            if _FAULT_EVERY and self.counters["calls_total"] % _FAULT_EVERY == 0:
                call.inject_fault = True
            self.records.milestone(call.id, call.detail)  # the CDR row exists from the arrival on
            self.publisher.call_arrived(call.detail)
            log.info("call.arrived", call_id=call.id, trunk=match.trunk.name, dialled=match.dialled,
                     flow=match.flow, caller=self._redact(call.detail.caller))
            assert self._tg is not None
            self._tg.create_task(self._run_call(call, request.body, match.flow), name=f"call-{call.id}")
        except Exception as exc:
            # Admitted, but the call never started running: give its place back, answer 500, go on.
            log.error("call.start.failed", error=repr(exc), exc_info=exc)
            if call is None or self.calls.pop(call.id, None) is not None:
                self.admission.ended(match.trunk.name)
            try:
                if call is not None and call.trunk is not None:
                    call.trunk.reject(500)
                else:
                    self.door.refuse(event, 500, stateful=True)
            except Exception as refuse_exc:
                log.error("call.start.unanswered", error=repr(refuse_exc))

    async def _run_call(self, call: Call, offer: bytes, flow: str) -> None:
        """One call's task: whatever happens in it ends there (the node's task group never sees it)."""
        try:
            await call.run(offer, flow)
        except Exception as exc:  # Call.run catches its own; this is the last line of defence
            log.error("call.task.escaped", call_id=call.id, error=repr(exc), exc_info=exc)
            if self.calls.pop(call.id, None) is not None:
                self.admission.ended(call.detail.trunk)
                if not self.calls:
                    self._idle.set()

    def _new_call(self, event: RequestReceived, match: TrunkMatch) -> Call:
        request = event.request
        number, name = caller_identity(request)
        call_id = f"c-{new_tag()}"
        detail = CallDetail(call_id=call_id, sip_call_id=request.call_id, trunk=match.trunk.name, caller=number,
                            caller_name=name, dialled=match.dialled, arrived_at=self.clock.wall())
        media = CallMedia(host=self.legs.via_host, ports=self.ports, prompts=self.prompts,
                          rtp_timeout=self.settings.rtp_timeout, on_digit=lambda d: self._digit(CallId(call_id), d),
                          on_timeout=lambda which: self._rtp_timeout(CallId(call_id), which),
                          srtp=SrtpPolicy(self.config.media.srtp))
        call = Call(self.call_ports, call_id, detail, media, early_media=match.trunk.early_media)
        call.trunk = InboundLeg(self.legs, call, event)
        call.trunk.hold_bye_answer = True  # the caller's BYE is answered once the CDR is committed
        call.trunk.ringing()
        self.calls[call.id] = call
        return call

    def _digit(self, call_id: CallId, digit: str) -> None:
        """An RFC 4733 digit from a caller's media, to its call (found by id: media never holds its call)."""
        call = self.calls.get(call_id)
        if call is not None:
            call.digit(digit)

    def _rtp_timeout(self, call_id: CallId, which: str) -> None:
        call = self.calls.get(call_id)
        if call is not None:
            call.rtp_timeout(which)

    def _redact(self, number: str) -> str:
        if self.config.logging.redact_caller_numbers and len(number) > 4:
            return "*" * (len(number) - 4) + number[-4:]
        return number

    def call_finished(self, call: Call) -> asyncio.Future[None]:
        """The call is over: free its place, publish ``call.ended`` and write the final CDR with that
        event's outbox rows. Returns the future of that commit. Never raises."""
        if self.calls.pop(call.id, None) is not None:
            self.admission.ended(call.detail.trunk)
        if not self.calls:
            self._idle.set()
        detail = call.detail
        log.info("call.ended", by=detail.hung_up_by, reason=detail.end_reason, agent=detail.agent,
                 serial=detail.recording_serial)
        if detail.agent:
            self.last_call_of[detail.agent] = detail
        try:
            ended = self.publisher.call_ended(detail)
            return self.records.call_ended(call.id, detail, (ended,))
        except Exception as exc:
            log.error("call.record.unwritten", error=repr(exc), exc_info=exc)
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed

    # ------------------------------------------------------------------------------ ACD output

    def on_acd_command(self, command: AcdCommand) -> None:
        if isinstance(command, OfferCall | CancelOffer | ExitCall):
            call = self.calls.get(command.call_id)
            if call is not None:
                call.on_acd_command(command)
            elif isinstance(command, OfferCall):
                log.warning("acd.offer.orphaned", call_id=command.call_id)

    def on_acd_event(self, event: AcdEvent) -> None:
        self.acd_events.on_acd_event(event)
