"""The phones the node's calls reach: the call's :class:`~cti.call.ports.PhonePort`.

Where a user (agent or supervisor) is registered comes from the registrar
(:class:`cti.node.registration.RegistrationService`); the INVITE is built by the user agent
(:func:`cti.call.useragent.invite_phone`) on the node's leg table; the SRTP policy of a leg is
``media.srtp`` unless the trunk or the agent sets its own (docs/tls.md). Agents added or changed at
run time are seen at once: the agent table is the registry's live mapping.
"""

from __future__ import annotations

from collections.abc import Mapping

from config.schema import AgentConfig, ServerConfig
from cti.call.legs import LegOwner, LegTable, OutboundLeg
from cti.call.srtp import SrtpPolicy
from cti.call.useragent import PhoneInvite, invite_phone
from cti.node.registration import RegistrationService
from sip.registrar import Binding


class Phones:
    """Implements :class:`cti.call.ports.PhonePort` for one node."""

    def __init__(self, registration: RegistrationService, legs: LegTable, config: ServerConfig,
                 agents: Mapping[str, AgentConfig]) -> None:
        self._registration = registration
        self._legs = legs
        self._default = config.media.srtp
        self._trunks = config.trunks
        self._agents = agents

    def binding(self, user: str) -> Binding | None:
        """The user's best current binding (None: not registered)."""
        bindings = self._registration.lookup(user)
        return bindings[0] if bindings else None

    def srtp_policy(self, *, trunk: str | None = None, agent: str | None = None) -> SrtpPolicy:
        """``media.srtp``, or the trunk's / the agent's own ``srtp`` when set (docs/tls.md)."""
        own = None
        if trunk is not None:
            own = next((t.srtp for t in self._trunks if t.name == trunk), None)
        if agent is not None and agent in self._agents:
            own = self._agents[agent].srtp
        return SrtpPolicy(own or self._default)

    def invite(self, owner: LegOwner, binding: Binding, invite: PhoneInvite, sdp: bytes) -> OutboundLeg:
        """INVITE a registered phone for ``owner`` (NAT-safe: see ``cti.call.legs.contact_address``).
        Raises: LocalSipError (no usable address in the binding)."""
        return invite_phone(self._legs, owner, binding, invite, sdp)


__all__ = ["Phones"]
