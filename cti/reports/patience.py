"""The callers' mean patience, estimated from the queue legs, for Erlang A (domain.md §2.3). Pure.

Erlang A models patience as exponential with mean ``p``. Every resolved leg tells how long its caller waited:
an abandoned caller's patience ran out at its wait; an answered (or flowed-out) caller's patience was at least
its wait. For exponential patience the maximum-likelihood estimate is then

    p = (total waiting time of all those callers) / (number of abandons)

(domain.md §2.3: "total waiting time of all callers, answered and abandoned / N_ab". A flow-out is a caller
whose wait was cut short by the queue, as an answer cuts it short, so its wait counts too). Legs still in
queue are left out. With no abandon there is no estimate (``None``: the callers were never seen to give up);
few abandons give a noisy one, so the abandons' count goes with the figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cti.store import LegOutcome, QueueLeg

__all__ = ["PatienceEstimate", "estimate_patience"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PatienceEstimate:
    """The estimate and what it rests on."""

    legs: int  # resolved legs counted
    answered: int
    abandoned: int
    flowouts: int
    total_wait_s: float
    patience_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {"legs": self.legs, "answered": self.answered, "abandoned": self.abandoned,
                "flowouts": self.flowouts, "total_wait_s": self.total_wait_s, "patience_s": self.patience_s}


def estimate_patience(legs: Iterable[QueueLeg], queue: str | None = None) -> PatienceEstimate:
    """The estimate over the resolved ``legs`` (of ``queue`` only, when given)."""
    waits: list[float] = []
    counts = {LegOutcome.ANSWERED: 0, LegOutcome.ABANDONED: 0, LegOutcome.FLOWOUT: 0}
    for leg in legs:
        wait = leg.wait_s
        if wait is None or (queue is not None and leg.queue_id != queue):
            continue
        waits.append(wait)
        counts[leg.outcome] += 1
    total = math.fsum(waits)
    abandoned = counts[LegOutcome.ABANDONED]
    return PatienceEstimate(legs=len(waits), answered=counts[LegOutcome.ANSWERED], abandoned=abandoned,
                            flowouts=counts[LegOutcome.FLOWOUT], total_wait_s=total,
                            patience_s=total / abandoned if abandoned else None)
