"""The IVR's view of a call (:class:`ivr.IvrChannel`): prompts, tags, alerts, queueing, voicemail, hang-up.

A voicemail (docs/voicemail.md) is recorded by a :class:`VoicemailRecorder` that the call holds until the
message is kept: the caller's hang-up cancels the IVR, and the call's end (``Call._finish``) still keeps what
was recorded. Transfer to an outside number and call-back requests do not exist in this version: flows that
use them are refused when they are loaded (``ivr.parse.REFUSED_NODES``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from cti.call.events import AnswerRequested
from cti.errors import CtiError
from cti.voicemail import BEEP, VoicemailMessage, VoicemailTake, mailbox_queue, message_id
from ivr import EnqueueCall, InputRecord, RaiseAlert, RecordVoicemail, TagCall
from sip.ids import new_tag

if TYPE_CHECKING:
    from cti.call.ports import CallPorts
    from cti.call.shell import Call

log = structlog.get_logger(__name__)


class CallGoneError(CtiError):
    """The IVR asked something of a call that no longer exists."""


class VoicemailRecorder:
    """One message of a call: answer (if still in early media), beep, record, keep (file, row, event)."""

    def __init__(self, call: Call, command: RecordVoicemail) -> None:
        self.call = call
        self.command = command
        self._take: VoicemailTake | None = None
        self._keeping: asyncio.Task[VoicemailMessage] | None = None

    async def record(self) -> float:
        """Record until ``#``, silence or ``max_seconds`` and keep the message; its length in seconds.

        Raises:
            RecordingError: the message's file cannot be created or finalised. StoreError: its row was not stored.
        """
        call, command = self.call, self.command
        if call.core.ended:  # the caller left while the flow decided: nothing to record, nothing to keep
            return 0.0
        call.feed(AnswerRequested())  # a voicemail records an answered call (early media answers now)
        call.detail.end_reason = "voicemail"  # from here on the message is kept, whatever happens
        if command.beep:
            await call.media.play_items([BEEP])
        started = call.ports.clock.wall()
        take = await VoicemailTake.open(
            call.ports.settings.voicemail_dir, message_id=message_id(call.id, started), call_id=call.id,
            mailbox=command.mailbox, queue=mailbox_queue(command.mailbox, call.ports.settings.queues),
            caller=call.detail.caller, started=started, silence_seconds=command.silence_seconds)
        self._take = take
        call.media.voice = take
        log.info("voicemail.recording.started", mailbox=command.mailbox, voicemail_id=take.message_id)
        reason = await take.wait(command.max_seconds)
        log.info("voicemail.recording.stopped", reason=reason, voicemail_id=take.message_id)
        message = await self.keep()
        return message.duration_s if message is not None else 0.0

    def stop(self) -> None:
        """The caller pressed ``#``."""
        if self._take is not None:
            self._take.stop()

    async def keep(self) -> VoicemailMessage | None:
        """Finalise and store the message once (later calls wait for the same result); None when nothing was
        being recorded yet. Shielded: a cancelled caller does not stop the keeping."""
        if self._keeping is None:
            take = self._take
            if take is None:
                return None
            self.call.media.voice = None
            self._keeping = asyncio.get_running_loop().create_task(
                self._keep(take), name=f"call-{self.call.id}-voicemail-keep")
        return await asyncio.shield(self._keeping)

    async def _keep(self, take: VoicemailTake) -> VoicemailMessage:
        call = self.call
        message = await take.keep(call.ports.clock.wall())
        await keep_message(call.ports, message)
        return message


def keep_message(ports: CallPorts, message: VoicemailMessage) -> asyncio.Future[None]:
    """Keep a recorded message: its row, then ``voicemail.left`` (whose outbox rows queue right behind the row,
    on the same writer). The future resolves once the row is committed. Used by the call and by the node's
    start-up, for messages a crash cut short (:func:`cti.voicemail.recover_messages`)."""
    done = ports.records.keep_voicemail(message)
    ports.events.publish("voicemail.left", message.event_data())
    return done


class CallIvrChannel:
    """The IVR's view of the call (``ivr.IvrChannel``)."""

    def __init__(self, call: Call) -> None:
        self._call = weakref.ref(call)  # the call holds the IVR runner, which holds this channel

    @property
    def call(self) -> Call:
        """The call (Raises: CallGoneError once it has ended and been freed)."""
        call = self._call()
        if call is None:
            raise CallGoneError("the call of this IVR session has ended")
        return call

    async def play(self, files: Sequence[Path]) -> None:
        await self.call.media.play(files)

    async def tag(self, command: TagCall) -> None:
        detail = self.call.detail
        detail.vip = detail.vip or command.vip
        detail.priority = max(detail.priority, command.priority)
        detail.reason = command.reason or detail.reason

    async def raise_alert(self, command: RaiseAlert) -> None:
        """An IVR alert (a VIP in the IVR, say): to the supervisors, as ``alert.raised``."""
        call = self.call
        if command.kind == "vip":
            log.info("alert.vip.noted", call_id=call.id)  # the alert service raises vip_in_queue at queue entry
            return
        alert_id = f"a-{new_tag()}"
        kind = f"ivr_{command.kind}"
        log.warning("alert.call.raised", alert_id=alert_id, kind=kind, call_id=call.id)
        call.ports.events.alert(alert_id, kind, "warning", command.message, queue=call.detail.queue, call_id=call.id)

    async def enqueue(self, command: EnqueueCall) -> None:
        self.call.enqueue(command)

    async def record_voicemail(self, command: RecordVoicemail) -> float:
        call = self.call
        recorder = VoicemailRecorder(call, command)
        call.voicemail = recorder  # the call's end keeps the message if the caller hangs up meanwhile
        return await recorder.record()

    async def stop_voicemail(self) -> None:
        recorder = self.call.voicemail
        if recorder is not None:
            recorder.stop()

    async def input_taken(self, record: InputRecord) -> None:
        call = self.call
        call.ports.events.call_ivr_input(call.id, record)

    async def hangup(self) -> None:
        self.call.hangup("ivr-hangup")
