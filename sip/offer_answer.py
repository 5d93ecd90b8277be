"""The SDP offer/answer model for G.711 audio (RFC 3264), over :mod:`sip.sdp` (RFC 4566).

Scope: we serve the first ``audio`` stream over ``RTP/AVP`` that offers PCMU (PT 0) or PCMA
(PT 8), plus RFC 4733 ``telephone-event`` when offered. Every other stream is refused with
port 0, as RFC 3264 §6 requires ("An offered stream MAY be rejected in the answer by setting
the port to zero"). Unknown lines, attributes and codecs are ignored by the negotiation.
:func:`negotiate` answers an offer (§6), :func:`build_offer` makes ours (§5) and
:func:`accept_answer` reads the peer's answer to it (§7). :mod:`sip.sdp` re-exports every
public name here.

Errors: :class:`~sip.sdp.SdpNegotiationError` (488 Not Acceptable Here, RFC 3261 §21.4.26)
for an offer we cannot serve, :class:`~sip.sdp.SdpParseError` (400) for a stream without a
connection address, :class:`~sip.errors.LocalSipError` for an offer we cannot build.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sip.errors import LocalSipError
from sip.rtp.g711 import Codec
from sip.sdes import CryptoAttribute, SdesError, SrtpKeys, crypto_attributes, select_crypto
from sip.sdp import (
    DEFAULT_PTIME,
    DEFAULT_TELEPHONE_EVENT_PT,
    TELEPHONE_EVENT,
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
)

__all__ = [
    "CODECS", "RTP_AVP", "RTP_SAVP", "Answer", "MediaParameters", "accept_answer", "answer_at_port", "build_offer",
    "negotiate",
]

# The codecs the node offers and answers with, in preference order: the one table the media
# code (cti.call.media), the INVITE checks (cti.call.offercheck) and build_offer's default read.
CODECS: tuple[Codec, ...] = (Codec.PCMU, Codec.PCMA)
RTP_AVP, RTP_SAVP = "RTP/AVP", "RTP/SAVP"

@dataclass(frozen=True, slots=True, kw_only=True)
class MediaParameters:
    """What a finished offer/answer exchange decided for the audio stream."""

    codec: Codec
    payload_type: int
    telephone_event_pt: int | None
    remote_addr: str
    remote_port: int
    direction: Direction  # our own direction: SENDONLY means we send and do not receive
    ptime: int
    media_index: int
    srtp: SrtpKeys | None = None  # SDES keys (RFC 4568) when the stream is SRTP, else plain RTP

    @property
    def on_hold(self) -> bool:
        """True when the peer put us on hold (it does not receive, or RFC 2543 ``c=0.0.0.0``)."""
        return not self.direction.sends or self.remote_addr in ("0.0.0.0", "::")


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """The answer to send (``sdp``) and the parameters it settles (``media``)."""

    sdp: SessionDescription
    media: MediaParameters


def _addr_type(addr: str) -> str:
    return "IP6" if ":" in addr else "IP4"


# Our o= and c= values by (address, session id, version): the same for every call of a node.
_OURS: dict[tuple[str, str, int], tuple[Origin, Connection]] = {}


def _session(local_addr: str, session_id: str, session_version: int, *media: MediaDescription) -> SessionDescription:
    key = (local_addr, session_id, session_version)
    ours = _OURS.get(key)
    if ours is None:
        kind = _addr_type(local_addr)
        ours = (Origin(session_id=session_id, session_version=str(session_version), addr_type=kind,
                       address=local_addr), Connection(addr_type=kind, address=local_addr))
        if len(_OURS) < 64:
            _OURS[key] = ours
    return SessionDescription(origin=ours[0], session_name="-", connection=ours[1], media=media)


# The formats and attributes of our plain audio streams by (formats, telephone-event PT, ptime, direction):
# a handful of values, the same for every call (and their a= lines are written once).
_AUDIO_PARTS: dict[tuple[object, ...], tuple[tuple[str, ...], tuple[Attribute, ...]]] = {}


def _audio_media(
    port: int, formats: Sequence[tuple[int, str]], te_pt: int | None, ptime: int, direction: Direction,
    crypto: CryptoAttribute | None = None, proto: str = RTP_AVP,
) -> MediaDescription:
    if crypto is None:
        key = (tuple(formats), te_pt, ptime, direction)
        parts = _AUDIO_PARTS.get(key)
        if parts is None:
            parts = _audio_parts(formats, te_pt, ptime, direction, None)
            if len(_AUDIO_PARTS) < 64:
                _AUDIO_PARTS[key] = parts
    else:
        parts = _audio_parts(formats, te_pt, ptime, direction, crypto)
    return MediaDescription(media="audio", port=port, proto=proto, formats=parts[0], attributes=parts[1])


def _audio_parts(
    formats: Sequence[tuple[int, str]], te_pt: int | None, ptime: int, direction: Direction,
    crypto: CryptoAttribute | None,
) -> tuple[tuple[str, ...], tuple[Attribute, ...]]:
    attrs = [Attribute(name="rtpmap", value=f"{pt} {name}/8000") for pt, name in formats]
    fmts = [str(pt) for pt, _ in formats]
    if te_pt is not None:
        fmts.append(str(te_pt))
        attrs += [
            Attribute(name="rtpmap", value=f"{te_pt} {TELEPHONE_EVENT}/8000"),
            Attribute(name="fmtp", value=f"{te_pt} 0-15"),
        ]
    attrs += [Attribute(name="ptime", value=str(ptime)), Attribute(name=direction.value)]
    if crypto is not None:
        attrs.append(crypto.attribute())
    return tuple(fmts), tuple(attrs)


def build_offer(
    local_addr: str,
    local_port: int,
    codecs: Sequence[Codec] = CODECS,
    *,
    telephone_event_pt: int | None = DEFAULT_TELEPHONE_EVENT_PT,
    ptime: int = DEFAULT_PTIME,
    direction: Direction = Direction.SENDRECV,
    session_id: str = "0",
    session_version: int = 0,
    crypto: CryptoAttribute | None = None,
    proto: str = RTP_AVP,
) -> SessionDescription:
    """Our own offer: one audio stream with ``codecs`` in preference order.

    With ``crypto`` the stream offers SRTP (SDES, RFC 4568): ``proto`` ``RTP/SAVP`` makes it
    mandatory, ``RTP/AVP`` best effort (a peer that ignores ``a=crypto`` answers plain RTP).
    Offer a key only where the signalling is protected (SIP over TLS).

    Raises:
        LocalSipError: no codec, or a port or telephone-event PT out of range.
    """
    if not codecs or not 0 < local_port <= 65535:
        raise LocalSipError("an offer needs at least one codec and a port in 1-65535")
    if telephone_event_pt is not None and not 96 <= telephone_event_pt <= 127:
        raise LocalSipError("telephone-event needs a dynamic payload type (96-127)")
    if proto not in (RTP_AVP, RTP_SAVP) or (proto == RTP_SAVP and crypto is None):
        raise LocalSipError("an offer's profile is RTP/AVP, or RTP/SAVP with a crypto attribute")
    media = _audio_media(local_port, [(int(c), c.name) for c in codecs], telephone_event_pt, ptime, direction,
                         crypto, proto)
    return _session(local_addr, session_id, session_version, media)


def _codec_pts(m: MediaDescription) -> tuple[dict[Codec, int], int | None]:
    """Map each G.711 codec the stream offers to its PT, and find telephone-event's PT (worked out once per
    stream: the caller's offer is answered twice, see cti.call.offercheck; the result is read, never changed)."""
    known = m._codecs
    if known is None:
        known = _find_codec_pts(m)
        object.__setattr__(m, "_codecs", known)
    return known  # type: ignore[return-value]


