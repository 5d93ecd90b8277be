"""``call.queued`` names the caller, so a console needs no snapshot to show who waits."""

from __future__ import annotations

from cti.call.detail import CallDetail
from cti.events.bus import Bus
from cti.events.publish import Publisher


async def test_call_queued_carries_the_caller_number() -> None:
    bus = Bus(validate_schemas=True)  # strict: the data matches the registered schema, no unknown key
    events = bus.subscribe("call.queued")
    publisher = Publisher(bus, "n", clock=lambda: 1_800_000_000.0)
    detail = CallDetail(call_id="c1", sip_call_id="s1", trunk="demo", caller="5557001", caller_name="",
                        dialled="100", arrived_at=1_800_000_000.0, queue="support", priority=5, vip=True)
    publisher.call_queued(detail, position=2)
    envelope = await events.get()
    assert envelope.data == {"call_id": "c1", "queue": "support", "priority": 5, "position": 2, "vip": True,
                             "caller_number": "5557001"}
