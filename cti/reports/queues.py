"""Queue KPIs from queue-leg records: domain.md §1.1–1.5 and §1.7. Pure: rows in, figures out.

Each function takes the legs of one group (a queue, or every queue) and one bucket; the caller picks them
(``cti.reports.report``). Conventions (each with its domain.md reference):

- A leg is attributed to the bucket holding its ``t_enter_queue`` (§0 "arrival", the default) or its
  resolution time ("event"); a leg still queued is not offered yet (``in_queue`` counts it).
- ``O = N_ans + N_ab + N_fo`` (§1.1); short abandons (wait < S) are excluded from "abandoned" and from
  ``O_eff`` unless ``exclude_short_abandons`` is off.
- SL in the five variants of §1.2 through :func:`acd.service_level` on the §1 counters, the queue's
  configured formula is the headline; a zero denominator is ``None``; wait exactly T is met (≤).
- ASA over answered legs only (§1.3); longest wait over answered and abandoned legs (§1.3 historical).
- AHT = (talk + hold + ACW) / handled, attributed to the bucket in which handling ended
  (``t_end + acw_s``, §1.4). The ACD's ``talk_s`` already includes hold, so handle = ``talk_s + acw_s``
  and ATT (talk without hold) = ``talk_s − hold_s``.
- Answer rate (人工接通率) = N_ans / O_eff, abandon rate = N_ab_eff / O_eff, flow-out rate = N_fo / O_eff
  (§1.5: they add up to 1). A call-back request is a flow-out (reason ``overflow_callback``).
- Transfer rate = answered legs whose call went on to another queue leg / answered legs (each leg counts
  for its own queue, §1.2).
- Repeat rate (§1.7 (a)): a contact is a call's first leg with a known caller number; it is a repeat when
  the same number made another contact within the window W after it. Contacts whose window is not over yet
  are provisional.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from acd import ExitReason, IntervalCounters, SlFormula, service_level
from cti.store import LegId, LegOutcome, QueueLeg

__all__ = ["LegMarks", "QueueFigures", "QueueRules", "mark_legs", "queue_figures", "resolved_at"]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueRules:
    """How one queue's legs are counted (config: the queue's ``sl_*`` keys and ``reports``)."""

    sl_threshold_s: float = 20.0
    sl_formula: SlFormula = SlFormula.ABANDONS_AFTER_T_NEGATIVE
    include_flowouts: bool = False
    short_abandon_s: float = 5.0
    exclude_short_abandons: bool = True
    ring_cycle_s: float = 6.0
    answer_within_rings: int = 3

    def __post_init__(self) -> None:
        if not self.sl_threshold_s > 0:
            raise ValueError(f"sl_threshold_s must be > 0, got {self.sl_threshold_s}")
        if not 0 <= self.short_abandon_s <= self.sl_threshold_s:
            raise ValueError("short_abandon_s must be between 0 and sl_threshold_s (S <= T, domain.md §1)")
        if not self.ring_cycle_s > 0 or self.answer_within_rings < 1:
            raise ValueError("ring_cycle_s must be > 0 and answer_within_rings >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class LegMarks:
    """Facts about legs that need the other legs (or the agent states) to be known."""

    transferred: frozenset[LegId] = frozenset()  # answered legs whose call went on to another leg
    contacts: frozenset[LegId] = frozenset()  # first leg of a call with a known caller number
    repeats: frozenset[LegId] = frozenset()  # contacts followed by another contact within W
    provisional: frozenset[LegId] = frozenset()  # contacts whose window W is not over
    ring_s: Mapping[LegId, float] = field(default_factory=dict)  # answered legs: how long the agent's phone rang


def resolved_at(leg: QueueLeg) -> float | None:
    """When the leg's queue time ended (answer, abandon or flow-out); None while queued."""
    return leg.t_answer if leg.t_answer is not None else (leg.t_abandon if leg.t_abandon is not None
                                                          else leg.t_flowout)