def _find_codec_pts(m: MediaDescription) -> tuple[dict[Codec, int], int | None]:
    rtpmap = m.rtpmap()
    found: dict[Codec, int] = {}
    te_pt = None
    for fmt in m.formats:
        if not (fmt.isascii() and fmt.isdigit()) or len(fmt) > 3:
            continue
        pt = int(fmt)
        name, clock = rtpmap.get(pt, ("", 0))
        if pt in (0, 8) and pt not in rtpmap:  # static types need no rtpmap (RFC 3551 §6)
            found.setdefault(Codec(pt), pt)
        elif name in ("pcmu", "pcma") and clock == 8000:
            found.setdefault(Codec[name.upper()], pt)
        elif name == TELEPHONE_EVENT and clock == 8000 and te_pt is None:
            te_pt = pt
    return found, te_pt


def _remote_addr(sdp: SessionDescription, m: MediaDescription) -> str:
    conn = m.connection or sdp.connection
    if conn is None:
        raise SdpParseError("no c= line at session or media level")  # RFC 4566 §5.7
    return conn.address.partition("/")[0]


def _params(
    sdp: SessionDescription, m: MediaDescription, codec: Codec, pt: int, te_pt: int | None, ours: Direction, index: int
) -> MediaParameters:
    addr = _remote_addr(sdp, m)
    ptime = m.ptime() or DEFAULT_PTIME
    return MediaParameters(
        codec=codec,
        payload_type=pt,
        telephone_event_pt=te_pt,
        remote_addr=addr,
        remote_port=m.port,
        direction=ours,
        ptime=ptime,
        media_index=index,
    )


