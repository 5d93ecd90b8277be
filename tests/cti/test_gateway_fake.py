"""An in-memory :class:`cti.floor.control.Control` for the gateway tests (a real class, no mocks), and its own
checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from acd import AgentState
from cti.errors import ControlError
from cti.floor.control import Control

STATS_KEYS = ("waiting", "longest_wait_seconds", "agents_logged_in", "agents_available", "agents_busy",
              "agents_offering", "offered", "answered", "abandoned", "window_seconds")


class FakeControl:
    """Agents a1 (team t1, sales), a2 (team t1, sales), a3 (team t2, support); supervisors s1 (t1, sales) and
    s2 (t2, support). Every action is recorded in ``actions``."""

    def __init__(self) -> None:
        self.actions: list[tuple[Any, ...]] = []
        self.agents: dict[str, dict[str, Any]] = {
            aid: {"agent_id": aid, "name": f"Agent {aid}", "team": team, "state": "logged_out", "reason": None,
                  "since": 1000.0, "call_id": None, "registered": True, "skills": {queue: 5}, "queues": [queue]}
            for aid, team, queue in (("a1", "t1", "sales"), ("a2", "t1", "sales"), ("a3", "t2", "support"))
        }
        self.passwords = {"a1": "pw-a1", "a2": "pw-a2", "a3": "pw-a3"}
        self.supervisors = {"s1": ("pw-s1", frozenset({"sales"}), frozenset({"t1"})),
                            "s2": ("pw-s2", frozenset({"support"}), frozenset({"t2"}))}
        self.calls: dict[str, dict[str, Any]] = {}
        self.queues = {"sales": 0, "support": 0}
        self.now = 2000.0

    # helpers for tests
    def _agent(self, agent_id: str) -> dict[str, Any]:
        if agent_id not in self.agents:
            raise ControlError("unknown_agent", f"no agent {agent_id!r}", status=404)
        return self.agents[agent_id]

    def _set(self, agent_id: str, state: str, reason: str | None = None) -> None:
        agent = self._agent(agent_id)
        agent.update(state=state, reason=reason, since=self.now)

    def put_call(self, call_id: str, agent_id: str, queue: str) -> dict[str, Any]:
        call = {"call_id": call_id, "phase": "connected", "caller_number": "+15550001", "caller_name": "Ann",
                "dialled_number": "100", "queue": queue, "agent_id": agent_id, "vip": False, "priority": 0,
                "recording_serial": "R-1", "arrived_at": 1990.0, "ivr_inputs": {"menu": "1"}, "crm": {}}
        self.calls[call_id] = call
        self._agent(agent_id).update(call_id=call_id, state="on_call", since=self.now)
        return call

    # agents
    def agent_ids(self) -> list[str]:
        return list(self.agents)

    def agent_snapshot(self, agent_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._agent(agent_id))

    def agent_state_counts(self) -> dict[str, int]:
        counts = {state.value: 0 for state in AgentState}
        for agent in self.agents_snapshot():
            counts[str(agent["state"])] = counts.get(str(agent["state"]), 0) + 1
        return counts

    def agents_snapshot(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(a) for a in self.agents.values()]

    def agent_team(self, agent_id: str) -> str | None:
        team = self._agent(agent_id)["team"]
        return team if isinstance(team, str) else None

    def login(self, agent_id: str, *, ready: bool, by: str = "user") -> None:
        self.actions.append(("login", agent_id, ready))
        self._set(agent_id, "available" if ready else "paused")

    def logout(self, agent_id: str, *, by: str = "user") -> None:
        self.actions.append(("logout", agent_id))
        self._set(agent_id, "logged_out")

    def set_ready(self, agent_id: str) -> None:
        if self._agent(agent_id)["state"] == "logged_out":
            raise ControlError("acd.transition_illegal", "log in first")
        self.actions.append(("ready", agent_id))
        self._set(agent_id, "available")

    def set_not_ready(self, agent_id: str, reason: str) -> None:
        self.actions.append(("not_ready", agent_id, reason))
        self._set(agent_id, "paused", reason)

    def end_wrap_up(self, agent_id: str, disposition: str | None, notes: str | None = None) -> None:
        if self._agent(agent_id)["state"] != "wrap_up":
            raise ControlError("acd.transition_illegal", "not in wrap-up")
        self.actions.append(("end_wrap_up", agent_id, disposition))
        self._set(agent_id, "available")

    def check_agent_password(self, agent_id: str, password: str) -> bool:
        return self.passwords.get(agent_id) == password

    # calls
    def calls_snapshot(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(c) for c in self.calls.values()]

    def call_snapshot(self, call_id: str) -> dict[str, Any]:
        if call_id not in self.calls:
            raise ControlError("unknown_call", call_id, status=404)
        return copy.deepcopy(self.calls[call_id])

    def current_call(self, agent_id: str) -> dict[str, Any] | None:
        call_id = self._agent(agent_id)["call_id"]
        return None if call_id is None else self.call_snapshot(call_id)

    def hangup_call(self, call_id: str) -> None:
        self.actions.append(("hangup", call_id))

    def hold_call(self, call_id: str, on_hold: bool) -> None:
        self.actions.append(("hold", call_id, on_hold))

    def transfer_call(self, call_id: str, target: str) -> None:
        self.actions.append(("transfer", call_id, target))

    # queues and supervisors
    def queue_names(self) -> list[str]:
        return list(self.queues)

    def queue_snapshot(self, queue: str) -> dict[str, Any]:
        if queue not in self.queues:
            raise ControlError("unknown_queue", queue, status=404)
        stats: dict[str, Any] = dict.fromkeys(STATS_KEYS, 0)
        stats.update(queue=queue, waiting=self.queues[queue], service_level=None, asa_seconds=None,
                     window_seconds=900)
        return stats

    def supervisor_scope(self, supervisor_id: str) -> tuple[frozenset[str], frozenset[str]]:
        if supervisor_id not in self.supervisors:
            raise ControlError("unknown_supervisor", supervisor_id, status=404)
        _, queues, teams = self.supervisors[supervisor_id]
        return queues, teams

    def check_supervisor_password(self, supervisor_id: str, password: str) -> bool:
        return supervisor_id in self.supervisors and self.supervisors[supervisor_id][0] == password


def test_fake_is_a_control() -> None:
    control: Control = FakeControl()
    assert control.agent_team("a3") == "t2"
    with pytest.raises(ControlError) as err:
        control.set_ready("a1")
    assert err.value.code == "acd.transition_illegal"
    with pytest.raises(ControlError):
        control.agent_snapshot("nobody")
