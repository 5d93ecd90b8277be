"""Call legs of the B2BUA: one SIP dialog each, seen by the call controller as typed events.

An :class:`InboundLeg` is the UAS side of an INVITE we received (the trunk leg); an
:class:`OutboundLeg` is the UAC side of an INVITE we sent (the agent leg). :class:`LegTable`
routes in-dialog requests, CANCELs, responses and timeouts from the SIP core to the right leg.
A leg turns SIP into :class:`LegEvent` values (past tense) for its owner's ``on_leg_event``,
which dispatches them with ``match`` — no per-event callbacks.

RFC 3261 §12 (dialogs), §13 (INVITE), §15 (BYE), §9 (CANCEL); RFC 3264 hold via re-INVITE.
"""

from __future__ import annotations

import enum
import itertools
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

from sip.dialog import Dialog, DialogId, DialogState, dialog_id_from_request, dialog_id_from_response
from sip.errors import LocalSipError, RemoteSipError
from sip.events import (
    ClientTransactionId,
    Destination,
    RequestReceived,
    ResponseReceived,
    ServerTransactionId,
    TransactionId,
)
from sip.headers import NameAddr
from sip.ids import new_tag
from sip.message import Request, Response, response_to
from sip.registrar import Binding
from sip.transaction import TransactionState
from sip.uri import SipUri, Uri

if TYPE_CHECKING:
    from sip.aio import SipEndpoint

log = structlog.get_logger(__name__)
_ids = itertools.count(1)


class LegState(enum.Enum):
    CALLING = "calling"  # INVITE sent / received, no answer yet
    RINGING = "ringing"  # 180/183 seen or sent
    ESTABLISHED = "established"  # 2xx exchanged
    TERMINATED = "terminated"


class HangupCause(enum.Enum):
    REMOTE_BYE = "remote_bye"
    REMOTE_CANCEL = "remote_cancel"
    LOCAL = "local"
    TIMEOUT = "timeout"  # no ACK for our 2xx, or a transaction timed out


@dataclass(frozen=True, slots=True, kw_only=True)
class LegEvent:
    leg: Leg


