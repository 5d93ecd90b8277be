"""Every record type written to a real database (SQLite file, PostgreSQL) and read back, plus the reporting queries."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from acd import AgentId, AgentState, CallId, ExitReason, QueueId, SkillName
from cti.store import (
    CallRecord,
    ConflictError,
    HangupParty,
    InvalidRecordError,
    LegId,
    LegOutcome,
    LegTime,
    Party,
    PartyRole,
    QueueLeg,
    Recording,
    RecordingSerial,
    Store,
)

FULL_CALL = CallRecord(
    call_id=CallId("c-1"), node="node-a", t_arrived=1000.0, sip_call_id="abc@trunk", trunk="demo",
    caller_number="+33612345678", caller_name="Zoé Ärger", dialled_number="100", t_ivr_answered=1000.5,
    t_ivr_left=1010.0, t_queued=1010.0, t_answered=1025.0, t_ended=1200.0, hangup_by=HangupParty.AGENT,
    end_reason="normal_clearing", disposition="sale", ivr_inputs={"menu": "1", "path": ["main", "sales"]},
    crm_data={"customer": {"id": 7, "tier": "gold", "balance": 12.5, "active": True, "note": None}}, vip=True,
    call_reason="sales.new_order", recording_serial=RecordingSerial("20260509-par1-0001"),
    final_agent=AgentId("1001"), final_queue=QueueId("sales"), wrap_up_notes="Wants a callback — 周二 after 3 pm",
)  # fmt: skip

ANSWERED_LEG = QueueLeg(
    leg_id=LegId("c-1/1"), call_id=CallId("c-1"), queue_id=QueueId("sales"), t_enter_queue=1010.0,
    outcome=LegOutcome.ANSWERED, skills=(SkillName("sales"), SkillName("french")), priority=10, vip_flag=True,
    caller_number="+33612345678", call_reason="sales.new_order", t_answer=1025.0, t_end=1200.0,
    agent_id=AgentId("1001"), talk_s=160.0, hold_s=15.0, acw_s=30.0, offers=2,
    recording_serial=RecordingSerial("20260509-par1-0001"),
)  # fmt: skip


def in_queue(leg_id: str, queue: str, t: float) -> QueueLeg:
    return QueueLeg(leg_id=LegId(leg_id), call_id=CallId(f"call-{leg_id}"), queue_id=QueueId(queue), t_enter_queue=t)


async def test_call_round_trip_and_upsert(store: Store) -> None:
    assert await store.get_call(CallId("c-1")) is None
    first = CallRecord(call_id=CallId("c-1"), node="node-a", t_arrived=1000.0)
    await store.save_call(first)
    assert await store.get_call(CallId("c-1")) == first
    await store.save_call(FULL_CALL)  # the CDR grows at each milestone
    assert await store.get_call(CallId("c-1")) == FULL_CALL


async def test_calls_between_is_half_open_and_ordered(store: Store) -> None:
    for i, t in enumerate([50.0, 100.0, 150.0, 199.9, 200.0]):
        await store.save_call(CallRecord(call_id=CallId(f"c{i}"), node="n", t_arrived=t))
    found = await store.calls_between(100.0, 200.0)
    assert [c.t_arrived for c in found] == [100.0, 150.0, 199.9]


async def test_calls_of_caller_newest_first_before_a_time(store: Store) -> None:
    for i, (number, t) in enumerate((("+331", 100.0), ("+331", 300.0), ("+332", 200.0), ("+331", 200.0),
                                     ("+331", 400.0), (None, 150.0))):
        await store.save_call(dataclasses.replace(FULL_CALL, call_id=CallId(f"c-{i}"), caller_number=number,
                                                  t_arrived=t))
    found = await store.calls_of_caller("+331", before=400.0, limit=2)
    assert [(c.call_id, c.t_arrived) for c in found] == [("c-1", 300.0), ("c-3", 200.0)]
    assert found[0] == dataclasses.replace(FULL_CALL, call_id=CallId("c-1"), caller_number="+331", t_arrived=300.0)
    assert [c.call_id for c in await store.calls_of_caller("+331", before=400.0, limit=10)] == ["c-1", "c-3", "c-0"]
    assert await store.calls_of_caller("+339", before=1e9, limit=5) == []


async def test_queue_leg_round_trip_every_outcome(store: Store) -> None:
    legs = [
        ANSWERED_LEG,
        in_queue("q", "sales", 1000.0),
        dataclasses.replace(in_queue("a", "sales", 1000.0), outcome=LegOutcome.ABANDONED, t_abandon=1004.0),
        dataclasses.replace(in_queue("f", "support", 1000.0), outcome=LegOutcome.FLOWOUT, t_flowout=1300.0,
                            flowout_reason=ExitReason.OVERFLOW_CALLBACK),
    ]  # fmt: skip
    for leg in legs:
        await store.save_queue_leg(leg)
    for leg in legs:
        assert await store.get_queue_leg(leg.leg_id) == leg
    assert await store.get_queue_leg(LegId("missing")) is None


async def test_queue_leg_update_resolves_it(store: Store) -> None:
    leg = in_queue("x", "sales", 10.0)
    await store.save_queue_leg(leg)
    answered = dataclasses.replace(leg, outcome=LegOutcome.ANSWERED, t_answer=15.0, agent_id=AgentId("1002"))
    await store.save_queue_leg(answered)
    assert await store.get_queue_leg(leg.leg_id) == answered


async def test_queue_leg_id_cannot_move_to_another_call(store: Store) -> None:
    await store.save_queue_leg(in_queue("x", "sales", 10.0))
    with pytest.raises(ConflictError):
        await store.save_queue_leg(dataclasses.replace(in_queue("x", "sales", 10.0), call_id=CallId("other")))
    stored = await store.get_queue_leg(LegId("x"))
    assert stored is not None and stored.call_id == "call-x"


async def test_queue_legs_between_filters_by_queue_and_attribution(store: Store) -> None:
    await store.save_queue_leg(in_queue("early", "sales", 90.0))
    await store.save_queue_leg(in_queue("s1", "sales", 100.0))
    await store.save_queue_leg(in_queue("p1", "support", 110.0))
    late = dataclasses.replace(in_queue("late", "sales", 190.0), outcome=LegOutcome.ABANDONED, t_abandon=230.0)
    await store.save_queue_leg(late)
    resolved_early = dataclasses.replace(in_queue("re", "sales", 80.0), outcome=LegOutcome.ANSWERED,
                                         t_answer=120.0, agent_id=AgentId("1001"))  # fmt: skip
    await store.save_queue_leg(resolved_early)

    entered = await store.queue_legs_between(100.0, 200.0)
    assert [g.leg_id for g in entered] == ["s1", "p1", "late"]
    assert [g.leg_id for g in await store.queue_legs_between(100.0, 200.0, QueueId("sales"))] == ["s1", "late"]
    by_event = await store.queue_legs_between(100.0, 200.0, by=LegTime.RESOLVED)
    assert [g.leg_id for g in by_event] == ["re"]  # "late" resolves after 200; unresolved legs have no event


async def test_agent_state_history_closes_previous_row(store: Store) -> None:
    agent = AgentId("1001")
    assert await store.current_agent_state(agent) is None
    login = await store.record_agent_state(agent, AgentState.PAUSED, 100.0, "login")
    ready = await store.record_agent_state(agent, AgentState.AVAILABLE, 130.0)
    talk = await store.record_agent_state(agent, AgentState.ON_CALL, 200.0)
    await store.record_agent_state(AgentId("1002"), AgentState.AVAILABLE, 50.0)
    assert login.row_id < ready.row_id < talk.row_id
    assert await store.current_agent_state(agent) == talk

    rows = await store.agent_states_between(agent, 0.0, 1000.0)
    assert [(r.state, r.reason, r.start, r.end) for r in rows] == [
        (AgentState.PAUSED, "login", 100.0, 130.0),
        (AgentState.AVAILABLE, None, 130.0, 200.0),
        (AgentState.ON_CALL, None, 200.0, None),
    ]
    # Overlap, not containment: [120, 150) touches the login row and the ready row only.
    assert [r.state for r in await store.agent_states_between(agent, 120.0, 150.0)] == [
        AgentState.PAUSED, AgentState.AVAILABLE,
    ]  # fmt: skip
    assert await store.agent_states_between(agent, 0.0, 100.0) == []


async def test_agent_state_refuses_going_back_in_time(store: Store) -> None:
    agent = AgentId("1001")
    await store.record_agent_state(agent, AgentState.AVAILABLE, 100.0)
    with pytest.raises(InvalidRecordError):
        await store.record_agent_state(agent, AgentState.PAUSED, 99.0, "break")
    assert len(await store.agent_states_between(agent, 0.0, 1e9)) == 1


async def test_recording_round_trip_and_finish(store: Store) -> None:
    serial = await store.allocate_serial("par1", dt.date(2026, 5, 9))
    started = Recording(
        serial=serial, call_id=CallId("c-1"), path="var/recordings/2026/05/09/c-1.wav", started=1025.0,
        parties=(Party(role=PartyRole.CALLER, identity="+33612345678"), Party(role=PartyRole.AGENT, identity="1001")),
        queue_id=QueueId("sales"), agent_id=AgentId("1001"),
    )  # fmt: skip
    await store.save_recording(started)
    assert await store.get_recording(serial) == started
    finished = dataclasses.replace(started, ended=1200.0, duration_s=175.0)
    await store.save_recording(finished)
    assert await store.get_recording(serial) == finished
    assert await store.get_recording(RecordingSerial("20260509-par1-9999")) is None


async def test_recording_serial_cannot_be_reused_by_another_call(store: Store) -> None:
    serial = await store.allocate_serial("par1", dt.date(2026, 5, 9))
    rec = Recording(serial=serial, call_id=CallId("c-1"), path="a.wav", started=1.0)
    await store.save_recording(rec)
    with pytest.raises(ConflictError):
        await store.save_recording(dataclasses.replace(rec, call_id=CallId("c-2"), path="b.wav"))
    assert await store.get_recording(serial) == rec


async def test_serials_count_per_site_and_day(store: Store) -> None:
    day, next_day = dt.date(2026, 5, 9), dt.date(2026, 5, 10)
    assert await store.allocate_serial("par1", day) == "20260509-par1-0001"
    assert await store.allocate_serial("par1", day) == "20260509-par1-0002"
    assert await store.allocate_serial("lyo", day) == "20260509-lyo-0001"
    assert await store.allocate_serial("par1", next_day) == "20260510-par1-0001"
    assert await store.allocate_serial("par1", day) == "20260509-par1-0003"
    with pytest.raises(InvalidRecordError):
        await store.allocate_serial("PAR-1", day)