def _usable(m: MediaDescription, *, secure: bool = False) -> bool:
    proto = m.proto.upper()
    return m.media == "audio" and m.port != 0 and (proto == RTP_AVP or (secure and proto == RTP_SAVP))


def negotiate(
    offer: SessionDescription,
    local_codecs_preference: Sequence[Codec],
    local_addr: str,
    local_port: int,
    *,
    telephone_event: bool = True,
    local_direction: Direction = Direction.SENDRECV,
    session_id: str = "0",
    session_version: int = 0,
    local_key: bytes | None = None,
) -> Answer:
    """Answer ``offer`` (RFC 3264 §6): accept the first servable audio stream, refuse the rest.

    The codec is the first of ``local_codecs_preference`` present in the stream. The answer
    direction follows §6.1: "If a stream is offered as sendonly, the corresponding stream MUST
    be marked as recvonly or inactive in the answer", recvonly gives sendonly, inactive gives
    inactive; ``local_direction`` can only narrow it further.

    SRTP (SDES, RFC 4568) only with ``local_key`` (our 30-byte key||salt, given only on a leg whose
    signalling is protected): then an ``RTP/SAVP`` stream with a usable ``a=crypto`` line is
    servable too, and a stream offering one (``RTP/SAVP``, or ``RTP/AVP`` as best-effort SRTP) is
    answered with SRTP: the same tag and suite with our key, the offer's profile (§7.1.1), and
    :attr:`MediaParameters.srtp` set. Without ``local_key``, ``a=crypto`` lines are not read.

    Raises:
        SdpNegotiationError: no audio stream with a common codec (488).
        SdesError: the chosen stream's ``a=crypto`` line of our suite is malformed (488).
        SdpParseError: the chosen stream has no connection address.
    """
    chosen: MediaParameters | None = None
    answered: list[MediaDescription] = []
    for index, m in enumerate(offer.media):
        params = None
        crypto: CryptoAttribute | None = None
        if chosen is None and _usable(m, secure=local_key is not None):
            offered, te_pt = _codec_pts(m)
            codec = next((c for c in local_codecs_preference if c in offered), None)
            if local_key is not None and codec is not None:
                crypto = select_crypto(m)
                if crypto is None and m.proto.upper() == RTP_SAVP:
                    codec = None  # RFC 4568 §7.1.1: no crypto attribute we support, so no SRTP stream
            if codec is not None:
                theirs = m.direction(offer.direction())
                ours = Direction.of(
                    theirs.receives and local_direction.sends, theirs.sends and local_direction.receives
                )
                te_pt = te_pt if telephone_event else None
                params = _params(offer, m, codec, offered[codec], te_pt, ours, index)
        if params is None:
            # RFC 3264 §6: "the answer MUST contain exactly the same number of "m=" lines as the offer".
            answered.append(MediaDescription(media=m.media, port=0, proto=m.proto, formats=m.formats[:1] or ("0",)))
            continue
        ours_crypto = None
        if crypto is not None and local_key is not None:
            ours_crypto = CryptoAttribute(tag=crypto.tag, key=local_key, suite=crypto.suite)
            params = replace(params, srtp=SrtpKeys(local=local_key, remote=crypto.key))
        chosen = params
        formats = [(params.payload_type, params.codec.name)]
        answered.append(_audio_media(local_port, formats, params.telephone_event_pt, params.ptime, params.direction,
                                     ours_crypto, m.proto if ours_crypto is not None else RTP_AVP))
    if chosen is None:
        raise SdpNegotiationError("no audio stream with PCMU or PCMA over RTP/AVP in the offer")
    return Answer(sdp=_session(local_addr, session_id, session_version, *answered), media=chosen)


