"""One WebSocket connection's logic, without the socket: frames and bus envelopes in, frames out.

:class:`Session` is built from a verified :class:`~cti.tokens.Principal` and the node's
:class:`~cti.floor.control.Control`. It produces the ``hello`` frame (current state, no replay: the reconnect rule),
answers ``command`` frames with ``reply`` frames (or an ``error`` frame when the command carries no usable ``id``),
and turns bus envelopes into event frames when :func:`~cti.gateway.visibility.visible` allows. Every bad frame gets
an answer; nothing is dropped silently.
With a :class:`~cti.floor.notices.NoticeService`, ``hello`` carries ``notices`` (an agent's unexpired unread
ones) and the ``broadcast`` / ``notice_receipts`` / ``notice_read`` commands run through
:func:`~cti.floor.notices.run_notice_command`. With an :class:`~cti.floor.alerts.board.AlertBoard`, a
supervisor's or operator's ``hello`` and ``snapshot`` carry ``alerts`` (the active unacknowledged alerts it may
see), and a supervisor's ``alert_ack`` acknowledges one for every
supervisor: the session publishes ``alert.acknowledged`` through ``publish``. With an
:class:`~cti.adherence.board.AdherenceBoard` they also carry ``adherence`` (the adherence exceptions in force for the
agents of its scope).
Time is passed in (``now``, UTC epoch seconds); the session reads no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from cti.adherence.board import AdherenceBoard
from cti.events.registry import Envelope, EnvelopeError
from cti.floor.alerts.board import AlertBoard
from cti.floor.control import Control
from cti.floor.notices import NOTICE_COMMANDS, NoticeError, NoticeService, run_notice_command
from cti.gateway.commands import (
    OVERSEER_COMMANDS,
    SUPERVISION_COMMANDS,
    CommandError,
    agent_view,
    run_agent_command,
    run_supervision_command,
    target_agent,
)
from cti.gateway.frames import EncodedCache, Encoding, FrameError, OutFrame, decode_frame, encode_frame
from cti.gateway.phone import PHONE_COMMANDS, PhoneRequest, checked_phone_args
from cti.gateway.visibility import Scope, visible
from cti.ids import AgentId
from cti.tokens import Principal, Role

__all__ = ["Session", "initial_scope"]

_log = structlog.get_logger(__name__)

Publish = Callable[[str, dict[str, Any], float], None]
"""Publishes an event a command caused: ``(type, data, now)``."""


def initial_scope(principal: Principal, control: Control) -> Scope:
    """The scope a role grants: an agent itself and its queues, a supervisor its teams' agents and its queues.

    Raises:
        ControlError: the agent or supervisor is unknown to the node.
    """
    match principal.role:
        case Role.AGENT:
            queues = control.agent_snapshot(AgentId(principal.subject)).get("queues") or []
            return Scope(agents=frozenset({principal.subject}), queues=frozenset(str(q) for q in queues))
        case Role.SUPERVISOR:
            queues, teams = control.supervisor_scope(principal.subject)
            agents = frozenset(a for a in control.agent_ids() if control.agent_team(a) in teams)
            return Scope(agents=agents, queues=frozenset(queues))
        case Role.OPERATOR:
            return Scope(agents=None, queues=None)


def _names(args: Mapping[str, Any], key: str) -> frozenset[str] | None:
    value = args.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CommandError("bad_args", f"argument {key!r} must be a list of strings")
    return frozenset(value)


DEFAULT_SITE: dict[str, Any] = {"timezone": "UTC", "pause_reasons": ["break", "lunch", "training", "meeting", "admin"],
                                 "dispositions": ["resolved", "follow_up", "billing", "sales", "complaint",
                                                  "wrong_number", "other"],
                                 "pause_reason_labels": {}, "disposition_labels": {}}
"""``hello``'s ``site`` when the node gives none (the defaults of config ``node.timezone`` and ``desk``)."""


def site_info(timezone: str, pause_reasons: Sequence[str], dispositions: Sequence[str], *,
              pause_reason_labels: Mapping[str, Mapping[str, str]] | None = None,
              disposition_labels: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Any]:
    """``hello``'s ``site``: the site's IANA time zone, the codes the desktops offer and the configured labels of
    some of them (code to {language tag: label}; ``*``: every language)."""
    return {"timezone": timezone, "pause_reasons": list(pause_reasons), "dispositions": list(dispositions),
            "pause_reason_labels": {c: dict(v) for c, v in (pause_reason_labels or {}).items()},
            "disposition_labels": {c: dict(v) for c, v in (disposition_labels or {}).items()}}


