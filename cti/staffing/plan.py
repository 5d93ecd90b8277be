"""Required agents for one interval: Erlang C or A, the SL target, the occupancy cap and shrinkage (spec §2.1-2.4).

- Erlang C: N_sl is found by walking up from ⌊A⌋ + 1 until SL(T) >= target (Erlang B carried along, O(1) per
  step); N_raw = max(N_sl, ⌈A / max_occupancy⌉).
- Erlang A: N_raw is the least N whose SL meets the target *and* whose occupancy A(1 - P_ab)/N is within the cap.
  Both are monotone in N (tested), so the search gallops down from the Erlang C answer, then bisects.
- N_scheduled = ⌈N_raw / (1 - shrinkage)⌉: shrinkage is applied after rounding, as pyworkforce, Call Centre
  Helper and the R package ErlangC do.

Rounding up ignores float noise below 1e-9 relative (⌈10.000000000000002⌉ is 10): a ratio that is an integer on
paper must not cost an agent. Pure: no I/O.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from typing import Any

from acd import SlFormula
from cti.staffing.erlang import QueueFigures, erlang_a_figures, erlang_b, erlang_c_figures
from cti.staffing.errors import StaffingInputError

__all__ = ["MAX_AGENTS", "MAX_TRAFFIC_ERLANGS", "SL_FORMULAS", "WHAT_IF_SPAN", "Model", "StaffingInput",
           "StaffingResult", "figures", "plan", "required_agents", "scheduled"]

MAX_TRAFFIC_ERLANGS: float = 20_000.0
"""Largest offered load accepted (the spec asks for 10^4; beyond that, plan per site or per skill)."""
MAX_AGENTS: int = 100_000
WHAT_IF_SPAN: int = 3
"""Default what-if curve: N-3..N+3 around the answer (domain spec §2.1's nonlinearity table)."""
SL_FORMULAS: tuple[SlFormula, ...] = (SlFormula.ABANDONS_AFTER_T_NEGATIVE, SlFormula.ABANDONS_NEGATIVE,
                                      SlFormula.ANSWERED_ONLY)
"""The SL variants spec §2.3 maps onto Erlang A (for Erlang C, with no abandons, they are all equal)."""


class Model(enum.Enum):
    """The queueing model."""

    ERLANG_C = "erlang-c"  # M/M/N: callers never abandon
    ERLANG_A = "erlang-a"  # M/M/N+M: exponential patience with mean patience_s


def _finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StaffingInputError(name, f"must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class StaffingInput:
    """One interval's planning question (defaults: 30-minute interval, 80/20, Erlang C, no shrinkage, no
    occupancy cap, SL variant ABANDONS_AFTER_T_NEGATIVE). Validated on construction.

    Raises:
        StaffingInputError: a value is out of range (``field`` names it).
    """

    calls: float
    aht_s: float
    interval_s: float = 1800.0
    sl_target: float = 0.80
    answer_within_s: float = 20.0
    model: Model = Model.ERLANG_C
    patience_s: float | None = None
    shrinkage: float = 0.0
    max_occupancy: float = 1.0
    sl_formula: SlFormula = SlFormula.ABANDONS_AFTER_T_NEGATIVE
    traffic: float = field(init=False)
    """A = calls / interval_s · aht_s, in Erlangs."""

    def __post_init__(self) -> None:
        if _finite("calls", self.calls) < 0:
            raise StaffingInputError("calls", f"must be >= 0, got {self.calls:g}")
        if _finite("interval_s", self.interval_s) <= 0:
            raise StaffingInputError("interval_s", f"must be > 0, got {self.interval_s:g}")
        if _finite("aht_s", self.aht_s) <= 0:
            raise StaffingInputError("aht_s", f"the average handle time must be > 0 s, got {self.aht_s:g}")
        if not 0 < _finite("sl_target", self.sl_target) < 1:
            raise StaffingInputError("sl_target",
                                     f"must be above 0 and below 1 (0.80 for 80 %), got {self.sl_target:g}")
        if _finite("answer_within_s", self.answer_within_s) < 0:
            raise StaffingInputError("answer_within_s", f"must be >= 0 s, got {self.answer_within_s:g}")
        if not 0 <= _finite("shrinkage", self.shrinkage) < 1:
            raise StaffingInputError("shrinkage", f"must be >= 0 and below 1 (0.3 for 30 %), got {self.shrinkage:g}")
        if not 0 < _finite("max_occupancy", self.max_occupancy) <= 1:
            raise StaffingInputError("max_occupancy", f"must be above 0 and at most 1, got {self.max_occupancy:g}")
        if self.model is Model.ERLANG_A:
            if self.patience_s is None:
                raise StaffingInputError("patience_s", "erlang-a needs the callers' mean patience in seconds")
            if _finite("patience_s", self.patience_s) <= 0:
                raise StaffingInputError("patience_s", f"must be > 0 s, got {self.patience_s:g}")
        elif self.patience_s is not None:
            raise StaffingInputError("patience_s", "only erlang-a models patience (erlang-c callers never abandon)")
        if self.sl_formula not in SL_FORMULAS:
            names = ", ".join(f.value for f in SL_FORMULAS)
            raise StaffingInputError("sl_formula", f"{self.sl_formula.value} is not defined for staffing; use {names}")
        traffic = self.calls / self.interval_s * self.aht_s
        if traffic > MAX_TRAFFIC_ERLANGS:
            raise StaffingInputError("calls", f"the offered load is {traffic:g} Erlangs; at most "
                                              f"{MAX_TRAFFIC_ERLANGS:g} can be planned at once")
        object.__setattr__(self, "traffic", traffic)


@dataclass(frozen=True, slots=True, kw_only=True)
class StaffingResult:
    """The answer: ``agents`` (N_raw, or the N given), ``agents_scheduled`` and the figures at ``agents``."""

    inputs: StaffingInput
    agents: int
    agents_scheduled: int
    figures: QueueFigures
    meets_target: bool
    limited_by: str | None
    """Why not one agent fewer: "service_level", "occupancy", or None (no calls, or N was given)."""
    what_if: tuple[QueueFigures, ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``cti staffing --json`` and ``GET /api/v1/staffing``."""
        inp = self.inputs
        return {
            "model": inp.model.value, "traffic_erlangs": inp.traffic, "agents": self.agents,
            "agents_scheduled": self.agents_scheduled, **_figures_json(self.figures, inp.model),
            "meets_target": self.meets_target, "limited_by": self.limited_by,
            "inputs": {"calls": inp.calls, "interval_s": inp.interval_s, "aht_s": inp.aht_s,
                       "sl_target": inp.sl_target, "answer_within_s": inp.answer_within_s,
                       "patience_s": inp.patience_s, "shrinkage": inp.shrinkage, "max_occupancy": inp.max_occupancy,
                       "sl_formula": inp.sl_formula.value},
            "what_if": [{"agents": f.agents, "agents_scheduled": scheduled(f.agents, inp.shrinkage),
                         **_figures_json(f, inp.model)} for f in self.what_if],
        }


def _figures_json(f: QueueFigures, model: Model) -> dict[str, Any]:
    out: dict[str, Any] = {"service_level": f.service_level, "wait_probability": f.wait_probability,
                           "asa_s": f.asa_s, "occupancy": f.occupancy, "queue_length": f.queue_length,
                           "understaffed": f.understaffed}
    if model is Model.ERLANG_A:
        out["abandon_probability"] = f.abandon_probability
        out["abandon_within_t_probability"] = f.abandon_within_t_probability
    return out


def _ceil(x: float) -> int:
    """⌈x⌉, ignoring float noise below 1e-9 relative."""
    nearest = round(x)
    return int(nearest) if abs(x - nearest) <= 1e-9 * max(1.0, abs(x)) else math.ceil(x)


def scheduled(agents: int, shrinkage: float) -> int:
    """N_scheduled = ⌈N / (1 - shrinkage)⌉."""
    return _ceil(agents / (1.0 - shrinkage))


def figures(inp: StaffingInput, agents: int) -> QueueFigures:
    """The figures ``agents`` give for ``inp``'s load and model.

    Raises:
        StaffingInputError: Erlang A only, the queue does not settle (see erlang.MAX_QUEUE_STATES).
    """
    if inp.model is Model.ERLANG_C:
        return erlang_c_figures(inp.traffic, agents, aht_s=inp.aht_s, answer_within_s=inp.answer_within_s)
    assert inp.patience_s is not None
    return erlang_a_figures(inp.traffic, agents, aht_s=inp.aht_s, answer_within_s=inp.answer_within_s,
                            patience_s=inp.patience_s, sl_formula=inp.sl_formula)


def _sl_met(inp: StaffingInput, f: QueueFigures) -> bool:
    return f.service_level is not None and f.service_level >= inp.sl_target


def _occupancy_met(inp: StaffingInput, f: QueueFigures) -> bool:
    """Occupancy within the cap, with the float noise ``_ceil`` ignores (A/N = cap up to 1e-9 relative meets it)."""
    return f.occupancy is not None and f.occupancy <= inp.max_occupancy * (1 + 1e-9)


def _erlang_c_required(inp: StaffingInput) -> tuple[int, str]:
    """(N_raw, what limits it) by spec §2.1's walk up from ⌊A⌋ + 1."""
    a = inp.traffic
    n = math.floor(a) + 1
    b = erlang_b(a, n)
    while not _sl_met(inp, erlang_c_figures(a, n, aht_s=inp.aht_s, answer_within_s=inp.answer_within_s,
                                            blocking=b)):
        n += 1
        if n > MAX_AGENTS:
            raise StaffingInputError("sl_target", f"no staffing up to {MAX_AGENTS} agents meets it")
        b = a * b / (n + a * b)
    n_occupancy = _ceil(a / inp.max_occupancy)
    return (n, "service_level") if n >= n_occupancy else (n_occupancy, "occupancy")


def _erlang_a_required(inp: StaffingInput) -> int:
    """The least N meeting both the SL target and the occupancy cap (both monotone in N)."""
    memo: dict[int, bool] = {0: False}  # no agent answers anybody: SL 0 < target

    def meets(n: int) -> bool:
        if n not in memo:
            f = figures(inp, n)
            memo[n] = _sl_met(inp, f) and _occupancy_met(inp, f)
        return memo[n]

    good = max(1, _erlang_c_required(replace(inp, model=Model.ERLANG_C, patience_s=None))[0])
    while not meets(good):
        good *= 2
        if good > MAX_AGENTS:
            raise StaffingInputError("sl_target", f"no staffing up to {MAX_AGENTS} agents meets it")
    step = 1
    while True:  # gallop down: cheap near the answer, where queues are short
        candidate = max(0, good - step)
        if not meets(candidate):
            bad = candidate
            break
        good, step = candidate, step * 2
    while good - bad > 1:
        middle = (good + bad) // 2
        if meets(middle):
            good = middle
        else:
            bad = middle
    return good


def required_agents(inp: StaffingInput, *, what_if_span: int = WHAT_IF_SPAN) -> StaffingResult:
    """The least N meeting the SL target and the occupancy cap, its figures and the what-if curve around it.

    Zero volume needs 0 agents.

    Raises:
        StaffingInputError: no N up to MAX_AGENTS meets the target, or (Erlang A) the queue does not settle.
    """
    if inp.traffic == 0:
        n, limited_by = 0, None
    elif inp.model is Model.ERLANG_C:
        n, limited_by = _erlang_c_required(inp)
    else:
        n = _erlang_a_required(inp)
        limited_by = "service_level" if not _sl_met(inp, figures(inp, n - 1)) else "occupancy"
    return _result(inp, n, limited_by, what_if_span)


def plan(inp: StaffingInput, agents: int, *, what_if_span: int = WHAT_IF_SPAN) -> StaffingResult:
    """The figures of a given staffing of ``agents`` (``cti staffing --agents N``) and its what-if curve.

    Raises:
        StaffingInputError: ``agents`` is negative or above MAX_AGENTS; (Erlang A) the queue does not settle.
    """
    if not 0 <= agents <= MAX_AGENTS:
        raise StaffingInputError("agents", f"must be in 0..{MAX_AGENTS}, got {agents}")
    return _result(inp, agents, None, what_if_span)


def _result(inp: StaffingInput, n: int, limited_by: str | None, span: int) -> StaffingResult:
    if not 0 <= span <= 50:
        raise StaffingInputError("what_if", f"the what-if span must be in 0..50, got {span}")
    curve = tuple(figures(inp, k) for k in range(max(0, n - span), n + span + 1))
    at_n = next(f for f in curve if f.agents == n)
    met = inp.traffic == 0 or (_sl_met(inp, at_n) and _occupancy_met(inp, at_n))
    return StaffingResult(inputs=inp, agents=n, agents_scheduled=scheduled(n, inp.shrinkage), figures=at_n,
                          meets_target=met, limited_by=limited_by, what_if=curve)
