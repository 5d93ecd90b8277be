"""Real-time supervisor alerts (domain.md §5, docs/alerts.md): VIP escalation, call-reason surges, thresholds.

The cores (:class:`VipWatch`, :class:`SurgeDetector`, :class:`ThresholdMonitor`) are sans-I/O; :class:`AlertService`
is the asyncio adapter between them and the bus.
"""

from cti.floor.alerts.events import AlertCleared, AlertEvent, AlertRaised, Severity
from cti.floor.alerts.service import AlertService, AlertSettings
from cti.floor.alerts.surge import Significance, SurgeDetector, SurgeSettings, SurgeStats, poisson_sf
from cti.floor.alerts.thresholds import Comparator, Metric, ThresholdMonitor, ThresholdRule, default_rules
from cti.floor.alerts.vip import VipSettings, VipWatch

__all__ = [
    "AlertCleared", "AlertEvent", "AlertRaised", "AlertService", "AlertSettings", "Comparator", "Metric",
    "Severity", "Significance", "SurgeDetector", "SurgeSettings", "SurgeStats", "ThresholdMonitor", "ThresholdRule",
    "VipSettings", "VipWatch", "default_rules", "poisson_sf",
]
