"""Commands for the nodes where a call leaves the IVR (queue, transfer, voicemail, call-back, hang-up)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import assert_never

from ivr.events import (
    Command,
    EnqueueCall,
    Hangup,
    HangupReason,
    RecordVoicemail,
    RequestCallback,
    TransferCall,
)
from ivr.flow import Callback, Queue, Transfer, Value, Voicemail
from ivr.flow import Hangup as HangupNode
from ivr.record import Outcome, Tags
from ivr.template import render

Terminal = Queue | Voicemail | Callback | Transfer | HangupNode


def leave(node: Terminal, tags: Tags, variables: Mapping[str, Value]) -> tuple[list[Command], Outcome]:
    """The commands that hand the call on, and the outcome to record.

    The queue priority is the higher of the queue node's and the tags' (a VIP tag is never
    lowered by a queue node); skills are the tags' plus the queue node's.
    """
    match node:
        case Queue():
            enqueue = EnqueueCall(
                queue=node.queue,
                skills={**tags.skills, **node.skills},
                priority=max(tags.priority, node.priority or 0),
                vip=tags.vip,
                reason=tags.reason,
                variables=dict(variables),
            )
            return [enqueue], Outcome.QUEUED
        case Transfer():
            return [TransferCall(number=render(node.number, variables))], Outcome.TRANSFERRED
        case Voicemail():
            return [RecordVoicemail(mailbox=node.mailbox, max_seconds=node.max_seconds)], Outcome.VOICEMAIL
        case Callback():
            request = RequestCallback(queue=node.queue, number=render(node.number, variables))
            return [request, Hangup(reason=HangupReason.FLOW_ENDED)], Outcome.CALLBACK
        case HangupNode():
            return [Hangup(reason=HangupReason.FLOW_ENDED)], Outcome.HUNG_UP
        case _:
            assert_never(node)
