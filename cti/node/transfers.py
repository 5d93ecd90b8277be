"""Where a blind transfer goes: the call's :class:`~cti.call.ports.TransferTargets` (docs/api.md).

A transfer names a queue, or one agent: that agent gets the call through the call's current queue when
it serves it, else through the first queue (by name) it serves, and the call then requires the agent's
personal skill, so it waits for that agent alone. Used by the call (a REFER from the agent's phone) and
by the operator's and desktop's transfer (:mod:`cti.floor.operations`).
"""

from __future__ import annotations

from collections.abc import Mapping

from acd import AcdError, AgentId, AgentState, Router
from config.schema import AgentConfig, QueueConfig
from cti.call.ports import Transfer
from cti.errors import ControlError
from cti.node.routing import agent_config


class Transfers:
    """Implements :class:`cti.call.ports.TransferTargets` over the node's queues, agents and router."""

    def __init__(self, queues: Mapping[str, QueueConfig], agents: Mapping[str, AgentConfig], router: Router) -> None:
        self._queues = queues
        self._agents = agents  # the registry's live table: agents added at run time are targets at once
        self._router = router

    def queue_transfer(self, queue: str) -> Transfer:
        """Raises: ControlError (404) for an unknown queue."""
        if queue not in self._queues:
            raise ControlError("unknown_queue", f"no queue {queue!r}", status=404)
        return Transfer(queue=queue)

    def agent_transfer(self, agent_id: str, current_queue: str | None, current_agent: str | None) -> Transfer:
        """A transfer to one agent: through the call's current queue when that agent serves it, else
        the first queue (by name) it serves.

        Raises:
            ControlError: unknown agent (404), the agent now on the call, an agent logged out or
                serving no queue (409).
        """
        settings = self._agents.get(agent_id)
        if settings is None:
            raise ControlError("unknown_agent", f"no agent {agent_id!r}", status=404)
        if agent_id == current_agent:
            raise ControlError("transfer_to_self", f"agent {agent_id} already has the call")
        try:
            state, _ = self._router.agent_state(AgentId(agent_id))
        except AcdError:
            state = AgentState.LOGGED_OUT
        if state is AgentState.LOGGED_OUT:
            raise ControlError("agent_logged_out", f"agent {agent_id} is not logged in")
        served = agent_config(settings, self._queues.values()).queues
        if not served:
            raise ControlError("agent_serves_no_queue", f"agent {agent_id} serves no queue")
        queue = current_queue if current_queue in served else min(served)
        return Transfer(queue=queue, agent=agent_id)


__all__ = ["Transfers"]
