"""SIP dialogs, sans-I/O: RFC 3261 §12 (creation §12.1, requests within a dialog §12.2,
termination §12.3), with §13.2.2.4 (ACK for a 2xx) and §15 (BYE).

A :class:`Dialog` is plain state: it builds in-dialog requests (handed to
:meth:`sip.transaction.TransactionLayer.send_request`, or ``send_stateless`` for an ACK) and is told
about requests and responses the TU sees. It never sends anything itself.
Requests come out complete: the Via uses the ``transport``/``via_host``/``via_port`` given at
construction (by default the local Contact's host and port) with a fresh branch and ``rport``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from enum import Enum
from typing import NewType

import structlog

from sip.errors import LocalSipError, RemoteSipError
from sip.headers import NameAddr
from sip.ids import is_rfc3261_branch, new_branch
from sip.message import Headers, Request, Response, response_to
from sip.uri import SipUri, Uri

DialogId = NewType("DialogId", tuple[str, str, str])  # (Call-ID, local tag, remote tag)

# Methods whose Contact refreshes the remote target (§12.2, RFC 3311, RFC 6665, RFC 3515).
TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})

logger = structlog.get_logger("sip.dialog")


class DialogState(Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


def dialog_id_from_request(request: Request) -> DialogId:
    """The id of the dialog a received request belongs to, seen from us (the UAS side of it)."""
    return DialogId((request.call_id, request.to.tag or "", request.from_.tag or ""))


def dialog_id_from_response(response: Response) -> DialogId:
    """The id of the dialog a received response belongs to, seen from us (the UAC side of it)."""
    return DialogId((response.call_id, response.from_.tag or "", response.to.tag or ""))


def _contact_uri(message: Request | Response) -> Uri | None:
    for contact in message.contacts:
        if contact.address is not None:
            return contact.address.uri
    return None


def _is_rfc2543(request: Request) -> bool:
    """A request from an RFC 2543 element: its top Via has no RFC 3261 branch (§8.1.1.7's cookie)."""
    return not is_rfc3261_branch(request.top_via.branch)


def _remote_target(request: Request) -> Uri | None:
    """§12.1.1: the remote target is the Contact URI. RFC 2543 made Contact optional (RFC 4475
    'inv2543' is to be accepted for backward compatibility): such a request without Contact is
    reached at its From URI, as RFC 2543 did. An RFC 3261 request must carry Contact (§8.1.1.8)."""
    target = _contact_uri(request)
    if target is None and not request.contacts and _is_rfc2543(request):
        return request.from_.uri
    return target


def check_dialog_creating(request: Request) -> None:
    """What a request needs to create a dialog as UAS (§12.1.1; §8.1.1.8: "The Contact header field
    MUST be present and contain exactly one SIP or SIPS URI in any request that can result in the
    establishment of a dialog"): a Contact with a URI (an RFC 2543 request may go without, see
    :func:`_remote_target`), and Record-Route headers that parse (they become the route set).
    A missing From tag is not an error: §12.1.1 "A UAS MUST be prepared to receive a request without
    a tag in the From field, in which case the tag is considered to have a value of null."

    Raises:
        RemoteSipError: status_hint 400 when one is missing or does not parse.
    """
    if _remote_target(request) is None:
        raise RemoteSipError("dialog-creating request needs a Contact", status_hint=400)
    _record_routes(request)


def _record_routes(message: Request | Response) -> tuple[NameAddr, ...]:
    return tuple(message.record_routes)


class Dialog:
    """One dialog (§12): ids, sequence numbers, target and route set."""

    def __init__(
        self, *, call_id: str, local_tag: str, remote_tag: str, local_uri: NameAddr, remote_uri: NameAddr,
        remote_target: Uri, route_set: tuple[NameAddr, ...], local_seq: int | None, remote_seq: int | None,
        local_contact: NameAddr, state: DialogState, secure: bool = False, transport: str = "UDP",
        via_host: str | None = None, via_port: int | None = None,
    ) -> None:
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_uri = local_uri.with_param("tag", local_tag)
        self.remote_uri = remote_uri.with_param("tag", remote_tag) if remote_tag else remote_uri
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.local_contact = local_contact
        self.state = state
        self.secure = secure
        self.transport = transport
        contact_uri = local_contact.uri
        self.via_host = via_host or (contact_uri.host if isinstance(contact_uri, SipUri) else "invalid")
        self.via_port = via_port if via_host else (contact_uri.port if isinstance(contact_uri, SipUri) else None)

    @property
    def id(self) -> DialogId:
        return DialogId((self.call_id, self.local_tag, self.remote_tag))

    # ---------------------------------------------------------------- creation
    @classmethod
    def uas_from_invite(
        cls, request: Request, local_tag: str, local_contact: NameAddr | SipUri, *, secure: bool = False,
        transport: str = "UDP", via_host: str | None = None, via_port: int | None = None,
    ) -> Dialog:
        """§12.1.1: the dialog a UAS creates when answering ``request`` with a tagged 1xx (EARLY).

        Call :meth:`response_sent` with each response so the state follows (2xx: CONFIRMED).

        Raises: RemoteSipError (400) if the request has no usable Contact (see :func:`check_dialog_creating`).
        """
        check_dialog_creating(request)
        remote_tag = request.from_.tag or ""  # §12.1.1: no From tag is a null tag (RFC 2543)
        target = _remote_target(request)
        assert target is not None
        contact = local_contact if isinstance(local_contact, NameAddr) else NameAddr(uri=local_contact)
        # §12.1.1: "The route set MUST be set to the list of URIs in the Record-Route header field from
        # the request, taken in order and preserving all URI parameters." "The remote sequence number
        # MUST be set to the value of the sequence number in the CSeq header field of the request. The
        # local sequence number MUST be empty."
        return cls(
            call_id=request.call_id, local_tag=local_tag, remote_tag=remote_tag, local_uri=request.to,
            remote_uri=request.from_, remote_target=target, route_set=_record_routes(request), local_seq=None,
            remote_seq=request.cseq.seq, local_contact=contact, state=DialogState.EARLY, secure=secure,
            transport=transport, via_host=via_host, via_port=via_port,
        )

    @classmethod
    def uac_from_response(cls, request: Request, response: Response) -> Dialog:
        """§12.1.2: the dialog a UAC creates from a tagged 1xx (EARLY) or a 2xx (CONFIRMED).

        Raises:
            LocalSipError: the response cannot create a dialog (100, a final error, no To tag).
            RemoteSipError: a 2xx without Contact.
        """
        remote_tag = response.to.tag
        if not 101 <= response.status < 300 or not remote_tag:
            raise LocalSipError(f"a {response.status} without To tag cannot create a dialog")
        local_tag = request.from_.tag
        if not local_tag:
            raise LocalSipError("our request has no From tag")
        target = _contact_uri(response)
        if target is None:
            if response.status >= 200:
                raise RemoteSipError("2xx to a dialog-creating request without Contact", status_hint=400)
            target = request.uri
        contacts = request.contacts
        if not contacts or contacts[0].address is None:
            raise LocalSipError("our dialog-creating request has no Contact")
        via = request.top_via
        # §12.1.2: "The route set MUST be set to the list of URIs in the Record-Route header field from
        # the response, taken in reverse order". "The local sequence number MUST be set to the value of
        # the sequence number in the CSeq header field of the request. The remote sequence number MUST
        # be empty."
        return cls(
            call_id=request.call_id, local_tag=local_tag, remote_tag=remote_tag, local_uri=request.from_,
            remote_uri=response.to, remote_target=target, route_set=tuple(reversed(_record_routes(response))),
            local_seq=request.cseq.seq, remote_seq=None, local_contact=contacts[0].address,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
            secure=request.uri.scheme == "sips", transport=via.transport, via_host=via.host, via_port=via.port,
        )

    # --------------------------------------------------------------- outgoing
    def create_request(
        self, method: str, *, headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """§12.2.1.1: a request within the dialog; the local CSeq is incremented.

        Raises: LocalSipError for ACK/CANCEL (use :meth:`create_ack` / the transaction layer's
        ``cancel``) or a terminated dialog.
        """
        if method in ("ACK", "CANCEL"):
            raise LocalSipError(f"{method} is not built with create_request")
        if self.state is DialogState.TERMINATED:
            raise LocalSipError("the dialog is terminated")
        # "Requests within a dialog MUST contain strictly monotonically increasing and contiguous CSeq
        # sequence numbers (increasing-by-one) in each direction". An empty one starts at 1 (§8.1.1.5).
        self.local_seq = (self.local_seq or 0) + 1
        return self._build(method, self.local_seq, headers, body, content_type)

    def create_ack(
        self, invite: Request, *, headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """§13.2.2.4: the ACK for a 2xx to ``invite``, with a new branch; send it statelessly."""
        # "The sequence number of the CSeq header field MUST be the same as the INVITE being
        # acknowledged, but the CSeq method MUST be ACK."
        return self._build("ACK", invite.cseq.seq, headers, body, content_type)

    def create_response(
        self, request: Request, status: int, *, headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
        content_type: str | None = None,
    ) -> Response:
        """A response to ``request`` with our To tag; Record-Route copied and Contact added for a
        dialog-establishing INVITE response (§12.1.1). Pass it to :meth:`response_sent` too."""
        extra = list(headers)
        if request.method in TARGET_REFRESH and 101 <= status < 300:
            extra.extend(("Record-Route", value) for value in request.headers.get_all("Record-Route"))
            extra.append(("Contact", str(self.local_contact)))
        if body:
            extra.append(("Content-Type", content_type or "application/sdp"))
        return response_to(request, status, to_tag=self.local_tag, headers=extra, body=body)

    def _build(
        self, method: str, seq: int, extra: Iterable[tuple[str, str]], body: bytes, content_type: str | None
    ) -> Request:
        uri, routes = self._target_and_routes()
        out = Headers()
        hostport = self.via_host if self.via_port is None else f"{self.via_host}:{self.via_port}"
        out.add("Via", f"SIP/2.0/{self.transport} {hostport};branch={new_branch()};rport")
        out.add("Max-Forwards", "70")
        for route in routes:
            out.add("Route", str(route))
        out.add("From", str(self.local_uri))
        out.add("To", str(self.remote_uri))
        out.add("Call-ID", self.call_id)
        out.add("CSeq", f"{seq} {method}")
        if method in TARGET_REFRESH:
            out.add("Contact", str(self.local_contact))
        for name, value in extra:
            out.add(name, value)
        if body:
            out.add("Content-Type", content_type or "application/sdp")
        return Request(method=method, uri=uri, headers=out, body=body)

    def _target_and_routes(self) -> tuple[Uri, tuple[NameAddr, ...]]:
        if not self.route_set:
            # §12.2.1.1: "If the route set is empty, the UAC MUST place the remote target URI into the
            # Request-URI. The UAC MUST NOT add a Route header field to the request."
            return self.remote_target, ()
        first = self.route_set[0].uri
        if isinstance(first, SipUri) and first.has_param("lr"):
            # "If the route set is not empty, and the first URI in the route set contains the lr
            # parameter, the UAC MUST place the remote target URI into the Request-URI and MUST include
            # a Route header field containing the route set values in order, including all parameters."
            return self.remote_target, self.route_set
        # Strict routing: "the UAC MUST place the first URI from the route set into the Request-URI,
        # stripping any parameters that are not allowed in a Request-URI. The UAC MUST add a Route
        # header field containing the remainder of the route set values in order, including all
        # parameters. The UAC MUST then place the remote target URI into the Route header field as
        # the last value."
        uri = first
        if isinstance(first, SipUri):
            uri = replace(first.with_params(method=None), headers=())
        return uri, (*self.route_set[1:], NameAddr(uri=self.remote_target))

    # ---------------------------------------------------------------- incoming
    def receive_request(self, request: Request) -> None:
        """§12.2.2: a request the TU received within this dialog.

        Raises: RemoteSipError (500) for a CSeq lower than the remote sequence number.
        """
        if request.method not in ("ACK", "CANCEL"):
            seq = request.cseq.seq
            if self.remote_seq is not None and seq < self.remote_seq:
                # "If the remote sequence number was not empty, but the sequence number of the request is
                # lower than the remote sequence number, the request is out of order and MUST be
                # rejected with a 500 (Server Internal Error) response."
                raise RemoteSipError(f"CSeq {seq} below {self.remote_seq}", status_hint=500)
            self.remote_seq = seq
        if request.method in TARGET_REFRESH:
            # "When a UAS receives a target refresh request, it MUST replace the dialog's remote target
            # URI with the URI from the Contact header field in that request, if present."
            self.remote_target = _contact_uri(request) or self.remote_target
        if request.method == "BYE":
            self._set_state(DialogState.TERMINATED)

    def response_sent(self, request: Request, response: Response) -> None:
        """The UAS side: we answered ``request`` within (or creating) this dialog."""
        if request.method == "INVITE" and self.state is DialogState.EARLY:
            if 200 <= response.status < 300:
                self._set_state(DialogState.CONFIRMED)
            elif response.status >= 300:
                self._set_state(DialogState.TERMINATED)
        elif request.method == "BYE" and response.status >= 200:
            self._set_state(DialogState.TERMINATED)

    def receive_response(self, request: Request, response: Response) -> None:
        """§12.2.1.2 and §13.2.2.4: a response to ``request``, which we sent within this dialog.

        Raises: LocalSipError if the response's To tag names another dialog (a forked answer).
        """
        if response.to.tag and response.to.tag != self.remote_tag:
            raise LocalSipError("the response belongs to another dialog (a fork): create one for it")
        status = response.status
        if status in (408, 481):
            # "If the response for a request within a dialog is a 481 (Call/Transaction Does Not
            # Exist) or a 408 (Request Timeout), the UAC SHOULD terminate the dialog."
            self._set_state(DialogState.TERMINATED)
            return
        if request.method == "BYE" and status >= 200:
            self._set_state(DialogState.TERMINATED)
            return
        if request.method == "INVITE" and self.state is DialogState.EARLY:
            if status >= 300:
                self._set_state(DialogState.TERMINATED)
                return
            if status >= 200:
                # §13.2.2.4: "the dialog MUST be transitioned to the "confirmed" state, and the route
                # set for the dialog MUST be recomputed based on the 2xx response".
                self.route_set = tuple(reversed(_record_routes(response)))
                self._set_state(DialogState.CONFIRMED)
        if request.method in TARGET_REFRESH and 200 <= status < 300:
            # §12.2.1.2: "When a UAC receives a 2xx response to a target refresh request, it MUST replace
            # the dialog's remote target URI with the URI from the Contact header field in that response".
            self.remote_target = _contact_uri(response) or self.remote_target

    def terminate(self) -> None:
        """End the dialog (a BYE sent and timed out, a transaction timeout, the call torn down)."""
        self._set_state(DialogState.TERMINATED)

    def _set_state(self, state: DialogState) -> None:
        if state is self.state:
            return
        logger.debug("sip.dialog.state_changed", call_id=self.call_id, old=self.state.name, new=state.name)
        self.state = state
