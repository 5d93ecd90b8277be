"""The adherence exceptions in force on this node, as the WebSocket gateway shows them (pure, fed from the bus).

The gateway observes every ``adherence.*`` envelope before fanning it out, so a supervisor's ``hello`` and
``snapshot`` carry the exceptions in force for its agents (the console's adherence column), not only those raised
after it connected.
"""

from __future__ import annotations

from typing import Any

from cti.events.registry import Envelope

__all__ = ["AdherenceBoard"]


class AdherenceBoard:
    """Active ``adherence.exception`` data by agent."""

    def __init__(self) -> None:
        self._active: dict[str, dict[str, Any]] = {}

    def observe(self, envelope: Envelope) -> None:
        agent = envelope.data.get("agent_id")
        if not isinstance(agent, str):
            return
        if envelope.type == "adherence.exception":
            self._active[agent] = dict(envelope.data)
        elif envelope.type == "adherence.exception_ended":
            self._active.pop(agent, None)

    def active(self) -> list[dict[str, Any]]:
        """The exceptions in force, by agent."""
        return [self._active[a] for a in sorted(self._active)]