@dataclass(frozen=True, slots=True, kw_only=True)
class LegRinging(LegEvent):
    """The far end is alerting (180/183)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LegAnswered(LegEvent):
    """The far end answered (2xx, ACK sent); ``sdp`` is its answer body."""

    sdp: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class LegFailed(LegEvent):
    """The INVITE we sent failed: ``status`` is the final response (408 for a timeout)."""

    status: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LegEnded(LegEvent):
    """The dialog is over (BYE either way, CANCEL of an inbound INVITE, a timeout)."""

    cause: HangupCause


@dataclass(frozen=True, slots=True, kw_only=True)
class LegReinvited(LegEvent):
    """A re-INVITE inside the dialog (hold/resume). The owner must answer it with ``leg.answer_reinvite``."""

    request: Request
    transaction: ServerTransactionId


@dataclass(frozen=True, slots=True, kw_only=True)
class LegReferred(LegEvent):
    """A REFER (blind transfer, RFC 3515) to ``target``. The owner must answer it with
    ``leg.answer_refer(request, status)``: 202 when it carries the transfer out, else 403/488."""

    target: str
    request: Request


class LegOwner(Protocol):
    def on_leg_event(self, event: LegEvent) -> None: ...


class Leg:
    """What both directions share: an id, a dialog, a state, BYE."""

    def __init__(self, table: LegTable, owner: LegOwner) -> None:
        self.id = f"leg-{next(_ids)}"
        self.table = table
        self.owner = owner  # held weakly: a leg never keeps its call alive (no reference cycle)
        self.state = LegState.CALLING
        self.dialog: Dialog | None = None
        self._bye_tx: ClientTransactionId | None = None
        # When set, the 200 to the peer's BYE waits in ``held_bye`` until the owner calls
        # ``release_bye`` (after the call's ending record is committed: docs/reliability.md).
        self.hold_bye_answer = False
        self.held_bye: Request | None = None

    @property
    def endpoint(self) -> SipEndpoint:
        return self.table.endpoint

    @property
    def owner(self) -> LegOwner:
        """Who hears this leg's events: its call while the call lives, then :data:`ENDED_OWNER`."""
        owner = self._owner()
        return ENDED_OWNER if owner is None else owner

    @owner.setter
    def owner(self, owner: LegOwner) -> None:
        self._owner: weakref.ref[LegOwner] = weakref.ref(owner)

    def _emit(self, event: LegEvent) -> None:
        self.owner.on_leg_event(event)

    def _end(self, cause: HangupCause) -> None:
        if self.state is LegState.TERMINATED:
            return
        self.state = LegState.TERMINATED
        if self.dialog is not None:
            self.dialog.terminate()
        self.table.forget(self)
        self._emit(LegEnded(leg=self, cause=cause))

    def bye(self) -> None:
        """Hang up an established dialog (BYE, §15.1.1). Idempotent."""
        if self.state is not LegState.ESTABLISHED or self.dialog is None:
            return
        request = self.dialog.create_request("BYE")
        self._bye_tx = self.endpoint.send_request(request, self.table.destination_for(self))
        self._end(HangupCause.LOCAL)

    def on_request(self, event: RequestReceived) -> None:
        """An in-dialog request (the table found this leg by dialog id)."""
        request = event.request
        assert self.dialog is not None
        if request.method == "ACK":
            return
        try:
            self.dialog.receive_request(request)
        except RemoteSipError as exc:
            self.endpoint.send_response(response_to(request, exc.status_hint))
            return
        if request.method == "BYE":
            if self.hold_bye_answer:
                self.held_bye = request  # answered by release_bye, once the call's record is committed
            else:
                self._respond_in_dialog(request, 200)
            self._end(HangupCause.REMOTE_BYE)
        elif request.method == "INVITE" and event.transaction is not None:
            self._emit(LegReinvited(leg=self, request=request, transaction=event.transaction))
        elif request.method == "REFER":
            refer_to = request.headers.get("Refer-To")
            try:
                uri = NameAddr.parse(refer_to).uri if refer_to is not None else None
            except RemoteSipError:
                uri = None
            if uri is None:
                self._respond_in_dialog(request, 400)  # RFC 3515 §2.4.1: exactly one valid Refer-To
                return
            self._emit(LegReferred(leg=self, target=str(uri), request=request))
        elif request.method in ("INFO", "UPDATE", "NOTIFY", "OPTIONS"):
            self._respond_in_dialog(request, 200)
        else:
            self._respond_in_dialog(request, 405)

    def release_bye(self, status: int = 200) -> None:
        """Answer the peer's held BYE, if one waits: 200, or ``status`` (500 when the call's final
        record could not be committed: the peer must not take the answer as "recorded"). Idempotent."""
        request, self.held_bye = self.held_bye, None
        if request is None or self.dialog is None:
            return
        try:
            response = self.dialog.create_response(request, status)
            self.dialog.response_sent(request, response)
        except (LocalSipError, RemoteSipError) as exc:
            log.warning("call.leg.response_dropped", status=status, error=str(exc))
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        """Send a response; a transaction that can no longer take it (the peer gave up, the
        connection closed) costs this response only, never the caller."""
        try:
            self.endpoint.send_response(response)
        except (LocalSipError, OSError, RuntimeError) as exc:
            log.warning("call.leg.response_dropped", leg=self.id, status=response.status, error=str(exc))

    def answer_refer(self, request: Request, status: int) -> None:
        """Answer a REFER; on 202 also end its implicit subscription with a final NOTIFY (RFC 3515 §2.4.4):
        the transfer is carried out by us, so its outcome is known at once."""
        self._respond_in_dialog(request, status)
        if status == 202 and self.dialog is not None and self.state is LegState.ESTABLISHED:
            notify = self.dialog.create_request(
                "NOTIFY", headers=(("Event", "refer"), ("Subscription-State", "terminated;reason=noresource")),
                body=b"SIP/2.0 200 OK\r\n", content_type="message/sipfrag;version=2.0")
            self.endpoint.send_request(notify, self.table.destination_for(self))

    def answer_reinvite(self, request: Request, sdp: bytes | None, status: int = 200) -> None:
        """Answer a re-INVITE (status 200 with our SDP, or an error such as 488)."""
        self._respond_in_dialog(request, status, sdp or b"")

    def _respond_in_dialog(self, request: Request, status: int, body: bytes = b"") -> None:
        assert self.dialog is not None
        response = self.dialog.create_response(request, status, body=body)
        self.dialog.response_sent(request, response)
        self._send(response)

    def on_response(self, event: ResponseReceived, request: Request) -> None:
        """A response to a request this leg sent inside its dialog (BYE, re-INVITE)."""

    def on_timeout(self, transaction: TransactionId) -> None:
        if transaction == self._bye_tx:
            return
        self._end(HangupCause.TIMEOUT)


