"""Independent references for the staffing tests: the spec's own methods, written the slow, obvious way.

- :func:`erlang_b_direct`: Erlang B from its definition (A^N/N!) / Σ A^k/k!, fine for small N;
- :func:`death_chain_absorb`: domain spec §2.3's "absorption probability of the pure-death chain by time T,
  computed exactly by uniformisation", one start state k at a time. The product computes the same numbers in
  closed form (cti/staffing/erlang.py); these tests check one against the other.
"""

from __future__ import annotations

import math


def erlang_b_direct(traffic: float, agents: int) -> float:
    terms = [traffic**k / math.factorial(k) for k in range(agents + 1)]
    return terms[-1] / sum(terms)


def death_chain_absorb(k: int, *, agents: int, aht_s: float, patience_s: float, within_s: float) -> tuple[float, float]:
    """(P(served by T), P(abandoned by T)) for a caller who finds k callers waiting ahead of it."""
    mu, theta = 1.0 / aht_s, 1.0 / patience_s
    moves = [agents * mu + i * theta for i in range(k + 1)]  # with i ahead: the line moves at Nμ + iθ
    rate = max(moves) + theta  # uniformisation rate: at least every state's total exit rate
    lt = rate * within_s
    if lt == 0:
        return 0.0, 0.0
    v = [0.0] * (k + 1)
    v[k] = 1.0
    served = abandoned = 0.0
    poisson_cdf = math.exp(-lt)  # P(Poisson(ΛT) <= n - 1)
    n = 0
    while True:
        n += 1
        tail = 1.0 - poisson_cdf  # P(at least n uniformised steps by T)
        if tail < 1e-15 or sum(v) < 1e-15:
            return served, abandoned
        served += v[0] * moves[0] / rate * tail
        abandoned += sum(v) * theta / rate * tail
        v = [v[i] * (1 - (moves[i] + theta) / rate) + (v[i + 1] * moves[i + 1] / rate if i < k else 0.0)
             for i in range(k + 1)]
        poisson_cdf += math.exp(-lt + n * math.log(lt) - math.lgamma(n + 1))
