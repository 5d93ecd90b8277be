"""One call's asyncio shell: it owns the call's tasks, clock readings and I/O; its core decides.

A :class:`Call` holds the call's trunk :class:`~cti.call.legs.InboundLeg`, the agent
:class:`~cti.call.legs.OutboundLeg` of the current offer, its :class:`~cti.call.media.CallMedia`, the IVR
runner and its :class:`CallDetail` (the CDR to be). Every input — leg events, ACD commands, IVR
requests, operator actions — is translated into a :mod:`cti.call.events` value and queued for
the pure :class:`cti.call.CallCore`; the commands it returns are carried out here, in one
``match``. Results the core must learn (the ACD accepting an answer, a leg ending) are queued
behind, so the core is never re-entered while it decides (``feed``).

The services a call uses are handed in as one :class:`~cti.call.ports.CallPorts` bundle of narrow ports
(ACD, phones, records, events, transfer targets, its owner, plain settings), built once by the registry
(:mod:`cti.node.controller`); the call holds no other reference to the node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, assert_never

import structlog

from acd import (
    AcdError,
    AgentId,
    CallId,
    CancelOffer,
    ExitCall,
    ExitReason,
    OfferCall,
    OfferId,
    SkillRequirement,
    StaleOfferError,
)
from cti.call import AcdKind, CallCore, LegPhase, Milestone, Phase, Role
from cti.call.commands import (
    AnswerLeg,
    Bridge,
    CancelLeg,
    Command,
    DialAgent,
    DropMedia,
    EmitCdr,
    EndLeg,
    NotifyIvr,
    PublishTransfer,
    RecordMilestone,
    RunFlow,
    StartRecording,
    SubmitAcd,
)
from cti.call.core import personal_skill, skills_of
from cti.call.detail import CallDetail, CallPhase
from cti.call.events import (
    AcdAccepted,
    AcdRefused,
    AgentDialled,
    AgentReplaced,
    AgentUnreachable,
    CallExitedQueue,
    CallInput,
    CallStarted,
    HangupRequested,
    IvrEnqueued,
    IvrFinished,
    LegAnswered,
    LegEnded,
    LegFailed,
    LegRang,
    OfferCancelled,
    OfferReceived,
    TransferRequested,
)
from cti.call.ivrchannel import CallIvrChannel, VoicemailRecorder
from cti.call.legs import (
    HangupCause,
    InboundLeg,
    Leg,
    LegEvent,
    LegReferred,
    LegReinvited,
    LegState,
    OutboundLeg,
)
from cti.call.legs import LegAnswered as SipLegAnswered
from cti.call.legs import LegEnded as SipLegEnded
from cti.call.legs import LegFailed as SipLegFailed
from cti.call.legs import LegRinging as SipLegRinging
from cti.call.media import CallMedia
from cti.call.ports import CallPorts, Transfer
from cti.call.supervision import Supervision
from cti.call.useragent import PhoneInvite, answer_reinvite
from cti.errors import ControlError, CtiError
from cti.logging import call_context
from cti.store import StoreError
from ivr import CallerHungUp, CallRecord, DigitReceived, EnqueueCall, IvrRunner
from sip.errors import RemoteSipError
from sip.media import RecordingInfo
from sip.rtp.errors import PortsExhaustedError
from sip.uri import SipUri, parse_uri

log = structlog.get_logger(__name__)
# The ACD exits whose target is the flow the caller goes on in: the overflow exits and the hard limits' exits
# (on_max_wait, on_full). A hard limit without a target (never configured so: config.schema) ends the call.
_FLOW_EXITS = frozenset({ExitReason.OVERFLOW_EXIT, ExitReason.OVERFLOW_VOICEMAIL, ExitReason.MAX_WAIT,
                         ExitReason.QUEUE_FULL})

# The longest the caller's 200 (to the INVITE, to a BYE) waits for the call's record to be committed.
# Below the peer's transaction timeout (64*T1 = 32 s), so a slow store delays the answer but never
# loses it; past it the BYE is answered 500 (the record is not known to be on disk) and the INVITE is
# answered anyway (a crash would close its CDR, written or not, as docs/reliability.md says).
_COMMIT_WAIT_S = 30.0


class InjectedFault(CtiError, RuntimeError):
    """Raised by the fault-injection hook (tests only)."""


class Call:
    """One call's shell; created by the registry for an INVITE on a trunk."""

    def __init__(self, ports: CallPorts, call_id: str, detail: CallDetail, media: CallMedia,
                 *, early_media: bool = False) -> None:
        self.ports = ports
        self.early_media = early_media
        self._answer_sdp = b""
        self.id = CallId(call_id)
        self.detail = detail
        self.media = media
        self.core = CallCore(self.id, early_media=early_media)
        self.trunk: InboundLeg | None = None
        self.agent_leg: OutboundLeg | None = None
        # Every agent leg told to hold the 200 to its BYE (at the bridge): ``_finish`` answers them all,
        # including one the call has already let go of (an agent who hung up is dropped at once).
        self._bye_holders: list[Leg] = []
        self.runner: IvrRunner | None = None
        self.variables: dict[str, Any] = {}
        # Set when the call has ended (its CDR emitted). A future made by ``run`` (an asyncio.Event keeps a deque
        # of ~600 bytes for the call's whole life); None before it runs.
        self._done: asyncio.Future[None] | None = None
        self._ended = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tg: asyncio.TaskGroup | None = None
        self.supervision: Supervision | None = None  # cti/call/supervision.py
        self.voicemail: VoicemailRecorder | None = None  # a message the flow records (kept even on hang-up)
        self.failed = False
        self._inbox: list[CallInput] = []  # a few events at a time: a list, not a ~600-byte deque per call
        self._feeding = False
        self._refusal: AcdError | None = None  # the last ACD refusal of a request fed from outside
        self._results: list[CallInput] = []  # the ACD's answers to the commands being carried out
        self._transferring = False
        # The CDR's IVR inputs, variables and CRM look-ups of the flows run before the current one (an overflow
        # starts a new flow: the CDR keeps both).
        self._earlier_ivr: tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]] = ([], {}, [])
        # Set by the registry's fault-injection hook (CTI_TEST_FAULT_EVERY=N, docs/reliability.md): this
        # call raises inside its handling once it is queued. Never set unless that variable is.
        self.inject_fault = False

    @property
    def phase(self) -> CallPhase:
        return self.core.phase

    @property
    def offer(self) -> OfferCall | None:
        return self.core.offer

    @property
    def acd_released(self) -> bool:
        return self.core.acd_released

    def _now(self) -> float:
        return self.ports.clock.wall()

    # ------------------------------------------------------------------------------ the core

    def feed(self, event: CallInput) -> None:
        """Queue ``event`` for the core and, unless the call is already deciding, run the queue dry:
        each event's commands are carried out before the next event is handled."""
        self._inbox.append(event)
        if self._feeding:
            return
        self._feeding = True
        try:
            with call_context(self.id):
                while self._inbox:
                    current = self._inbox.pop(0)
                    try:
                        commands = self.core.handle(current, self._now())
                    except Exception as exc:
                        self._fail_core(exc, type(current).__name__)
                        continue
                    results: list[CallInput] = []
                    self._results = results
                    for command in commands:
                        try:
                            self._execute(command)
                        except Exception as exc:
                            self.fail(exc, "command", step=type(command).__name__)
                    # What the ACD said to this event's requests comes before anything queued since.
                    self._inbox[0:0] = results
        finally:
            self._feeding = False

    def _execute(self, command: Command) -> None:
        match command:
            case SubmitAcd():
                self._submit(command)
            case DialAgent():
                self.detail.offered_to.append(command.offer.agent_id)
                if self._tg is None:
                    self.feed(AgentUnreachable(offer_id=command.offer.offer_id))
                else:
                    self.spawn_task(self._dial(command.offer), f"offer-{command.offer.offer_id}")
            case AnswerLeg():
                if command.role is Role.CALLER and self.trunk is not None:
                    self.trunk.answer(self._answer_sdp)
            case EndLeg():
                self._end_leg(command.role, command.status)
            case CancelLeg():
                self._cancel_leg(command.role)
            case DropMedia():
                if command.role is Role.AGENT:
                    self.media.drop_agent()
                    if self.agent_leg is not None and self.agent_leg.state is LegState.TERMINATED:
                        self.agent_leg = None
                elif command.role is Role.SUPERVISOR:
                    self.media.drop_supervisor()
            case Bridge():
                if self.agent_leg is not None:
                    self.agent_leg.hold_bye_answer = True  # the agent's BYE ends the call: answered once recorded
                    self._bye_holders.append(self.agent_leg)
                self.media.bridge()
            case StartRecording():
                self.spawn_task(self._record(command.offer), "record")
            case RunFlow():
                self._overflow_to_flow(command)
            case NotifyIvr():
                if self.runner is not None:
                    self.runner.deliver(CallerHungUp())
            case RecordMilestone():
                self._milestone(command.milestone, command.at)
            case PublishTransfer():
                log.info("call.transfer.started", queue=command.queue, agent=command.agent, method=command.method)
                self.ports.events.call_transferred(self.id, command.from_agent, command.queue,
                                                   command.agent, command.method)
            case EmitCdr():
                self.detail.end_reason = self.detail.end_reason or command.reason
                self.detail.hung_up_by = self.detail.hung_up_by or command.by
                self.detail.ended_at = command.at
                self._set_done()
                if self.supervision is not None:
                    self.supervision.end("call_ended")
            case _:
                raise TypeError(f"unknown call command {command!r}")

    def _submit(self, command: SubmitAcd) -> None:
        try:
            self.ports.acd.handle(command.request)
        except AcdError as exc:
            if not isinstance(exc, StaleOfferError):
                level = log.warning if command.kind in (AcdKind.ENQUEUE, AcdKind.RELEASE, AcdKind.ANSWER) else log.info
                level("call.acd.refused", request=type(command.request).__name__, error=str(exc))
            self._refusal = exc
            self._results.append(AcdRefused(kind=command.kind, error=str(exc), transfer=self._transferring))
            return
        if command.kind in (AcdKind.ANSWER, AcdKind.ENQUEUE):
            self._results.append(AcdAccepted(kind=command.kind))

    def _leg(self, role: Role) -> Leg | None:
        match role:
            case Role.CALLER:
                return self.trunk
            case Role.AGENT:
                return self.agent_leg
            case Role.SUPERVISOR:
                return self.supervision.leg if self.supervision is not None else None
            case _:
                assert_never(role)

    def _end_leg(self, role: Role, status: int) -> None:
        leg = self._leg(role)
        if leg is None:
            return
        if leg.state is LegState.ESTABLISHED or not status:
            leg.bye()
        elif isinstance(leg, InboundLeg):
            leg.reject(status)
        elif isinstance(leg, OutboundLeg):
            leg.cancel()

    def _cancel_leg(self, role: Role) -> None:
        if role is Role.SUPERVISOR:
            if self.supervision is not None:
                self.supervision.end("call_ended")
            return
        leg = self._leg(role)
        if isinstance(leg, OutboundLeg):
            if role is Role.AGENT:
                self.agent_leg = None  # its LegEnded no longer concerns the call
            leg.cancel()
        elif leg is not None:
            self._end_leg(role, 480)

    def _milestone(self, milestone: Milestone, at: float) -> None:
        match milestone:
            case Milestone.ANSWERED:
                self.detail.answered_at = at
            case Milestone.QUEUED:
                pass  # queued_at was set when the flow asked (the queue's events read it)
            case Milestone.AGENT_ANSWERED:
                self.detail.agent = self.core.agent
                self.detail.agent_answered_at = at
            case _:
                assert_never(milestone)
        self.ports.records.milestone(self.id, self.detail)
        if milestone is Milestone.QUEUED and self.inject_fault:
            raise InjectedFault(f"injected fault in call {self.id} (CTI_TEST_FAULT_EVERY)")

    def _set_done(self) -> None:
        self._ended = True
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _fail_core(self, exc: BaseException, event: str) -> None:
        """The core refused its own transition on ``event`` (a bug): fail the call; if even that cannot
        end it, end it here so that its task, place and record are released."""
        self.fail(exc, "core", step=event)
        if not self.core.ended:
            self.detail.ended_at = self._now()
            self._set_done()

    # ------------------------------------------------------------------------------ faults

    def guarded(self, what: str, action: Callable[[], None]) -> None:
        """Run one input's handling; an exception ends this call (``fail``), never its caller."""
        try:
            action()
        except Exception as exc:
            self.fail(exc, what)

    def fail(self, exc: BaseException, where: str, *, step: str | None = None) -> None:
        """A bug in this call's handling: log it with its traceback, publish ``call.failed``, and
        tear this call down (its legs get BYE/CANCEL/5xx, its CDR says ``error``). Never raises.

        ``where`` is one of ``cti.events.registry.CALL_FAILED_WHERE`` (the event's field); ``step`` names the core
        event or command being handled, for the log line only."""
        first = not self.failed
        self.failed = True
        if first:
            log.error("call.failed", where=where, step=step, error=repr(exc), phase=self.phase.value, exc_info=exc)
            self.detail.end_reason = self.detail.end_reason or "error"
            self.detail.disposition = self.detail.disposition or "error"
            try:
                self.ports.events.call_failed(self.detail, where, repr(exc), self.phase.value)
            except Exception as publish_exc:  # the event is lost; the call still ends
                log.error("call.failed.unpublished", error=repr(publish_exc))
        self.feed(HangupRequested(reason="error"))

    # ------------------------------------------------------------------------------ lifecycle

    async def run(self, offer_body: bytes, flow: str) -> None:
        """Answer the caller, run the IVR, and live until the call ends (owned by the registry)."""
        with call_context(self.id):
            try:
                async with asyncio.TaskGroup() as tg:
                    self._tg = tg
                    if await self._answer(offer_body):
                        self._start_ivr(flow)
                        if not self._ended:
                            self._done = asyncio.get_running_loop().create_future()
                            await self._done
                    for task in self._tasks:
                        task.cancel()
                self._tg = None
            except* Exception as group:
                # A bug in one call must never take the node down: log it, tear this call down.
                for exc in group.exceptions:
                    self.fail(exc, "task")
            finally:
                self._tg = None
                await self._finish()

    async def _answer(self, offer_body: bytes) -> bool:
        assert self.trunk is not None
        try:
            answer = await self.media.answer_caller(offer_body, self.trunk.source.transport,
                                                    self.ports.phones.srtp_policy(trunk=self.detail.trunk))
        except RemoteSipError as exc:
            self.feed(HangupRequested(reason="caller-sdp", status=exc.status_hint))
            return False
        except (OSError, PortsExhaustedError) as exc:  # no RTP port to be had: the node is full
            log.warning("call.media.unavailable", error=str(exc))
            self.feed(HangupRequested(reason="no-media-port", status=503))
            return False
        # The carrier never sees a call answered whose CDR row is not on disk: after a crash it is
        # closed `interrupted` instead of being lost (docs/reliability.md; about 6 ms at p50).
        await self._committed(self.ports.records.cdr_committed(self.id), "answer")
        if self.core.ended:
            return False
        self._answer_sdp = answer
        if self.early_media:
            self.trunk.ringing(answer)  # 183 with our SDP: the IVR plays as early media
        else:
            self.trunk.answer(answer)
        self.feed(CallStarted(answered=not self.early_media))
        return True

    def _start_ivr(self, flow: str) -> None:
        flows = self.ports.settings.flows
        session = flows.new_session(flow, caller=self.detail.caller, called=self.detail.dialled)
        self.runner = IvrRunner(session, CallIvrChannel(self), prompt_dir=flows.prompt_dir,
                                http=self.ports.http(), call_id=self.id)
        self.spawn_task(self._run_ivr(self.runner), "ivr")

    async def _run_ivr(self, runner: IvrRunner) -> None:
        try:
            self._take_ivr_record(await runner.run())
        finally:
            superseded = self.runner is not runner  # an overflow started another flow meanwhile
            if not superseded:
                self.runner = None  # the runner lives as long as its run
        if not superseded:
            self.feed(IvrFinished())

    def _overflow_to_flow(self, command: RunFlow) -> None:
        """An overflow exit: the caller, out of the queue, goes on in ``command.flow`` (docs/acd.md "Overflow").
        A flow gone since start-up (a reload) ends the call as the flow-out it is."""
        if self._tg is None or command.flow not in self.ports.settings.flows.current.flows:
            log.warning("call.overflow.flow_missing", flow=command.flow)
            self.feed(HangupRequested(reason=command.reason))
            return
        log.info("call.overflow.flow_started", flow=command.flow, queue=self.detail.queue, reason=command.reason)
        self._earlier_ivr = (list(self.detail.ivr_inputs), dict(self.detail.ivr_variables), list(self.detail.crm))
        self._start_ivr(command.flow)

    def _take_ivr_record(self, record: CallRecord) -> None:
        inputs, variables, crm = self._earlier_ivr  # what flows run before this one (an overflow's) learnt
        self.detail.ivr_inputs = inputs + [
            {"node": i.node, "digits": i.digits, "result": i.result.value, "at": i.at} for i in record.inputs
        ]
        self.detail.ivr_variables = {**variables, **record.variables}
        self.detail.crm = crm + [{"url": lk.url, "ok": lk.ok, "result": dict(lk.result or {})}
                                 for lk in record.lookups]

    def spawn_task(self, coro: Any, name: str) -> None:
        """Run ``coro`` as a named task of this call (cancelled when the call ends)."""
        assert self._tg is not None
        task = self._tg.create_task(coro, name=f"call-{self.id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self) -> None:
        """The call's end: media closed, the final CDR and ``call.ended`` committed, then the 200
        to the peer's BYE (held until then, so an answered BYE always has its record)."""
        if self.voicemail is not None:  # a caller who hung up while recording still leaves the message
            try:
                await self.voicemail.keep()
            except Exception as exc:
                log.error("call.voicemail.lost", error=repr(exc), exc_info=exc)
        try:
            path = await self.media.close()
            if path is not None:
                self.detail.recording_path = str(path)
        except Exception as exc:  # the call still ends: CDR, counts and admission must not leak
            log.error("call.media.close_failed", error=repr(exc), exc_info=exc)
        status = 500
        try:
            if await self._committed(self.ports.owner.call_finished(self), "end"):
                status = 200
        finally:
            for leg in (self.trunk, self.agent_leg, *self._bye_holders):
                if leg is not None:
                    leg.release_bye(status)  # idempotent: a leg listed twice is answered once

    async def _committed(self, commit: asyncio.Future[None], at: str) -> bool:
        """Wait (at most ``_COMMIT_WAIT_S``) for a record's commit; False when it failed or is late."""
        try:
            async with asyncio.timeout(_COMMIT_WAIT_S):
                await commit
        except TimeoutError:
            log.warning("call.record.commit_slow", waited_s=_COMMIT_WAIT_S, at=at)
        except Exception as exc:  # the writer logged the failure; the call goes on without it
            log.error("call.record.failed", error=repr(exc), at=at)
        else:
            return True
        return False

    def hangup(self, reason: str = "system") -> None:
        """Tear the call down from our side (IVR hang-up, shutdown, RTP timeout, operator)."""
        self.feed(HangupRequested(reason=reason))

    # ------------------------------------------------------------------------------ leg events

    def on_leg_event(self, event: LegEvent) -> None:
        with call_context(self.id):
            self.guarded("leg", lambda: self._leg_event(event))
            if isinstance(event, SipLegEnded) and not self.core.ended:
                event.leg.release_bye()  # a leg left a call that goes on: nothing to wait for

    def _leg_event(self, event: LegEvent) -> None:
        leg = event.leg
        role = Role.CALLER if leg is self.trunk else Role.AGENT if leg is self.agent_leg else None
        if role is None:
            if self.supervision is not None and self.supervision.owns(leg):
                self.supervision.on_leg_event(event)
            elif isinstance(event, SipLegAnswered) and isinstance(leg, OutboundLeg):
                leg.bye()  # a late answer from an offer we gave up: release that phone
            return
        match event:
            case SipLegRinging():
                self.feed(LegRang(role=role))
            case SipLegAnswered():
                self.feed(LegAnswered(role=role, media_ok=self._agent_media(event) if role is Role.AGENT else True))
            case SipLegFailed():
                self.feed(LegFailed(role=role, status=event.status))
            case SipLegEnded():
                by_peer = event.cause in (HangupCause.REMOTE_BYE, HangupCause.REMOTE_CANCEL)
                self.feed(LegEnded(role=role, by_peer=by_peer, cause=event.cause.value))
            case LegReinvited():
                self._reinvite(event, role)
            case LegReferred():
                if role is Role.AGENT:
                    self._refer(event)
                else:
                    event.leg.answer_refer(event.request, 403)
            case _:
                log.warning("call.leg.event_unknown", kind=type(event).__name__)

    def _agent_media(self, event: SipLegAnswered) -> bool:
        """Apply the agent's SDP answer (when the call still waits for it); False when unusable."""
        if self.core.phase is not Phase.OFFERING or self.core.legs[Role.AGENT] is LegPhase.TERMINATED:
            return True
        try:
            self.media.agent_answered(event.sdp)
        except RemoteSipError as exc:
            log.warning("call.agent.bad_answer", error=str(exc))
            return False
        return True

    def _reinvite(self, event: LegReinvited, role: Role) -> None:
        """Hold/resume (RFC 3264 §8.4): answer with our address and the mirrored direction."""
        media = self.media.leg_of(role.value)
        answer_reinvite(event, media, self.media.host, self.ports.settings.rtp_timeout, role.value)

    def _refer(self, event: LegReferred) -> None:
        """Blind transfer from the agent's phone (REFER, RFC 3515): the Refer-To user names a queue,
        or an agent (who gets the call through a queue it serves)."""
        target = parse_uri(event.target)
        user = target.user if isinstance(target, SipUri) else None
        try:
            if self.phase is not CallPhase.CONNECTED or not user:
                raise ControlError("transfer_unsupported", "only a connected call to a queue or an agent")
            destination = (self.ports.transfers.queue_transfer(user) if user in self.ports.settings.queues
                           else self.ports.transfers.agent_transfer(user, self.detail.queue, self.detail.agent))
        except ControlError as exc:
            log.info("call.transfer.refused", target=event.target, reason=exc.code)
            event.leg.answer_refer(event.request, 403)
            return
        event.leg.answer_refer(event.request, 202)
        try:
            self.transfer(destination, method="refer")
        except AcdError as exc:
            log.warning("call.transfer.failed", queue=destination.queue, agent=destination.agent, error=str(exc))

    def transfer(self, destination: Transfer, *, method: str = "desktop") -> None:
        """Release the agent (to wrap-up) and queue the caller again (a new queue leg): in
        ``destination.queue``, waiting for ``destination.agent`` alone when it names one.
        Publishes ``call.transferred`` (``method``: refer or desktop) before the new ``call.queued``.

        Raises:
            AcdError: the ACD refused to queue the caller again; the call is then hung up.
        """
        skills = (() if destination.agent is None
                  else (SkillRequirement(skill=personal_skill(destination.agent), min_level=1),))
        self.detail.queue = destination.queue
        self._refusal = None
        self._transferring = True
        try:
            self.feed(TransferRequested(queue=destination.queue, agent=destination.agent, method=method,
                                        priority=self.detail.priority, caller=self.detail.caller, skills=skills))
        finally:
            self._transferring = False
        if self.core.ended and self._refusal is not None:
            raise self._refusal

    # ------------------------------------------------------------------------------ ACD commands

    def on_acd_command(self, command: OfferCall | CancelOffer | ExitCall) -> None:
        match command:
            case OfferCall():
                self.feed(OfferReceived(offer=command, record=self.ports.settings.should_record(command.queue_id)))
            case CancelOffer():
                self.feed(OfferCancelled(offer_id=command.offer_id))
            case ExitCall():
                # An overflow exit or a hard limit's exit names the flow the caller goes on in
                # (cti.node.routing.overflow_rule, queue_config).
                flow = command.target if command.reason in _FLOW_EXITS else None
                self.feed(CallExitedQueue(reason=command.reason.value, flow=flow))
            case _:
                assert_never(command)

    async def _dial(self, offer: OfferCall) -> None:
        """Open the agent's media and INVITE its registered phone for ``offer``."""
        binding = self.ports.phones.binding(offer.agent_id)
        if binding is None:
            log.info("call.offer.unreachable", agent=offer.agent_id)
            self.feed(AgentUnreachable(offer_id=offer.offer_id))
            return
        if self.ports.settings.should_record(offer.queue_id) and self.detail.recording_serial is None:
            # The serial exists before the agent's phone rings, so call.answered (published when the ACD
            # takes the answer, before the recording task runs) carries it; later offers of this call reuse it.
            try:
                self.detail.recording_serial = await self.ports.records.allocate_serial()
            except StoreError as exc:  # the recording task tries again at the answer
                log.warning("call.recording.serial_deferred", error=str(exc))
        if self.core.offer is not offer or self.core.phase is not Phase.OFFERING:
            return  # withdrawn while the store answered: nothing opened yet
        try:
            pending = await self.media.open_agent(binding.transport,
                                                  self.ports.phones.srtp_policy(agent=offer.agent_id))
        except (OSError, PortsExhaustedError) as exc:
            log.warning("call.media.unavailable", error=str(exc), leg="agent")
            self.feed(AgentUnreachable(offer_id=offer.offer_id))
            return
        if self.core.offer is not offer or self.core.phase is not Phase.OFFERING:
            # Withdrawn while the port was being opened; a later offer of this call may have opened
            # (and installed) its own agent media meanwhile, so only this offer's port is given back.
            pending.discard()
            return
        sdp = self.media.use_agent(pending)
        if sdp is None:
            return
        caller = self.detail.caller or "anonymous"
        invite = PhoneInvite(caller=caller, display=self.detail.caller_name or caller, callee=offer.agent_id,
                             call_id=self.id, queue=offer.queue_id)
        self.agent_leg = self.ports.phones.invite(self, binding, invite, sdp)
        self.feed(AgentDialled(offer_id=offer.offer_id))
        log.info("call.offer.sent", agent=offer.agent_id, queue=offer.queue_id)

    async def _record(self, offer: OfferCall) -> None:
        serial = self.detail.recording_serial or await self.ports.records.allocate_serial()
        self.detail.recording_serial = serial
        info = RecordingInfo(serial=serial, call_id=self.id, started_at=_iso(self._now()),  # type: ignore[arg-type]
                             parties={"caller": self.detail.caller, "agent": offer.agent_id},
                             queue=offer.queue_id)
        await self.media.start_recording(self.ports.settings.recordings_dir, info)
        log.info("call.recording.started", serial=serial)
        recording = self.media.recording
        if recording is not None:
            await recording.run()

    # ------------------------------------------------------------------------------ IVR requests

    def enqueue(self, command: EnqueueCall) -> None:
        if self.phase is not CallPhase.IVR:
            # The caller hung up (or the call was torn down) while the flow was deciding: a call that
            # has ended must never enter a queue, where it would be offered to an agent.
            log.info("call.enqueue.skipped", queue=command.queue, phase=self.phase.value)
            return
        if self.runner is not None:  # what the IVR learnt so far, for the screen pop at the offer
            self._take_ivr_record(self.runner.session.record)
        self.detail.queue = command.queue
        self.detail.priority = command.priority
        self.detail.vip = self.detail.vip or command.vip
        self.detail.reason = command.reason or self.detail.reason
        self.variables = dict(command.variables)
        self.detail.queued_at = self._now()
        self.feed(IvrEnqueued(queue=command.queue, priority=command.priority, skills=skills_of(command.skills),
                              caller=self.detail.caller))

    def digit(self, digit: str) -> None:
        runner = self.runner
        if runner is not None and self.phase is CallPhase.IVR:
            self.guarded("digit", lambda: runner.deliver(DigitReceived(digit=digit)))

    def rtp_timeout(self, which: str) -> None:
        log.info("call.media.timed_out", leg=which)
        supervision = self.supervision
        if which != "supervisor":
            self.hangup("rtp-timeout")
        elif supervision is not None:
            self.guarded("rtp-timeout", lambda: supervision.end("rtp_timeout"))

    # ------------------------------------------------------------------------------ supervision

    def hand_over(self, leg: OutboundLeg, new_agent: str) -> None:
        """Take-over: ``leg`` (a supervisor's, answered) replaces the agent's leg; the caller stays.

        The media switch comes first (no gap), then the agent is released through the normal ACD
        ``Hangup`` (it goes to wrap-up and its queue leg ends), then its leg gets a BYE — whose
        ``LegEnded`` no longer matches ``agent_leg``, so it does not end the call.
        """
        old = self.agent_leg
        self.media.take_over()
        self.agent_leg = leg
        self.feed(AgentReplaced(agent=new_agent))
        self.detail.agent = new_agent
        if old is not None:
            old.bye()


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat()


__all__ = ["AgentId", "Call", "CallDetail", "CallPhase", "CallPorts", "OfferId", "Transfer"]