class InboundLeg(Leg):
    """The UAS side of a received INVITE: ringing, answer, reject, then BYE."""

    def __init__(self, table: LegTable, owner: LegOwner, event: RequestReceived) -> None:
        super().__init__(table, owner)
        if event.transaction is None:
            raise LocalSipError("an inbound leg needs the INVITE's server transaction")
        self.invite = event.request
        self._early_media = False
        self.transaction: ServerTransactionId = event.transaction
        self.source = event.source
        self.dialog = Dialog.uas_from_invite(
            event.request, new_tag(), table.contact_for(event.source.transport), transport=event.source.transport,
            via_host=table.via_host, via_port=table.via_port_for(event.source.transport),
        )
        table.add_inbound(self)

    def _respond(self, status: int, body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()) -> None:
        assert self.dialog is not None
        response = self.dialog.create_response(self.invite, status, body=body, headers=headers)
        self.dialog.response_sent(self.invite, response)
        self._send(response)

    def ringing(self, sdp: bytes = b"") -> None:
        """180 Ringing, or 183 Session Progress with early media when ``sdp`` is given (also after a 180)."""
        if self.state is LegState.CALLING or (sdp and self.state is LegState.RINGING and not self._early_media):
            self._respond(183 if sdp else 180, sdp)
            self.state = LegState.RINGING
            self._early_media = bool(sdp)

    def answer(self, sdp: bytes) -> None:
        """200 OK with our SDP answer; the transaction layer retransmits it until the ACK."""
        if self.state in (LegState.CALLING, LegState.RINGING):
            self._respond(200, sdp)
            self.state = LegState.ESTABLISHED

    def reject(self, status: int, headers: tuple[tuple[str, str], ...] = ()) -> None:
        if self.state in (LegState.CALLING, LegState.RINGING):
            self._respond(status, headers=headers)
            self._end(HangupCause.LOCAL)

    def on_cancel(self, event: RequestReceived) -> None:
        """§9.2: 200 to the CANCEL; 487 to the INVITE if it is still pending."""
        self.endpoint.send_response(response_to(event.request, 200))
        if self.state in (LegState.CALLING, LegState.RINGING) and \
                self.endpoint.layer.state_of(self.transaction) is TransactionState.PROCEEDING:
            self._respond(487)
            self._end(HangupCause.REMOTE_CANCEL)


