"""The call-records writer on a real SQLite store: a CDR milestone can be waited for, and a crash's open
calls are closed ``interrupted`` with their ``call.ended`` in the outbox (cti/node/records.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from acd import AcdError, AgentState, CallId, ExitReason
from cti.call.detail import CallDetail
from cti.events.registry import Envelope
from cti.node.records import CallRecords, _jsonable
from cti.store import CallRecord, Store, open_store

T0 = 1_800_000_000.0


class Targets:
    """The dispatcher's side of the outbox: one endpoint, ``crm``, takes everything."""

    def __init__(self) -> None:
        self.committed_rows: list[dict[str, int]] = []

    def targets(self, event_type: str) -> list[str]:
        return ["crm"]

    def committed(self, rows: Mapping[str, int]) -> None:
        self.committed_rows.append(dict(rows))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(tmp_path / "cti.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()


def detail(call_id: str, **changes: object) -> CallDetail:
    d = CallDetail(call_id=call_id, sip_call_id=f"{call_id}@carrier", trunk="carrier", caller="5551234",
                   caller_name="", dialled="200", arrived_at=T0)
    for name, value in changes.items():
        setattr(d, name, value)
    return d


async def running(records: CallRecords) -> asyncio.Task[None]:
    task = asyncio.create_task(records.run(), name="records-writer")
    await asyncio.sleep(0)
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_waited_milestone_is_on_disk_when_its_future_resolves(store: Store) -> None:
    records = CallRecords(store, "n1", lambda _id: None, clock=lambda: T0 + 5)
    writer = await running(records)
    try:
        records.milestone(CallId("c-1"), detail("c-1"))
        committed = records.cdr_committed(CallId("c-1"))
        assert not committed.done()
        assert await store.get_call(CallId("c-1")) is None  # still lingering in the writer
        await asyncio.wait_for(committed, 5)
        stored = await store.get_call(CallId("c-1"))
        assert stored is not None and stored.t_ended is None and stored.sip_call_id == "c-1@carrier"
        assert records.cdr_committed(CallId("c-1")).done()  # nothing of it waits any more
    finally:
        await stop(writer)


async def test_a_milestone_already_taken_by_the_writer_is_still_waited_for(store: Store) -> None:
    records = CallRecords(store, "n1", lambda _id: None, clock=lambda: T0 + 5)
    writer = await running(records)
    try:
        records.milestone(CallId("c-4"), detail("c-4"))
        for _ in range(3):
            await asyncio.sleep(0)  # the writer takes the row and lingers before committing it
        assert ("cdr", "c-4") not in records._unwritten and ("cdr", "c-4") in records._committing
        committed = records.cdr_committed(CallId("c-4"))
        assert not committed.done()
        await asyncio.wait_for(committed, 5)
        assert await store.get_call(CallId("c-4")) is not None
        assert records._committing == {}
    finally:
        await stop(writer)


async def test_milestones_waiting_together_are_one_row_as_the_call_stands_when_taken(store: Store) -> None:
    records = CallRecords(store, "n1", lambda _id: None, clock=lambda: T0 + 5)
    call = detail("c-5")
    records.milestone(CallId("c-5"), call)  # arrival
    call.queued_at, call.queue = T0 + 0.5, "sales"
    records.milestone(CallId("c-5"), call)  # queued, before the writer took the arrival
    assert records._writes.qsize() == 1  # one row waits for the call
    call.agent, call.agent_answered_at = "1001", T0 + 1.0  # the call moved on before the writer ran
    writer = await running(records)
    try:
        await asyncio.wait_for(records.cdr_committed(CallId("c-5")), 5)
        stored = await store.get_call(CallId("c-5"))
        assert stored is not None and (stored.t_queued, stored.t_answered) == (T0 + 0.5, T0 + 1.0)
        assert stored.t_ended is None and stored.end_reason is None  # a milestone's row, not the final one
    finally:
        await stop(writer)


async def test_a_detail_no_row_can_be_made_of_is_logged_and_the_writer_goes_on(store: Store) -> None:
    records = CallRecords(store, "n1", lambda _id: None, clock=lambda: T0 + 5)
    looped: list[object] = []
    looped.append(looped)  # not JSON: the row cannot be built
    records.milestone(CallId("c-6"), detail("c-6", ivr_variables={"loop": looped}))
    records.milestone(CallId("c-7"), detail("c-7"))
    writer: asyncio.Task[None] | None = None
    try:
        with capture_logs() as logs:
            writer = await running(records)
            await asyncio.wait_for(records.cdr_committed(CallId("c-7")), 5)
        assert await store.get_call(CallId("c-6")) is None and await store.get_call(CallId("c-7")) is not None
        assert [e["call_id"] for e in logs if e["event"] == "store.record.unbuilt"] == ["c-6"]
        assert not writer.done()
    finally:
        if writer is not None:
            await stop(writer)


async def test_a_waiter_of_a_superseded_milestone_resolves_with_the_final_row(store: Store) -> None:
    records = CallRecords(store, "n1", lambda _id: None, clock=lambda: T0 + 5)
    records.milestone(CallId("c-2"), detail("c-2"))  # queued before the writer runs: not yet taken
    committed = records.cdr_committed(CallId("c-2"))
    ended = records.call_ended(CallId("c-2"), detail("c-2", ended_at=T0 + 3, end_reason="caller-bye",
                                                       hung_up_by="caller"))
    writer = await running(records)
    try:
        await asyncio.wait_for(asyncio.gather(committed, ended), 5)
        stored = await store.get_call(CallId("c-2"))
        assert stored is not None and stored.t_ended == T0 + 3 and stored.end_reason == "caller-bye"
    finally:
        await stop(writer)


async def test_open_calls_of_a_crash_are_closed_interrupted_with_their_call_ended(store: Store) -> None:
    before = CallRecords(store, "n1", lambda _id: None, clock=lambda: T0 + 5)
    writer = await running(before)
    try:
        before.milestone(CallId("c-3"), detail("c-3", answered_at=T0 + 0.2, queued_at=T0 + 0.3))
        await asyncio.wait_for(before.cdr_committed(CallId("c-3")), 5)
    finally:
        await stop(writer)  # the crash: the call never ends

    after = CallRecords(store, "n1", lambda _id: None, clock=lambda: T0 + 60)
    targets = Targets()
    after.outbox = targets

    def ended_event(record: CallRecord) -> Envelope:
        return Envelope.new("call.ended", {"call_id": record.call_id, "reason": record.end_reason},
                            node="n1", now=T0 + 60)

    events = await after.close_interrupted(ended_event)
    stored = await store.get_call(CallId("c-3"))
    assert stored is not None
    assert (stored.end_reason, stored.disposition, stored.t_ended) == ("interrupted", "interrupted", T0 + 0.3)
    assert [e.data["call_id"] for e in events] == ["c-3"]
    claimed = await store.claim_due(T0 + 61, endpoint="crm")
    assert [(c.event_id, c.event_type) for c in claimed] == [(events[0].id, "call.ended")]
    assert targets.committed_rows == [{"crm": 1}]
    assert await after.close_interrupted(ended_event) == []  # closed once: a second start finds nothing


async def test_wrap_up_time_reaches_the_leg_and_a_refused_call_is_a_flow_out_leg(store: Store) -> None:
    """The ACD's own event order (CallEnded, then the move into wrap-up, later out of it) gives the leg its ACW;
    a call refused by a full queue (no CallQueued) is still a leg: offered and flowed out (docs/reports.md)."""
    from acd import (
        AgentConfig,
        AgentId,
        Answer,
        EndWrapUp,
        Enqueue,
        Hangup,
        LoginAgent,
        OfferCall,
        QueueConfig,
        QueueId,
        Router,
    )
    from cti.store import LegOutcome

    router = Router([QueueConfig(id=QueueId("q"), wrap_up_s=60.0, max_size=1)])
    records = CallRecords(store, "n1", lambda _id: None, clock=lambda: T0)
    writer = await running(records)

    def do(request: object, now: float) -> list[object]:
        out = router.handle(request, now)  # type: ignore[arg-type]
        for item in out:
            records.on_acd_event(item, T0 + now)
        return out

    try:
        do(LoginAgent(agent=AgentConfig(id=AgentId("a"), skills={}, queues=frozenset({QueueId("q")})), ready=True),
           0.0)
        offer = next(o for o in do(Enqueue(call_id=CallId("c"), queue_id=QueueId("q")), 1.0)
                     if isinstance(o, OfferCall))
        do(Answer(offer_id=offer.offer_id), 3.0)
        do(Enqueue(call_id=CallId("waits"), queue_id=QueueId("q")), 4.0)
        do(Enqueue(call_id=CallId("refused"), queue_id=QueueId("q")), 5.0)  # max_size 1: queue full
        do(Hangup(call_id=CallId("c")), 63.0)
        do(EndWrapUp(agent_id=AgentId("a")), 75.0)
        await records.flush()
        answered = (await store.legs_of_call(CallId("c")))[0]
        assert (answered.talk_s, answered.acw_s) == (60.0, 12.0)
        refused = (await store.legs_of_call(CallId("refused")))[0]
        assert refused.outcome is LegOutcome.FLOWOUT and refused.t_enter_queue == refused.t_flowout == T0 + 5
    finally:
        await stop(writer)


async def test_recording_serials_are_the_sites_on_the_nodes_day(store: Store) -> None:
    """The records port's serials: the configured site, the day of the node's clock (UTC), counted up."""
    records = CallRecords(store, "n1", lambda _id: None, clock=lambda: T0, site="par1")  # T0: 2027-01-15 08:00 UTC
    assert [await records.allocate_serial() for _ in range(2)] == ["20270115-par1-0001", "20270115-par1-0002"]
    with pytest.raises(AcdError):  # no site given: no serial (and nothing taken from the store)
        await CallRecords(store, "n1", lambda _id: None, clock=lambda: T0).allocate_serial()
    assert await records.allocate_serial() == "20270115-par1-0003"


class _Opaque:
    def __str__(self) -> str:
        return "opaque"


_json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
    | st.builds(_Opaque) | st.sampled_from([AgentState.AVAILABLE.value, ExitReason.MAX_WAIT.value]),
    lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=3) | st.integers(0, 9), inner, max_size=3),
    max_leaves=10,
)  # fmt: skip


@given(value=_json_like)
def test_a_cdr_json_column_is_the_json_round_trip_of_the_calls_value(value: object) -> None:
    """What a CDR's JSON columns hold (``_jsonable``: a plain copy when the value is plain JSON) is the value's
    JSON round trip, and never shares a list or dict with the call's own (still changing) detail."""
    copied = _jsonable(value)
    assert copied == json.loads(json.dumps(value, default=str))
    assert json.dumps(copied) == json.dumps(json.loads(json.dumps(value, default=str)))

    def containers(v: object) -> list[int]:
        if isinstance(v, dict):
            return [id(v), *(i for item in v.values() for i in containers(item))]
        if isinstance(v, list | tuple):
            return [id(v), *(i for item in v for i in containers(item))]
        return []

    assert not set(containers(copied)) & set(containers(value))
