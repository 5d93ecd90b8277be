"""Broadcast notices from supervisors to agents (domain.md §5.4, docs/alerts.md "Notices").

- :class:`NoticeBoard` is the pure core: notices in memory, per-agent receipts (delivered_at, read_at, ack_at),
  ``pending_for`` (what an agent gets in ``hello`` on (re)connect), expiry. Time is passed in.
- :class:`NoticeService` binds a board to the bus: it publishes ``notice.broadcast`` and ``notice.read``.
- :func:`run_notice_command` is the WebSocket side: ``broadcast`` and ``notice_receipts`` (supervisors,
  operators), ``notice_read`` (agents).

Audience: ``["*"]`` (operators only) or queue names; a supervisor may address its own queues only, and by default
addresses all of them. Entries ``team:<name>`` are matched by :meth:`NoticeBoard.pending_for` but not accepted by
the command yet, because live delivery (cti/gateway/visibility.py) routes by queue only.

Urgent notices are delivered at once, even while the agent is talking; the desktop defers the pop-up until the
agent is in wrap-up or available (the server does not hold notices back, so one encoded frame serves every agent).

Errors::

    NoticeError   code: unknown_notice | bad_args | forbidden
"""

from __future__ import annotations

import enum
import itertools
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from cti.errors import CtiError
from cti.events.bus import Bus
from cti.events.registry import Envelope
from cti.tokens import Principal, Role

__all__ = ["NOTICE_COMMANDS", "Notice", "NoticeBoard", "NoticeError", "NoticeService", "Priority", "Receipt",
           "run_notice_command"]

NOTICE_COMMANDS: Final = frozenset({"broadcast", "notice_receipts", "notice_read"})
_MAX_TEXT: Final = 2000
_MAX_TTL_S: Final = 7 * 86400.0


