"""Inbound trunk calls: which carrier an INVITE came from, and whether the node takes it.

:class:`TrunkDoor` answers every dialog-creating INVITE that is refused — unknown source (403),
digest challenge and failure (401/403, RFC 3261 §22), unknown number (404), draining (503 with
Retry-After), unusable SDP or content (415/406/488, :mod:`cti.call.offercheck`), admission limits
(:mod:`cti.node.admission`) — and counts each refusal by reason for ``/metrics``. An INVITE it admits is
handed to ``start`` (the registry), which makes the call; if that fails the place is given back and
the caller answered 500.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from cti.call.offercheck import check_offer
from cti.call.srtp import SrtpPolicy
from cti.node.admission import ANSWERS, Admission
from cti.node.trunks import TrunkMatch, TrunkTable
from sip.auth import AuthError, AuthResult, parse_credentials
from sip.events import RequestReceived
from sip.ids import new_tag
from sip.message import response_to

if TYPE_CHECKING:
    from cti.call.legs import LegTable
    from cti.node.registration import RegistrationService

log = structlog.get_logger(__name__)

Start = Callable[[RequestReceived, TrunkMatch], None]
"""Make and run the call of an admitted INVITE. Raises: anything (the door answers 500)."""


class TrunkDoor:
    """Admits or refuses the INVITEs that would create a call."""

    def __init__(self, trunks: TrunkTable, legs: LegTable, registration: RegistrationService, admission: Admission,
                 start: Start, srtp: SrtpPolicy = SrtpPolicy.OPTIONAL) -> None:
        self.trunks = trunks
        self.legs = legs
        self.registration = registration
        self.admission = admission
        self._start = start
        self.draining = False
        self.srtp = srtp
        self.refused: Counter[str] = Counter()  # new calls refused, by reason (for /metrics)

    def on_invite(self, event: RequestReceived) -> None:
        """A dialog-creating INVITE: refuse it, or start a call."""
        request = event.request
        match = self.trunks.match(request, event.source.addr[0])
        if match is None and self.trunks.has_credentials:
            match = self._authenticated_trunk(event)
            if match is None:
                return  # challenged or refused
        if match is None:
            self.refused["unknown_source"] += 1
            log.warning("call.trunk.refused", source=event.source.addr[0], reason="unknown source")
            self.refuse(event, 403)
            return
        if match.flow is None:
            self.refused["unknown_number"] += 1
            self.refuse(event, 404)
            return
        if self.draining:
            self.refused["draining"] += 1
            self.refuse(event, 503, (("Retry-After", "30"),), stateful=True)
            return
        unusable = check_offer(request, local_host=self.legs.via_host,  # before admission (docs/sip-server.md)
                               transport=event.source.transport,
                               srtp=SrtpPolicy(match.trunk.srtp) if match.trunk.srtp else self.srtp)
        if unusable is not None:
            self.refused[unusable.reason.value] += 1
            log.info("call.refused", trunk=match.trunk.name, reason=unusable.reason.value, status=unusable.status,
                     warning=unusable.warn_code)
            self.refuse(event, unusable.status, unusable.headers)
            return
        refusal = self.admission.admit(match.trunk.name)
        if refusal is not None:
            self.refused[refusal.value] += 1
            status, headers = ANSWERS[refusal]
            log.info("call.refused", trunk=match.trunk.name, reason=refusal.value, status=status,
                     live=self.admission.live, live_on_trunk=self.admission.live_on(match.trunk.name))
            self.refuse(event, status, headers, stateful=True)
            return
        self._start(event, match)

    def _authenticated_trunk(self, event: RequestReceived) -> TrunkMatch | None:
        """Digest on INVITE for carriers that authenticate (RFC 3261 §22): 401 with a challenge first,
        then the trunk whose username answered it. Answers the INVITE itself when it returns None."""
        request = event.request
        values = request.headers.get_all("Authorization")
        username = ""
        for value in values:
            try:
                username = parse_credentials(value).username
                break
            except AuthError:
                continue
        trunk = self.trunks.by_username(username) if username else None
        outcome = self.registration.auth.authenticate(
            method="INVITE", request_uri=str(request.uri), authorization=values, account=username or "-",
            password=trunk.password if trunk is not None else None, source=event.source.addr[0], now=time.time())
        if outcome.result in (AuthResult.CHALLENGE, AuthResult.STALE):
            self.refuse(event, 401, tuple(("WWW-Authenticate", c) for c in outcome.challenges))
            return None
        if outcome.result is not AuthResult.ACCEPTED or trunk is None:
            self.refused["auth_failed"] += 1
            log.warning("call.trunk.refused", source=event.source.addr[0], reason=outcome.reason.value)
            self.refuse(event, 403, stateful=True)
            return None
        return self.trunks.matched(trunk, request)

    def refuse(self, event: RequestReceived, status: int, headers: tuple[tuple[str, str], ...] = (), *,
               stateful: bool = False) -> None:
        """Answer a dialog-creating INVITE with a final error (no dialog is made).

        A refusal the same INVITE would get again (unknown source or number, a challenge, an offer the node
        cannot use) is answered as a stateless UAS (RFC 3261 §8.2.7): no transaction is kept for Timer H, so a
        flood of such INVITEs holds no state, and a retransmission is refused again with the same To tag.
        ``stateful``: a refusal that depends on the moment (draining, admission, a failed start) or that changed
        state (failed credentials count toward a lock-out) keeps its transaction, so that a retransmission is
        absorbed and gets the same answer.
        """
        if stateful:
            self.legs.endpoint.send_response(response_to(event.request, status, to_tag=new_tag(),
                                                         headers=list(headers)))
        else:
            self.legs.endpoint.answer_stateless(event.request, status, headers)
