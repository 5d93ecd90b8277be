"""Commands for the nodes where a call leaves the IVR (queue, hang-up)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import assert_never

from ivr.events import (
    Command,
    EnqueueCall,
    Hangup,
    HangupReason,
)
from ivr.flow import Hangup as HangupNode
from ivr.flow import Queue, Value
from ivr.record import Outcome, Tags

Terminal = Queue | HangupNode


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
        case HangupNode():
            return [Hangup(reason=HangupReason.FLOW_ENDED)], Outcome.HUNG_UP
        case _:
            assert_never(node)
