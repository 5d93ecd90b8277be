"""One call through the center: trunk leg → IVR → queue → agent leg, bridged and recorded.

A :class:`Call` is a thin aggregate: its trunk :class:`~cti.legs.InboundLeg`, the agent
:class:`~cti.legs.OutboundLeg` of the current offer, its :class:`~cti.media.CallMedia`, the IVR
runner and the ACD queue entry (owned by the router). It reacts to three kinds of input, each in
one ``match``: leg events, ACD commands (through the controller), and what the IVR asks for.
Everything it learns goes into its :class:`CallDetail`, written as the CDR when the call ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from acd import (
    AcdError,
    AgentId,
    Answer,
    CallId,
    CancelOffer,
    Enqueue,
    ExitCall,
    Hangup,
    OfferCall,
    OfferId,
    QueueId,
    Reject,
    Ringing,
    SkillName,
    SkillRequirement,
    StaleOfferError,
)
from cti.calldetail import CallDetail, CallPhase
from cti.control import ControlError
from cti.ivrchannel import CallIvrChannel
from cti.legs import (
    ENDED_OWNER,
    HangupCause,
    InboundLeg,
    LegAnswered,
    LegEnded,
    LegEvent,
    LegFailed,
    LegReferred,
    LegReinvited,
    LegRinging,
    LegState,
    OutboundLeg,
)
from cti.logging import call_context
from cti.media import CallMedia
from cti.routing import personal_skill
from cti.supervision import Supervision
from ivr import CallerHungUp, CallRecord, DigitReceived, EnqueueCall, IvrRunner
from sip.errors import RemoteSipError
from sip.media import RecordingInfo
from sip.rtp.errors import PortsExhaustedError
from sip.sdp import SessionDescription, negotiate
from sip.uri import SipUri, parse_uri

if TYPE_CHECKING:
    from cti.controller import CallController


@dataclass(frozen=True, slots=True)
class Transfer:
    """Where a blind transfer sends the caller: a queue, and optionally the one agent to wait for."""

    queue: str
    agent: str | None = None

log = structlog.get_logger(__name__)

# The longest the caller's 200 (to the INVITE, to a BYE) waits for the call's record to be committed.
# Below the peer's transaction timeout (64*T1 = 32 s), so a slow store delays the answer but never
# loses it; past it the BYE is answered 500 (the record is not known to be on disk) and the INVITE is
# answered anyway (a crash would close its CDR, written or not, as docs/reliability.md says).
_COMMIT_WAIT_S = 30.0


class InjectedFault(RuntimeError):
    """Raised by the fault-injection hook (tests only)."""


class Call:
    """One call; created by the controller for an INVITE on a trunk."""

    def __init__(self, controller: CallController, call_id: str, detail: CallDetail, media: CallMedia,
                 *, early_media: bool = False) -> None:
        self.controller = controller
        self.early_media = early_media
        self._answer_sdp = b""
        self.id = CallId(call_id)
        self.detail = detail
        self.media = media
        self.phase = CallPhase.IVR
        self.trunk: InboundLeg | None = None
        self.agent_leg: OutboundLeg | None = None
        self.offer: OfferCall | None = None
        self.runner: IvrRunner | None = None
        self.variables: dict[str, Any] = {}
        self._done = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tg: asyncio.TaskGroup | None = None
        self.supervision: Supervision | None = None  # cti/supervision.py
        self.acd_released = False  # the ACD no longer holds this call (after a take-over)
        self.failed = False
        # Set by the controller's fault-injection hook (CTI_TEST_FAULT_EVERY=N, docs/reliability.md): this
        # call raises inside its handling once it is queued. Never set unless that variable is.
        self.inject_fault = False

    def _now(self) -> float:
        return self.controller.clock.wall()

    def guarded(self, what: str, action: Callable[[], None]) -> None:
        """Run one input's handling; an exception ends this call (``fail``), never its caller."""
        try:
            action()
        except Exception as exc:
            self.fail(exc, what)

    def fail(self, exc: BaseException, where: str) -> None:
        """A bug in this call's handling: log it with its traceback, publish ``call.failed``, and
        tear this call down (its legs get BYE/CANCEL/5xx, its CDR says ``error``). Never raises."""
        first = not self.failed
        self.failed = True
        if first:
            log.error("call.failed", where=where, error=repr(exc), phase=self.phase.value, exc_info=exc)
            self.detail.end_reason = self.detail.end_reason or "error"
            self.detail.disposition = self.detail.disposition or "error"
            try:
                self.controller.publisher.call_failed(self.detail, where, repr(exc), self.phase.value)
            except Exception as publish_exc:  # the event is lost; the call still ends
                log.error("call.failed.unpublished", error=repr(publish_exc))
        try:
            self.hangup("error")
        except Exception as teardown:
            log.error("call.teardown.failed", error=repr(teardown), exc_info=teardown)
            self._end("error", "system")

    # ------------------------------------------------------------------------------ lifecycle

    async def run(self, offer_body: bytes, flow: str) -> None:
        """Answer the caller, run the IVR, and live until the call ends (owned by the controller)."""
        with call_context(self.id):
            try:
                async with asyncio.TaskGroup() as tg:
                    self._tg = tg
                    if await self._answer(offer_body):
                        self._start_ivr(flow)
                        await self._done.wait()
                    for task in self._tasks:
                        task.cancel()
            except* Exception as group:
                # A bug in one call must never take the node down: log it, tear this call down.
                for exc in group.exceptions:
                    self.fail(exc, "task")
            finally:
                try:
                    await self._finish()
                finally:
                    self._release()

    async def _answer(self, offer_body: bytes) -> bool:
        assert self.trunk is not None
        try:
            answer = await self.media.answer_caller(offer_body)
        except RemoteSipError as exc:
            self.trunk.reject(exc.status_hint)
            self._end("caller-sdp", "system")
            return False
        except (OSError, PortsExhaustedError) as exc:  # no RTP port to be had: the node is full
            log.warning("call.media.unavailable", error=str(exc))
            self.trunk.reject(503)
            self._end("no-media-port", "system")
            return False
        # The carrier never sees a call answered whose CDR row is not on disk: after a crash it is
        # closed `interrupted` instead of being lost (docs/reliability.md; about 6 ms at p50).
        await self._committed(self.controller.records.cdr_committed(self.id), "answer")
        if self.phase is CallPhase.ENDED:
            return False
        self._answer_sdp = answer
        if self.early_media:
            self.trunk.ringing(answer)  # 183 with our SDP: the IVR plays as early media
        else:
            self.trunk.answer(answer)
            self.detail.answered_at = self._now()
            self.controller.records.milestone(self.id, self.detail)
        return True

    def _start_ivr(self, flow: str) -> None:
        assert self._tg is not None
        session = self.controller.flows.new_session(flow, caller=self.detail.caller, called=self.detail.dialled)
        self.runner = IvrRunner(session, CallIvrChannel(self), prompt_dir=self.controller.flows.prompt_dir,
                                http=self.controller.http(), call_id=self.id)
        self.spawn_task(self._run_ivr(self.runner), "ivr")

    async def _run_ivr(self, runner: IvrRunner) -> None:
        self._take_ivr_record(await runner.run())
        if self.phase is CallPhase.IVR:  # the flow ended without queueing (hang-up node, transfer...)
            self.hangup("ivr-ended")

    def _take_ivr_record(self, record: CallRecord) -> None:
        self.detail.ivr_inputs = [
            {"node": i.node, "digits": i.digits, "result": i.result.value, "at": i.at} for i in record.inputs
        ]
        self.detail.ivr_variables = dict(record.variables)
        self.detail.crm = [{"url": lk.url, "ok": lk.ok, "result": dict(lk.result or {})} for lk in record.lookups]

    def spawn_task(self, coro: Any, name: str) -> None:
        """Run ``coro`` as a named task of this call (cancelled when the call ends)."""
        assert self._tg is not None
        task = self._tg.create_task(coro, name=f"call-{self.id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _end(self, reason: str, by: str) -> None:
        if self.phase is CallPhase.ENDED:
            return
        self.phase = CallPhase.ENDED
        self.detail.end_reason = self.detail.end_reason or reason
        self.detail.hung_up_by = self.detail.hung_up_by or by
        self.detail.ended_at = self._now()
        self._done.set()
        if self.supervision is not None:
            self.supervision.end("call_ended")

    def _release(self) -> None:
        """Drop the references that tie a finished call's objects into reference cycles (the IVR
        runner and its channel point back at the call, the task group at the run task), so that
        reference counting frees them when the call goes instead of the cyclic collector, whose
        full collections are what limits a busy node (docs/performance.md)."""
        self.runner = None
        self._tg = None
        self._tasks.clear()
        for leg in (self.trunk, self.agent_leg):
            if leg is not None and leg.owner is self:
                leg.owner = ENDED_OWNER

    async def _finish(self) -> None:
        """The call's end: media closed, the final CDR and ``call.ended`` committed, then the 200
        to the peer's BYE (held until then, so an answered BYE always has its record)."""
        try:
            path = await self.media.close()
            if path is not None:
                self.detail.recording_path = str(path)
        except Exception as exc:  # the call still ends: CDR, counts and admission must not leak
            log.error("call.media.close_failed", error=repr(exc), exc_info=exc)
        status = 500
        try:
            if await self._committed(self.controller.call_finished(self), "end"):
                status = 200
        finally:
            for leg in (self.trunk, self.agent_leg):
                if leg is not None:
                    leg.release_bye(status)

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
        """Tear the call down from our side (IVR hang-up, shutdown, RTP timeout)."""
        if self.phase is CallPhase.ENDED:
            return
        phase = self.phase
        self._end(reason, "system")
        self._acd_hangup(phase)
        if self.agent_leg is not None:
            self.agent_leg.cancel()  # BYE when it was answered
        if self.trunk is not None:
            if self.trunk.state is LegState.ESTABLISHED:
                self.trunk.bye()
            else:
                self.trunk.reject(500 if reason == "error" else 480)

    def _acd_hangup(self, phase: CallPhase | None = None) -> None:
        if self.acd_released:
            return
        if (phase or self.phase) in (CallPhase.QUEUED, CallPhase.OFFERING, CallPhase.CONNECTED):
            try:
                self.controller.acd.handle(Hangup(call_id=self.id))
            except AcdError as exc:
                log.warning("call.acd.refused", request="Hangup", error=str(exc))

    # ------------------------------------------------------------------------------ leg events

    def on_leg_event(self, event: LegEvent) -> None:
        with call_context(self.id):
            self.guarded("leg", lambda: self._leg_event(event))
            if isinstance(event, LegEnded) and self.phase is not CallPhase.ENDED:
                event.leg.release_bye()  # a leg left a call that goes on: nothing to wait for

    def _leg_event(self, event: LegEvent) -> None:
        if event.leg is self.trunk:
            self._trunk_event(event)
        elif event.leg is self.agent_leg:
            self._agent_event(event)
        elif self.supervision is not None and self.supervision.owns(event.leg):
            self.supervision.on_leg_event(event)
        elif isinstance(event, LegAnswered) and isinstance(event.leg, OutboundLeg):
            event.leg.bye()  # a late answer from an offer we gave up: release that phone

    def _trunk_event(self, event: LegEvent) -> None:
        match event:
            case LegEnded():
                if self.phase is CallPhase.ENDED:
                    return
                by = "caller" if event.cause in (HangupCause.REMOTE_BYE, HangupCause.REMOTE_CANCEL) else "system"
                if self.runner is not None:
                    self.runner.deliver(CallerHungUp())
                phase = self.phase
                self._end("caller-hangup" if by == "caller" else event.cause.value, by)
                self._acd_hangup(phase)
                if self.agent_leg is not None:
                    self.agent_leg.cancel()
            case LegReinvited():
                self._reinvite(event, is_agent=False)
            case LegReferred() | LegRinging() | LegAnswered() | LegFailed():
                pass
            case _:
                pass

    def _agent_event(self, event: LegEvent) -> None:
        offer = self.offer
        match event:
            case LegRinging():
                if offer is not None:
                    self._acd(Ringing(offer_id=offer.offer_id))
            case LegAnswered():
                self._agent_answered(event)
            case LegFailed():
                self.media.drop_agent()
                self.agent_leg = None
                if offer is not None and self.phase is CallPhase.OFFERING:
                    self.offer = None
                    self.phase = CallPhase.QUEUED
                    self._acd(Reject(offer_id=offer.offer_id))
            case LegEnded():
                self.media.drop_agent()
                self.agent_leg = None
                if self.phase is CallPhase.OFFERING and offer is not None:
                    self._reject_offer(offer)  # the agent's phone gave up before answering
                elif self.phase is CallPhase.CONNECTED:
                    self._end("agent-hangup", "agent")
                    self._acd_hangup(CallPhase.CONNECTED)
                    if self.trunk is not None:
                        self.trunk.bye()
            case LegReinvited():
                self._reinvite(event, is_agent=True)
            case LegReferred():
                self._refer(event)
            case _:
                pass

    def _agent_answered(self, event: LegAnswered) -> None:
        offer = self.offer
        leg = event.leg
        if offer is None or self.phase is not CallPhase.OFFERING:
            leg.bye()
            return
        try:
            self.media.agent_answered(event.sdp)
        except RemoteSipError as exc:
            log.warning("call.agent.bad_answer", error=str(exc))
            leg.bye()
            return
        try:
            self.controller.acd.handle(Answer(offer_id=offer.offer_id))
        except StaleOfferError:
            leg.bye()
            return
        except AcdError as exc:
            log.warning("call.acd.refused", request="Answer", error=str(exc))
            leg.bye()
            return
        self.phase = CallPhase.CONNECTED
        leg.hold_bye_answer = True  # the agent's BYE now ends the call: answered once its record is
        if self.trunk is not None and self.trunk.state is not LegState.ESTABLISHED:
            self.trunk.answer(self._answer_sdp)  # early media: the caller is answered when the agent is
            self.detail.answered_at = self._now()
        self.detail.agent = offer.agent_id
        self.detail.agent_answered_at = self._now()
        self.controller.records.milestone(self.id, self.detail)
        self.media.bridge()
        if self.controller.should_record(offer.queue_id):
            self.spawn_task(self._record(offer), "record")

    async def _record(self, offer: OfferCall) -> None:
        serial = await self.controller.allocate_serial()
        self.detail.recording_serial = serial
        info = RecordingInfo(serial=serial, call_id=self.id, started_at=_iso(self._now()),  # type: ignore[arg-type]
                             parties={"caller": self.detail.caller, "agent": offer.agent_id},
                             queue=offer.queue_id)
        await self.media.start_recording(self.controller.recordings_dir, info)
        log.info("call.recording.started", serial=serial)
        recording = self.media.recording
        if recording is not None:
            await recording.run()

    def _reinvite(self, event: LegReinvited, *, is_agent: bool) -> None:
        """Hold/resume (RFC 3264 §8.4): answer with our address and the mirrored direction."""
        media = self.media.agent if is_agent else self.media.caller
        if media is None or not event.request.body:
            event.leg.answer_reinvite(event.request, None, 488 if media is None else 200)
            return
        try:
            answer = negotiate(SessionDescription.parse(event.request.body), (media.codec,),
                               self.media.host, media.endpoint.local_port)
        except RemoteSipError as exc:
            event.leg.answer_reinvite(event.request, None, exc.status_hint)
            return
        media.apply(answer.media, self.controller.rtp_timeout)
        event.leg.answer_reinvite(event.request, answer.sdp.serialize().encode())
        log.info("call.hold.changed", leg="agent" if is_agent else "caller", on_hold=answer.media.on_hold)

    def _refer(self, event: LegReferred) -> None:
        """Blind transfer from the agent's phone (REFER, RFC 3515): the Refer-To user names a queue,
        or an agent (who gets the call through a queue it serves)."""
        target = parse_uri(event.target)
        user = target.user if isinstance(target, SipUri) else None
        try:
            if self.phase is not CallPhase.CONNECTED or not user:
                raise ControlError("transfer_unsupported", "only a connected call to a queue or an agent")
            destination = (self.controller.queue_transfer(user) if user in self.controller.queues
                           else self.controller.agent_transfer(user, self.detail.queue, self.detail.agent))
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
            AcdError: the ACD refused; if the caller could not be queued again the call is hung up.
        """
        self.controller.acd.handle(Hangup(call_id=self.id))
        leg, self.agent_leg = self.agent_leg, None
        self.offer = None
        self.media.drop_agent()
        if leg is not None:
            leg.bye()
        self.phase = CallPhase.QUEUED
        self.detail.queue = destination.queue
        log.info("call.transfer.started", queue=destination.queue, agent=destination.agent, method=method)
        self.controller.publisher.call_transferred(self.id, self.detail.agent or "", destination.queue,
                                                  destination.agent, method)
        skills = (() if destination.agent is None
                  else (SkillRequirement(skill=personal_skill(destination.agent), min_level=1),))
        try:
            self.controller.acd.handle(Enqueue(call_id=self.id, queue_id=QueueId(destination.queue),
                                               priority=self.detail.priority, caller_id=self.detail.caller,
                                               skills=skills))
        except AcdError:
            self.hangup("transfer-failed")
            raise

    # ------------------------------------------------------------------------------ ACD commands

    def on_acd_command(self, command: OfferCall | CancelOffer | ExitCall) -> None:
        with call_context(self.id):
            self.guarded("acd", lambda: self._acd_command(command))

    def _acd_command(self, command: OfferCall | CancelOffer | ExitCall) -> None:
        match command:
            case OfferCall():
                if self.phase is CallPhase.ENDED or self._tg is None:  # ended while the ACD decided
                    self._acd(Reject(offer_id=command.offer_id))
                    return
                self.spawn_task(self._offer(command), f"offer-{command.offer_id}")
            case CancelOffer():
                if self.offer is not None and self.offer.offer_id == command.offer_id:
                    self.offer = None
                    if self.phase is CallPhase.OFFERING:
                        self.phase = CallPhase.QUEUED
                    if self.agent_leg is not None:
                        leg, self.agent_leg = self.agent_leg, None
                        leg.cancel()
                    self.media.drop_agent()
            case ExitCall():
                self.detail.end_reason = f"flowout:{command.reason.value}"
                self.phase = CallPhase.IVR  # out of the queue: nothing left for the ACD
                self.hangup(f"flowout:{command.reason.value}")

    async def _offer(self, offer: OfferCall) -> None:
        self.offer = offer
        self.phase = CallPhase.OFFERING
        self.detail.offered_to.append(offer.agent_id)
        binding = self.controller.agent_binding(offer.agent_id)
        if binding is None:
            log.info("call.offer.unreachable", agent=offer.agent_id)
            self._reject_offer(offer)
            return
        sdp = await self.media.offer_agent()
        if self.offer is not offer or self.phase is not CallPhase.OFFERING:
            self.media.drop_agent()  # cancelled while the port was being opened
            return
        self.agent_leg = self.controller.invite_agent(self, offer, binding, sdp)
        log.info("call.offer.sent", agent=offer.agent_id, queue=offer.queue_id)

    def _reject_offer(self, offer: OfferCall) -> None:
        self.offer = None
        self.phase = CallPhase.QUEUED
        self._acd(Reject(offer_id=offer.offer_id))

    def _acd(self, request: Ringing | Reject) -> None:
        try:
            self.controller.acd.handle(request)
        except AcdError as exc:
            log.info("call.acd.refused", request=type(request).__name__, error=str(exc))

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
        skills = tuple(SkillRequirement(skill=SkillName(s), min_level=lv) for s, lv in command.skills.items())
        self.phase = CallPhase.QUEUED
        try:
            self.controller.acd.handle(Enqueue(
                call_id=self.id, queue_id=QueueId(command.queue), priority=command.priority, skills=skills,
                caller_id=self.detail.caller,
            ))
        except AcdError as exc:
            log.warning("call.enqueue.refused", queue=command.queue, error=str(exc))
            self.phase = CallPhase.IVR
            self.hangup("enqueue-refused")
            return
        self.controller.records.milestone(self.id, self.detail)
        if self.inject_fault:
            raise InjectedFault(f"injected fault in call {self.id} (CTI_TEST_FAULT_EVERY)")

    def digit(self, digit: str) -> None:
        runner = self.runner
        if runner is not None and self.phase is CallPhase.IVR:
            self.guarded("digit", lambda: runner.deliver(DigitReceived(digit=digit)))

    def rtp_timeout(self, which: str) -> None:
        self.guarded("rtp-timeout", lambda: self._rtp_timeout(which))

    def _rtp_timeout(self, which: str) -> None:
        log.info("call.media.timed_out", leg=which)
        if which == "supervisor":
            if self.supervision is not None:
                self.supervision.end("rtp_timeout")
            return
        self.hangup("rtp-timeout")

    # ------------------------------------------------------------------------------ supervision

    def hand_over(self, leg: OutboundLeg, new_agent: str) -> None:
        """Take-over: ``leg`` (a supervisor's, answered) replaces the agent's leg; the caller stays.

        The media switch comes first (no gap), then the agent is released through the normal ACD
        ``Hangup`` (it goes to wrap-up and its queue leg ends), then its leg gets a BYE — whose
        ``LegEnded`` no longer matches ``agent_leg``, so it does not end the call.
        """
        old = self.agent_leg
        self.media.take_over()
        self._acd_hangup(CallPhase.CONNECTED)
        self.acd_released = True
        self.agent_leg = leg
        self.detail.agent = new_agent
        if old is not None:
            old.bye()


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat()


__all__ = ["AgentId", "Call", "CallDetail", "CallPhase", "OfferId"]
