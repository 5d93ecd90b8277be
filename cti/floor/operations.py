"""The node's :class:`~cti.floor.control.Control`: agent, call and queue operations over the controller.

Hold is done by the B2BUA itself: the bridge stops carrying audio both ways (neither side hears
the other) and the ACD counts hold time; resume bridges again. A transfer goes to a queue
(``queue:<name>``) or to one agent (``agent:<id>``, through a queue that agent serves: the call
requires the agent's personal skill, so it waits for that agent alone): the agent leg is
released (the agent goes to wrap-up), the caller stays connected and joins the queue as a new
queue leg. Transfers to a number need an outbound
trunk, which the server does not have yet: they are refused with ``transfer_unsupported``.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import TYPE_CHECKING, Any

from acd import (
    AcdError,
    AcdRequest,
    AgentId,
    AgentState,
    CallId,
    EndWrapUp,
    Hold,
    LoginAgent,
    LogoutAgent,
    SetNotReady,
    SetReady,
    Unhold,
)
from cti.call.shell import Call, CallPhase
from cti.call.supervision import SupervisionService
from cti.errors import ControlError
from cti.node.routing import agent_config

if TYPE_CHECKING:
    from cti.node.controller import CallController


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


MAX_WRAP_UP_NOTES = 2000
"""Characters of wrap-up notes ``end_wrap_up`` accepts."""


def _acd(exc: AcdError) -> ControlError:
    return ControlError(getattr(exc, "code", "acd.refused"), str(exc))


class NodeControl:
    """Implements :class:`cti.floor.control.Control` for one node."""

    def __init__(self, controller: CallController) -> None:
        self.c = controller

    # ------------------------------------------------------------------------------ agents

    def _agent(self, agent_id: AgentId) -> str:
        if agent_id not in self.c.agents:
            raise ControlError("unknown_agent", f"no agent {agent_id!r}", status=404)
        return agent_id

    def agent_ids(self) -> list[AgentId]:
        return [AgentId(a) for a in self.c.agents]

    def agent_team(self, agent_id: AgentId) -> str | None:
        return self.c.agents[self._agent(agent_id)].team

    def agent_snapshot(self, agent_id: AgentId) -> dict[str, Any]:
        settings = self.c.agents[self._agent(agent_id)]
        try:
            state, reason = self.c.acd.router.agent_state(AgentId(agent_id))
        except AcdError:
            state, reason = AgentState.LOGGED_OUT, None
        call_id = self.c.acd.router.agent_call(AgentId(agent_id))
        return {
            "agent_id": agent_id, "name": settings.name, "team": settings.team, "state": state.value,
            "reason": reason, "since": self.c.state_since.get(agent_id), "call_id": call_id,
            "registered": bool(self.c.registration.lookup(agent_id)), "skills": dict(settings.skills),
            "queues": sorted(agent_config(settings, self.c.queues.values()).queues),
            "wrap_up_s": self.c.wrap_up_s.get(agent_id) if state is AgentState.WRAP_UP else None,
        }

    def agents_snapshot(self) -> list[dict[str, Any]]:
        return [self.agent_snapshot(AgentId(a)) for a in self.c.agents]

    def agent_state_counts(self) -> dict[str, int]:
        """Configured agents per ACD state value, every state present (for /metrics: no snapshots)."""
        counts = {state.value: 0 for state in AgentState}
        for agent_id in self.c.agents:
            try:
                state, _ = self.c.acd.router.agent_state(AgentId(agent_id))
            except AcdError:
                state = AgentState.LOGGED_OUT
            counts[state.value] += 1
        return counts

    def check_agent_password(self, agent_id: AgentId, password: str) -> bool:
        settings = self.c.agents.get(agent_id)
        return settings is not None and hmac.compare_digest(settings.password.encode(), password.encode())

    def _acd_request(self, request: AcdRequest) -> None:
        """Raises: ControlError with the ACD's code when it refuses (nothing changed)."""
        try:
            self.c.acd.handle(request)
        except AcdError as exc:
            raise _acd(exc) from exc

    def login(self, agent_id: AgentId, *, ready: bool, by: str = "user") -> None:
        """Log the agent in (``agent.logged_in`` once the ACD took it); ``by``: who asked (user, operator, ...)."""
        settings = self.c.agents[self._agent(agent_id)]
        config = agent_config(settings, self.c.queues.values())
        self._acd_request(LoginAgent(agent=config, ready=ready))
        bindings = self.c.registration.lookup(agent_id)
        self.c.publisher.publish("agent.logged_in", {
            "agent_id": agent_id, "device": bindings[0].uri if bindings else "", "queues": sorted(config.queues),
            "skills": dict(settings.skills), "by": by,
        })

    def logout(self, agent_id: AgentId, *, by: str = "user") -> None:
        """Log the agent out (``agent.logged_out`` with ``by`` as its reason once the ACD took it)."""
        self._acd_request(LogoutAgent(agent_id=AgentId(self._agent(agent_id))))
        self.c.publisher.publish("agent.logged_out", {"agent_id": agent_id, "reason": by})

    def set_ready(self, agent_id: AgentId) -> None:
        self._acd_request(SetReady(agent_id=AgentId(self._agent(agent_id))))

    def set_not_ready(self, agent_id: AgentId, reason: str) -> None:
        self._acd_request(SetNotReady(agent_id=AgentId(self._agent(agent_id)), reason=reason))

    def end_wrap_up(self, agent_id: AgentId, disposition: str | None, notes: str | None = None) -> None:
        """End after-call work; the disposition (call reason code) and the notes go on the agent's last call.

        Raises: ControlError ``notes_too_long`` (400) before anything changes."""
        self._agent(agent_id)
        if notes is not None and len(notes) > MAX_WRAP_UP_NOTES:
            raise ControlError("notes_too_long", f"wrap-up notes hold at most {MAX_WRAP_UP_NOTES} characters, "
                                                 f"got {len(notes)}", status=400)
        try:
            self.c.acd.handle(EndWrapUp(agent_id=AgentId(agent_id)))
        except AcdError as exc:
            raise _acd(exc) from exc
        notes = (notes or "").strip() or None
        if disposition or notes:
            self._set_wrap_up(agent_id, disposition, notes)

    def _set_wrap_up(self, agent_id: str, disposition: str | None, notes: str | None) -> None:
        """The agent's wrap-up code and notes for its last call: stored on the CDR (the code is the call reason
        for reports)."""
        detail = self.c.last_call_of.pop(agent_id, None)
        if detail is None:
            return
        call_id = CallId(detail.call_id)
        detail.wrap_up_notes = notes
        if disposition:
            detail.disposition = disposition
            detail.reason = detail.reason or disposition
            self.c.publisher.call_reason(call_id, disposition, "disposition")
        rewritten = self.c.records.call_ended(call_id, detail)
        rewritten.add_done_callback(_consume)  # a failed write is logged by the writer

    # ------------------------------------------------------------------------------ calls

    def _call(self, call_id: CallId) -> Call:
        call = self.c.calls.get(CallId(call_id))
        if call is None:
            raise ControlError("unknown_call", f"no live call {call_id!r}", status=404)
        return call

    def call_snapshot(self, call_id: CallId) -> dict[str, Any]:
        call = self._call(call_id)
        d = call.detail
        crm: dict[str, Any] = {}
        for lookup in d.crm:
            if lookup.get("ok"):
                crm.update(lookup.get("result") or {})
        return {
            "call_id": call.id, "phase": call.phase.value, "caller_number": d.caller, "caller_name": d.caller_name,
            "dialled_number": d.dialled, "queue": d.queue, "agent_id": d.agent or (call.offer.agent_id
                                                                                 if call.offer else None),
            "vip": d.vip, "priority": d.priority, "recording_serial": d.recording_serial,
            "arrived_at": d.arrived_at, "ivr_inputs": dict(call.variables), "crm": crm,
        }

    def calls_snapshot(self) -> list[dict[str, Any]]:
        return [self.call_snapshot(c) for c in list(self.c.calls)]

    def current_call(self, agent_id: AgentId) -> dict[str, Any] | None:
        call_id = self.c.acd.router.agent_call(AgentId(self._agent(agent_id)))
        if call_id is None or call_id not in self.c.calls:
            return None
        return self.call_snapshot(call_id)

    def hangup_call(self, call_id: CallId) -> None:
        self._call(call_id).hangup("operator-hangup")

    def hold_call(self, call_id: CallId, on_hold: bool) -> None:
        call = self._call(call_id)
        if call.phase is not CallPhase.CONNECTED or call.detail.agent is None:
            raise ControlError("call_not_connected", "only a call connected to an agent can be held")
        try:
            self.c.acd.handle((Hold if on_hold else Unhold)(agent_id=AgentId(call.detail.agent)))
        except AcdError as exc:
            raise _acd(exc) from exc
        call.media.bridged = not on_hold

    def transfer_call(self, call_id: CallId, target: str) -> None:
        call = self._call(call_id)
        kind, _, name = target.partition(":")
        if kind not in ("queue", "agent"):
            raise ControlError("transfer_unsupported", "only queue:<name> and agent:<id> targets are supported",
                               status=400)
        if call.phase is not CallPhase.CONNECTED:
            raise ControlError("call_not_connected", "only a connected call can be transferred")
        destination = (self.c.transfers.queue_transfer(name) if kind == "queue"  # raises ControlError
                       else self.c.transfers.agent_transfer(name, call.detail.queue, call.detail.agent))
        try:
            call.transfer(destination)
        except AcdError as exc:
            raise _acd(exc) from exc

    # ------------------------------------------------------------------------------ queues, supervisors

    def queue_names(self) -> list[str]:
        return list(self.c.queues)

    def queue_snapshot(self, queue: str) -> dict[str, Any]:
        if queue not in self.c.queues:
            raise ControlError("unknown_queue", f"no queue {queue!r}", status=404)
        return self.c.queue_stats_data(queue)

    def supervisor_scope(self, supervisor_id: str) -> tuple[frozenset[str], frozenset[str]]:
        sup = self.c.supervisors.get(supervisor_id)
        if sup is None:
            raise ControlError("unknown_supervisor", f"no supervisor {supervisor_id!r}", status=404)
        return frozenset(sup.queues), frozenset(sup.teams)

    def check_supervisor_password(self, supervisor_id: str, password: str) -> bool:
        sup = self.c.supervisors.get(supervisor_id)
        return sup is not None and hmac.compare_digest(sup.password.encode(), password.encode())

    # ------------------------------------------------------------------------------ supervision

    def supervise(self, supervisor_id: str, call_id: CallId, mode: str) -> None:
        SupervisionService(self.c).supervise(supervisor_id, call_id, mode)

    def end_supervision(self, supervisor_id: str, call_id: CallId) -> None:
        SupervisionService(self.c).end_supervision(supervisor_id, call_id)

    def take_over(self, supervisor_id: str, call_id: CallId) -> None:
        SupervisionService(self.c).take_over(supervisor_id, call_id)
