"""Alert events the alerting cores emit (domain.md §5), before the service maps them to public envelopes.

Cores are sans-I/O: they return these frozen dataclasses, stamped with the ``now`` passed in. The asyncio adapter
(:mod:`cti.floor.alerts.service`) turns :class:`AlertRaised` into ``alert.raised`` and :class:`AlertCleared` into
``alert.cleared`` (docs/events.md, docs/alerts.md).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cti.errors import SettingsError

__all__ = ["AlertCleared", "AlertEvent", "AlertRaised", "Severity"]


class Severity(enum.Enum):
    """Alert severity; the values are the ``severity`` choices of ``alert.raised``."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertEvent:
    """Base class of the alert events."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRaised(AlertEvent):
    """An alert became active. ``kind`` is ``vip_in_queue``, ``vip_wait``, ``surge``, ``threshold:<metric>``…"""

    alert_id: str
    kind: str
    severity: Severity
    message: str
    at: float
    queue: str | None = None
    call_id: str | None = None
    agent_id: str | None = None

    def __post_init__(self) -> None:
        if not self.alert_id or not self.kind:
            raise SettingsError("an alert needs an alert_id and a kind")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertCleared(AlertEvent):
    """An active alert ended; ``reason`` says why (``answered``, ``recovered``, ``expired``…)."""

    alert_id: str
    kind: str
    reason: str | None
    at: float
