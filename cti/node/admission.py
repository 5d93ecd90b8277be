"""Call admission: how many calls a trunk and the node take, and how fast new ones may come.

The limits an operator sets from the node's measured capacity (docs/performance.md) and from
the channels bought from each carrier, checked for every new trunk INVITE before any work is
spent on it:

- ``limits.max_calls``: live calls on the node (0: no limit). Past it: 503 with
  ``Retry-After: 5``: the node is full for a while, a carrier or proxy with another route
  (another node) sends there meanwhile (RFC 3261 §21.5.4).
- ``limits.max_calls_per_second``: new calls a second, a token bucket holding one second's
  worth (a burst of that many, then the steady rate; 0: no limit). Past it: 503 without
  Retry-After: only this call goes elsewhere (a proxy treats it like a 500 for this request,
  RFC 3261 §16.7), instead of the node being taken out of rotation and traffic swinging
  between nodes. A node refuses the excess at once instead of taking calls it cannot set up in
  time: the answer to its limit is a cheap 503, not a backlog that makes every caller wait.
- ``trunks[].max_calls``: live calls from one trunk, the channels bought from that carrier (0:
  no limit). Past it: 486 Busy Here: the caller hears busy, as on a full line.
- ``limits.max_loop_lag_ms``: the node's own measure of overload, whatever the limits above say
  (0: off). A tick every ``LoadMeter.EVERY_S`` measures how late the event loop runs it; after
  ``LoadMeter.SUSTAIN`` ticks in a row later than the bound the node is *overloaded*, and stays so
  until as many ticks in a row come within half of it. Meanwhile new calls get 503 without
  Retry-After, like the rate limit: a node whose loop is that far behind would answer them late,
  retransmissions would add to the backlog, and every call already up (their media, their BYEs)
  would suffer. Calls already up are never touched.

Time comes from the clock passed in (the loop's), so the bucket is tested without sleeping.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass


class Refusal(enum.Enum):
    """Why a new call was refused; the value is the ``reason`` label on ``/metrics``."""

    TRUNK_FULL = "trunk_full"
    NODE_FULL = "node_full"
    OVERLOADED = "overloaded"
    RATE = "rate"


# The SIP answer to each refusal, and its extra headers.
ANSWERS: dict[Refusal, tuple[int, tuple[tuple[str, str], ...]]] = {
    Refusal.TRUNK_FULL: (486, ()),
    Refusal.NODE_FULL: (503, (("Retry-After", "5"),)),
    Refusal.OVERLOADED: (503, ()),
    Refusal.RATE: (503, ()),
}


@dataclass(frozen=True, slots=True)
class Limits:
    max_calls: int = 0
    max_calls_per_second: float = 0.0


class LoadMeter:
    """Whether the event loop is overloaded, from the lateness of a periodic tick (sans-I/O: the
    adapter measures, see ``cti.node.controller.CallController.run``).

    ``max_lag_s`` 0 turns it off (never overloaded). Entering takes ``SUSTAIN`` late ticks in a
    row, so one pause (a large write, a collection) refuses nothing; leaving takes as many ticks
    within half the bound, so the state does not flap at the edge.
    """

    EVERY_S = 0.1
    SUSTAIN = 5

    def __init__(self, max_lag_s: float) -> None:
        self.max_lag_s = max_lag_s
        self.overloaded = False
        self.lag_s = 0.0  # the last tick's lateness
        self._run = 0  # ticks in a row that point to the other state

    def tick(self, lateness_s: float) -> bool:
        """One tick ran ``lateness_s`` after it was due; True when the state changed."""
        self.lag_s = lateness_s
        if not self.max_lag_s:
            return False
        if self.overloaded:
            toward = lateness_s < self.max_lag_s / 2
        else:
            toward = lateness_s > self.max_lag_s
        self._run = self._run + 1 if toward else 0
        if self._run < self.SUSTAIN:
            return False
        self._run = 0
        self.overloaded = not self.overloaded
        return True


class Admission:
    """Counts live calls per trunk and decides on each new one."""

    def __init__(self, limits: Limits, trunk_limits: dict[str, int], clock: Callable[[], float],
                 meter: LoadMeter | None = None) -> None:
        self._limits = limits
        self.meter = meter if meter is not None else LoadMeter(0.0)
        self._trunk_limits = trunk_limits
        self._clock = clock
        self._live: Counter[str] = Counter()
        self._burst = max(1.0, float(limits.max_calls_per_second))  # one second's worth, at least one
        self._tokens = self._burst
        self._filled_at: float | None = None

    @property
    def live(self) -> int:
        return sum(self._live.values())

    def live_on(self, trunk: str) -> int:
        return self._live[trunk]

    def admit(self, trunk: str) -> Refusal | None:
        """Take a new call from ``trunk`` (and count it live), or say why not (and count nothing).

        The checks go from the narrowest to the widest, and a refused call takes no token.
        """
        limit = self._trunk_limits.get(trunk, 0)
        if limit and self._live[trunk] >= limit:
            return Refusal.TRUNK_FULL
        if self._limits.max_calls and self.live >= self._limits.max_calls:
            return Refusal.NODE_FULL
        if self.meter.overloaded:
            return Refusal.OVERLOADED
        rate = self._limits.max_calls_per_second
        if rate:
            now = self._clock()
            if self._filled_at is not None:
                self._tokens = min(self._burst, self._tokens + (now - self._filled_at) * rate)
            self._filled_at = now
            if self._tokens < 1.0:
                return Refusal.RATE
            self._tokens -= 1.0
        self._live[trunk] += 1
        return None

    def ended(self, trunk: str) -> None:
        """A call admitted from ``trunk`` is over."""
        if self._live[trunk] > 0:
            self._live[trunk] -= 1
