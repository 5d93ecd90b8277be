"""Who sees which event on the WebSocket gateway: the one place visibility is decided.

:func:`visible` is pure: a principal, its :class:`Scope` and an envelope in, a boolean out. The rules
(docs/websocket.md has the table):

- **agent**: ``agent.*`` and ``call.*`` whose ``agent_id`` is itself (``call.offered`` is the screen pop), and
  ``notice.broadcast`` whose audience holds ``*`` or one of its queues; ``supervision.*`` about itself only when it
  can hear the supervisor: ``started``/``changed`` whose ``mode`` (or ``previous_mode``) is ``whisper`` or ``barge``,
  and ``ended`` (so a take-over or the end of a barge is told; silent listening is never announced while it lasts).
  ``qa.evaluation.*`` and ``qa.appeal.*`` about itself; ``qa.rule.published``, ``qa.sample.selected`` and
  ``qa.library.published`` (public). Nothing else (no queue statistics, no alerts).
- **supervisor**: ``agent.*``, ``supervision.*`` and ``adherence.*`` for agents of its teams; ``call.*`` whose
  ``queue`` is one of its queues or whose ``agent_id`` is one of its agents; ``queue.stats``, ``alert.raised`` and
  ``alert.acknowledged`` of its queues (alerts with ``queue`` null go to every supervisor); ``alert.cleared`` (it
  names no queue); ``notice.broadcast`` to ``*``, one of its queues, or sent by itself; ``qa.*`` of its queues
  or agents, and the public ``qa`` events; ``voicemail.left`` of its queues (a mailbox belongs to the queue of
  its name; a mailbox of no queue is the operator's). Unknown types: no.
- ``phone.*`` (the browser phone, docs/web.md) goes to its agent and to the supervisors of the agent's team.
- **operator**: everything.

A :class:`Scope` is the set of agents and queues a connection follows; ``None`` means "all". Supervisors and
operators may narrow it with the ``subscribe`` command, never widen it past what their role grants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cti.events.registry import Envelope
from cti.tokens import Principal, Role

__all__ = ["Scope", "visible"]

_AUDIBLE_MODES = frozenset({"whisper", "barge"})
_QA_PUBLIC = frozenset({"qa.rule.published", "qa.sample.selected", "qa.library.published"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """Agents and queues a connection follows (``None``: every one)."""

    agents: frozenset[str] | None
    queues: frozenset[str] | None

    def has_agent(self, agent_id: object) -> bool:
        return isinstance(agent_id, str) and (self.agents is None or agent_id in self.agents)

    def has_queue(self, queue: object) -> bool:
        return isinstance(queue, str) and (self.queues is None or queue in self.queues)

    def narrowed(self, *, agents: frozenset[str] | None, queues: frozenset[str] | None) -> Scope:
        """This scope restricted to ``agents`` / ``queues`` (``None``: that dimension unchanged)."""
        return Scope(agents=self.agents if agents is None else _meet(self.agents, agents),
                     queues=self.queues if queues is None else _meet(self.queues, queues))


def _meet(current: frozenset[str] | None, wanted: frozenset[str]) -> frozenset[str]:
    return wanted if current is None else current & wanted


def _audience_ok(scope: Scope, data: dict[str, Any]) -> bool:
    audience = data.get("audience")
    if not isinstance(audience, list):
        return False
    return "*" in audience or any(scope.has_queue(q) for q in audience)


def _agent_sees(subject: str, scope: Scope, envelope: Envelope) -> bool:
    family, data = envelope.type.partition(".")[0], envelope.data
    if family in ("agent", "call", "phone"):
        return data.get("agent_id") == subject
    if family == "supervision":
        if data.get("agent_id") != subject:
            return False
        return envelope.type == "supervision.ended" or bool({data.get("mode"), data.get("previous_mode")}
                                                              & _AUDIBLE_MODES)
    if envelope.type == "notice.broadcast":
        return _audience_ok(scope, data)
    if family == "qa":  # its own evaluations and appeals; rules, samples and library additions are public
        return envelope.type in _QA_PUBLIC or data.get("agent_id") == subject
    return False


def _overseer_sees(principal: Principal, scope: Scope, envelope: Envelope) -> bool:
    family, data = envelope.type.partition(".")[0], envelope.data
    if principal.role is Role.OPERATOR and scope.agents is None and scope.queues is None:
        return True
    match family:
        case "agent" | "supervision" | "adherence" | "phone":
            return scope.has_agent(data.get("agent_id"))
        case "call":
            if scope.agents is None and scope.queues is None:
                return True
            return scope.has_queue(data.get("queue")) or scope.has_agent(data.get("agent_id"))
        case "queue":
            return scope.has_queue(data.get("queue"))
        case "alert":
            queue = data.get("queue")
            return queue is None or scope.has_queue(queue)
        case "notice":
            return data.get("sender") == principal.subject or _audience_ok(scope, data)
        case "qa":
            return envelope.type in _QA_PUBLIC or scope.has_queue(data.get("queue")) or scope.has_agent(
                data.get("agent_id"))
        case "voicemail":  # a mailbox belongs to the queue of its name (docs/voicemail.md)
            queue = data.get("queue")
            if queue is None:
                return principal.role is Role.OPERATOR
            return scope.has_queue(queue)
        case _:
            return principal.role is Role.OPERATOR


def visible(principal: Principal, scope: Scope, envelope: Envelope) -> bool:
    """True if the connection of ``principal`` following ``scope`` may receive ``envelope``."""
    if principal.role is Role.AGENT:
        return _agent_sees(principal.subject, scope, envelope)
    return _overseer_sees(principal, scope, envelope)
