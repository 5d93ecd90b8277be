"""Static threshold alerts over queue statistics (domain.md §5.3).

A rule is ``(metric, scope, comparator, threshold, sustain_s, cooldown_s)``: it raises once the condition has held
for ``sustain_s`` on consecutive ``queue.stats`` observations of a queue in ``scope``, clears at the first observation
where it no longer holds, and does not raise again for that queue before ``cooldown_s`` after the clear.

Sans-I/O: :meth:`ThresholdMonitor.observe` takes the data of one ``queue.stats`` event and ``now``, and returns
alert events. Statistics arrive every 2 s, so the sustain check needs no timer of its own. Metrics:

- ``longest_wait``: ``longest_wait_seconds``;
- ``waiting``: calls waiting;
- ``service_level``: the live service level (``null`` means "no data": the condition does not hold);
- ``no_agents_ready``: the calls waiting that no agent is on its way to (waiting minus the agents reserved or
  ringing with an offer) while no agent is available; 0 whenever an agent is available. So a call ringing its
  agent does not count: ``no_agents_ready > 0`` is "a call waits and nobody is available or being offered it".
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from cti.errors import SettingsError
from cti.floor.alerts.events import AlertCleared, AlertRaised, Severity

__all__ = ["Comparator", "Metric", "ThresholdMonitor", "ThresholdRule", "default_rules"]


class Metric(enum.Enum):
    """A value read from ``queue.stats`` data."""

    LONGEST_WAIT = "longest_wait"
    WAITING = "waiting"
    SERVICE_LEVEL = "service_level"
    NO_AGENTS_READY = "no_agents_ready"


class Comparator(enum.Enum):
    """How the metric is compared with the threshold."""

    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EQ = "=="


_COMPARE: Final[Mapping[Comparator, Callable[[float, float], bool]]] = {
    Comparator.GT: operator.gt, Comparator.GE: operator.ge, Comparator.LT: operator.lt,
    Comparator.LE: operator.le, Comparator.EQ: operator.eq,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdRule:
    """One static rule. ``scope`` is a queue name or ``"*"`` (every queue)."""

    metric: Metric
    comparator: Comparator
    threshold: float
    sustain_s: float = 0.0
    cooldown_s: float = 300.0
    scope: str = "*"
    severity: Severity = Severity.WARNING

    def __post_init__(self) -> None:
        if self.sustain_s < 0 or self.cooldown_s < 0:
            raise SettingsError("sustain_s and cooldown_s must be >= 0")

    @property
    def kind(self) -> str:
        """The ``kind`` of the alerts this rule raises."""
        return f"threshold:{self.metric.value}"

    def applies_to(self, queue: str) -> bool:
        return self.scope in ("*", queue)


def default_rules(*, sl_target: float = 0.80, longest_wait_s: float = 60.0, waiting_max: int = 10
                  ) -> tuple[ThresholdRule, ...]:
    """The stock rules: longest wait > 60 s for 10 s, SL < target − 10 pts for 60 s, more than 10 calls waiting
    for 10 s, and no agent ready while calls wait for 10 s (critical)."""
    return (
        ThresholdRule(metric=Metric.LONGEST_WAIT, comparator=Comparator.GT, threshold=longest_wait_s, sustain_s=10),
        ThresholdRule(metric=Metric.SERVICE_LEVEL, comparator=Comparator.LT, threshold=round(sl_target - 0.10, 4),
                      sustain_s=60),
        ThresholdRule(metric=Metric.WAITING, comparator=Comparator.GT, threshold=waiting_max, sustain_s=10),
        ThresholdRule(metric=Metric.NO_AGENTS_READY, comparator=Comparator.GT, threshold=0, sustain_s=10,
                      severity=Severity.CRITICAL),
    )


def metric_value(metric: Metric, stats: Mapping[str, Any]) -> float | None:
    """The value of ``metric`` in ``queue.stats`` data, or ``None`` when it is unknown."""
    match metric:
        case Metric.LONGEST_WAIT:
            value = stats.get("longest_wait_seconds")
        case Metric.WAITING:
            value = stats.get("waiting")
        case Metric.SERVICE_LEVEL:
            value = stats.get("service_level")
        case Metric.NO_AGENTS_READY:
            waiting, ready = stats.get("waiting"), stats.get("agents_available")
            offering = stats.get("agents_offering", 0)
            if not _number(waiting) or not _number(ready) or not _number(offering):
                return None
            return max(0.0, float(waiting) - float(offering)) if ready == 0 else 0.0
    return float(value) if _number(value) else None


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(slots=True)
class _Track:
    since: float | None = None
    alert_id: str | None = None
    cooldown_until: float | None = None


class ThresholdMonitor:
    """Evaluates threshold rules per queue; ``id_prefix`` keeps alert ids unique across nodes and restarts."""

    def __init__(self, rules: tuple[ThresholdRule, ...] | None = None, *, id_prefix: str = "") -> None:
        self.rules = default_rules() if rules is None else rules
        self._prefix = id_prefix
        self._tracks: dict[tuple[int, str], _Track] = {}
        self._seq = 0

    def observe(self, queue: str, stats: Mapping[str, Any], now: float) -> list[AlertRaised | AlertCleared]:
        """Feed one ``queue.stats`` observation of ``queue``; return the alerts raised and cleared."""
        out: list[AlertRaised | AlertCleared] = []
        for index, rule in enumerate(self.rules):
            if not rule.applies_to(queue):
                continue
            track = self._tracks.setdefault((index, queue), _Track())
            value = metric_value(rule.metric, stats)
            holds = value is not None and _COMPARE[rule.comparator](value, rule.threshold)
            if not holds:
                track.since = None
                if track.alert_id is not None:
                    out.append(AlertCleared(alert_id=track.alert_id, kind=rule.kind, reason="recovered", at=now))
                    track.alert_id, track.cooldown_until = None, now + rule.cooldown_s
                continue
            if track.since is None:
                track.since = now
            cooling = track.cooldown_until is not None and now < track.cooldown_until
            if track.alert_id is None and not cooling and now - track.since >= rule.sustain_s:
                assert value is not None
                self._seq += 1
                track.alert_id = f"{self._prefix}threshold-{self._seq}"
                out.append(AlertRaised(
                    alert_id=track.alert_id, kind=rule.kind, severity=rule.severity, queue=queue, at=now,
                    message=(f"queue {queue}: {rule.metric.value} {_show(value)} {rule.comparator.value} "
                             f"{_show(rule.threshold)} for {now - track.since:.0f} s")))
        return out

    def active(self) -> dict[tuple[str, str], str]:
        """(kind, queue) → id of the active alert."""
        return {(self.rules[i].kind, q): t.alert_id for (i, q), t in self._tracks.items() if t.alert_id is not None}


def _show(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"
