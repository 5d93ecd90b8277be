"""Gateway commands: argument checks, authorisation and the call into :class:`~cti.floor.control.Control`.

Agent commands act on the caller itself; supervisors and operators name ``agent_id`` in ``args`` and may act on the
agents of their scope only. Call commands (``hangup``, ``hold``, ``resume``, ``transfer``) are allowed only on the
target agent's current call. Every refusal raises :class:`CommandError` with a stable code; ``ControlError`` codes
from the node pass through unchanged.

Supervision commands (``monitor``, ``whisper``, ``barge``, ``take_over``, ``end_supervision``, each with ``call_id``;
docs/supervision.md) are for supervisors, on calls of their queues, and operators, who name the ``supervisor_id``
whose phone is used. Agents get ``forbidden``. They run through :func:`run_supervision_command`.

Errors::

    CommandError   code: unknown_command | bad_args | forbidden | <ControlError code>
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cti.errors import ControlError, CtiError
from cti.floor.control import Control
from cti.gateway.visibility import Scope
from cti.ids import AgentId, CallId
from cti.tokens import Principal, Role

__all__ = ["AGENT_COMMANDS", "OVERSEER_COMMANDS", "SUPERVISION_COMMANDS", "CommandError", "agent_view",
           "run_agent_command", "run_supervision_command", "target_agent"]


class CommandError(CtiError):
    """A refused command; ``code`` and the message go into the error reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class _Arg:
    name: str
    kind: type
    optional: bool = False


_CALL_ID: Final = _Arg("call_id", str)

AGENT_COMMANDS: Final[Mapping[str, tuple[_Arg, ...]]] = {
    "login": (_Arg("ready", bool, optional=True),),
    "logout": (),
    "ready": (),
    "not_ready": (_Arg("reason", str),),
    "end_wrap_up": (_Arg("disposition", str, optional=True), _Arg("notes", str, optional=True)),
    "hangup": (_CALL_ID,),
    "hold": (_CALL_ID,),
    "resume": (_CALL_ID,),
    "transfer": (_CALL_ID, _Arg("target", str)),
}
"""Agent commands and their arguments (``agent_id`` is added for supervisors and operators)."""

OVERSEER_COMMANDS: Final = frozenset({"subscribe", "snapshot"})
"""Commands only supervisors and operators may send."""


def agent_view(snapshot: dict[str, Any], now: float) -> dict[str, Any]:
    """An agent snapshot with ``time_in_state_s`` (seconds since ``since``) added."""
    since = snapshot.get("since")
    view = dict(snapshot)
    view["time_in_state_s"] = round(max(0.0, now - since), 3) if isinstance(since, int | float) else None
    return view


def _checked(args: Mapping[str, Any], spec: tuple[_Arg, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arg in spec:
        value = args.get(arg.name)
        if value is None:
            if not arg.optional:
                raise CommandError("bad_args", f"missing argument {arg.name!r}")
            continue
        if not isinstance(value, arg.kind) or (arg.kind is str and not value):
            raise CommandError("bad_args", f"argument {arg.name!r} must be a non-empty {arg.kind.__name__}")
        out[arg.name] = value
    return out


def target_agent(principal: Principal, scope: Scope, args: Mapping[str, Any]) -> AgentId:
    """The agent a command acts on, after checking the caller may act on it.

    Raises:
        CommandError: ``bad_args`` (supervisor/operator without ``agent_id``) or ``forbidden``.
    """
    named = args.get("agent_id")
    if principal.role is Role.AGENT:
        if named is not None and named != principal.subject:
            raise CommandError("forbidden", "an agent may only act on itself")
        return AgentId(principal.subject)
    if not isinstance(named, str) or not named:
        raise CommandError("bad_args", "missing argument 'agent_id'")
    if not scope.has_agent(named):
        raise CommandError("forbidden", f"agent {named!r} is not in your scope")
    return AgentId(named)


def _own_call(control: Control, agent_id: AgentId, call_id: CallId) -> None:
    current = control.current_call(agent_id)
    if current is None or current.get("call_id") != call_id:
        raise CommandError("forbidden", f"call {call_id!r} is not the current call of agent {agent_id!r}")


def run_agent_command(control: Control, agent_id: AgentId, name: str, args: Mapping[str, Any], now: float
                      ) -> dict[str, Any]:
    """Run agent command ``name`` on ``agent_id`` and return the agent's snapshot afterwards.

    Raises:
        CommandError: unknown command, bad arguments, a call that is not the agent's, or a ControlError refusal.
    """
    spec = AGENT_COMMANDS.get(name)
    if spec is None:
        raise CommandError("unknown_command", f"unknown command {name!r}")
    a = _checked(args, spec)
    actions: dict[str, Callable[[], None]] = {
        "login": lambda: control.login(agent_id, ready=a.get("ready", False)),
        "logout": lambda: control.logout(agent_id),
        "ready": lambda: control.set_ready(agent_id),
        "not_ready": lambda: control.set_not_ready(agent_id, a["reason"]),
        "end_wrap_up": lambda: control.end_wrap_up(agent_id, a.get("disposition"), a.get("notes")),
        "hangup": lambda: control.hangup_call(a["call_id"]),
        "hold": lambda: control.hold_call(a["call_id"], True),
        "resume": lambda: control.hold_call(a["call_id"], False),
        "transfer": lambda: control.transfer_call(a["call_id"], a["target"]),
    }
    try:
        if "call_id" in a:
            _own_call(control, agent_id, CallId(a["call_id"]))
        actions[name]()
        return agent_view(control.agent_snapshot(agent_id), now)
    except ControlError as exc:
        raise CommandError(exc.code, str(exc)) from exc


SUPERVISION_COMMANDS: Final = frozenset({"monitor", "whisper", "barge", "take_over", "end_supervision"})
"""Supervisor commands on a live call (``call_id``; operators add ``supervisor_id``)."""


def run_supervision_command(control: Control, principal: Principal, scope: Scope, name: str,
                            args: Mapping[str, Any]) -> dict[str, Any]:
    """Run supervision command ``name`` and return the call's snapshot afterwards.

    ``scope`` is the scope the role grants (a supervisor acts only on calls of its queues).

    Raises:
        CommandError: unknown_command, bad_args, forbidden (an agent, or a call outside the supervisor's
            queues), or a ControlError refusal (not_connected, no_supervisor_phone, already_supervised, ...).
    """
    if name not in SUPERVISION_COMMANDS:
        raise CommandError("unknown_command", f"unknown command {name!r}")
    if principal.role is Role.AGENT:
        raise CommandError("forbidden", f"{name!r} is for supervisors and operators")
    a = _checked(args, (_CALL_ID, _Arg("supervisor_id", str, optional=True)))
    call_id = CallId(a["call_id"])
    try:
        if principal.role is Role.SUPERVISOR:
            if a.get("supervisor_id", principal.subject) != principal.subject:
                raise CommandError("forbidden", "a supervisor may only use its own phone")
            supervisor_id = principal.subject
            if not scope.has_queue(control.call_snapshot(call_id).get("queue")):
                raise CommandError("forbidden", f"call {call_id!r} is not in one of your queues")
        else:
            if "supervisor_id" not in a:
                raise CommandError("bad_args", "missing argument 'supervisor_id'")
            supervisor_id = a["supervisor_id"]
        if name == "take_over":
            control.take_over(supervisor_id, call_id)
        elif name == "end_supervision":
            control.end_supervision(supervisor_id, call_id)
        else:
            control.supervise(supervisor_id, call_id, name)
        return control.call_snapshot(call_id)
    except ControlError as exc:
        raise CommandError(exc.code, str(exc)) from exc
