"""The IVR's view of a call (:class:`ivr.IvrChannel`): prompts, tags, alerts, queueing, hang-up.

Voicemail and transfer to a number need parts the server does not have yet (a voicemail store, an
outbound trunk): the call is then ended with a clear reason in the CDR rather than left hanging.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from cti.errors import CtiError
from ivr import EnqueueCall, InputRecord, RaiseAlert, TagCall

if TYPE_CHECKING:
    from cti.call.shell import Call

log = structlog.get_logger(__name__)


class CallGoneError(CtiError):
    """The IVR asked something of a call that no longer exists."""


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
        self.call.controller.raise_alert(self.call, command)

    async def enqueue(self, command: EnqueueCall) -> None:
        self.call.enqueue(command)

    async def transfer(self, number: str) -> None:
        log.info("call.transfer.refused", target=number, reason="transfer to a number needs an outbound trunk")
        self.call.hangup("transfer-unavailable")

    async def record_voicemail(self, mailbox: str, max_seconds: float) -> None:
        log.info("call.voicemail.unavailable", mailbox=mailbox)
        self.call.hangup("voicemail-unavailable")

    async def request_callback(self, queue: str, number: str) -> None:
        log.info("call.callback.requested", queue=queue, number=number)
        self.call.detail.end_reason = "callback-requested"

    async def input_taken(self, record: InputRecord) -> None:
        call = self.call
        call.controller.publisher.call_ivr_input(call.id, record)

    async def hangup(self) -> None:
        self.call.hangup("ivr-hangup")