class OutboundLeg(Leg):
    """The UAC side of an INVITE we send (to an agent's phone)."""

    def __init__(self, table: LegTable, owner: LegOwner, request: Request, destination: Destination) -> None:
        super().__init__(table, owner)
        self.invite = request
        self.destination = destination
        self.transaction = table.endpoint.send_request(request, destination)
        sent = table.endpoint.layer.transaction(self.transaction)
        if sent is not None:
            self.invite = sent.request  # with the branch the layer gave it
        table.add_outbound(self)

    def cancel(self) -> None:
        """Withdraw a pending INVITE (§9.1); an answered one is hung up with BYE instead."""
        if self.state in (LegState.CALLING, LegState.RINGING):
            self.endpoint.cancel(self.transaction)
            self.state = LegState.TERMINATED
            self.table.forget_later(self)
            self._emit(LegEnded(leg=self, cause=HangupCause.LOCAL))
        else:
            self.bye()

    def on_invite_response(self, response: Response) -> None:
        status = response.status
        if status < 200:
            if status > 100 and self.state is LegState.CALLING:
                self.state = LegState.RINGING
                self._emit(LegRinging(leg=self))
            return
        if 200 <= status < 300:
            self._on_2xx(response)
            return
        if self.state in (LegState.CALLING, LegState.RINGING):
            self.state = LegState.TERMINATED
            self.table.forget(self)
            self._emit(LegFailed(leg=self, status=status))

    def _on_2xx(self, response: Response) -> None:
        if self.dialog is None:
            try:
                self.dialog = Dialog.uac_from_response(self.invite, response)
            except (RemoteSipError, LocalSipError) as exc:
                log.warning("sip.leg.bad_answer", leg=self.id, error=str(exc))
                return
            self.table.add_dialog(self)
        ack = self.dialog.create_ack(self.invite)
        self.endpoint.send_stateless(ack, self.table.destination_for(self))
        if self.state is LegState.TERMINATED:
            # Answered after we cancelled it (the CANCEL crossed the 200): hang up at once (§9.1 note).
            self.state = LegState.ESTABLISHED
            self.bye()
            return
        if self.state is not LegState.ESTABLISHED:
            self.state = LegState.ESTABLISHED
            self._emit(LegAnswered(leg=self, sdp=response.body))

    def on_timeout(self, transaction: TransactionId) -> None:
        if transaction == self.transaction and self.state in (LegState.CALLING, LegState.RINGING):
            self.state = LegState.TERMINATED
            self.table.forget(self)
            self._emit(LegFailed(leg=self, status=408))
            return
        super().on_timeout(transaction)


