"""The in-process bus: fan-out, patterns, bounded drop-oldest queues, counters, unsubscribe. No sleeps."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from cti.events.bus import Bus, Subscription, SubscriptionClosed
from cti.events.registry import Envelope, SchemaError


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ev(type_: str, n: int = 0) -> Envelope:
    return Envelope(type=type_, id=f"id-{n}", ts=float(n), node="n", data={"n": n})


def drain(sub: Subscription) -> list[Envelope]:
    out: list[Envelope] = []
    while True:
        try:
            out.append(sub.get_nowait())
        except asyncio.QueueEmpty:
            return out


def test_fan_out_to_every_matching_subscription_in_publish_order() -> None:
    bus = Bus()
    a, b = bus.subscribe("*"), bus.subscribe(["call.*"])
    events = [ev("call.offered", 1), ev("agent.logged_in", 2), ev("call.ended", 3)]
    published = [bus.publish(e) for e in events]
    assert [e.seq for e in published] == [1, 2, 3] and [e.seq for e in events] == [None] * 3  # in publish order
    assert drain(a) == published
    assert drain(b) == [published[0], published[2]]


def test_seq_starts_at_first_seq_and_goes_up_by_one() -> None:
    bus = Bus(first_seq=5_000_000)
    assert bus.last_seq == 4_999_999
    seqs = [bus.publish(ev("call.offered", n)).seq for n in range(3)]
    assert seqs == [5_000_000, 5_000_001, 5_000_002] and bus.last_seq == 5_000_002
    with pytest.raises(ValueError):
        Bus(first_seq=0)


@pytest.mark.parametrize(
    ("patterns", "type_", "expected"),
    [
        (["call.offered"], "call.offered", True),
        (["call.offered"], "call.offered_again", False),
        (["call.offered"], "call.answered", False),
        (["call.*"], "call.offered", True),
        (["call.*"], "call.x.y", True),
        (["call.*"], "callback.offered", False),
        (["call.*"], "agent.call.offered", False),
        (["agent.*", "queue.stats"], "queue.stats", True),
        (["agent.*", "queue.stats"], "queue.other", False),
        (["*"], "anything.at_all", True),
    ],
)
def test_pattern_matching(patterns: list[str], type_: str, expected: bool) -> None:
    bus = Bus()
    sub = bus.subscribe(patterns)
    bus.publish(ev(type_))
    assert (sub.qsize() == 1) is expected
    assert sub.matches(type_) is expected


@pytest.mark.parametrize("bad", ["", "call*", "*.offered", "call.*.x", ".*", "**", []])
def test_bad_patterns_are_refused(bad: str | list[str]) -> None:
    with pytest.raises(ValueError):
        Bus().subscribe(bad)


def test_maxsize_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Bus().subscribe("*", maxsize=0)


def test_full_queue_drops_oldest_and_counts() -> None:
    bus = Bus(clock=FakeClock())
    slow = bus.subscribe("*", maxsize=3)
    fast = bus.subscribe("*", maxsize=100)
    events = [ev("call.offered", n) for n in range(10)]
    for e in events:
        bus.publish(e)
    assert drain(slow) == events[-3:]
    assert slow.dropped == 7 and slow.delivered == 10
    assert drain(fast) == events and fast.dropped == 0
    stats = bus.stats()
    assert (stats.published, stats.delivered, stats.dropped, stats.subscriptions) == (10, 20, 7, 2)


def test_drop_log_is_rate_limited_to_once_per_second_per_subscription() -> None:
    clock = FakeClock()
    bus = Bus(clock=clock)
    a = bus.subscribe("*", maxsize=1, name="a")
    bus.subscribe("*", maxsize=1, name="b")
    with capture_logs() as logs:
        for n in range(5):
            bus.publish(ev("call.offered", n))  # 4 drops each, same instant
        clock.now += 0.5
        bus.publish(ev("call.offered", 5))
        clock.now += 0.5
        bus.publish(ev("call.offered", 6))
    dropped = [(log["subscription"], log["dropped"], log["dropped_total"]) for log in logs
               if log["event"] == "bus.event.dropped"]
    assert dropped == [("a", 1, 1), ("b", 1, 1), ("a", 5, 6), ("b", 5, 6)]
    assert all(log["log_level"] == "warning" for log in logs)
    assert a.dropped == 6


def test_publish_never_awaits_and_works_outside_a_loop() -> None:
    bus = Bus()
    sub = bus.subscribe("*", maxsize=2)
    bus.publish(ev("a.b"))
    assert drain(sub) == [ev("a.b")]


def test_close_unsubscribes_but_keeps_queued_envelopes_readable() -> None:
    bus = Bus()
    sub = bus.subscribe("*", maxsize=2)
    bus.publish(ev("a.b", 1))
    bus.publish(ev("a.b", 2))
    sub.close()
    sub.close()
    bus.publish(ev("a.b", 3))
    assert sub.closed and bus.stats().subscriptions == 0
    assert sub.qsize() == 2
    assert [sub.get_nowait(), sub.get_nowait()] == [ev("a.b", 1), ev("a.b", 2)]
    with pytest.raises(SubscriptionClosed):
        sub.get_nowait()
    assert sub.dropped == 0


async def test_async_iteration_ends_after_close() -> None:
    bus = Bus()
    sub = bus.subscribe("call.*")
    bus.publish(ev("call.a", 1))
    bus.publish(ev("call.b", 2))
    sub.close()
    assert [e async for e in sub] == [ev("call.a", 1), ev("call.b", 2)]
    with pytest.raises(SubscriptionClosed):
        await sub.get()


async def test_context_manager_unsubscribes_on_exit_even_on_error() -> None:
    bus = Bus()
    with pytest.raises(RuntimeError):
        async with bus.subscribe("*") as sub:
            assert bus.stats().subscriptions == 1
            raise RuntimeError("boom")
    assert sub.closed and bus.stats().subscriptions == 0


async def test_waiting_consumer_is_woken_by_publish_and_by_close() -> None:
    bus = Bus()
    sub = bus.subscribe("*")
    got: list[Envelope] = []

    async def consume() -> None:
        async for e in sub:
            got.append(e)

    async with asyncio.timeout(2), asyncio.TaskGroup() as tg:
        tg.create_task(consume(), name="test.consumer")
        await asyncio.sleep(0)  # let the consumer block on an empty queue (a yield, not a timed sleep)
        bus.publish(ev("a.b", 1))
        await asyncio.sleep(0)
        bus.publish(ev("a.b", 2))
        sub.close()
    assert got == [ev("a.b", 1), ev("a.b", 2)]


def test_debug_validation_rejects_bad_data_before_fan_out() -> None:
    bus = Bus(validate_schemas=True)
    sub = bus.subscribe("*")
    with pytest.raises(SchemaError):
        bus.publish(Envelope(type="call.answered", id="1", ts=1.0, node="n", data={"call_id": "c"}))
    assert sub.qsize() == 0 and bus.stats().published == 0
    good = Envelope(type="alert.cleared", id="2", ts=1.0, node="n",
                    data={"alert_id": "a1", "kind": "vip_call", "reason": None})
    bus.publish(good)
    assert drain(sub) == [good]


def test_log_invalid_checks_strictly_logs_and_still_delivers() -> None:
    bus = Bus(log_invalid=True)
    sub = bus.subscribe("*")
    bad = Envelope.new("call.ended", {"call_id": "c1", "reason": "caller_hangup", "duration_seconds": 1.0,
                                      "talk_seconds": None, "agent_id": None, "queue": None,
                                      "recording_serial": None}, node="n", now=1.0)
    with capture_logs() as logs:
        bus.publish(bad)
        bus.publish(Envelope.new("call.reason", {"call_id": "c1", "reason": "x", "source": "ivr"}, node="n", now=1.0))
    assert [(entry["event"], entry["log_level"], entry["field"]) for entry in logs] == [
        ("bus.event.invalid", "error", "reason")]
    assert bus.stats().invalid == 1 and sub.qsize() == 2
