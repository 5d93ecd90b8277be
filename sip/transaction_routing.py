"""Where requests come from and responses go: RFC 3261 §18.2.1, §18.2.2, RFC 3581 §4, §17.2.3 keys.

``maddr`` in Via is not supported: responses never go to a multicast address.
"""

from __future__ import annotations

import ipaddress

from sip.events import Destination
from sip.headers import Via
from sip.ids import is_rfc3261_branch
from sip.message import Request, Response

DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "SCTP": 5060, "TLS": 5061, "WS": 80, "WSS": 443}

ServerKey = tuple[str | int | None, ...]


def _bare(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _same_ip(host: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(_bare(host)) == ipaddress.ip_address(_bare(ip))
    except ValueError:
        return False  # a domain name in sent-by: received is always added


def annotate_via(request: Request, source: Destination) -> None:
    """Add ``received`` (and fill ``rport``) to the top Via, in place.

    Raises: RemoteSipError if the request has no parsable Via.
    """
    top = request.top_via
    ip, port = source.addr
    new = top
    if top.rport == "":
        # RFC 3581 §4: "the server MUST insert an "rport" parameter containing the source port ...
        # and MUST add a "received" parameter containing the source IP address ... even if it is
        # identical to the value in the "sent-by" component."
        new = new.with_param("rport", str(port)).with_param("received", _bare(ip))
    elif not _same_ip(top.host, ip):
        # RFC 3261 §18.2.1: "If the host portion of the "sent-by" parameter contains a domain name, or if
        # it contains an IP address that differs from the packet source address, the server MUST add
        # a "received" parameter to that Via header field value."
        new = new.with_param("received", _bare(ip))
    if new != top:
        replace_top_via(request, new)


def replace_top_via(request: Request, via: Via) -> None:
    """Put ``via`` in place of the request's top Via value (in a copy of its headers: others may share them)."""
    request.replace_top_via(via)


def response_destination(via: Via, source: Destination | None) -> Destination:
    """§18.2.2 and RFC 3581 §4: where a response with this top Via goes.

    Reliable: back over the connection the request came in on (``source``). Otherwise the
    ``received`` address (or the sent-by host) and the ``rport`` port when it is filled, else the
    sent-by port, else the transport's default port.
    """
    if source is not None and source.reliable:
        return source
    host = _bare(via.received or via.host)
    rport = via.rport
    if via.received and rport and rport.isdigit():
        port = int(rport)
    else:
        port = via.port or DEFAULT_PORTS.get(via.transport, 5060)
    transport = source.transport if source is not None else via.transport
    return Destination(transport=transport, addr=(host, port))


def server_key(request: Request) -> ServerKey:
    """§17.2.3 matching key of a request; ACK and CANCEL map onto the INVITE's key (method INVITE).

    CANCEL keys are built by the layer with ``method`` overridden. Raises: RemoteSipError.
    """
    return _server_key(request, "INVITE" if request.method == "ACK" else request.method)


def server_key_for(request: Request, method: str) -> ServerKey:
    return _server_key(request, method)


def _server_key(request: Request, method: str) -> ServerKey:
    via = request.top_via
    if is_rfc3261_branch(via.branch):
        # §17.2.3: branch equal, sent-by equal, and method equal (ACK matching INVITE).
        return ("3261", via.branch, via.host, via.port, method)
    # RFC 2543 fallback: Request-URI, From tag, Call-ID, CSeq number and top Via (the To tag is
    # checked by the layer, against the request or against the response sent).
    return (
        "2543", str(request.uri), request.from_.tag, request.call_id, request.cseq.seq,
        via.transport, via.host, via.port, via.branch, method,
    )


def response_key(message: Request | Response) -> ServerKey:
    """Key tying a response the TU sends to its server transaction (same Via, Call-ID and CSeq)."""
    via = message.top_via
    cseq = message.cseq
    return (via.branch, via.host, via.port, message.call_id, cseq.seq, cseq.method)