def handling_ended(leg: QueueLeg) -> float | None:
    """When the handling of an answered leg ended: talk end plus ACW (§1.4); None before the talk ends."""
    return None if leg.t_end is None else leg.t_end + leg.acw_s


def mark_legs(legs: Iterable[QueueLeg], *, repeat_window_s: float, data_until: float) -> LegMarks:
    """Transfers and repeat contacts over every leg known (give legs up to the report end + W).

    ``data_until``: the time up to which legs are known (the report's end + W, or now if earlier); a
    contact whose window reaches past it is provisional.
    """
    by_call: dict[str, list[QueueLeg]] = defaultdict(list)
    for leg in legs:
        by_call[leg.call_id].append(leg)
    transferred: set[LegId] = set()
    firsts: list[QueueLeg] = []
    for visits in by_call.values():
        visits.sort(key=lambda v: (v.t_enter_queue, v.leg_id))
        for earlier in visits[:-1]:
            if earlier.outcome is LegOutcome.ANSWERED:
                transferred.add(earlier.leg_id)
        if visits[0].caller_number is not None:
            firsts.append(visits[0])
    by_caller: dict[str, list[QueueLeg]] = defaultdict(list)
    for first in firsts:
        assert first.caller_number is not None
        by_caller[first.caller_number].append(first)
    repeats: set[LegId] = set()
    provisional: set[LegId] = set()
    for contacts in by_caller.values():
        contacts.sort(key=lambda c: c.t_enter_queue)
        for i, contact in enumerate(contacts):
            later = contacts[i + 1] if i + 1 < len(contacts) else None
            if later is not None and later.t_enter_queue - contact.t_enter_queue <= repeat_window_s:
                repeats.add(contact.leg_id)
            elif contact.t_enter_queue + repeat_window_s > data_until:
                provisional.add(contact.leg_id)
    return LegMarks(transferred=frozenset(transferred), contacts=frozenset(f.leg_id for f in firsts),
                    repeats=frozenset(repeats), provisional=frozenset(provisional))


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueFigures:
    """The queue KPIs of one group and bucket (names follow domain.md §1)."""

    offered: int
    offered_effective: int
    answered: int
    abandoned: int
    abandoned_short: int
    abandoned_effective: int
    flowouts: int
    callbacks: int
    in_queue: int
    answered_in_t: int
    abandoned_in_t: int
    abandoned_after_t: int
    service_level: float | None
    service_levels: Mapping[str, float | None]
    answered_wait_s: float
    asa_s: float | None
    avg_abandon_s: float | None
    longest_wait_s: float | None
    handled: int
    aht_s: float | None
    att_s: float | None
    avg_hold_s: float | None
    avg_acw_s: float | None
    answer_rate: float | None
    abandon_rate: float | None
    abandon_rate_raw: float | None
    flowout_rate: float | None
    transfers: int
    transfer_rate: float | None
    contacts: int
    repeat_contacts: int
    repeat_rate: float | None
    repeat_provisional: int
    avg_ring_s: float | None
    answered_within_rings: float | None

    @property
    def counters(self) -> IntervalCounters:
        """The §1 counters, as the live statistics (acd/stats.py) keep them."""
        return IntervalCounters(answered=self.answered, abandoned=self.abandoned, flowouts=self.flowouts,
                                answered_in_t=self.answered_in_t, abandoned_in_t=self.abandoned_in_t,
                                abandoned_after_t=self.abandoned_after_t, abandoned_short=self.abandoned_short,
                                answered_wait_s=self.answered_wait_s)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def queue_figures(arrived: Sequence[QueueLeg], ended: Sequence[QueueLeg], rules: QueueRules,
                  marks: LegMarks = LegMarks()) -> QueueFigures:
    """Figures of the legs ``arrived`` in the bucket (per the attribution) and those whose handling
    ``ended`` in it (AHT). The headline SL uses ``rules.sl_formula``; every variant is in ``service_levels``.
    """
    t, s = rules.sl_threshold_s, rules.short_abandon_s
    answered = abandoned = flowouts = callbacks = in_queue = 0
    ans_t = ab_t = ab_gt_t = ab_short = 0
    answered_wait = abandoned_wait_eff = 0.0
    longest: float | None = None
    transfers = contacts = repeats = provisional = 0
    rings: list[float] = []
    for leg in arrived:
        wait = leg.wait_s
        if leg.leg_id in marks.contacts:
            contacts += 1
            repeats += leg.leg_id in marks.repeats
            provisional += leg.leg_id in marks.provisional
        if wait is None:
            in_queue += 1
            continue
        match leg.outcome:
            case LegOutcome.ANSWERED:
                answered += 1
                answered_wait += wait
                ans_t += wait <= t  # domain.md §1.2: answered exactly at T counts as met
                transfers += leg.leg_id in marks.transferred
                ring = marks.ring_s.get(leg.leg_id)
                if ring is not None:
                    rings.append(ring)
            case LegOutcome.ABANDONED:
                abandoned += 1
                if wait <= t:
                    ab_t += 1
                else:
                    ab_gt_t += 1
                if wait < s:
                    ab_short += 1
                else:
                    abandoned_wait_eff += wait
            case LegOutcome.FLOWOUT:
                flowouts += 1
                callbacks += leg.flowout_reason is ExitReason.OVERFLOW_CALLBACK
                continue
            case LegOutcome.IN_QUEUE:  # pragma: no cover - wait_s is None for these
                continue
        longest = wait if longest is None else max(longest, wait)
    counters = IntervalCounters(answered=answered, abandoned=abandoned, flowouts=flowouts, answered_in_t=ans_t,
                                abandoned_in_t=ab_t, abandoned_after_t=ab_gt_t, abandoned_short=ab_short)
    variants = {f.value: service_level(counters, f, include_flowouts=rules.include_flowouts) for f in SlFormula}
    offered = answered + abandoned + flowouts
    short_out = ab_short if rules.exclude_short_abandons else 0
    offered_eff = offered - short_out
    abandoned_eff = abandoned - short_out
    handled = [leg for leg in ended if leg.t_end is not None]
    n_h = len(handled)
    limit = rules.answer_within_rings * rules.ring_cycle_s
    return QueueFigures(
        offered=offered, offered_effective=offered_eff, answered=answered, abandoned=abandoned,
        abandoned_short=ab_short, abandoned_effective=abandoned_eff, flowouts=flowouts, callbacks=callbacks,
        in_queue=in_queue, answered_in_t=ans_t, abandoned_in_t=ab_t, abandoned_after_t=ab_gt_t,
        service_level=variants[rules.sl_formula.value], service_levels=variants,
        answered_wait_s=answered_wait, asa_s=_ratio(answered_wait, answered),
        avg_abandon_s=_ratio(abandoned_wait_eff, abandoned - ab_short),
        longest_wait_s=longest, handled=n_h,
        aht_s=_ratio(math.fsum(leg.talk_s + leg.acw_s for leg in handled), n_h),
        att_s=_ratio(math.fsum(leg.talk_s - leg.hold_s for leg in handled), n_h),
        avg_hold_s=_ratio(math.fsum(leg.hold_s for leg in handled), n_h),
        avg_acw_s=_ratio(math.fsum(leg.acw_s for leg in handled), n_h),
        answer_rate=_ratio(answered, offered_eff), abandon_rate=_ratio(abandoned_eff, offered_eff),
        abandon_rate_raw=_ratio(abandoned, offered), flowout_rate=_ratio(flowouts, offered_eff),
        transfers=transfers, transfer_rate=_ratio(transfers, answered),
        contacts=contacts, repeat_contacts=repeats, repeat_rate=_ratio(repeats, contacts),
        repeat_provisional=provisional,
        avg_ring_s=_ratio(math.fsum(rings), len(rings)),
        answered_within_rings=_ratio(sum(1 for r in rings if r <= limit), len(rings)),
    )
