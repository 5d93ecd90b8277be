"""Surge detection per call reason (domain.md §5.2): a short-window spike against an EWMA or seeded baseline.

Sans-I/O: :meth:`SurgeDetector.record` counts one arrival of a call reason at ``now``; :meth:`evaluate` (also
:meth:`handle_timer`) runs every ``step_s`` (:meth:`get_timer` says when) and returns alert events. No clock is read.

The rule, per reason, at every step:

- ``x`` = arrivals in the sliding window ``(now − W, now]`` (W = 15 min, step 1 min).
- Baseline: ``μ`` and ``s²`` are an EWMA of the counts of consecutive, non-overlapping windows of length W
  (``μ_t = α·x_t + (1−α)·μ_{t−1}``, ``s²_t = (1−α)(s²_{t−1} + α(x_t − μ_{t−1})²)``, α = 0.2). Updating once per
  window, not once per step, keeps a 15-minute ramp from being absorbed while it builds. The baseline is frozen while
  an alert is active ("do not update the baseline while an alert is active"). :meth:`seed_baseline` sets it from
  history (the seasonal same-time-of-week mean) instead.
- Raise when all hold: significance, effect size ``x / max(μ, 1) ≥ 2``, volume floor ``x ≥ 10``, the baseline
  warmed up (``warmup_windows`` = 4 windows seen, or seeded), and no cool-down. Significance is, by default
  (``Significance.BOTH``), the one-sided Poisson tail ``P(X ≥ x | μ) < α_p`` **and** the z-score
  ``(x − μ)/max(s, √μ, 1) ≥ 3``; ``POISSON`` or ``Z`` select one. Because the window is re-tested every step, α_p
  (0.001, per window) is divided by the number of steps per window (15) — a Bonferroni correction for the
  overlapping looks (``scan_correction``). Without it a Poisson baseline of 5 calls per window gave about one false
  alert per 50 reason-hours in replayed histories; with both it is about one per 1,000.
- Clear (hysteresis) when ``z < 1.5`` or ``ratio < 1.3``; the cool-down (30 min) runs from the clear: no new alert
  for that reason before it ends.
- Severity: critical when ``z ≥ 5`` or ``ratio ≥ 4``, else warning. It is fixed when the alert is raised.
"""

from __future__ import annotations

import bisect
import enum
import math
from collections import OrderedDict
from dataclasses import dataclass, field

from cti.errors import SettingsError
from cti.floor.alerts.events import AlertCleared, AlertRaised, Severity

__all__ = ["Significance", "SurgeDetector", "SurgeSettings", "SurgeStats", "poisson_sf"]

_MAX_SEEN_CALLS = 100_000


class Significance(enum.Enum):
    """Which significance test a surge must pass."""

    POISSON = "poisson"
    Z = "z"
    BOTH = "both"


@dataclass(frozen=True, slots=True, kw_only=True)
class SurgeSettings:
    """Surge rule parameters; the defaults are domain.md §6."""

    window_s: float = 900.0
    step_s: float = 60.0
    alpha: float = 0.2
    test: Significance = Significance.BOTH
    alpha_p: float = 0.001
    z_min: float = 3.0
    ratio_min: float = 2.0
    min_count: int = 10
    clear_z: float = 1.5
    clear_ratio: float = 1.3
    cooldown_s: float = 1800.0
    critical_z: float = 5.0
    critical_ratio: float = 4.0
    warmup_windows: int = 4
    scan_correction: bool = True

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.step_s <= 0 or self.step_s > self.window_s:
            raise SettingsError("need 0 < step_s <= window_s")
        if not 0 < self.alpha <= 1 or not 0 < self.alpha_p < 1:
            raise SettingsError("alpha must be in (0, 1] and alpha_p in (0, 1)")


@dataclass(frozen=True, slots=True, kw_only=True)
class SurgeStats:
    """The numbers behind one evaluation of one reason (for logs, the message and tests)."""

    reason: str
    count: int
    mu: float
    z: float
    ratio: float
    p_value: float


