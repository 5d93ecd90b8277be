"""What a trunk INVITE must carry before the node answers it: checks on its body, ``Accept`` and SDP offer.

A pure function over a parsed :class:`~sip.message.Request` (no I/O, no clock): the controller
calls :func:`check_offer` for a new call before admission, so a refused INVITE never takes an
admission place and is answered before anything else (no 180, no media port). The refusals:

- No body: 488 Not Acceptable Here. The node needs the caller's offer to answer and play the
  greeting at once; late offer (RFC 3261 §13.2.1, offer in the ACK) is not supported.
- A body that is not ``application/sdp`` (no ``Content-Type`` at all, another type, any
  ``multipart/*`` even with an SDP part), a ``Content-Encoding`` other than ``identity``, or a
  ``Content-Disposition`` other than ``session`` that is not ``handling=optional``: 415
  Unsupported Media Type with ``Accept: application/sdp`` (or ``Accept-Encoding: identity``),
  RFC 3261 §21.4.13. The call path takes one SDP body; a multipart body is refused whole.
- An ``Accept`` header with no media range that admits ``application/sdp`` (q > 0), or an
  empty one: 406 Not Acceptable (RFC 3261 §20.1, §21.4.7): our 200 must carry an SDP answer.
- An SDP offer the node cannot serve: 488 Not Acceptable Here with a ``Warning`` (RFC 3261
  §20.43, §21.4.26) whose code says why: 399 it does not parse or has no ``c=`` line, 304 no
  audio stream, 302 no audio stream over RTP/AVP, 305 no PCMU/PCMA in common, 300 a network
  type other than ``IN``, 301 an address type other than IP4/IP6, an address that is not an IP
  literal of that type or of the node's media family, 330 a multicast address, 399 a reserved one.
  SRTP (SDES, RFC 4568; :mod:`cti.call.srtp`): 399 for a malformed ``a=crypto`` line of our suite on a
  TLS leg, 302 for ``RTP/SAVP`` on a plain UDP/TCP leg (keys are never taken in clear) or with
  ``media.srtp: off``, 302 for an offer without a usable key on a TLS leg with ``media.srtp: mandatory``.

The SDP is read with :mod:`sip.sdp` and the stream chosen by :func:`sip.offer_answer.negotiate`
over :data:`sip.offer_answer.CODECS` (re-exported here), the same function and codec table the call
later answers with, so an offer that passes here is one the call can answer. ``c=0.0.0.0`` (or
``::``) is accepted: RFC 3264 §8.4 keeps it as the RFC 2543 way to put a stream on hold, the node
answers it as a held stream and learns the caller's address from its RTP (symmetric RTP) or from a
later re-INVITE.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from cti.call.srtp import SECURE_TRANSPORTS, SrtpPolicy, leg_key, require_srtp
from cti.errors import SettingsError
from sip import (
    CODECS,
    RTP_SAVP,
    Connection,
    Request,
    SdesError,
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    SrtpRequiredError,
    negotiate,
)

__all__ = ["CODECS", "Refusal", "RefusalReason", "check_offer"]

SDP = "application/sdp"
WARN_AGENT = "cti"


class RefusalReason(enum.Enum):
    """Why an INVITE's offer was refused; the value is the ``reason`` label on ``/metrics``."""

    NO_OFFER = "no_offer"
    UNSUPPORTED_BODY = "unsupported_body"
    NOT_ACCEPTABLE = "not_acceptable"
    BAD_SDP = "bad_sdp"
    BAD_ADDRESS = "bad_address"
    NO_AUDIO = "no_audio"
    NO_COMMON_TRANSPORT = "no_common_transport"
    NO_COMMON_CODEC = "no_common_codec"
    BAD_CRYPTO = "bad_crypto"
    SRTP_REQUIRED = "srtp_required"


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """The answer to an INVITE whose offer the node cannot take: ``status`` with ``headers``.

    ``warn_code`` and ``warn_text`` make the ``Warning`` header (RFC 3261 §20.43); the text is
    ours alone (nothing from the request is echoed into a header).
    """

    status: int
    reason: RefusalReason
    warn_code: int
    warn_text: str
    extra: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 499 or not 300 <= self.warn_code <= 399 or '"' in self.warn_text:
            raise SettingsError(f"not an offer refusal: {self.status} / {self.warn_code} {self.warn_text!r}")

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        return (*self.extra, ("Warning", f'{self.warn_code} {WARN_AGENT} "{self.warn_text}"'))


