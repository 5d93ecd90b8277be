"""The asyncio adapter: outputs are published in order and the ring timer fires on the loop."""

from __future__ import annotations

import asyncio

from acd import AcdOutput, AgentId, CallId, CancelOffer, Enqueue, LoginAgent, OfferCall, QueueConfig, QueueId, Router
from acd.service import AcdService

from .conftest import agent_cfg


async def test_offer_then_ring_timeout_published_in_order() -> None:
    seen: list[AcdOutput] = []
    cancelled = asyncio.Event()

    async def publish(output: AcdOutput) -> None:
        seen.append(output)
        if isinstance(output, CancelOffer):
            cancelled.set()

    router = Router([QueueConfig(id=QueueId("q"), ring_timeout_s=0.02)])
    service = AcdService(router, publish)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(service.run(), name="acd-publisher")
        service.submit(LoginAgent(agent=agent_cfg("a", ["q"]), ready=True))
        out = service.submit(Enqueue(call_id=CallId("c"), queue_id=QueueId("q")))
        assert any(isinstance(o, OfferCall) for o in out)
        async with asyncio.timeout(2):
            await cancelled.wait()
        task.cancel()
    kinds = [type(o).__name__ for o in seen]
    assert kinds.index("OfferCall") < kinds.index("CancelOffer")
    assert router.agent_state(AgentId("a"))[1] == "no answer"
