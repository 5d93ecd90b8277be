"""Hypothesis: any valid record written to SQLite reads back equal (text, JSON, floats, enums)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acd import AgentId, CallId, ExitReason, QueueId, SkillName
from cti.store import CallRecord, HangupParty, JsonValue, LegId, LegOutcome, QueueLeg, open_store

texts = st.text(min_size=1, max_size=20)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
json_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
json_objects = st.dictionaries(st.text(max_size=5), json_values, max_size=4)


@st.composite
def calls(draw: st.DrawFn) -> CallRecord:
    t0 = draw(times)
    return CallRecord(
        call_id=CallId("c"), node=draw(texts), t_arrived=t0, sip_call_id=draw(st.none() | texts),
        caller_number=draw(st.none() | st.from_regex(r"\+?[0-9]{1,15}", fullmatch=True)),
        caller_name=draw(st.none() | st.text(max_size=30)), t_ended=draw(st.none() | st.just(t0 + 1.5)),
        hangup_by=draw(st.none() | st.sampled_from(HangupParty)), ivr_inputs=draw(json_objects),
        crm_data=draw(json_objects), vip=draw(st.booleans()), final_agent=draw(st.none() | texts.map(AgentId)),
    )  # fmt: skip


@st.composite
def legs(draw: st.DrawFn) -> QueueLeg:
    t0 = draw(times)
    outcome = draw(st.sampled_from(LegOutcome))
    wait = draw(st.floats(min_value=0, max_value=1e4))
    resolved = {
        LegOutcome.IN_QUEUE: {},
        LegOutcome.ANSWERED: {"t_answer": t0 + wait, "agent_id": AgentId(draw(texts))},
        LegOutcome.ABANDONED: {"t_abandon": t0 + wait},
        LegOutcome.FLOWOUT: {"t_flowout": t0 + wait, "flowout_reason": draw(st.sampled_from(ExitReason))},
    }[outcome]
    return QueueLeg(
        leg_id=LegId("L"), call_id=CallId("c"), queue_id=QueueId(draw(texts)), t_enter_queue=t0, outcome=outcome,
        skills=tuple(SkillName(s) for s in draw(st.lists(texts, max_size=3))), priority=draw(st.integers(-5, 99)),
        talk_s=draw(st.floats(min_value=0, max_value=1e5)), offers=draw(st.integers(0, 50)),
        **resolved,  # type: ignore[arg-type]
    )  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=calls(), leg=legs())
def test_records_read_back_equal(tmp_path: Path, call: CallRecord, leg: QueueLeg) -> None:
    async def round_trip() -> tuple[CallRecord | None, QueueLeg | None]:
        store = await open_store(tmp_path / "prop.sqlite")
        try:
            await store.save_call(call)
            await store.save_queue_leg(leg)
            return await store.get_call(call.call_id), await store.get_queue_leg(leg.leg_id)
        finally:
            await store.close()

    assert asyncio.run(round_trip()) == (call, leg)
