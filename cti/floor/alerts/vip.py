"""VIP escalation (domain.md §5.1): alert at once when a VIP call is queued, escalate on a long wait or an abandon.

Sans-I/O with timers: inputs are the call facts (queued with ``vip``, answered, abandoned, ended) with ``now``;
:meth:`VipWatch.get_timer` / :meth:`VipWatch.handle_timer` drive the wait escalation. Alerts:

- ``vip_in_queue`` (warning): raised at once on ``call.queued`` with ``vip: true``;
- ``vip_wait`` (critical): the VIP waited ``vip_wait_alert_s`` (default T/2 = 10 s) without an answer;
- ``vip_abandoned`` (critical): the VIP hung up while queued. It is a one-shot alert, cleared automatically after
  ``abandoned_hold_s`` (reason ``expired``) so consoles do not keep it forever.

Answering clears ``vip_in_queue`` and ``vip_wait`` (reason ``answered``); an abandon clears them (``abandoned``);
a call that ends otherwise (flow-out, failure) clears them with ``ended``. Re-queueing the same call (a transfer to
another queue) keeps its alerts and its original entry time.
"""

from __future__ import annotations

from dataclasses import dataclass

from cti.floor.alerts.events import AlertCleared, AlertRaised, Severity

__all__ = ["VipSettings", "VipWatch"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VipSettings:
    """VIP alert parameters; ``vip_wait_alert_s`` defaults to T/2 with T = 20 s."""

    vip_wait_alert_s: float = 10.0
    abandoned_hold_s: float = 300.0


@dataclass(slots=True)
class _Waiting:
    queue: str
    entered_at: float
    in_queue_id: str
    wait_id: str | None = None


class VipWatch:
    """Tracks queued VIP calls; ``id_prefix`` keeps alert ids unique across nodes and restarts."""

    def __init__(self, settings: VipSettings | None = None, *, id_prefix: str = "") -> None:
        self.settings = settings or VipSettings()
        self._prefix = id_prefix
        self._waiting: dict[str, _Waiting] = {}
        self._abandoned: dict[str, tuple[str, float]] = {}  # alert id -> (call id, clear at)
        self._seq = 0

    def _new_id(self, kind: str) -> str:
        self._seq += 1
        return f"{self._prefix}{kind}-{self._seq}"

    # -- inputs -----------------------------------------------------------------------------------------------
    def call_queued(self, call_id: str, queue: str, now: float) -> list[AlertRaised | AlertCleared]:
        """A VIP call entered ``queue`` (call only for ``vip: true``)."""
        known = self._waiting.get(call_id)
        if known is not None:
            known.queue = queue
            return []
        alert_id = self._new_id("vip_in_queue")
        self._waiting[call_id] = _Waiting(queue=queue, entered_at=now, in_queue_id=alert_id)
        return [AlertRaised(alert_id=alert_id, kind="vip_in_queue", severity=Severity.WARNING, at=now, queue=queue,
                            call_id=call_id, message=f"VIP caller waiting in queue {queue}")]

    def call_answered(self, call_id: str, now: float) -> list[AlertRaised | AlertCleared]:
        """An agent answered; clears the call's alerts (nothing for calls that are not tracked VIPs)."""
        return self._clear(call_id, now, "answered")

    def call_abandoned(self, call_id: str, now: float) -> list[AlertRaised | AlertCleared]:
        """The VIP hung up while queued: clear the waiting alerts and raise ``vip_abandoned``."""
        waiting = self._waiting.get(call_id)
        if waiting is None:
            return []
        out = self._clear(call_id, now, "abandoned")
        alert_id = self._new_id("vip_abandoned")
        self._abandoned[alert_id] = (call_id, now + self.settings.abandoned_hold_s)
        out.append(AlertRaised(alert_id=alert_id, kind="vip_abandoned", severity=Severity.CRITICAL, at=now,
                               queue=waiting.queue, call_id=call_id,
                               message=(f"VIP caller abandoned queue {waiting.queue} after "
                                        f"{now - waiting.entered_at:.0f} s")))
        return out

    def call_ended(self, call_id: str, now: float) -> list[AlertRaised | AlertCleared]:
        """The call was released; alerts of a VIP still counted as waiting clear with ``ended``."""
        return self._clear(call_id, now, "ended")

    # -- timers -----------------------------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        """The next wait escalation or abandoned-alert expiry, if any."""
        deadlines = [w.entered_at + self.settings.vip_wait_alert_s for w in self._waiting.values() if w.wait_id is None]
        deadlines.extend(clear_at for _, clear_at in self._abandoned.values())
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> list[AlertRaised | AlertCleared]:
        """Escalate VIPs waiting too long and expire old ``vip_abandoned`` alerts."""
        out: list[AlertRaised | AlertCleared] = []
        for call_id, w in self._waiting.items():
            if w.wait_id is None and now >= w.entered_at + self.settings.vip_wait_alert_s:
                w.wait_id = self._new_id("vip_wait")
                out.append(AlertRaised(alert_id=w.wait_id, kind="vip_wait", severity=Severity.CRITICAL, at=now,
                                       queue=w.queue, call_id=call_id,
                                       message=f"VIP caller waiting {now - w.entered_at:.0f} s in queue {w.queue}"))
        for alert_id, (_, clear_at) in list(self._abandoned.items()):
            if now >= clear_at:
                del self._abandoned[alert_id]
                out.append(AlertCleared(alert_id=alert_id, kind="vip_abandoned", reason="expired", at=now))
        return out

    def waiting(self) -> list[str]:
        """Call ids of the VIPs waiting now."""
        return list(self._waiting)

    def _clear(self, call_id: str, now: float, reason: str) -> list[AlertRaised | AlertCleared]:
        w = self._waiting.pop(call_id, None)
        if w is None:
            return []
        out: list[AlertRaised | AlertCleared] = [
            AlertCleared(alert_id=w.in_queue_id, kind="vip_in_queue", reason=reason, at=now)]
        if w.wait_id is not None:
            out.append(AlertCleared(alert_id=w.wait_id, kind="vip_wait", reason=reason, at=now))
        return out
