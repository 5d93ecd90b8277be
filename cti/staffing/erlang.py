"""Queueing figures for N agents: Erlang C (M/M/N) and Erlang A (M/M/N+M), domain spec §2.1 and §2.3.

Pure arithmetic: no I/O, no clock. Everything is computed in forms that cannot overflow for any load the
planner accepts (tested at 10^4 Erlangs):

- Erlang B by its recurrence ``B(k) = A·B(k-1) / (k + A·B(k-1))`` (never ``A^N / N!``, which overflows at
  N ≈ 170), then ``C = N·B / (N - A·(1 - B))``;
- the Erlang A stationary distribution in log space (``log A^j/j!`` by ``lgamma``), normalised by its largest
  term, truncated once a term is below 1e-15 of the largest and the queue is shrinking;
- the Erlang A "served within T" probabilities in closed form (:func:`_absorbed_within`), with incomplete beta
  functions carried over the queue length by recurrence, each term in log space.

Times are seconds; ``traffic`` is the offered load A = λ·h in Erlangs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from acd import SlFormula
from cti.staffing.errors import StaffingInputError

__all__ = ["MAX_QUEUE_STATES", "QueueFigures", "erlang_a_figures", "erlang_b", "erlang_c_figures"]

MAX_QUEUE_STATES: int = 200_000
"""Erlang A: the most waiting-caller states kept. A queue that does not settle within this many callers
(far too few agents and a patience far longer than the handling time) is refused instead of computed."""

_TRUNCATE = math.log(1e-15)  # domain spec §2.3: drop terms below 1e-15 of the largest


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueFigures:
    """What N agents give for one interval's load. ``None`` means undefined or infinite (see each field)."""

    agents: int
    service_level: float | None
    """Share of calls answered within T in the chosen SL variant; None when there are no calls."""
    wait_probability: float
    """P(a caller waits at all)."""
    asa_s: float | None
    """Mean wait over all calls in seconds (zero for immediate answers); None when infinite (Erlang C, N <= A)."""
    occupancy: float | None
    """Carried load / N; None when N = 0."""
    queue_length: float | None
    """Mean number of callers waiting; None when infinite."""
    abandon_probability: float | None
    """Erlang A: P(a caller abandons); None for Erlang C (no abandonment in the model)."""
    abandon_within_t_probability: float | None
    """Erlang A: P(a caller abandons within T); None for Erlang C."""
    understaffed: bool
    """Erlang C: N <= A, the queue grows without bound."""


def _no_calls(agents: int, *, erlang_a: bool) -> QueueFigures:
    """No offered calls: nobody waits or abandons; SL is undefined (spec §1.2: never report 100 % for 0/0)."""
    zero = 0.0 if erlang_a else None
    return QueueFigures(agents=agents, service_level=None, wait_probability=0.0, asa_s=0.0,
                        occupancy=0.0 if agents > 0 else None, queue_length=0.0, abandon_probability=zero,
                        abandon_within_t_probability=zero, understaffed=False)


def erlang_b(traffic: float, agents: int) -> float:
    """Blocking probability of the Erlang B formula, by recurrence (O(N), stable for any N)."""
    b = 1.0
    for k in range(1, agents + 1):
        ab = traffic * b
        b = ab / (k + ab)
    return b


def erlang_c_figures(traffic: float, agents: int, *, aht_s: float, answer_within_s: float,
                     blocking: float | None = None) -> QueueFigures:
    """Erlang C figures for ``agents`` (spec §2.1). ``blocking`` is ``erlang_b(traffic, agents)`` if known.

    N <= A is unstable: P(wait) = 1, SL = 0, ASA infinite (None), occupancy 1, ``understaffed``.
    """
    if traffic == 0:
        return _no_calls(agents, erlang_a=False)
    if agents <= traffic:
        return QueueFigures(agents=agents, service_level=0.0, wait_probability=1.0, asa_s=None,
                            occupancy=1.0 if agents > 0 else None, queue_length=None, abandon_probability=None,
                            abandon_within_t_probability=None, understaffed=True)
    b = erlang_b(traffic, agents) if blocking is None else blocking
    spare = agents - traffic
    c = agents * b / (agents - traffic * (1.0 - b))
    sl = 1.0 - c * math.exp(-spare * answer_within_s / aht_s)
    return QueueFigures(agents=agents, service_level=min(1.0, max(0.0, sl)), wait_probability=c,
                        asa_s=c * aht_s / spare, occupancy=traffic / agents, queue_length=c * traffic / spare,
                        abandon_probability=None, abandon_within_t_probability=None, understaffed=False)


def _stationary(traffic: float, agents: int, ratio: float) -> tuple[float, list[float]]:
    """Erlang A stationary distribution: (P(fewer than N in system), [π_{N+k} for k = 0..K]).

    ``ratio`` = θ/μ = AHT / patience. Weights: π_j ∝ A^j/j! (j <= N), π_{N+k} = π_N·Π_{i<=k} A/(N + i·ratio).

    Raises:
        StaffingInputError: the queue does not settle within MAX_QUEUE_STATES callers.
    """
    log_a = math.log(traffic)
    below = [j * log_a - math.lgamma(j + 1) for j in range(agents)]
    top = agents * log_a - math.lgamma(agents + 1)
    queue = [top]
    peak = max(top, max(below, default=top))
    k = 0
    while True:
        k += 1
        top += log_a - math.log(agents + k * ratio)
        queue.append(top)
        peak = max(peak, top)
        if agents + k * ratio > traffic and top - peak < _TRUNCATE:
            break
        if k > MAX_QUEUE_STATES:
            raise StaffingInputError(
                "patience_s", f"with {agents} agents for {traffic:g} Erlangs the queue does not settle within "
                f"{MAX_QUEUE_STATES} callers: the patience is too long for this load (use erlang-c)")
    weights_below = [math.exp(x - peak) for x in below]
    weights_queue = [math.exp(x - peak) for x in queue]
    total = math.fsum(weights_below) + math.fsum(weights_queue)
    return math.fsum(weights_below) / total, [w / total for w in weights_queue]


