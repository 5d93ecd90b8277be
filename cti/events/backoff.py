"""Exponential back-off for the node's retries, over ``tenacity``'s wait strategies.

One schedule serves the webhook outbox (a failed delivery is retried at ``now + delay``, persisted so
that it survives a restart), the outbox writer (a busy or failing store) and the MQTT bridge's
reconnects. The growth and the cap are ``tenacity.wait_exponential``'s; the jitter point is drawn by
the caller (``rand`` in [0, 1]) so that tests and the durable outbox stay deterministic, which
tenacity's own random waits (module-level ``random``) would not allow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tenacity

from cti.errors import SettingsError

__all__ = ["Backoff", "attempt_state"]


def attempt_state(attempt_number: int) -> tenacity.RetryCallState:
    """A tenacity call state at ``attempt_number`` (1-based), for asking a wait strategy its delay."""
    state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
    state.attempt_number = max(attempt_number, 1)
    return state


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays ``initial * 2 ** (n - 1)`` capped at ``maximum`` for the n-th failure (1-based), with jitter.

    ``floor`` is the share of the ceiling that is always waited: 0 gives full jitter down to ``initial``
    (the webhook schedule: uniform in ``[initial, ceiling]``), 0.5 gives "equal jitter" (the MQTT
    reconnects: uniform in ``[ceiling / 2, ceiling]``).

    Raises:
        SettingsError: ``initial`` not positive, ``maximum`` below it, or ``floor`` outside [0, 1].
    """

    initial: float
    maximum: float
    floor: float = 0.0
    _wait: tenacity.wait_exponential = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum or not 0.0 <= self.floor <= 1.0:
            raise SettingsError("need 0 < initial <= maximum and 0 <= floor <= 1")
        object.__setattr__(self, "_wait", tenacity.wait_exponential(multiplier=self.initial, max=self.maximum))

    def ceiling(self, failures: int) -> float:
        """The longest delay after the ``failures``-th failure (1-based)."""
        return float(self._wait(attempt_state(failures)))

    def delay(self, failures: int, rand: float) -> float:
        """The delay after the ``failures``-th failure; ``rand`` in [0, 1] picks the point in the jitter range."""
        top = self.ceiling(failures)
        low = top * self.floor if self.floor else min(self.initial, top)
        return low + (top - low) * min(max(rand, 0.0), 1.0)