def check_offer(request: Request, *, local_host: str | None = None, transport: str = "UDP",
                srtp: SrtpPolicy = SrtpPolicy.OPTIONAL) -> Refusal | None:
    """The refusal a dialog-creating INVITE gets for its body, ``Accept`` or SDP, or None if usable.

    ``local_host`` is the address the node's media binds to: when it is an IP literal, the
    offer's connection address must be of the same family. ``transport`` (the SIP transport the
    INVITE came over) and ``srtp`` (``media.srtp``) decide whether SDES keys are taken.
    """
    if not request.body:
        return Refusal(status=488, reason=RefusalReason.NO_OFFER, warn_code=399,
                       warn_text="no SDP offer in the INVITE; late offer is not supported")
    unsupported = _check_body_headers(request)
    if unsupported is not None:
        return unsupported
    not_acceptable = _check_accept(request)
    if not_acceptable is not None:
        return not_acceptable
    return _check_sdp(request.body, local_host, transport, srtp)


# --- the body's headers (RFC 3261 §20.11, §20.12, §20.15) ----------------------------------------
def _unsupported(text: str, extra: tuple[tuple[str, str], ...]) -> Refusal:
    # §21.4.13: "The server MUST return a list of acceptable formats using the Accept,
    # Accept-Encoding, or Accept-Language header field, depending on the specific problem".
    return Refusal(status=415, reason=RefusalReason.UNSUPPORTED_BODY, warn_code=399, warn_text=text, extra=extra)


def _check_body_headers(request: Request) -> Refusal | None:
    accept_sdp = (("Accept", SDP),)
    content_type = request.headers.get("Content-Type")
    if content_type is None:
        # §20.15: "The Content-Type header field MUST be present if the body is not empty."
        return _unsupported("a body without Content-Type; only application/sdp is accepted", accept_sdp)
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type.startswith("multipart/"):
        return _unsupported("multipart bodies are not accepted; send application/sdp alone", accept_sdp)
    if media_type != SDP:
        return _unsupported("only application/sdp bodies are accepted", accept_sdp)
    encodings = [e.strip().lower() for e in request.headers.get_all("Content-Encoding")]
    if any(e not in ("", "identity") for e in encodings):
        return _unsupported("content encodings are not accepted", (("Accept-Encoding", "identity"),))
    disposition = request.headers.get("Content-Disposition")
    if disposition is not None:
        kind, _, params = disposition.partition(";")
        # §20.11: "If the handling parameter is missing, the value 'required' SHOULD be assumed."
        optional = any(p.strip().lower().replace(" ", "") == "handling=optional" for p in params.split(";"))
        if kind.strip().lower() not in ("", "session") and not optional:
            return _unsupported("only a session body (the SDP offer) is accepted", accept_sdp)
    return None


