"""A closed RTP endpoint is freed by reference counting alone: the call path opens and closes two
per call, and cyclic garbage from each would wait for the full collections (docs/performance.md)."""

from __future__ import annotations

import asyncio
import gc
import weakref

from sip.rtp.aio import RtpEndpoint
from sip.rtp.ports import PortAllocator
from sip.rtp.session import RtpEvent, SessionConfig


async def _open_with_a_callback_that_knows_it(events: list[RtpEvent]) -> RtpEndpoint:
    opened: list[RtpEndpoint] = []  # as the call path's callback does: a cycle while it is open
    endpoint = await RtpEndpoint.open(SessionConfig(timeout=5), host="127.0.0.1",
                                      allocator=PortAllocator(41000, 41100),
                                      on_event=lambda event: events.append(event) if opened else None)
    opened.append(endpoint)
    return endpoint


async def test_a_closed_endpoint_leaves_no_reference_cycle() -> None:
    events: list[RtpEvent] = []
    gc.collect()
    gc.disable()
    try:
        endpoint = await _open_with_a_callback_that_knows_it(events)
        gone = weakref.ref(endpoint)
        endpoint.close()
        del endpoint
        for _ in range(3):  # the transports let go of their protocols on the next loop turns
            await asyncio.sleep(0)
        assert gone() is None
    finally:
        gc.enable()