def poisson_sf(x: int, mu: float) -> float:
    """``P(X ≥ x)`` for ``X ~ Poisson(mu)``, summed in log space (no scipy; exact enough far into the tail)."""
    if x <= 0:
        return 1.0
    if mu <= 0:
        return 0.0
    log_mu = math.log(mu)
    if x <= mu:  # the tail is large: one minus the (short) lower sum is precise enough
        lower = sum(math.exp(-mu + k * log_mu - math.lgamma(k + 1)) for k in range(x))
        return min(1.0, max(0.0, 1.0 - lower))
    log_term = -mu + x * log_mu - math.lgamma(x + 1)
    log_total, k = log_term, x
    while True:  # terms shrink geometrically once k > mu
        k += 1
        log_term += log_mu - math.log(k)
        if log_term < log_total - 40.0:
            break
        hi, lo = max(log_total, log_term), min(log_total, log_term)
        log_total = hi + math.log1p(math.exp(lo - hi))
    return min(1.0, math.exp(log_total))


@dataclass(slots=True)
class _Reason:
    arrivals: list[float] = field(default_factory=list)
    mu: float = 0.0
    var: float = 0.0
    windows: int = 0
    seeded: bool = False
    alert_id: str | None = None
    cooldown_until: float | None = None


class SurgeDetector:
    """Per-reason surge detection; ``id_prefix`` keeps alert ids unique across nodes and restarts."""

    def __init__(self, settings: SurgeSettings | None = None, *, id_prefix: str = "") -> None:
        self.settings = settings or SurgeSettings()
        self._prefix = id_prefix
        self._reasons: dict[str, _Reason] = {}
        self._seen_calls: OrderedDict[str, None] = OrderedDict()
        self._origin: float | None = None
        self._next_step: float | None = None
        self._next_window: float | None = None
        self._windows_done = 0
        self._seq = 0
        looks = max(1, round(self.settings.window_s / self.settings.step_s)) if self.settings.scan_correction else 1
        self._alpha_p = self.settings.alpha_p / looks

    # -- inputs -----------------------------------------------------------------------------------------------
    def record(self, reason: str, now: float, *, call_id: str | None = None) -> None:
        """Count one arrival of ``reason`` at ``now``; a ``call_id`` already counted (any reason) is ignored."""
        if not reason:
            return
        if call_id is not None:
            if call_id in self._seen_calls:
                return
            self._seen_calls[call_id] = None
            if len(self._seen_calls) > _MAX_SEEN_CALLS:
                self._seen_calls.popitem(last=False)
        self._start(now)
        bisect.insort(self._state(reason).arrivals, now)

    def seed_baseline(self, reason: str, mu: float, var: float) -> None:
        """Set the baseline of ``reason`` (e.g. the same time-of-week mean over past weeks); counts as warmed up.

        Raises:
            SettingsError: a negative or non-finite value.
        """
        if not (math.isfinite(mu) and math.isfinite(var)) or mu < 0 or var < 0:
            raise SettingsError("mu and var must be finite and >= 0")
        state = self._state(reason)
        state.mu, state.var, state.seeded = mu, var, True

    # -- timers -----------------------------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        """When :meth:`evaluate` should run next (``None`` until the first arrival or evaluation)."""
        return self._next_step

    def handle_timer(self, now: float) -> list[AlertRaised | AlertCleared]:
        """Same as :meth:`evaluate`."""
        return self.evaluate(now)

    def evaluate(self, now: float) -> list[AlertRaised | AlertCleared]:
        """Close finished baseline windows, then test every reason at ``now``; return raises and clears."""
        self._start(now)
        assert self._next_window is not None
        w = self.settings.window_s
        while self._next_window <= now:
            self._close_window(self._next_window)
            self._next_window += w
        out: list[AlertRaised | AlertCleared] = []
        for reason, state in self._reasons.items():
            del state.arrivals[: bisect.bisect_right(state.arrivals, now - w)]
            event = self._test(reason, state, now)
            if event is not None:
                out.append(event)
        step = self.settings.step_s
        assert self._next_step is not None
        if self._next_step <= now:
            self._next_step += step * (math.floor((now - self._next_step) / step) + 1)
        return out

    def stats(self, reason: str, now: float) -> SurgeStats:
        """The count and test values of ``reason`` at ``now`` against its current baseline."""
        state = self._reasons.get(reason) or _Reason(windows=self._windows_done)
        x = _count(state.arrivals, now - self.settings.window_s, now)
        sigma = max(math.sqrt(state.var), math.sqrt(state.mu), 1.0)
        return SurgeStats(reason=reason, count=x, mu=state.mu, z=(x - state.mu) / sigma,
                          ratio=x / max(state.mu, 1.0), p_value=poisson_sf(x, state.mu))

    def active(self) -> dict[str, str]:
        """Reason → id of its active alert."""
        return {r: s.alert_id for r, s in self._reasons.items() if s.alert_id is not None}

    # -- internals --------------------------------------------------------------------------------------------
    def _start(self, now: float) -> None:
        if self._origin is None:
            self._origin = now
            self._next_step = now + self.settings.step_s
            self._next_window = now + self.settings.window_s

    def _state(self, reason: str) -> _Reason:
        state = self._reasons.get(reason)
        if state is None:  # a reason first seen now had zero arrivals in every window so far
            state = self._reasons[reason] = _Reason(windows=self._windows_done)
        return state

    def _close_window(self, end: float) -> None:
        self._windows_done += 1
        alpha = self.settings.alpha
        for state in self._reasons.values():
            if state.alert_id is not None:
                continue  # frozen while alerting, so the spike does not absorb itself
            x = _count(state.arrivals, end - self.settings.window_s, end)
            if state.windows == 0 and not state.seeded:
                state.mu, state.var = float(x), 0.0
            else:
                delta = x - state.mu
                state.var = (1 - alpha) * (state.var + alpha * delta * delta)
                state.mu = alpha * x + (1 - alpha) * state.mu
            state.windows += 1

    def _test(self, reason: str, state: _Reason, now: float) -> AlertRaised | AlertCleared | None:
        s = self.settings
        st = self.stats(reason, now)
        if state.alert_id is not None:
            if st.z < s.clear_z or st.ratio < s.clear_ratio:
                alert_id, state.alert_id = state.alert_id, None
                state.cooldown_until = now + s.cooldown_s
                return AlertCleared(alert_id=alert_id, kind="surge", reason="recovered", at=now)
            return None
        if state.cooldown_until is not None and now < state.cooldown_until:
            return None
        if not state.seeded and state.windows < s.warmup_windows:
            return None
        poisson_ok, z_ok = st.p_value < self._alpha_p, st.z >= s.z_min
        significant = {Significance.POISSON: poisson_ok, Significance.Z: z_ok,
                       Significance.BOTH: poisson_ok and z_ok}[s.test]
        if not (significant and st.ratio >= s.ratio_min and st.count >= s.min_count):
            return None
        self._seq += 1
        state.alert_id = f"{self._prefix}surge-{self._seq}"
        critical = st.z >= s.critical_z or st.ratio >= s.critical_ratio
        minutes = round(s.window_s / 60)
        return AlertRaised(
            alert_id=state.alert_id, kind="surge", severity=Severity.CRITICAL if critical else Severity.WARNING,
            message=(f"surge in call reason {reason!r}: {st.count} calls in {minutes} min, "
                     f"baseline {st.mu:.1f} (x{st.ratio:.1f}, z={st.z:.1f})"),
            at=now)


def _count(arrivals: list[float], after: float, until: float) -> int:
    """Arrivals in ``(after, until]``."""
    return bisect.bisect_right(arrivals, until) - bisect.bisect_right(arrivals, after)
