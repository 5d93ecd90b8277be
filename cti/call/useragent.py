"""The node's SIP user agent for the legs it places: the phone INVITE and the hold re-INVITE answer.

One module builds what the call and the supervision send to a registered phone (an agent's or a
supervisor's), from typed headers (:class:`sip.headers.Via`, :class:`~sip.headers.CSeq`,
:class:`~sip.headers.NameAddr`) — no header string is assembled by hand — and answers every
re-INVITE of a call's legs (hold/resume, RFC 3264 §8.4) in one place.

RFC 3261 §8.1.1 (the headers a UAC request MUST carry: To, From, CSeq, Call-ID, Max-Forwards, Via),
§13.2.1 (the INVITE and its Contact), RFC 3264 §8.4 (hold), RFC 5373 / Call-Info answer-after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from cti.call.legs import LegOwner, LegReinvited, LegTable, OutboundLeg, contact_address
from sip import SdesError, SessionDescription, negotiate
from sip.errors import RemoteSipError
from sip.events import Destination
from sip.headers import CSeq, NameAddr, Via
from sip.ids import new_call_id, new_tag
from sip.message import Headers, Request
from sip.registrar import Binding
from sip.uri import SipUri, parse_uri

if TYPE_CHECKING:
    from cti.call.media import MediaLeg

log = structlog.get_logger(__name__)

ALLOW = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "REFER", "NOTIFY", "UPDATE")


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneInvite:
    """What an INVITE to a registered phone says: who calls (shown on the phone), whom, for which call.

    ``queue`` and ``supervision`` become ``X-CTI-Queue`` / ``X-CTI-Supervision``; ``auto_answer``
    adds ``Call-Info: <sip:host>;answer-after=0`` (a supervisor's phone picks up by itself).
    """

    caller: str
    display: str
    callee: str
    call_id: str
    queue: str | None = None
    supervision: str | None = None
    auto_answer: bool = False


def invite_phone(table: LegTable, owner: LegOwner, binding: Binding, invite: PhoneInvite, sdp: bytes) -> OutboundLeg:
    """INVITE the phone of ``binding`` with our SDP offer; the new leg reports to ``owner``.

    The phone is reached at its Contact, or where its REGISTER came from when it is behind NAT
    (:func:`cti.call.legs.contact_address`).

    Raises:
        LocalSipError: the binding has no usable address, or a header value cannot be sent.
    """
    target = parse_uri(binding.uri)
    host, port = table.via_host, table.via_port_for(binding.transport)
    headers = Headers()
    headers.add("Via", str(Via(transport=binding.transport, host=host, port=port, params=(("rport", None),))))
    headers.add("Max-Forwards", "70")
    headers.add("From", str(NameAddr(uri=SipUri(user=invite.caller, host=host, port=port), display=invite.display,
                                     params=(("tag", new_tag()),))))
    headers.add("To", str(NameAddr(uri=SipUri(user=invite.callee, host=host, port=port))))
    headers.add("Call-ID", new_call_id(host))
    headers.add("CSeq", str(CSeq(seq=1, method="INVITE")))
    headers.add("Contact", str(NameAddr(uri=table.contact_for(binding.transport, user="cti"))))
    headers.add("Allow", ", ".join(ALLOW))
    if invite.auto_answer:
        headers.add("Call-Info", str(NameAddr(uri=SipUri(host=host), params=(("answer-after", "0"),))))
    headers.add("X-CTI-Call-ID", invite.call_id)
    if invite.queue is not None:
        headers.add("X-CTI-Queue", invite.queue)
    if invite.supervision is not None:
        headers.add("X-CTI-Supervision", invite.supervision)
    headers.add("Content-Type", "application/sdp")
    request = Request(method="INVITE", uri=target, headers=headers, body=sdp)
    destination = Destination(transport=binding.transport, addr=contact_address(target, binding))
    return OutboundLeg(table, owner, request, destination)


def answer_reinvite(event: LegReinvited, media: MediaLeg | None, host: str, rtp_timeout: float, role: str) -> None:
    """Answer a re-INVITE on a call's leg (hold/resume, RFC 3264 §8.4): our address and the mirrored
    direction, on the leg's codec; 488 for a leg without media, the parse error's status for bad SDP.

    An SRTP leg stays SRTP (RFC 4568 §7.1.4, with our key kept): a re-offer without a usable
    ``a=crypto`` line on it is refused 488; a plain leg stays plain (a re-offer's keys are not taken)."""
    if media is None or not event.request.body:
        event.leg.answer_reinvite(event.request, None, 488 if media is None else 200)
        return
    srtp = media.endpoint.srtp
    try:
        answer = negotiate(SessionDescription.parse(event.request.body), (media.codec,), host,
                           media.endpoint.local_port, local_key=None if srtp is None else srtp.keys.local)
        if srtp is not None and answer.media.srtp is None:
            raise SdesError("this leg is SRTP: a re-offer must keep an a=crypto line")
    except RemoteSipError as exc:
        event.leg.answer_reinvite(event.request, None, exc.status_hint)
        return
    media.apply(answer.media, rtp_timeout)
    event.leg.answer_reinvite(event.request, answer.sdp.serialize().encode())
    log.info("call.hold.changed", leg=role, on_hold=answer.media.on_hold)


__all__ = ["ALLOW", "PhoneInvite", "answer_reinvite", "invite_phone"]
