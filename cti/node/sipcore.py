"""The server's SIP core (the "TU" of RFC 3261): what the node does with each request.

Policy, in order, for a new request (RFC 3261 §8.2):
1. ``Max-Forwards: 0`` — OPTIONS and REGISTER are answered here (we are their final target);
   any other method would be forwarded by our B2BUA, so it gets 483 Too Many Hops (§16.3 step 2).
2. ``Require`` with option tags we do not support: 420 Bad Extension with ``Unsupported``
   (§8.2.2.3; never for ACK or CANCEL).
3. Method: OPTIONS 200 (§11.2); REGISTER via digest authentication and the registrar;
   INVITE from a trunk (400 first when it cannot create a dialog: no Contact (an RFC 2543 request may go without), or a
   Record-Route that does not parse, §12.1.1, §8.1.1.8); CANCEL 200 + 487 for the INVITE (§9.2),
   481 when nothing matches; BYE outside a dialog 481; known but unhandled methods 405 with ``Allow``; unknown 501.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from config.schema import ServerConfig
from cti.node.registration import RegistrationService
from sip import (
    RemoteSipError,
    Request,
    RequestReceived,
    Response,
    ResponseReceived,
    SipEvent,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
    check_dialog_creating,
    new_tag,
    response_to,
)

if TYPE_CHECKING:
    from cti.call.legs import LegTable
    from cti.node.controller import CallController
    from sip.aio import SipEndpoint

log = structlog.get_logger(__name__)

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, INFO, REFER, NOTIFY, UPDATE"
KNOWN_METHODS = frozenset(
    "INVITE ACK BYE CANCEL OPTIONS REGISTER PRACK SUBSCRIBE NOTIFY PUBLISH INFO REFER MESSAGE UPDATE".split()
)
SUPPORTED_OPTIONS: frozenset[str] = frozenset()  # option tags we implement (Require may name only these)


class SipCore:
    """Dispatches SIP events to registration, calls and the simple answers."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.registration = RegistrationService(config)
        self._endpoint: SipEndpoint | None = None
        self.server_header = config.sip.user_agent
        self.legs: LegTable | None = None
        self.calls: CallController | None = None

    def bind(self, endpoint: SipEndpoint) -> None:
        self._endpoint = endpoint

    def attach_calls(self, legs: LegTable, calls: CallController) -> None:
        """Hand dialogs and new INVITEs to the call path."""
        self.legs = legs
        self.calls = calls

    @property
    def endpoint(self) -> SipEndpoint:
        assert self._endpoint is not None, "SipCore.bind() was not called"
        return self._endpoint

    def respond(self, request: Request, status: int, reason: str | None = None, *,
                headers: list[tuple[str, str]] | None = None, to_tag: str | None = None) -> Response:
        if to_tag is None and status != 100:
            to_tag = new_tag()  # §8.2.6.2: "the UAS MUST add a tag to the To header field in the response"
        response = response_to(request, status, reason, to_tag=to_tag,
                               headers=[*(headers or []), ("Server", self.server_header)])
        self.endpoint.send_response(response)
        return response

    def refuse(self, request: Request, status: int, *, headers: list[tuple[str, str]] | None = None) -> None:
        """Answer an out-of-dialog request with a final non-2xx that the same request would get again (a
        challenge, 481, 405, 501, 420, 483) as a stateless UAS (RFC 3261 §8.2.7): its transaction ends at once
        instead of holding the request for Timer J or H (32 s over UDP), so a flood of such requests holds no
        state (docs/sip-transactions.md, "Stateless refusals"); a retransmission is answered again."""
        self._answer_stateless(request, status, headers or [])

    def _answer_stateless(self, request: Request, status: int, headers: list[tuple[str, str]]) -> None:
        self.endpoint.answer_stateless(request, status, [*headers, ("Server", self.server_header)])

    def on_sip_event(self, event: SipEvent) -> None:
        match event:
            case RequestReceived():
                self._on_request(event)
            case ResponseReceived():
                if self.legs is None or not self.legs.on_response(event):
                    log.debug("sip.response.ignored", status=event.response.status)
            case TransactionTimedOut():
                log.info("sip.transaction.timed_out", timer=event.timer.name)
                if self.legs is not None:
                    self.legs.on_timeout(event.transaction)
            case TransportFailed():
                if self.legs is not None:
                    self.legs.on_timeout(event.transaction)
            case TransactionTerminated():
                pass
            case _:
                log.debug("sip.event.ignored", kind=type(event).__name__)

    def _on_request(self, event: RequestReceived) -> None:
        request = event.request
        method = request.method
        in_dialog = method != "CANCEL" and self._has_to_tag(request)
        if in_dialog and self.legs is not None:
            leg = self.legs.leg_for_request(request)
            if leg is not None:
                leg.on_request(event)
                return
        if method == "ACK":
            return  # an ACK for a dialog we no longer have, or for a stateless answer: nothing to answer
        max_forwards = request.max_forwards
        if max_forwards == 0 and method not in ("OPTIONS", "REGISTER"):
            self.refuse(request, 483)
            return
        if method != "CANCEL":
            required = {tag.strip().lower() for tag in request.headers.get_all("Require") if tag.strip()}
            unsupported = sorted(required - SUPPORTED_OPTIONS)
            if unsupported:
                self.refuse(request, 420, headers=[("Unsupported", ", ".join(unsupported))])
                return
        if method == "OPTIONS":
            # The same answer to the same request, changing nothing: answered as a stateless UAS like the
            # refusals below (a peer's keep-alive pings, and a flood's, hold no transaction for 32 s).
            self._answer_stateless(request, 200, [("Allow", ALLOW), ("Accept", "application/sdp"),
                                                  ("Accept-Language", "en"), ("Supported", "")])
        elif method == "REGISTER":
            answer = self.registration.handle(request, event.source)
            if answer.stateless:  # a challenge (§8.2.7's own example), a malformed request's 400, an unknown 404
                self.refuse(request, answer.status, headers=answer.headers)
            else:  # it changed state (a binding, a failure counted toward a lock-out, a nonce count used)
                self.respond(request, answer.status, headers=answer.headers)
        elif method == "CANCEL":
            leg = self.legs.leg_for_invite(event.cancels) if self.legs and event.cancels is not None else None
            if leg is not None:
                leg.on_cancel(event)
            elif event.cancels is None:
                self.refuse(request, 481)
            else:
                self.respond(request, 200)
        elif method == "BYE" or in_dialog:
            self.refuse(request, 481)
        elif method == "INVITE":
            if self.calls is None:
                self.respond(request, 503, headers=[("Retry-After", "5")])
            elif self._can_create_dialog(request):
                self.calls.on_trunk_invite(event)
        elif method in KNOWN_METHODS:
            self.refuse(request, 405, headers=[("Allow", ALLOW)])
        else:
            self.refuse(request, 501, headers=[("Allow", ALLOW)])

    def _can_create_dialog(self, request: Request) -> bool:
        """An INVITE without a usable Contact, or with a Record-Route that does not parse,
        cannot start a call: 400 here, before the call path (which would take it for a bug of its own)."""
        try:
            check_dialog_creating(request)
        except RemoteSipError as exc:
            log.info("sip.request.refused", method=request.method, status=exc.status_hint, reason=str(exc))
            self.respond(request, exc.status_hint,
                         headers=[("Warning", '399 cti "no dialog can be made: Contact or Record-Route"')])
            return False
        return True

    @staticmethod
    def _has_to_tag(request: Request) -> bool:
        try:
            return request.to.tag is not None
        except RemoteSipError:
            return False
