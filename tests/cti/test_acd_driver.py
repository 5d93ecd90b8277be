"""The ACD's asyncio adapter (cti.node.routing.AcdDriver): outputs in order, the ring timer on the loop,
refusals to the requester, and requests made while outputs are dispatched never re-enter the router."""

from __future__ import annotations

import asyncio

import pytest

from acd import (
    AcdCommand,
    AcdEvent,
    AgentId,
    CallId,
    CallQueued,
    CancelOffer,
    Enqueue,
    LoginAgent,
    OfferCall,
    QueueConfig,
    QueueId,
    Reject,
    RequestError,
    Router,
)
from cti.node.routing import AcdDriver
from tests.acd.conftest import agent_cfg


class Owner:
    def __init__(self) -> None:
        self.seen: list[object] = []
        self.driver: AcdDriver | None = None
        self.reject_offers = False
        self.cancelled = asyncio.Event()

    def on_acd_event(self, event: AcdEvent) -> None:
        self.seen.append(event)

    def on_acd_command(self, command: AcdCommand) -> None:
        self.seen.append(command)
        if isinstance(command, CancelOffer):
            self.cancelled.set()
        if isinstance(command, OfferCall) and self.reject_offers:
            assert self.driver is not None
            self.reject_offers = False
            self.driver.handle(Reject(offer_id=command.offer_id))  # a reaction: queued behind, no re-entry


async def test_offer_then_ring_timeout_dispatched_in_order() -> None:
    owner = Owner()
    router = Router([QueueConfig(id=QueueId("q"), ring_timeout_s=0.02)])
    driver = AcdDriver(router, owner)
    driver.handle(LoginAgent(agent=agent_cfg("a", ["q"]), ready=True))
    driver.handle(Enqueue(call_id=CallId("c"), queue_id=QueueId("q")))
    async with asyncio.timeout(2):
        await owner.cancelled.wait()
    kinds = [type(o).__name__ for o in owner.seen]
    assert kinds.index("CallQueued") < kinds.index("OfferCall") < kinds.index("CancelOffer")
    assert router.agent_state(AgentId("a"))[1] == "no answer"
    driver.close()


async def test_a_reaction_to_an_output_is_applied_after_the_outputs_before_it() -> None:
    owner = Owner()
    owner.reject_offers = True
    driver = AcdDriver(Router([QueueConfig(id=QueueId("q"), ring_timeout_s=30)]), owner)
    owner.driver = driver
    driver.handle(LoginAgent(agent=agent_cfg("a", ["q"]), ready=True))
    driver.handle(Enqueue(call_id=CallId("c"), queue_id=QueueId("q")))
    kinds = [type(o).__name__ for o in owner.seen]
    offer = kinds.index("OfferCall")
    # Everything the Enqueue produced was dispatched before the Reject's outputs (the requeue).
    assert "CallQueued" in kinds[:offer] and "CallRequeued" in kinds[offer:]
    assert isinstance(owner.seen[kinds.index("CallQueued")], CallQueued)
    driver.close()


async def test_a_refused_request_raises_to_the_requester_and_changes_nothing() -> None:
    owner = Owner()
    driver = AcdDriver(Router([QueueConfig(id=QueueId("q"))]), owner)
    with pytest.raises(RequestError):
        driver.handle(Enqueue(call_id=CallId("c"), queue_id=QueueId("nope")))
    assert owner.seen == []
    driver.close()