class NoticeError(CtiError):
    """A refused notice operation; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Priority(enum.Enum):
    INFO = "info"
    URGENT = "urgent"


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    """One broadcast notice."""

    notice_id: str
    sender: str
    text: str
    priority: Priority
    audience: tuple[str, ...]
    created_at: float
    expires_at: float | None = None
    require_ack: bool = False

    def __post_init__(self) -> None:
        if not self.text or len(self.text) > _MAX_TEXT:
            raise NoticeError("bad_args", f"text must have 1 to {_MAX_TEXT} characters")
        if not self.audience or not all(isinstance(a, str) and a for a in self.audience):
            raise NoticeError("bad_args", "audience must name '*' or at least one queue")

    def reaches(self, queues: Iterable[str], team: str | None) -> bool:
        """True if an agent serving ``queues`` in ``team`` is in the audience."""
        return ("*" in self.audience or any(q in self.audience for q in queues)
                or (team is not None and f"team:{team}" in self.audience))

    def live(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at

    def data(self) -> dict[str, Any]:
        """The data of the ``notice.broadcast`` event."""
        return {"notice_id": self.notice_id, "sender": self.sender, "text": self.text,
                "audience": list(self.audience), "expires_at": self.expires_at,
                "priority": self.priority.value, "require_ack": self.require_ack}


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """Delivery status of one notice for one agent."""

    agent_id: str
    delivered_at: float | None = None
    read_at: float | None = None
    ack_at: float | None = None

    def data(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "delivered_at": self.delivered_at, "read_at": self.read_at,
                "ack_at": self.ack_at}


class NoticeBoard:
    """Notices and receipts in memory (pure: no clock, no I/O). Keeps at most ``max_notices``, oldest dropped."""

    def __init__(self, *, max_notices: int = 1000) -> None:
        self._notices: dict[str, Notice] = {}
        self._receipts: dict[str, dict[str, Receipt]] = {}
        self._max = max_notices
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(3)

    def post(self, *, sender: str, text: str, now: float, priority: Priority = Priority.INFO,
             audience: Iterable[str] = ("*",), expires_at: float | None = None, require_ack: bool = False) -> Notice:
        """Store a new notice and return it.

        Raises:
            NoticeError: ``bad_args`` (empty or long text, empty audience, expiry in the past).
        """
        if expires_at is not None and expires_at <= now:
            raise NoticeError("bad_args", "expires_at must be in the future")
        notice = Notice(notice_id=f"n-{self._prefix}-{next(self._ids)}", sender=sender, text=text, priority=priority,
                        audience=tuple(dict.fromkeys(audience)), created_at=now, expires_at=expires_at,
                        require_ack=require_ack)
        self._notices[notice.notice_id] = notice
        self._receipts[notice.notice_id] = {}
        while len(self._notices) > self._max:
            oldest = next(iter(self._notices))
            del self._notices[oldest], self._receipts[oldest]
        return notice

    def get(self, notice_id: str) -> Notice:
        """The notice with ``notice_id``.

        Raises:
            NoticeError: ``unknown_notice``.
        """
        notice = self._notices.get(notice_id)
        if notice is None:
            raise NoticeError("unknown_notice", f"no notice {notice_id!r}")
        return notice

    def active(self, now: float) -> list[Notice]:
        """Unexpired notices, oldest first."""
        return [n for n in self._notices.values() if n.live(now)]

    def pending_for(self, agent_id: str, queues: Iterable[str], team: str | None, now: float) -> list[Notice]:
        """Unexpired notices for the agent that it has not read yet (not acknowledged, when ``require_ack``)."""
        queues = list(queues)
        out = []
        for notice in self.active(now):
            if not notice.reaches(queues, team):
                continue
            receipt = self._receipts[notice.notice_id].get(agent_id)
            done = receipt is not None and (receipt.ack_at if notice.require_ack else receipt.read_at) is not None
            if not done:
                out.append(notice)
        return out

    def mark_delivered(self, notice_id: str, agent_id: str, now: float) -> None:
        """Record the first delivery (later deliveries keep the first time); unknown notices are ignored."""
        receipts = self._receipts.get(notice_id)
        if receipts is not None and (agent_id not in receipts or receipts[agent_id].delivered_at is None):
            receipts[agent_id] = replace(receipts.get(agent_id) or Receipt(agent_id=agent_id), delivered_at=now)

    def mark_read(self, notice_id: str, agent_id: str, now: float, *, ack: bool = False) -> Receipt | None:
        """Record that the agent read (and, with ``ack``, acknowledged) the notice.

        Returns the new receipt, or ``None`` when nothing changed (already read / acknowledged).

        Raises:
            NoticeError: ``unknown_notice``.
        """
        self.get(notice_id)
        receipts = self._receipts[notice_id]
        old = receipts.get(agent_id) or Receipt(agent_id=agent_id, delivered_at=now)
        new = replace(old, read_at=old.read_at if old.read_at is not None else now,
                      ack_at=old.ack_at if old.ack_at is not None or not ack else now)
        if new == old:
            return None
        receipts[agent_id] = new
        return new

    def receipts(self, notice_id: str) -> list[Receipt]:
        """Receipts of a notice, by agent id.

        Raises:
            NoticeError: ``unknown_notice``.
        """
        self.get(notice_id)
        return sorted(self._receipts[notice_id].values(), key=lambda r: r.agent_id)

    def expire(self, now: float) -> list[str]:
        """Forget expired notices; return their ids."""
        gone = [i for i, n in self._notices.items() if not n.live(now)]
        for notice_id in gone:
            del self._notices[notice_id], self._receipts[notice_id]
        return gone


class NoticeService:
    """A board bound to the bus of one node: broadcasting and reading publish events."""

    def __init__(self, bus: Bus, node: str, board: NoticeBoard | None = None) -> None:
        self.board = board or NoticeBoard()
        self._bus = bus
        self._node = node

    def broadcast(self, *, sender: str, text: str, now: float, priority: Priority = Priority.INFO,
                  audience: Iterable[str] = ("*",), expires_at: float | None = None,
                  require_ack: bool = False) -> Notice:
        """Post a notice and publish ``notice.broadcast``.

        Raises:
            NoticeError: ``bad_args``.
        """
        self.board.expire(now)
        notice = self.board.post(sender=sender, text=text, now=now, priority=priority, audience=audience,
                                 expires_at=expires_at, require_ack=require_ack)
        self._bus.publish(Envelope.new("notice.broadcast", notice.data(), node=self._node, now=now))
        return notice

    def read(self, notice_id: str, agent_id: str, now: float, *, ack: bool = False) -> Receipt:
        """Record a read (or an acknowledgement) and publish ``notice.read`` when something changed.

        Raises:
            NoticeError: ``unknown_notice``.
        """
        notice = self.board.get(notice_id)
        receipt = self.board.mark_read(notice_id, agent_id, now, ack=ack)
        if receipt is None:
            return next(r for r in self.board.receipts(notice_id) if r.agent_id == agent_id)
        assert receipt.read_at is not None
        self._bus.publish(Envelope.new("notice.read", {
            "notice_id": notice_id, "agent_id": agent_id, "read_at": receipt.read_at, "ack_at": receipt.ack_at,
            "sender": notice.sender, "audience": list(notice.audience)}, node=self._node, now=now))
        return receipt


def _overseer_may_see(principal: Principal, queues: frozenset[str] | None, notice: Notice) -> bool:
    return (principal.role is Role.OPERATOR or queues is None or notice.sender == principal.subject
            or "*" in notice.audience or any(q in queues for q in notice.audience))


def _audience(principal: Principal, queues: frozenset[str] | None, raw: object) -> tuple[str, ...]:
    if raw is None:
        if principal.role is Role.OPERATOR or queues is None:
            return ("*",)
        return tuple(sorted(queues))
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(a, str) and a for a in raw):
        raise NoticeError("bad_args", "audience must be '*' or a list of queue names")
    if principal.role is not Role.OPERATOR:
        outside = sorted(a for a in raw if a == "*" or (queues is not None and a not in queues))
        if outside:
            raise NoticeError("forbidden", f"audience outside your queues: {', '.join(outside)}")
    return tuple(raw)


def run_notice_command(service: NoticeService, principal: Principal, queues: frozenset[str] | None, name: str,
                       args: Mapping[str, Any], now: float) -> dict[str, Any]:
    """Run a notice command for ``principal``, whose role grants ``queues`` (``None``: all), and return the reply.

    Raises:
        NoticeError: ``bad_args``, ``forbidden`` (wrong role, audience outside the scope, not a recipient) or
            ``unknown_notice``.
    """
    if name not in NOTICE_COMMANDS:
        raise NoticeError("bad_args", f"not a notice command: {name!r}")
    if name == "notice_read":
        if principal.role is not Role.AGENT:
            raise NoticeError("forbidden", "only agents read notices")
        notice_id, ack = args.get("notice_id"), args.get("ack", False)
        if not isinstance(notice_id, str) or not notice_id or not isinstance(ack, bool):
            raise NoticeError("bad_args", "need notice_id (string) and optional ack (boolean)")
        if not service.board.get(notice_id).reaches(queues or (), None):
            raise NoticeError("forbidden", f"notice {notice_id!r} is not addressed to you")
        return {"notice_id": notice_id, **service.read(notice_id, principal.subject, now, ack=ack).data()}
    if principal.role is Role.AGENT:
        raise NoticeError("forbidden", f"{name!r} is for supervisors and operators")
    if name == "notice_receipts":
        notice_id = args.get("notice_id")
        if not isinstance(notice_id, str) or not notice_id:
            raise NoticeError("bad_args", "missing argument 'notice_id'")
        notice = service.board.get(notice_id)
        if not _overseer_may_see(principal, queues, notice):
            raise NoticeError("forbidden", f"notice {notice_id!r} is outside your scope")
        return {"notice": notice.data(), "receipts": [r.data() for r in service.board.receipts(notice_id)]}
    text, priority, ttl, ack = args.get("text"), args.get("priority", "info"), args.get("expires_in_s"), \
        args.get("require_ack", False)
    if not isinstance(text, str) or priority not in ("info", "urgent") or not isinstance(ack, bool):
        raise NoticeError("bad_args", "need text (string), priority info|urgent, require_ack (boolean)")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= _MAX_TTL_S):
        raise NoticeError("bad_args", f"expires_in_s must be a number in (0, {_MAX_TTL_S:.0f}]")
    notice = service.broadcast(sender=principal.subject, text=text, now=now, priority=Priority(priority),
                               audience=_audience(principal, queues, args.get("audience")),
                               expires_at=None if ttl is None else now + float(ttl), require_ack=ack)
    return notice.data()
