"""The rule language and the pure selection (domain.md §4.4): no store, no clock."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from cti.qa import INSUFFICIENT, RuleInvalidError, commitment, facts_from_legs, parse_rule, select
from cti.qa.rules import rule_hash
from cti.qa.sampling import chosen_days
from tests.cti.qa.synthetic import EXAMPLE_RULE, EXPECTED, ZONE, legs, serial


def _rule(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE_RULE)
    body.update(changes)
    return body


def test_the_brief_example_selects_each_agents_second_eligible_call() -> None:
    selection = select(parse_rule(EXAMPLE_RULE), "seed-1", facts_from_legs(legs(), ZONE))
    got = {i.agent_id: i.recording_serial for i in selection.items}
    assert got == EXPECTED
    reasons = {i.agent_id: (i.reason, i.eligible) for i in selection.items}
    assert reasons == {"1001": ("nth:2", 3), "1002": ("nth:2", 2), "1003": (INSUFFICIENT, 1),
                       "1004": (INSUFFICIENT, 0)}


def test_the_same_inputs_give_the_same_digest_and_any_change_another() -> None:
    rule, facts = parse_rule(EXAMPLE_RULE), facts_from_legs(legs(), ZONE)
    base = select(rule, "seed-1", facts)
    assert select(rule, "seed-1", list(reversed(facts))).digest == base.digest  # order of the records is irrelevant
    assert select(rule, "seed-2", facts).digest != base.digest  # a changed seed
    changed = [dataclasses.replace(f, talk_s=f.talk_s + 1) if f.recording_serial == serial(13) else f for f in facts]
    assert select(rule, "seed-1", changed).digest != base.digest  # a changed record (not even a sampled one)
    assert select(rule, "seed-1", changed).items == base.items
    other = parse_rule(_rule(select={"method": "nth", "n": 1}))
    assert select(other, "seed-1", facts).digest != base.digest  # a changed rule
    assert rule_hash(other) != rule_hash(rule)


def test_seeded_random_depends_on_the_seed_only_through_hmac() -> None:
    rule = parse_rule(_rule(select={"method": "seeded_random", "k": 2}))
    facts = facts_from_legs(legs(), ZONE)
    a = select(rule, "alpha", facts)
    assert select(rule, "alpha", facts) == a
    serials = {s for s in (i.recording_serial for i in a.items) if s}
    assert len([i for i in a.items if i.agent_id == "1001"]) == 2
    picks = {frozenset(i.recording_serial for i in select(rule, f"s{n}", facts).items if i.agent_id == "1001")
             for n in range(20)}
    assert len(picks) > 1  # the seed does steer the choice
    assert serials  # every pick is an eligible call
    eligible_1001 = {serial(3), serial(6), serial(7)}
    assert all(p <= eligible_1001 for p in picks)


def test_percent_all_and_per_partition() -> None:
    facts = facts_from_legs(legs(), ZONE)
    every = select(parse_rule(_rule(select={"method": "all"})), "s", facts)
    assert sorted(i.recording_serial or "" for i in every.items if i.agent_id == "1001") == sorted(
        [serial(3), serial(6), serial(7)])
    half = select(parse_rule(_rule(select={"method": "percent", "p": 0.5})), "s", facts)
    assert len([i for i in half.items if i.agent_id == "1001"]) == 2  # ceil(0.5 * 3)
    capped = select(parse_rule(_rule(select={"method": "all"}, per_partition=1)), "s", facts)
    assert len([i for i in capped.items if i.agent_id == "1001"]) == 1


def test_day_selector_is_the_same_for_everyone_and_fallback_takes_the_next_day() -> None:
    body = _rule(period={"start": "2026-06-01", "end": "2026-06-07", "tz": "Asia/Shanghai"},
                 day_selector={"method": "seeded_random_day", "count": 1}, fallback="next_eligible_day")
    rule = parse_rule(body)
    days = {tuple(chosen_days(rule, f"seed{n}")) for n in range(30)}
    assert len(days) > 1 and all(len(d) == 1 for d in days)
    # find a seed choosing a day before 06-03: the calls of 06-03 then come in through the fallback
    seed = next(f"seed{n}" for n in range(200) if chosen_days(rule, f"seed{n}")[0].day < 3)
    items = {i.agent_id: i for i in select(rule, seed, facts_from_legs(legs(), ZONE)).items}
    assert items["1001"].recording_serial == serial(6)
    assert items["1001"].reason == "nth:2;fallback_day:2026-06-03"
    assert items["1003"].recording_serial is None


@pytest.mark.parametrize(("change", "problem"), [
    ({"filter": {"field": "caller_number", "op": "==", "value": "1"}}, "filter.field: unknown field 'caller_number'"),
    ({"filter": {"all": [{"field": "talk_s", "op": "~=", "value": 1}]}}, "filter.all[0].op: unknown operator '~='"),
    ({"filter": {"field": "talk_s", "op": ">", "value": "200"}}, "filter.value: talk_s > needs a number value"),
    ({"filter": {"field": "answer_local_time", "op": ">=", "value": "25:00"}}, "filter.value: answer_local_time"),
    ({"filter": {"field": "queue_id", "op": "<", "value": "a"}}, "filter.op: operator '<' does not apply"),
    ({"select": {"method": "nth", "n": 0}}, "select.n: a positive integer"),
    ({"select": {"method": "lottery"}}, "select.method: required, one of"),
    ({"colour": "red"}, "colour: unknown key"),
    ({"period": {"start": "2026-06-03", "end": "2026-06-01"}}, "period.end: before period.start"),
    ({"period": {"start": "2026-06-03", "end": "2026-06-03", "tz": "Mars/Olympus"}}, "period.tz: unknown time zone"),
    ({"fallback": "next_eligible_day"}, "fallback: next_eligible_day needs a day_selector"),
    ({"partition_by": ["queue_id"]}, "partition_by: a list of distinct"),
])
def test_bad_rules_are_refused_with_the_reason(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(RuleInvalidError) as refused:
        parse_rule(_rule(**change))
    assert any(p.startswith(problem) for p in refused.value.problems), refused.value.problems
    assert refused.value.code == "qa.rule_invalid"


def test_commitment_is_sha256_of_the_seed() -> None:
    assert commitment("abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_evaluator_assignment_round_robin_seeded_and_independent() -> None:
    from cti.qa import StateError, assign_evaluators

    facts = facts_from_legs(legs(), ZONE)
    rule = parse_rule(_rule(select={"method": "all"},
                            assign={"method": "round_robin", "evaluators": ["s1", "s2"], "independent": True}))
    items = select(rule, "seed", facts).items
    sampled = [i for i in items if i.recording_serial]
    no_teams = assign_evaluators(rule, "seed", items, team_of={}, leads={})
    assert [i.evaluator for i in no_teams if i.recording_serial] == ["s1", "s2"] * (len(sampled) // 2) + (
        ["s1"] if len(sampled) % 2 else [])
    assert all(i.evaluator is None for i in no_teams if i.recording_serial is None)  # nothing to evaluate
    # s1 leads agent 1001's team: every 1001 call goes to s2, whatever the turn
    team_of = {"1001": "blue", "1002": "red"}
    independent = assign_evaluators(rule, "seed", items, team_of=team_of, leads={"s1": frozenset({"blue"})})
    assert {i.evaluator for i in independent if i.agent_id == "1001"} == {"s2"}
    with pytest.raises(StateError) as none_left:
        assign_evaluators(rule, "seed", items, team_of=team_of,
                          leads={"s1": frozenset({"blue"}), "s2": frozenset({"blue"})})
    assert none_left.value.code == "qa.no_independent_evaluator"
    seeded = parse_rule(_rule(select={"method": "all"}, assign={"method": "seeded", "evaluators": ["s1", "s2"]}))
    once = assign_evaluators(seeded, "seed", items, team_of={}, leads={})
    assert once == assign_evaluators(seeded, "seed", items, team_of={}, leads={})
    spread = {tuple(i.evaluator for i in assign_evaluators(seeded, f"x{n}", items, team_of={}, leads={}))
              for n in range(10)}
    assert len(spread) > 1