class LegTable:
    """Finds the leg for each SIP event; owns the local Contact and Via used by every leg."""

    def __init__(self, endpoint: SipEndpoint, host: str, port: int) -> None:
        self.endpoint = endpoint
        self.via_host = host
        self.via_port = port
        self.contact = SipUri(host=host, port=port)
        self.tls_port: int | None = None
        self._by_dialog: dict[DialogId, Leg] = {}
        self._by_server_tx: dict[ServerTransactionId, InboundLeg] = {}
        self._by_client_tx: dict[ClientTransactionId, Leg] = {}

    def set_port(self, port: int, tls_port: int | None = None) -> None:
        """The ports the SIP endpoint really bound (known after it starts), for Via and Contact: UDP and TCP
        share ``port``; ``tls_port`` is the TLS listener's, when there is one."""
        self.via_port = port
        self.contact = SipUri(host=self.via_host, port=port)
        self.tls_port = tls_port

    def via_port_for(self, transport: str) -> int:
        """Our Via sent-by port for a request or dialog on ``transport``: the TLS listener's for TLS."""
        return self.tls_port if transport == "TLS" and self.tls_port is not None else self.via_port

    def contact_for(self, transport: str, user: str | None = None) -> SipUri:
        """Our Contact on a leg over ``transport``. On TLS it names the TLS listener with ``transport=tls``, so
        the peer's requests in the dialog come back over TLS (RFC 3261 §8.1.1.8: the Contact "MUST" be where
        the peer reaches us; §26.2: a hop set up on TLS stays on it); a plain Contact there sends them to our
        UDP port, in clear."""
        if transport == "TLS" and self.tls_port is not None:
            return SipUri(user=user, host=self.via_host, port=self.tls_port, params=(("transport", "tls"),))
        return SipUri(user=user, host=self.via_host, port=self.via_port)

    def __len__(self) -> int:
        return len(self._by_dialog) + len(self._by_client_tx)

    def add_inbound(self, leg: InboundLeg) -> None:
        self._by_server_tx[leg.transaction] = leg
        self.add_dialog(leg)

    def add_outbound(self, leg: OutboundLeg) -> None:
        self._by_client_tx[leg.transaction] = leg

    def add_dialog(self, leg: Leg) -> None:
        if leg.dialog is not None:
            self._by_dialog[leg.dialog.id] = leg

    def forget(self, leg: Leg) -> None:
        if leg.dialog is not None and leg.dialog.state is DialogState.TERMINATED:
            self._by_dialog.pop(leg.dialog.id, None)
        if isinstance(leg, InboundLeg):
            self._by_server_tx.pop(leg.transaction, None)

    def forget_later(self, leg: OutboundLeg) -> None:
        """A cancelled INVITE keeps its client transaction entry until the final response arrives."""

    def destination_for(self, leg: Leg) -> Destination:
        if isinstance(leg, InboundLeg):
            return leg.source
        assert isinstance(leg, OutboundLeg)
        return leg.destination

    def leg_for_request(self, request: Request) -> Leg | None:
        try:
            return self._by_dialog.get(dialog_id_from_request(request))
        except RemoteSipError:
            return None

    def leg_for_invite(self, transaction: ServerTransactionId) -> InboundLeg | None:
        return self._by_server_tx.get(transaction)

    def on_response(self, event: ResponseReceived) -> bool:
        """Route a response; True if a leg took it."""
        if event.transaction is None:
            return self._stray_2xx(event.response)
        leg = self._by_client_tx.get(event.transaction)
        if leg is None:
            return False
        if isinstance(leg, OutboundLeg) and event.transaction == leg.transaction:
            if event.response.status >= 200:
                del self._by_client_tx[event.transaction]
            leg.on_invite_response(event.response)
        return True

    def _stray_2xx(self, response: Response) -> bool:
        """A retransmitted 2xx after the INVITE transaction ended: ACK it again (§13.2.2.4)."""
        leg = self._by_dialog.get(dialog_id_from_response(response))
        if isinstance(leg, OutboundLeg) and leg.dialog is not None and response.cseq.method == "INVITE":
            self.endpoint.send_stateless(leg.dialog.create_ack(leg.invite), leg.destination)
            return True
        return False

    def on_timeout(self, transaction: TransactionId) -> bool:
        leg: Leg | None = self._by_client_tx.pop(ClientTransactionId(transaction), None)
        if leg is None:
            leg = self._by_server_tx.get(ServerTransactionId(transaction))
        if leg is None:
            return False
        leg.on_timeout(transaction)
        return True


def contact_address(target: Uri, binding: Binding) -> tuple[str, int]:
    """Where a registered phone is reached: its Contact, unless the REGISTER came from another IP.

    A Contact naming an address other than the one the REGISTER came from is the mark of a phone
    behind NAT (it advertises its private address): then the REGISTER's source address and port,
    which the NAT keeps open, are used instead (the "comedia"/force-rport rule of SIP servers).

    A phone registered over TLS is always reached where its REGISTER came from: on that connection
    (the flow of RFC 5626 §5.3, reused as RFC 5923 describes), since phones run no TLS server the node
    could open a new connection to with a certificate it trusts.

    Raises:
        LocalSipError: the binding has neither a SIP Contact address nor a source address.
    """
    if binding.transport in ("TLS", "WSS") and binding.source is not None:
        return (binding.source[0], int(binding.source[1]))
    if isinstance(target, SipUri):
        contact = (target.host.strip("[]"), target.port or 5060)
        if binding.source is None or binding.source[0] == contact[0]:
            return contact
    if binding.source is None:
        raise LocalSipError("a binding without a usable Contact or source address")
    return (binding.source[0], int(binding.source[1]))


class _EndedCall:
    """The owner of a leg whose call has gone: a late 200 from an agent's phone is still hung up."""

    def on_leg_event(self, event: LegEvent) -> None:
        if isinstance(event, LegAnswered) and isinstance(event.leg, OutboundLeg):
            event.leg.bye()


ENDED_OWNER: LegOwner = _EndedCall()
