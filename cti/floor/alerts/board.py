"""The active alerts of a node and who acknowledged them (docs/alerts.md, docs/websocket.md ``alert_ack``).

Sans-I/O: :meth:`AlertBoard.observe` takes the public ``alert.*`` envelopes as the bus delivers them (the WebSocket
gateway feeds it before it fans the envelope out), :meth:`AlertBoard.acknowledge` records a supervisor's
acknowledgement at the ``now`` passed in and returns the data of the ``alert.acknowledged`` event to publish.

- ``alert.raised`` makes the alert active and unacknowledged. Raised again with the same ``alert_id`` (an
  escalation), it takes the new data and needs a new acknowledgement.
- ``alert.acknowledged`` marks it acknowledged (the first acknowledgement wins; later ones change nothing).
- ``alert.cleared`` removes it.

The board keeps at most ``limit`` alerts; past it, the oldest raised is forgotten (an alert that is never cleared
cannot grow it without bound).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from cti.errors import SettingsError
from cti.events.registry import Envelope

__all__ = ["ActiveAlert", "AlertBoard"]

_RAISED_KEYS = ("alert_id", "kind", "severity", "message", "queue", "call_id", "agent_id")


@dataclass(slots=True, kw_only=True)
class ActiveAlert:
    """One active alert: the data of its ``alert.raised``, when it was raised, and its acknowledgement."""

    raised: dict[str, Any]
    raised_at: float
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None

    @property
    def queue(self) -> str | None:
        queue = self.raised.get("queue")
        return queue if isinstance(queue, str) else None

    def data(self) -> dict[str, Any]:
        """The alert as ``hello`` and ``snapshot`` carry it: the ``alert.raised`` fields plus ``raised_at``."""
        return {**self.raised, "raised_at": self.raised_at}

    def ack_data(self) -> dict[str, Any]:
        """The data of its ``alert.acknowledged`` event."""
        return {"alert_id": self.raised["alert_id"], "by": self.acknowledged_by, "at": self.acknowledged_at,
                "queue": self.queue}


class AlertBoard:
    """Active alerts by id, oldest raised first."""

    def __init__(self, *, limit: int = 1000) -> None:
        if limit < 1:
            raise SettingsError("limit must be at least 1")
        self._limit = limit
        self._alerts: OrderedDict[str, ActiveAlert] = OrderedDict()

    def __len__(self) -> int:
        return len(self._alerts)

    def get(self, alert_id: str) -> ActiveAlert | None:
        return self._alerts.get(alert_id)

    def unacknowledged(self) -> list[ActiveAlert]:
        """The active alerts nobody acknowledged yet, oldest raised first."""
        return [a for a in self._alerts.values() if a.acknowledged_by is None]

    def observe(self, envelope: Envelope) -> None:
        """Follow one public event; types other than ``alert.*`` and malformed data are ignored."""
        data = envelope.data
        alert_id = data.get("alert_id")
        if not isinstance(alert_id, str) or not alert_id:
            return
        match envelope.type:
            case "alert.raised":
                self._alerts.pop(alert_id, None)
                self._alerts[alert_id] = ActiveAlert(raised={k: data.get(k) for k in _RAISED_KEYS},
                                                     raised_at=envelope.ts)
                while len(self._alerts) > self._limit:
                    self._alerts.popitem(last=False)
            case "alert.cleared":
                self._alerts.pop(alert_id, None)
            case "alert.acknowledged":
                alert = self._alerts.get(alert_id)
                by, at = data.get("by"), data.get("at")
                if alert is not None and alert.acknowledged_by is None and isinstance(by, str) \
                        and isinstance(at, int | float):
                    alert.acknowledged_by, alert.acknowledged_at = by, float(at)
            case _:
                return

    def acknowledge(self, alert_id: str, by: str, now: float) -> tuple[ActiveAlert, bool] | None:
        """Record ``by``'s acknowledgement of ``alert_id`` at ``now``.

        Returns the alert and True when this acknowledgement is the first (publish ``alert.acknowledged`` with
        :meth:`ActiveAlert.ack_data`), the alert and False when someone acknowledged it before, or ``None`` when
        no such alert is active.
        """
        alert = self._alerts.get(alert_id)
        if alert is None:
            return None
        if alert.acknowledged_by is not None:
            return alert, False
        alert.acknowledged_by, alert.acknowledged_at = by, now
        return alert, True
