"""Agents added, re-skilled and removed while the node runs (the admin API's agent CRUD).

:class:`AgentAdmin` is the interface the API uses; :class:`RuntimeAgents` implements it over the
controller's ``agents`` table (``dict[str, config.schema.AgentConfig]``), the same table
:class:`cti.floor.operations.NodeControl` reads, so a new agent shows up in every snapshot at once.

Changes live in memory only: the configuration file stays the source of truth at start, and a
restart forgets every runtime change (edit the file to make one permanent).

A skill change reaches the ACD at the agent's next login (queue membership is computed at login).
An agent that is idle when its skills change — ``available`` or ``paused`` — is logged out and in
again at once, keeping its state (and its not-ready reason); an agent on a call or in wrap-up gets
its new skills at its next login. Only a logged-out agent can be removed (``agent_logged_in``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from pydantic import ValidationError

from config.schema import AgentConfig
from cti.errors import ControlError
from cti.floor.control import Control
from cti.ids import AgentId

_RELOGIN_STATES = frozenset({"available", "paused"})


class AgentAdmin(Protocol):
    """Runtime agent administration; every refusal is a :class:`~cti.floor.control.ControlError`."""

    def add_agent(self, agent_id: AgentId, name: str, password: str, skills: Mapping[str, int],
                  team: str | None) -> None:
        """Add a logged-out agent. Raises: ControlError(agent_exists 409, bad_agent 400)."""
        ...

    def set_skills(self, agent_id: AgentId, skills: Mapping[str, int]) -> None:
        """Replace an agent's skills. Raises: ControlError(unknown_agent 404, bad_agent 400)."""
        ...

    def remove_agent(self, agent_id: AgentId) -> None:
        """Forget a logged-out agent. Raises: ControlError(unknown_agent 404, agent_logged_in 409)."""
        ...


def _validated(fields: dict[str, object]) -> AgentConfig:
    try:
        return AgentConfig.model_validate(fields)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'agent'}: {err['msg']}"
                            for err in exc.errors())
        raise ControlError("bad_agent", reasons, status=400) from exc


class RuntimeAgents:
    """Implements :class:`AgentAdmin` over the controller's agent table (in memory only)."""

    def __init__(self, agents: dict[str, AgentConfig], control: Control) -> None:
        self._agents = agents
        self._control = control

    def _known(self, agent_id: AgentId) -> AgentConfig:
        settings = self._agents.get(agent_id)
        if settings is None:
            raise ControlError("unknown_agent", f"no agent {agent_id!r}", status=404)
        return settings

    def add_agent(self, agent_id: AgentId, name: str, password: str, skills: Mapping[str, int],
                  team: str | None) -> None:
        if agent_id in self._agents:
            raise ControlError("agent_exists", f"agent {agent_id!r} exists already", status=409)
        self._agents[agent_id] = _validated({"id": agent_id, "name": name, "password": password,
                                             "skills": dict(skills), "team": team})

    def set_skills(self, agent_id: AgentId, skills: Mapping[str, int]) -> None:
        old = self._known(agent_id)
        new = _validated({**old.model_dump(), "skills": dict(skills)})
        snapshot = self._control.agent_snapshot(agent_id)
        self._agents[agent_id] = new
        state = snapshot.get("state")
        if state in _RELOGIN_STATES:
            self._relogin(agent_id, ready=state == "available", reason=snapshot.get("reason"))

    def _relogin(self, agent_id: AgentId, *, ready: bool, reason: object) -> None:
        self._control.logout(agent_id, by="reconfigured")
        self._control.login(agent_id, ready=ready, by="reconfigured")
        if not ready and isinstance(reason, str) and reason:
            self._control.set_not_ready(agent_id, reason)

    def remove_agent(self, agent_id: AgentId) -> None:
        self._known(agent_id)
        state = self._control.agent_snapshot(agent_id).get("state")
        if state != "logged_out":
            raise ControlError("agent_logged_in", f"agent {agent_id!r} is {state}; log it out first")
        del self._agents[agent_id]


__all__ = ["AgentAdmin", "RuntimeAgents"]