class Session:
    """The gateway protocol for one connection (see docs/websocket.md)."""

    def __init__(self, principal: Principal, *, control: Control, node: str, encoding: Encoding,
                 cache: EncodedCache | None = None, notices: NoticeService | None = None,
                 alerts: AlertBoard | None = None, publish: Publish | None = None,
                 adherence: AdherenceBoard | None = None, site: Mapping[str, Any] | None = None,
                 phones: bool = False) -> None:
        self.principal = principal
        self._phones = phones
        self._pending: list[PhoneRequest] = []
        self._site = dict(site or DEFAULT_SITE)
        self._adherence = adherence
        self._notices = notices
        self._alerts = alerts
        self._publish = publish
        self.encoding = encoding
        self._control = control
        self._node = node
        self._cache = cache or EncodedCache()
        self._granted = initial_scope(principal, control)
        self.scope = self._granted

    @property
    def granted(self) -> Scope:
        """The widest scope this principal may follow."""
        return self._granted

    # -- outgoing ---------------------------------------------------------------------------------------------
    def _encode(self, message: Mapping[str, Any]) -> OutFrame:
        return encode_frame(message, self.encoding)

    def _reply_error(self, frame_id: object, code: str, message: str) -> OutFrame:
        error = {"code": code, "message": message}
        if _usable_id(frame_id):
            return self._encode({"type": "reply", "id": frame_id, "ok": False, "error": error})
        return self._encode({"type": "error", "error": error})

    def _agents_in_scope(self, now: float) -> list[dict[str, Any]]:
        return [agent_view(a, now) for a in self._control.agents_snapshot() if self.scope.has_agent(a.get("agent_id"))]

    def _queues_in_scope(self) -> list[dict[str, Any]]:
        return [self._control.queue_snapshot(q) for q in self._control.queue_names() if self.scope.has_queue(q)]

    def _calls_in_scope(self) -> list[dict[str, Any]]:
        if self.scope.agents is None and self.scope.queues is None:
            return self._control.calls_snapshot()
        return [c for c in self._control.calls_snapshot()
                if self.scope.has_queue(c.get("queue")) or self.scope.has_agent(c.get("agent_id"))]

    def hello(self, now: float, *, seq: int | None = None, resumed: bool = False) -> OutFrame:
        """The first frame: who you are and the current state (agent state and call; or agents, queues, calls).

        ``seq`` is the node's last event sequence number the state includes (resume from it with ``?since=``);
        ``resumed`` says that the events the client missed since its ``since`` follow this frame.

        Raises:
            ControlError: the principal's agent disappeared from the node.
        """
        subject = self.principal.subject
        data: dict[str, Any] = {"role": self.principal.role.value, "subject": subject, "node": self._node,
                                "state": None, "call": None, "agents": [], "queues": [], "calls": [],
                                "notices": self._pending_notices(now), "alerts": [], "adherence": [], "seq": seq,
                                "resumed": resumed, "site": self._site}
        if self.principal.role is Role.AGENT:
            data["state"] = agent_view(self._control.agent_snapshot(AgentId(subject)), now)
            data["call"] = self._control.current_call(AgentId(subject))
        else:
            data.update(agents=self._agents_in_scope(now), queues=self._queues_in_scope(),
                        calls=self._calls_in_scope(), alerts=self._alerts_in_scope(),
                        adherence=self._adherence_in_scope())
        return self._encode({"type": "hello", "data": data})

    def _adherence_in_scope(self) -> list[dict[str, Any]]:
        """The adherence exceptions in force for this overseer's agents (the console's adherence column)."""
        if self._adherence is None:
            return []
        return [a for a in self._adherence.active() if self.scope.has_agent(a.get("agent_id"))]

    def resync(self, since: int, first_seq: int, last_seq: int) -> OutFrame:
        """The frame that tells a resuming client its ``since`` is outside the replay window: events were lost, so it
        must drop its state and use the ``hello`` it just got (a fresh snapshot) instead."""
        return self._encode({"type": "resync", "data": {"since": since, "first_seq": first_seq,
                                                        "last_seq": last_seq}})

    def _sees_alert_queue(self, queue: str | None) -> bool:
        return queue is None or self._granted.has_queue(queue)

    def _alerts_in_scope(self) -> list[dict[str, Any]]:
        """Active unacknowledged alerts this overseer may see (alerts with no queue go to everyone), oldest first."""
        if self._alerts is None:
            return []
        return [a.data() for a in self._alerts.unacknowledged() if self._sees_alert_queue(a.queue)]

    def _alert_ack(self, args: Mapping[str, Any], now: float) -> dict[str, Any]:
        """``alert_ack``: acknowledge an active alert for every supervisor (the first acknowledgement wins).

        Raises:
            CommandError: forbidden (not a supervisor), bad_args, unknown_alert (not active, or not one this
                supervisor may see), unknown_command (no alert board on this node).
        """
        if self._alerts is None or self._publish is None:
            raise CommandError("unknown_command", "'alert_ack': alerts are not shared on this node")
        if self.principal.role is not Role.SUPERVISOR:
            raise CommandError("forbidden", "'alert_ack' is for supervisors")
        alert_id = args.get("alert_id")
        if not isinstance(alert_id, str) or not alert_id:
            raise CommandError("bad_args", "argument 'alert_id' must be a non-empty str")
        alert = self._alerts.get(alert_id)
        if alert is None or not self._sees_alert_queue(alert.queue):
            raise CommandError("unknown_alert", f"no active alert {alert_id!r} in your queues")
        result = self._alerts.acknowledge(alert_id, self.principal.subject, now)
        assert result is not None  # the alert was there a line above; nothing runs in between
        alert, first = result
        if first:
            self._publish("alert.acknowledged", alert.ack_data(), now)
        return alert.ack_data()

    def _pending_notices(self, now: float) -> list[dict[str, Any]]:
        """Notices for ``hello``: an agent's unexpired unread ones (marked delivered), an overseer's visible ones."""
        if self._notices is None:
            return []
        board, subject = self._notices.board, self.principal.subject
        if self.principal.role is Role.AGENT:
            team = self._control.agent_team(AgentId(subject))
            pending = board.pending_for(subject, self._granted.queues or (), team, now)
            for notice in pending:
                board.mark_delivered(notice.notice_id, subject, now)
            return [n.data() for n in pending]
        return [n.data() for n in board.active(now) if n.sender == subject or "*" in n.audience
                or any(self._granted.has_queue(q) for q in n.audience)]

    def deliver(self, envelope: Envelope, *, json_frame: bytes | None = None) -> OutFrame | None:
        """The event frame for ``envelope``, or ``None`` when this connection may not see it.

        ``json_frame``: ``envelope`` already encoded as JSON (the replay window's copy), used as is by a JSON session.
        """
        if (self.principal.role is Role.AGENT and envelope.type == "agent.logged_in"
                and envelope.data.get("agent_id") == self.principal.subject):
            queues = envelope.data.get("queues")
            if isinstance(queues, list):
                self._granted = self.scope = Scope(agents=self._granted.agents,
                                                   queues=frozenset(str(q) for q in queues))
        if not visible(self.principal, self.scope, envelope):
            return None
        if (self._notices is not None and envelope.type == "notice.broadcast"
                and self.principal.role is Role.AGENT and isinstance(envelope.data.get("notice_id"), str)):
            self._notices.board.mark_delivered(envelope.data["notice_id"], self.principal.subject, envelope.ts)
        if json_frame and self.encoding is Encoding.JSON:
            return json_frame.decode()
        try:
            return self._cache.encode(envelope, self.encoding)
        except EnvelopeError as exc:
            _log.warning("ws.event.skipped", type=envelope.type, event_id=envelope.id, error=str(exc))
            return None

    # -- incoming ---------------------------------------------------------------------------------------------
    def take_pending(self) -> list[PhoneRequest]:
        """The phone commands :meth:`receive` checked but left for the connection to run (docs/web.md)."""
        pending, self._pending = self._pending, []
        return pending

    def reply(self, frame_id: str | int, data: Any) -> OutFrame:
        """The ``ok`` reply to a command the connection ran itself (a :class:`PhoneRequest`)."""
        return self._encode({"type": "reply", "id": frame_id, "ok": True, "data": data})

    def reply_error(self, frame_id: str | int, code: str, message: str) -> OutFrame:
        """The refusal of a command the connection ran itself."""
        return self._reply_error(frame_id, code, message)

    def receive(self, raw: str | bytes, now: float) -> list[OutFrame]:
        """Answer one incoming frame; returns at least one frame (a reply or an error), except for a well-formed
        phone command, which is left for the connection to run (:meth:`take_pending`)."""
        try:
            message = decode_frame(raw)
        except FrameError as exc:
            return [self._reply_error(None, exc.code, str(exc))]
        frame_id = message.get("id")
        if message.get("type") != "command":
            return [self._reply_error(frame_id, "unknown_type", f"unknown frame type {message.get('type')!r}")]
        if not _usable_id(frame_id):
            return [self._reply_error(None, "bad_frame", "a command needs an 'id' (string or integer)")]
        name, args = message.get("command"), message.get("args")
        args = {} if args is None else args
        try:
            if not isinstance(name, str) or not name:
                raise CommandError("bad_frame", "a command needs a 'command' name")
            if not isinstance(args, dict):
                raise CommandError("bad_args", "'args' must be an object")
            if name in PHONE_COMMANDS:
                self._pending.append(self._phone_request(frame_id, name, args))
                return []
            data = self._run(name, args, now)
        except CommandError as exc:
            return [self._reply_error(frame_id, exc.code, str(exc))]
        except Exception as exc:  # a bug or a broken Control must not take the connection down; it is logged
            _log.exception("ws.command.failed", command=name, subject=self.principal.subject)
            return [self._reply_error(frame_id, "internal_error", type(exc).__name__)]
        return [self._encode({"type": "reply", "id": frame_id, "ok": True, "data": data})]

    def _phone_request(self, frame_id: object, name: str, args: dict[str, Any]) -> PhoneRequest:
        """A checked phone command: agents only, for themselves, on a node with web phones.

        Raises:
            CommandError: unknown_command (no web phones here), forbidden (not an agent, or another agent), bad_args.
        """
        if not self._phones:
            raise CommandError("unknown_command", f"{name!r}: this node has no browser phones")
        if self.principal.role is not Role.AGENT:
            raise CommandError("forbidden", f"{name!r} is for an agent's own page")
        agent_id = target_agent(self.principal, self._granted, args)
        assert isinstance(frame_id, str | int)  # receive() checked it (_usable_id)
        return PhoneRequest(frame_id=frame_id, agent_id=agent_id, name=name, args=checked_phone_args(name, args))

    def _run(self, name: str, args: dict[str, Any], now: float) -> Any:
        if name == "alert_ack":
            return self._alert_ack(args, now)
        if name in SUPERVISION_COMMANDS:
            return run_supervision_command(self._control, self.principal, self._granted, name, args)
        if name in NOTICE_COMMANDS:
            if self._notices is None:
                raise CommandError("unknown_command", f"{name!r}: notices are not enabled on this node")
            try:
                return run_notice_command(self._notices, self.principal, self._granted.queues, name, args, now)
            except NoticeError as exc:
                raise CommandError(exc.code, str(exc)) from exc
        if name in OVERSEER_COMMANDS:
            if self.principal.role is Role.AGENT:
                raise CommandError("forbidden", f"{name!r} is for supervisors and operators")
            if name == "subscribe":
                return self._subscribe(args)
            return {"agents": self._agents_in_scope(now), "queues": self._queues_in_scope(),
                    "calls": self._calls_in_scope(), "alerts": self._alerts_in_scope(),
                    "adherence": self._adherence_in_scope()}
        agent_id = target_agent(self.principal, self._granted, args)
        return run_agent_command(self._control, agent_id, name, args, now)

    def _subscribe(self, args: dict[str, Any]) -> dict[str, Any]:
        agents, queues = _names(args, "agents"), _names(args, "queues")
        for wanted, allowed, what in ((agents, self._granted.has_agent, "agent"),
                                      (queues, self._granted.has_queue, "queue")):
            outside = sorted(n for n in wanted or () if not allowed(n))
            if outside:
                raise CommandError("forbidden", f"{what}s outside your scope: {', '.join(outside)}")
        self.scope = self._granted.narrowed(agents=agents, queues=queues)
        return {"agents": None if self.scope.agents is None else sorted(self.scope.agents),
                "queues": None if self.scope.queues is None else sorted(self.scope.queues)}


def _usable_id(value: object) -> bool:
    if isinstance(value, str):
        return 0 < len(value) <= 128
    return isinstance(value, int) and not isinstance(value, bool)