def _absorbed_within(queue: list[float], *, agents: int, aht_s: float, patience_s: float,
                     within_s: float) -> tuple[float, float]:
    """(P(served by T), P(abandoned by T)) summed over arrivals that find k = 0..K callers waiting, weighted by
    ``queue[k]`` = π_{N+k} (spec §2.3).

    With i callers ahead the line moves at rate Nμ + iθ = θ(c + i), c = Nμ/θ, so the caller reaches an agent
    after S_k = Σ_{i=0..k} Exp(θ(c + i)) unless it leaves first at rate θ. S_k has the law of -ln(U)/θ with
    U ~ Beta(c, k + 1) (their Laplace transforms are both Π (c+i)/(c+i+s/θ)), and the caller's patience is
    independent of S_k, so with x = e^{-θT}:

    - P(served by T | k) = E[e^{-θS}; S <= T] = E[U; U >= x] = c/(c+k+1) · I_{1-x}(k+1, c+1);
    - P(abandoned by T | k) = E[1 - e^{-θ·min(S, T)}] = 1 - P(served by T | k) - x · I_x(c, k+1).

    This is the absorption probability by T of the pure-death chain the spec describes (the tests check it
    against that chain uniformised). Both regularised incomplete beta functions are carried over k by their
    one-step recurrences, with each step's term in log space: O(K) in all, whatever N, T or the patience.
    """
    theta_t = within_s / patience_s
    if agents == 0 or -math.expm1(-theta_t) == 0.0:  # nobody is ever served / T too short to be told from 0
        leave = -math.expm1(-theta_t)
        return 0.0, leave * math.fsum(queue)
    c = agents * patience_s / aht_s
    log_x = -theta_t  # ln x
    log_y = math.log(-math.expm1(-theta_t))  # ln(1 - x)
    x = math.exp(log_x)
    # I_{1-x}(k+1, c+1), starting at k = 0: 1 - x^{c+1}; I_y(a+1, b) = I_y(a, b) - y^a (1-y)^b / (a B(a, b)).
    served_tail = -math.expm1((c + 1) * log_x)
    # I_x(c, k+1), starting at k = 0: x^c; I_x(a, b+1) = I_x(a, b) + x^a (1-x)^b / (b B(a, b)).
    slow = math.exp(c * log_x)
    lg_c, lg_c1 = math.lgamma(c), math.lgamma(c + 1)
    served = abandoned = 0.0
    for k, weight in enumerate(queue):
        if k:
            a = k  # step from I_y(k, c+1) to I_y(k+1, c+1)
            served_tail -= math.exp(a * log_y + (c + 1) * log_x + math.lgamma(a + c + 1) - math.lgamma(a + 1)
                                    - lg_c1)
            slow += math.exp(c * log_x + k * log_y + math.lgamma(c + k) - lg_c - math.lgamma(k + 1))
            served_tail, slow = max(0.0, served_tail), min(1.0, slow)
        p_served = c / (c + k + 1) * served_tail
        served += weight * p_served
        abandoned += weight * max(0.0, 1.0 - p_served - x * slow)
    return served, abandoned


def _erlang_a_sl(formula: SlFormula, answered_in_t: float, abandoned_in_t: float,
                 abandoned: float) -> float | None:
    """The SL variants of spec §1.2 as §2.3 maps them onto Erlang A probabilities."""
    match formula:
        case SlFormula.ABANDONS_NEGATIVE:
            return answered_in_t
        case SlFormula.ABANDONS_AFTER_T_NEGATIVE:
            rest = 1.0 - abandoned_in_t
        case SlFormula.ANSWERED_ONLY:
            rest = 1.0 - abandoned
        case _:
            raise AssertionError(f"{formula} is refused by StaffingInput")
    return min(1.0, answered_in_t / rest) if rest > 0.0 else None


def erlang_a_figures(traffic: float, agents: int, *, aht_s: float, answer_within_s: float, patience_s: float,
                     sl_formula: SlFormula) -> QueueFigures:
    """Erlang A figures for ``agents`` (spec §2.3); always stable, since callers abandon.

    Raises:
        StaffingInputError: the queue does not settle within MAX_QUEUE_STATES callers.
    """
    if traffic == 0:
        return _no_calls(agents, erlang_a=True)
    below, queue = _stationary(traffic, agents, aht_s / patience_s)
    waiting = min(1.0, math.fsum(queue))
    mean_queue = math.fsum(k * w for k, w in enumerate(queue))
    abandoned = min(1.0, mean_queue * aht_s / (patience_s * traffic))  # θ·E[Lq]/λ
    served_t, abandoned_t = _absorbed_within(queue, agents=agents, aht_s=aht_s, patience_s=patience_s,
                                                within_s=answer_within_s)
    answered_in_t = min(1.0, below + served_t)
    return QueueFigures(
        agents=agents, service_level=_erlang_a_sl(sl_formula, answered_in_t, abandoned_t, abandoned),
        wait_probability=waiting, asa_s=mean_queue * aht_s / traffic,  # E[Lq]/λ (Little)
        occupancy=min(1.0, traffic * (1.0 - abandoned) / agents) if agents > 0 else None, queue_length=mean_queue,
        abandon_probability=abandoned, abandon_within_t_probability=min(1.0, abandoned_t), understaffed=False)
