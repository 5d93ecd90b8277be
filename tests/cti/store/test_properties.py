"""Hypothesis: any valid record written to either backend reads back equal (text, JSON, floats, enums).

Text never holds NUL: PostgreSQL cannot store it in ``TEXT`` (the store refuses such a record there
with ``InvalidRecordError``, tested in ``test_postgres.py``); JSON escapes it, so payloads may.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acd import AgentId, CallId, ExitReason, QueueId, SkillName
from cti.store import CallRecord, HangupParty, JsonValue, LegId, LegOutcome, QueueLeg, Store

chars = st.characters(codec="utf-8", exclude_characters="\x00")
texts = st.text(chars, min_size=1, max_size=20)
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
        caller_name=draw(st.none() | st.text(chars, max_size=30)), t_ended=draw(st.none() | st.just(t0 + 1.5)),
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
async def test_records_read_back_equal(store: Store, call: CallRecord, leg: QueueLeg) -> None:
    # One store for all examples: each one replaces the same call and leg (upserts).
    await store.save_call(call)
    await store.save_queue_leg(leg)
    assert (await store.get_call(call.call_id), await store.get_queue_leg(leg.leg_id)) == (call, leg)