def answer_at_port(answer: Answer, local_port: int) -> Answer:
    """``answer`` with its accepted stream on ``local_port``: what :func:`negotiate` gives for that port, without
    answering the offer again (the stream's port is the only thing the local port changes)."""
    media = list(answer.sdp.media)
    index = answer.media.media_index
    m = media[index]
    media[index] = MediaDescription(media=m.media, port=local_port, port_count=m.port_count, proto=m.proto,
                                    formats=m.formats, connection=m.connection, bandwidths=m.bandwidths,
                                    attributes=m.attributes, extra=m.extra)
    sdp = answer.sdp
    return Answer(sdp=SessionDescription(version=sdp.version, origin=sdp.origin, session_name=sdp.session_name,
                                         connection=sdp.connection, bandwidths=sdp.bandwidths, timings=sdp.timings,
                                         attributes=sdp.attributes, media=tuple(media), extra=sdp.extra),
                  media=answer.media)


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> MediaParameters:
    """Read the peer's answer to our ``offer`` (RFC 3264 §7).

    When our stream carried an ``a=crypto`` line (SDES, RFC 4568), an answer that accepts it with
    the same tag makes the stream SRTP (:attr:`MediaParameters.srtp`). An ``RTP/SAVP`` offer
    answered without one is refused; an ``RTP/AVP`` offer (best-effort SRTP) answered without one
    stays plain RTP.

    Raises:
        SdpNegotiationError: the answer refuses every stream, or picks no codec we offered.
        SdesError: the answer's ``a=crypto`` line is malformed, names a tag we did not offer, or is
            missing from an ``RTP/SAVP`` stream (488).
        SdpParseError: the accepted stream has no connection address.
    """
    if len(answer.media) != len(offer.media):
        raise SdpNegotiationError("answer and offer differ in their number of m= lines")
    for index, (ours, theirs) in enumerate(zip(offer.media, answer.media, strict=True)):
        our_cryptos = crypto_attributes(ours)
        secure = bool(our_cryptos)
        if not _usable(ours, secure=secure) or not _usable(theirs, secure=secure):
            continue
        offered, _ = _codec_pts(ours)
        answered, te_pt = _codec_pts(theirs)
        codec = next((c for c in answered if c in offered), None)
        if codec is None:
            continue
        their_dir = theirs.direction(answer.direction())
        our_dir = ours.direction(offer.direction())
        ours_now = Direction.of(their_dir.receives and our_dir.sends, their_dir.sends and our_dir.receives)
        params = _params(answer, theirs, codec, answered[codec], te_pt, ours_now, index)
        if not secure:
            return params
        accepted = select_crypto(theirs)
        if accepted is None:
            if ours.proto.upper() == RTP_SAVP or theirs.proto.upper() == RTP_SAVP:
                raise SdesError("the answer takes our RTP/SAVP stream without an a=crypto line")
            return params  # best-effort SRTP declined: plain RTP
        mine = next((c for c in our_cryptos if c.tag == accepted.tag and c.suite == accepted.suite), None)
        if mine is None:
            raise SdesError("the answer's a=crypto tag is not one we offered")
        return replace(params, srtp=SrtpKeys(local=mine.key, remote=accepted.key))
    raise SdpNegotiationError("the answer accepts no audio stream with a codec we offered")
