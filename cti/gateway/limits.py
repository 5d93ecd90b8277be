"""Login throttling: at most ``limit`` failed logins per source within a sliding ``window_s``.

Pure: time is passed in. Memory is bounded: at most ``max_sources`` sources are tracked (the stalest is forgotten).
"""

from __future__ import annotations

from collections import OrderedDict, deque

__all__ = ["LoginThrottle"]


class LoginThrottle:
    """Counts failed logins per source (an IP address) in a sliding window."""

    def __init__(self, *, limit: int = 5, window_s: float = 60.0, max_sources: int = 10_000) -> None:
        self._limit = limit
        self._window_s = window_s
        self._max_sources = max_sources
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, source: str, now: float) -> deque[float]:
        times = self._failures.get(source)
        if times is None:
            return deque()
        while times and times[0] <= now - self._window_s:
            times.popleft()
        if not times:
            del self._failures[source]
        return times

    def blocked(self, source: str, now: float) -> float | None:
        """Seconds until ``source`` may try again, or ``None`` if it may try now."""
        times = self._recent(source, now)
        if len(times) < self._limit:
            return None
        return max(0.0, times[0] + self._window_s - now)

    def failed(self, source: str, now: float) -> None:
        """Record one failed attempt by ``source`` at ``now``."""
        times = self._failures.setdefault(source, deque())
        times.append(now)
        self._failures.move_to_end(source)
        while len(self._failures) > self._max_sources:
            self._failures.popitem(last=False)
