"""Transparent sampling (domain.md §4.4): the selection is a pure function of (rule, seed, call data).

- :func:`commitment` is ``sha256:<hex>`` of the seed's UTF-8 bytes, published with the rule; the seed itself is
  revealed when the period closes, so anyone can check it and re-run :func:`select`.
- :func:`facts_from_legs` turns the store's answered queue legs into :class:`CallFact` rows (local time of the
  site's zone, the rule's ``period.tz``). Only answered legs with an agent and a recording are candidates: a call
  with no recording cannot be evaluated.
- :func:`select` partitions the candidates (agent, optionally local date and queue), filters, orders and picks per
  ``select``; a partition with too few eligible calls yields one item with ``recording_serial`` None and reason
  ``insufficient_calls`` — never a substitute call. ``seeded_random`` orders by ``HMAC-SHA256(seed, serial)``;
  ``seeded_random_day`` picks the same day(s) for everyone from ``HMAC-SHA256(seed, rule_id)``.
- :func:`selection_digest` is SHA-256 over the canonical JSON of the rule's hash, the seed, the digest of the input
  facts and the ordered items, so a changed rule, seed or call record changes it.
- :func:`assign_evaluators` spreads the sampled calls over evaluators (round-robin or seeded), skipping an
  evaluator who leads the agent's team when the rule asks for independence. Assignment depends on the teams of
  the configuration, not on call data, so it is outside the digest.
- :func:`unsettled_calls` names the candidate calls whose record is not final yet (the agent still on the call,
  or in its wrap-up, whose end writes ``acw_s``): a period is closed only when there are none.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, assert_never

from acd import AgentState
from cti.qa.errors import StateError
from cti.qa.rules import FIELDS, And, Condition, FieldKind, Leaf, Not, Or, Rule, SelectMethod, rule_hash
from cti.store import AgentStateRow, LegOutcome, QueueLeg

__all__ = ["CallFact", "OpenCall", "SampleItem", "Selection", "assign_evaluators", "chosen_days", "commitment",
           "facts_from_legs", "matches", "select", "selection_digest", "unsettled_calls"]

# The agent enters wrap-up as its call ends (the same event, written within the same second).
WRAP_UP_MATCH_S = 5.0

INSUFFICIENT = "insufficient_calls"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFact:
    """One candidate call as the rule language sees it (an answered queue leg)."""

    leg_id: str
    call_id: str
    agent_id: str
    queue_id: str
    recording_serial: str
    t_answer: float
    local_date: str  # YYYY-MM-DD in the rule's zone
    answer_local_time: str  # HH:MM:SS
    local_weekday: int  # ISO: Monday 1 .. Sunday 7
    talk_s: float
    hold_s: float
    acw_s: float
    wait_s: float
    skill: tuple[str, ...]
    call_reason: str | None
    direction: str
    outcome: str
    transfer_count: int
    vip_flag: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleItem:
    agent_id: str
    local_date: str | None  # when partitioned by day (or the day the sample came from)
    queue_id: str | None  # when partitioned by queue
    recording_serial: str | None
    leg_id: str | None
    reason: str  # "nth:2", "seeded_random:1/3", "all", "percent:1/2", "insufficient_calls"
    eligible: int  # eligible calls in the partition
    evaluator: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    items: tuple[SampleItem, ...]
    days: tuple[str, ...]
    input_digest: str
    digest: str


def commitment(seed: str) -> str:
    """``sha256:<hex>`` of the seed (what is published before the period)."""
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def _hmac(seed: str, message: str) -> bytes:
    return hmac.new(seed.encode(), message.encode(), hashlib.sha256).digest()


def facts_from_legs(legs: Iterable[QueueLeg], tz: dt.tzinfo) -> list[CallFact]:
    """Candidate facts of answered legs with an agent and a recording; ``transfer_count`` counts the legs of the
    same call that entered a queue before this one (among ``legs``)."""
    legs = sorted(legs, key=lambda g: (g.t_enter_queue, g.leg_id))
    seen: dict[str, int] = {}
    facts = []
    for leg in legs:
        before = seen.get(leg.call_id, 0)
        seen[leg.call_id] = before + 1
        if (leg.outcome is not LegOutcome.ANSWERED or leg.agent_id is None or leg.t_answer is None
                or leg.recording_serial is None):
            continue
        local = dt.datetime.fromtimestamp(leg.t_answer, tz)
        facts.append(CallFact(
            leg_id=leg.leg_id, call_id=leg.call_id, agent_id=leg.agent_id, queue_id=leg.queue_id,
            recording_serial=leg.recording_serial, t_answer=leg.t_answer, local_date=local.date().isoformat(),
            answer_local_time=local.strftime("%H:%M:%S"), local_weekday=local.isoweekday(), talk_s=leg.talk_s,
            hold_s=leg.hold_s, acw_s=leg.acw_s, wait_s=max(0.0, leg.t_answer - leg.t_enter_queue),
            skill=tuple(leg.skills), call_reason=leg.call_reason, direction="inbound", outcome=leg.outcome.value,
            transfer_count=before, vip_flag=leg.vip_flag))
    return facts


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenCall:
    """A candidate call whose record is not final: ``why`` is ``on_call`` or ``wrap_up``."""

    call_id: str
    leg_id: str
    agent_id: str
    recording_serial: str | None
    why: str

    def text(self) -> str:
        return (f"{self.recording_serial or self.call_id} (agent {self.agent_id}, "
                f"{'in wrap-up' if self.why == 'wrap_up' else 'still on the call'})")


def unsettled_calls(legs: Iterable[QueueLeg], current: Mapping[str, AgentStateRow | None]) -> list[OpenCall]:
    """The candidate legs (as :func:`facts_from_legs`: answered, with an agent and a recording) whose facts may
    still change: the talk has not ended (no ``t_end``), or the agent's current state (``current``: agent id to
    its open state row) is the wrap-up that began as this leg ended."""
    found = []
    for leg in sorted(legs, key=lambda g: (g.t_answer or 0.0, g.leg_id)):
        if leg.outcome is not LegOutcome.ANSWERED or leg.agent_id is None or leg.recording_serial is None:
            continue
        state = current.get(leg.agent_id)
        why = ("on_call" if leg.t_end is None else
               "wrap_up" if state is not None and state.state is AgentState.WRAP_UP and state.end is None
               and abs(state.start - leg.t_end) <= WRAP_UP_MATCH_S else None)
        if why is not None:
            found.append(OpenCall(call_id=leg.call_id, leg_id=leg.leg_id, agent_id=leg.agent_id,
                                  recording_serial=leg.recording_serial, why=why))
    return found


def _compare(kind: FieldKind, have: Any, op: str, want: Any) -> bool:
    if kind is FieldKind.TEXT_SET:
        values = set(have)
        match op:
            case "==":
                return want in values
            case "!=":
                return want not in values
            case "in":
                return bool(values & set(want))
            case "not_in":
                return not values & set(want)
        return False
    if have is None:
        return op in ("!=", "not_in")
    match op:
        case "==":
            return bool(have == want)
        case "!=":
            return bool(have != want)
        case "<":
            return bool(have < want)
        case "<=":
            return bool(have <= want)
        case ">":
            return bool(have > want)
        case ">=":
            return bool(have >= want)
        case "in":
            return have in want
        case "not_in":
            return have not in want
        case "between":
            return bool(want[0] <= have <= want[1])
    return False


def matches(condition: Condition | None, fact: CallFact) -> bool:
    """Whether ``fact`` satisfies the condition (None: every call)."""
    match condition:
        case None:
            return True
        case Leaf():
            return _compare(FIELDS[condition.field], getattr(fact, condition.field), condition.op, condition.value)
        case And():
            return all(matches(t, fact) for t in condition.terms)
        case Or():
            return any(matches(t, fact) for t in condition.terms)
        case Not():
            return not matches(condition.term, fact)
        case _:
            assert_never(condition)


def chosen_days(rule: Rule, seed: str) -> list[dt.date]:
    """The period's days the rule samples: all, or the ``seeded_random_day`` choice (the same for everyone).

    The first day is ``HMAC-SHA256(seed, rule_id) mod days``; each further one ``HMAC(seed, rule_id#i) mod`` the
    days left. Returned in calendar order.
    """
    days = rule.days()
    if rule.day_selector is None:
        return days
    left, picked = list(days), []
    for i in range(rule.day_selector.count):
        message = rule.rule_id if i == 0 else f"{rule.rule_id}#{i}"
        picked.append(left.pop(int.from_bytes(_hmac(seed, message), "big") % len(left)))
    return sorted(picked)


def _sort_key(rule: Rule) -> Callable[[CallFact], tuple[Any, ...]]:
    def key(fact: CallFact) -> tuple[Any, ...]:
        parts: list[Any] = []
        for name, descending in rule.order_by:
            value = getattr(fact, name)
            if descending:
                value = tuple(-b for b in value.encode()) if isinstance(value, str) else -value
            parts.append(value)
        return tuple(parts)
    return key


def _pick(rule: Rule, seed: str, ordered: list[CallFact]) -> tuple[list[CallFact], str]:
    s = rule.select
    match s.method:
        case SelectMethod.NTH:
            return ([ordered[s.n - 1]], f"nth:{s.n}") if len(ordered) >= s.n else ([], INSUFFICIENT)
        case SelectMethod.SEEDED_RANDOM:
            if len(ordered) < s.k:
                return [], INSUFFICIENT
            ranked = sorted(ordered, key=lambda f: (_hmac(seed, f.recording_serial), f.recording_serial))
            return ranked[:s.k], f"seeded_random:{s.k}"
        case SelectMethod.PERCENT:
            k = math.ceil(s.p * len(ordered) - 1e-9)
            if k == 0:
                return [], INSUFFICIENT
            ranked = sorted(ordered, key=lambda f: (_hmac(seed, f.recording_serial), f.recording_serial))
            return ranked[:k], f"percent:{s.p:g}"
        case SelectMethod.ALL:
            return (list(ordered), "all") if ordered else ([], INSUFFICIENT)
        case _:
            assert_never(s.method)


def _in_scope(rule: Rule, fact: CallFact) -> bool:
    return ((rule.agents is None or fact.agent_id in rule.agents)
            and (rule.queues is None or fact.queue_id in rule.queues)
            and (rule.direction is None or fact.direction == rule.direction)
            and rule.start.isoformat() <= fact.local_date <= rule.end.isoformat())


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def selection_digest(rule: Rule, seed: str, input_digest: str, items: Sequence[SampleItem]) -> str:
    """SHA-256 of the canonical JSON of (rule hash, seed, input digest, ordered items)."""
    return _digest({"rule": rule_hash(rule), "seed": seed, "input": input_digest,
                    "items": [asdict(i) | {"evaluator": None} for i in items]})


def select(rule: Rule, seed: str, facts: Iterable[CallFact]) -> Selection:
    """The sample of ``rule`` with ``seed`` over ``facts`` (any superset of the period's candidates).

    Items come out sorted by agent, then day, then queue; within a partition in the rule's order.
    """
    scoped = sorted((f for f in facts if _in_scope(rule, f)), key=lambda f: (f.recording_serial, f.leg_id))
    input_digest = _digest([asdict(f) for f in scoped])
    days = [d.isoformat() for d in chosen_days(rule, seed)]
    day_set = set(days)
    agents = sorted(rule.agents) if rule.agents is not None else sorted({f.agent_id for f in scoped})
    by_day = "local_date" in rule.partition_by
    by_queue = "queue_id" in rule.partition_by
    key = _sort_key(rule)
    items: list[SampleItem] = []
    for agent in agents:
        mine = [f for f in scoped if f.agent_id == agent]
        in_days = [f for f in mine if f.local_date in day_set]
        groups: dict[tuple[str | None, str | None], list[CallFact]] = {}
        for f in in_days:
            groups.setdefault((f.local_date if by_day else None, f.queue_id if by_queue else None), []).append(f)
        if not groups:  # an agent in scope with no call on the sampled days
            groups = {(d, None): [] for d in days} if by_day and rule.day_selector else {(None, None): []}
        for (day, queue), calls in sorted(groups.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or "")):
            eligible = sorted((f for f in calls if matches(rule.condition, f)), key=key)
            picked, reason = _pick(rule, seed, eligible)
            source_day = day
            if not picked and rule.fallback_next_day:
                after = sorted({f.local_date for f in mine if f.local_date > (day or max(days))} - day_set)
                for later in after:
                    eligible = sorted((f for f in mine if f.local_date == later and (queue is None or f.queue_id
                                       == queue) and matches(rule.condition, f)), key=key)
                    picked, reason = _pick(rule, seed, eligible)
                    if picked:
                        source_day, reason = later, f"{reason};fallback_day:{later}"
                        break
            if rule.per_partition is not None:
                picked = picked[:rule.per_partition]
            if not picked:
                items.append(SampleItem(agent_id=agent, local_date=day, queue_id=queue, recording_serial=None,
                                        leg_id=None, reason=INSUFFICIENT, eligible=len(eligible)))
            for f in picked:
                items.append(SampleItem(agent_id=agent, local_date=source_day if by_day or rule.fallback_next_day
                                        else day, queue_id=queue, recording_serial=f.recording_serial,
                                        leg_id=f.leg_id, reason=reason, eligible=len(eligible)))
    return Selection(items=tuple(items), days=tuple(days), input_digest=input_digest,
                     digest=selection_digest(rule, seed, input_digest, items))


def assign_evaluators(rule: Rule, seed: str, items: Sequence[SampleItem], *, team_of: Mapping[str, str | None],
                      leads: Mapping[str, frozenset[str]]) -> list[SampleItem]:
    """Each sampled call gets an evaluator from ``rule.assign.evaluators``: round-robin in item order, or the
    evaluator ranked first by ``HMAC(seed, serial + evaluator)`` (seeded). With ``independent``, an evaluator
    who leads the agent's team (``team_of[agent] in leads[evaluator]``) is skipped.

    Raises:
        StateError: (qa.no_independent_evaluator) every evaluator leads that agent's team.
    """
    assert rule.assign is not None
    evaluators = list(rule.assign.evaluators)
    out, turn = [], 0
    for item in items:
        if item.recording_serial is None:
            out.append(item)
            continue
        team = team_of.get(item.agent_id)
        allowed = [e for e in evaluators
                   if not (rule.assign.independent and team is not None and team in leads.get(e, frozenset()))]
        if not allowed:
            raise StateError(f"no evaluator of {', '.join(evaluators)} is independent of agent {item.agent_id}'s "
                             f"team {team}", code="qa.no_independent_evaluator")
        if rule.assign.method == "seeded":
            chosen = min(allowed, key=lambda e: _hmac(seed, f"{item.recording_serial}/{e}"))
        else:
            while evaluators[turn % len(evaluators)] not in allowed:
                turn += 1
            chosen = evaluators[turn % len(evaluators)]
            turn += 1
        out.append(SampleItem(**{**asdict(item), "evaluator": chosen}))
    return out
