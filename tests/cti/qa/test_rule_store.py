"""Publication, close and verification of a rule over stored CDRs, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from cti.events.registry import Envelope, validate
from cti.qa import QaError, StateError, commitment
from cti.qa.service import QaService
from cti.store import LegId, Store
from tests.cti.qa.synthetic import EXAMPLE_RULE, EXPECTED, at, legs


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _day(store: Store) -> None:
    for leg in legs():
        await store.save_queue_leg(leg)


async def test_publish_close_verify_and_tampering(store: Store) -> None:
    clock = Clock(at("09:00") - 86400)
    events: list[tuple[str, dict[str, object]]] = []
    qa = QaService(store, zone="Asia/Shanghai", clock=clock, publish=lambda t, d: events.append((t, dict(d))))
    published = await qa.publish_rule(EXAMPLE_RULE, actor="operator")
    assert published["seed"] is None and published["seed_commitment"].startswith("sha256:")
    with pytest.raises(StateError) as again:  # immutable once published
        await qa.publish_rule({**EXAMPLE_RULE, "title": "edited"}, actor="operator")
    assert again.value.code == "qa.rule_published"
    await _day(store)
    with pytest.raises(StateError) as early:
        await qa.close_rule("QA-2026-06-03-01", actor="operator")
    assert early.value.code == "qa.period_open"
    clock.now = at("00:05") + 86400
    closed = await qa.close_rule("QA-2026-06-03-01", actor="operator")
    assert commitment(closed["seed"]) == published["seed_commitment"]
    assert {s["agent_id"]: s["recording_serial"] for s in closed["samples"]} == EXPECTED
    assert {s["agent_id"]: s["reason"] for s in closed["samples"]}["1004"] == "insufficient_calls"
    assert [t for t, _ in events] == ["qa.rule.published", "qa.sample.selected"]
    for type_, data in events:
        validate(Envelope.new(type_, data, node="n", now=clock.now), strict=True)
    verdict = await qa.verify("QA-2026-06-03-01")
    assert verdict["match"] is True and verdict["recomputed_digest"] == closed["selection_digest"]

    # a changed call record: the digest no longer matches and verify says which check failed
    leg = await store.get_queue_leg(LegId("leg-13"))
    assert leg is not None
    await store.save_queue_leg(dataclasses.replace(leg, talk_s=leg.talk_s + 1))
    verdict = await qa.verify("QA-2026-06-03-01")
    assert verdict["match"] is False
    assert verdict["checks"]["input_digest"] is False and verdict["checks"]["selection_digest"] is False
    await store.save_queue_leg(leg)
    assert (await qa.verify("QA-2026-06-03-01"))["match"] is True


async def test_author_held_seed_must_match_the_commitment(store: Store) -> None:
    clock = Clock(at("09:00") - 86400)
    qa = QaService(store, zone="UTC", clock=clock)
    body = copy.deepcopy(EXAMPLE_RULE)
    await qa.publish_rule(body, actor="operator", seed_commitment=commitment("my secret seed"))
    await _day(store)
    clock.now = at("00:05") + 86400
    with pytest.raises(StateError) as missing:
        await qa.close_rule(body["rule_id"], actor="operator")
    assert missing.value.code == "qa.seed_required"
    with pytest.raises(StateError) as wrong:
        await qa.close_rule(body["rule_id"], actor="operator", seed="another seed")
    assert wrong.value.code == "qa.seed_mismatch"
    closed = await qa.close_rule(body["rule_id"], actor="operator", seed="my secret seed")
    assert closed["seed"] == "my secret seed"
    with pytest.raises(StateError) as twice:
        await qa.close_rule(body["rule_id"], actor="operator", seed="my secret seed")
    assert twice.value.code == "qa.rule_closed"


async def test_a_rule_is_published_before_its_period(store: Store) -> None:
    qa = QaService(store, zone="UTC", clock=Clock(at("08:00")))
    with pytest.raises(QaError) as late:
        await qa.publish_rule(EXAMPLE_RULE, actor="operator")
    assert late.value.code == "qa.period_started"
    assert await qa.rules() == []


async def test_no_close_while_calls_of_the_period_are_open(store: Store) -> None:
    from acd import AgentId, AgentState, CallId, QueueId
    from cti.store import LegOutcome, QueueLeg, RecordingSerial

    clock = Clock(at("09:00") - 86400)
    qa = QaService(store, zone="Asia/Shanghai", clock=clock)
    await qa.publish_rule(EXAMPLE_RULE, actor="operator")
    await _day(store)
    talking = QueueLeg(leg_id=LegId("leg-late-1"), call_id=CallId("call-late-1"), queue_id=QueueId("sales"),
                       t_enter_queue=at("23:54"), outcome=LegOutcome.ANSWERED, t_answer=at("23:55"),
                       agent_id=AgentId("1002"), recording_serial=RecordingSerial("20260603-qa-0098"))
    wrapping = QueueLeg(leg_id=LegId("leg-late-2"), call_id=CallId("call-late-2"), queue_id=QueueId("sales"),
                        t_enter_queue=at("23:49"), outcome=LegOutcome.ANSWERED, t_answer=at("23:50"),
                        t_end=at("23:50") + 100, talk_s=100.0, agent_id=AgentId("1003"),
                        recording_serial=RecordingSerial("20260603-qa-0099"))
    for leg in (talking, wrapping):
        await store.save_queue_leg(leg)
    await store.record_agent_state(AgentId("1002"), AgentState.ON_CALL, at("23:55"))
    await store.record_agent_state(AgentId("1003"), AgentState.WRAP_UP, at("23:50") + 100.4)
    await store.record_agent_state(AgentId("1001"), AgentState.WRAP_UP, at("23:59"))  # not a call of the period
    clock.now = at("00:05") + 86400
    with pytest.raises(StateError) as refused:
        await qa.close_rule("QA-2026-06-03-01", actor="operator")
    assert refused.value.code == "qa.calls_open" and refused.value.status_hint == 409
    assert str(refused.value).startswith("2 call(s) of the period are not final yet: 20260603-qa-0099 (agent 1003, "
                                         "in wrap-up), 20260603-qa-0098 (agent 1002, still on the call)")
    assert (await qa.rule("QA-2026-06-03-01")).closed_at is None  # nothing half-applied
    # the talk ends (its wrap-up follows), the other wrap-up ends: the records are final, the close goes through
    await store.save_queue_leg(dataclasses.replace(talking, t_end=at("00:02") + 86400, talk_s=420.0, acw_s=30.0))
    await store.save_queue_leg(dataclasses.replace(wrapping, acw_s=45.0))
    await store.record_agent_state(AgentId("1003"), AgentState.AVAILABLE, at("23:50") + 145)
    await store.record_agent_state(AgentId("1002"), AgentState.AVAILABLE, at("00:03") + 86400)
    closed = await qa.close_rule("QA-2026-06-03-01", actor="operator")
    assert {s["agent_id"]: s["recording_serial"] for s in closed["samples"]} == EXPECTED