# --- Accept (RFC 3261 §20.1) ---------------------------------------------------------------------
def _quality(params: list[str]) -> float:
    """The ``q`` parameter (1.0 when absent or not a qvalue: a typo does not refuse the call)."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 1.0
            return q if 0.0 <= q <= 1.0 else 1.0
    return 1.0


def _check_accept(request: Request) -> Refusal | None:
    if request.headers.get("Accept") is None:
        return None  # §20.1: "the server SHOULD assume a default value of application/sdp"
    best: tuple[int, float] | None = None  # (specificity, q) of the most specific range for SDP
    for entry in request.headers.get_all("Accept"):
        media_range, *params = entry.split(";")
        kind = media_range.strip().lower()
        specificity = {SDP: 3, "application/*": 2, "*/*": 1}.get(kind, 0)
        if specificity and (best is None or specificity > best[0]):
            best = (specificity, _quality(params))
    if best is not None and best[1] > 0.0:
        return None
    # §20.1: "An empty Accept header field means that no formats are acceptable."
    return Refusal(status=406, reason=RefusalReason.NOT_ACCEPTABLE, warn_code=399,
                   warn_text="the answer can only be application/sdp, which Accept excludes")


# --- the SDP offer (RFC 4566, RFC 3264) ----------------------------------------------------------
def _unusable(reason: RefusalReason, code: int, text: str) -> Refusal:
    return Refusal(status=488, reason=reason, warn_code=code, warn_text=text)


def _check_sdp(body: bytes, local_host: str | None, transport: str, srtp: SrtpPolicy) -> Refusal | None:
    try:
        offer = SessionDescription.parse(body)
    except SdpParseError:
        return _unusable(RefusalReason.BAD_SDP, 399, "the SDP offer does not parse")
    try:
        chosen = negotiate(offer, CODECS, "127.0.0.1", 9, local_key=leg_key(srtp, transport)).media
        require_srtp(srtp, transport, chosen)
    except SrtpRequiredError:
        return _unusable(RefusalReason.SRTP_REQUIRED, 302,
                         "Incompatible transport protocol: SRTP with a=crypto is required on SIP over TLS")
    except SdesError:
        return _unusable(RefusalReason.BAD_CRYPTO, 399, "the a=crypto line is not valid RFC 4568")
    except SdpNegotiationError:
        return _why_no_stream(offer, transport, srtp)
    except SdpParseError:  # RFC 4566 §5.7: a c= line at session level or in every m= section
        return _unusable(RefusalReason.BAD_SDP, 399, "the audio stream has no c= line")
    stream = offer.media[chosen.media_index]
    connection = stream.connection or offer.connection
    assert connection is not None  # negotiate raised SdpParseError without one
    return _check_connection(connection, local_host)


def _why_no_stream(offer: SessionDescription, transport: str, srtp: SrtpPolicy) -> Refusal:
    """The Warning for an offer that negotiate found no stream to serve in."""
    audio = [m for m in offer.media if m.media == "audio" and m.port != 0]
    if not audio:
        return _unusable(RefusalReason.NO_AUDIO, 304, "Media type not available: no audio stream offered")
    if not any(m.proto.upper() == "RTP/AVP" for m in audio):
        if any(m.proto.upper() == RTP_SAVP for m in audio):
            if transport.upper() not in SECURE_TRANSPORTS:
                return _unusable(RefusalReason.NO_COMMON_TRANSPORT, 302, "Incompatible transport protocol: "
                                 "RTP/SAVP (SDES keys) is taken on SIP over TLS only")
            if srtp is SrtpPolicy.OFF:
                return _unusable(RefusalReason.NO_COMMON_TRANSPORT, 302,
                                 "Incompatible transport protocol: SRTP is off on this node")
            return _unusable(RefusalReason.BAD_CRYPTO, 302, "Incompatible transport protocol: "
                             "RTP/SAVP needs a=crypto with AES_CM_128_HMAC_SHA1_80, one key, no MKI")
        return _unusable(RefusalReason.NO_COMMON_TRANSPORT, 302,
                         "Incompatible transport protocol: audio is taken over RTP/AVP only")
    return _unusable(RefusalReason.NO_COMMON_CODEC, 305, "Incompatible media format: PCMU or PCMA is needed")


def _check_connection(connection: Connection, local_host: str | None) -> Refusal | None:
    """Whether media can be sent to the offer's ``c=`` address (RFC 4566 §5.7)."""
    if connection.net_type.upper() != "IN":
        return _unusable(RefusalReason.BAD_ADDRESS, 300, "Incompatible network protocol: c= must be IN")
    addr_type = connection.addr_type.upper()
    if addr_type not in ("IP4", "IP6"):
        return _unusable(RefusalReason.BAD_ADDRESS, 301, "Incompatible network address formats: IP4 or IP6")
    text = connection.address.partition("/")[0]  # a multicast TTL / address count follows a slash
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return _unusable(RefusalReason.BAD_ADDRESS, 301,
                         "Incompatible network address formats: c= needs an IP address, not a name")
    if address.version != (4 if addr_type == "IP4" else 6):
        return _unusable(RefusalReason.BAD_ADDRESS, 301,
                         "Incompatible network address formats: c= address is not of its address type")
    if address.is_multicast:
        return _unusable(RefusalReason.BAD_ADDRESS, 330, "Multicast not available")
    if address.version == 4 and address.is_reserved:  # 240.0.0.0/4, with 255.255.255.255
        return _unusable(RefusalReason.BAD_ADDRESS, 399, "the c= address is reserved and cannot be used")
    family = _family(local_host)
    if family is not None and address.version != family:
        return _unusable(RefusalReason.BAD_ADDRESS, 301,
                         f"Incompatible network address formats: media is on IPv{family} here")
    # An unspecified address (0.0.0.0, and :: as MediaParameters.on_hold reads it) is answered as a
    # held stream. RFC 3264 §8.4: "An agent MUST be capable of receiving SDP with a connection
    # address of 0.0.0.0, in which case it means that neither RTP nor RTCP should be sent to the peer."
    return None


def _family(host: str | None) -> int | None:
    """4 or 6 when ``host`` is an IP literal bound to one family; None for names and ``::``."""
    if host is None:
        return None
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if address.version == 6 and address.is_unspecified:
        return None  # "::" may be a dual-stack socket
    return address.version
