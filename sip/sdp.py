"""SDP parse/serialise (RFC 4566) and the offer/answer model for G.711 audio (RFC 3264).

Scope: one or more ``m=`` lines; we serve the first ``audio`` stream over ``RTP/AVP`` that
offers PCMU (PT 0) or PCMA (PT 8), plus RFC 4733 ``telephone-event`` when offered. Every
other stream is refused with port 0, as RFC 3264 §6 requires ("An offered stream MAY be
rejected in the answer by setting the port to zero"). Unknown lines, attributes and
codecs are kept by the parser (so :func:`SessionDescription.serialize` round-trips them)
and ignored by the negotiation.

Errors: :class:`SdpParseError` (400) for text that is not SDP, :class:`SdpNegotiationError`
(488 Not Acceptable Here, RFC 3261 §21.4.26) for an offer we cannot serve. Both are
:class:`~sip.errors.RemoteSipError`, so the SIP adapter answers them with ``status_hint``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sip.errors import LocalSipError, RemoteSipError
from sip.rtp.g711 import Codec

__all__ = [
    "Answer", "Attribute", "Connection", "Direction", "MediaDescription", "MediaParameters", "Origin",
    "SdpNegotiationError", "SdpParseError", "SessionDescription", "Timing", "accept_answer", "build_offer",
    "negotiate"
]

TELEPHONE_EVENT = "telephone-event"
DEFAULT_TELEPHONE_EVENT_PT = 101
DEFAULT_PTIME = 20


class SdpParseError(RemoteSipError):
    """The body is not valid SDP (answered with 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_hint=400)


class SdpNegotiationError(RemoteSipError):
    """The offer holds no stream we can serve (answered with 488 Not Acceptable Here)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_hint=488)


class Direction(enum.Enum):
    """Stream direction attributes (RFC 4566 §6, RFC 3264 §5.1); sendrecv is the default."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def of(cls, sends: bool, receives: bool) -> Direction:
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>``."""

    username: str = "-"
    session_id: str
    session_version: str
    net_type: str = "IN"
    addr_type: str = "IP4"
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """``c=<nettype> <addrtype> <connection-address>``."""

    net_type: str = "IN"
    addr_type: str = "IP4"
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribute:
    """``a=<name>`` (a flag, ``value is None``) or ``a=<name>:<value>``."""

    name: str
    value: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """``t=<start> <stop>`` with its ``r=`` repeat lines."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDescription:
    """One ``m=`` section. ``extra`` keeps other lines (``i=``, ``k=``, unknown) as (type, value)."""

    media: str
    port: int
    port_count: int | None = None
    proto: str = "RTP/AVP"
    formats: tuple[str, ...] = ()
    connection: Connection | None = None
    bandwidths: tuple[str, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()

    def attribute(self, name: str) -> str | None:
        """The value of the first attribute ``name`` (``""`` for a flag), or None."""
        for attr in self.attributes:
            if attr.name == name:
                return "" if attr.value is None else attr.value
        return None

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """``a=rtpmap`` as ``{pt: (encoding name lower-cased, clock rate)}``; bad lines skipped."""
        result: dict[int, tuple[str, int]] = {}
        for attr in self.attributes:
            if attr.name != "rtpmap" or not attr.value:
                continue
            pt_text, _, spec = attr.value.partition(" ")
            name, _, rest = spec.strip().partition("/")
            clock = rest.partition("/")[0]
            if pt_text.isascii() and pt_text.isdigit() and clock.isascii() and clock.isdigit():
                result[int(pt_text)] = (name.lower(), int(clock))
        return result

    def direction(self, default: Direction = Direction.SENDRECV) -> Direction:
        """The stream's direction attribute, else ``default`` (the session-level one)."""
        return _direction(self.attributes, default)

    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        return int(value) if value and value.isascii() and value.isdigit() and len(value) < 5 else None


def _direction(attributes: Sequence[Attribute], default: Direction) -> Direction:
    names = {d.value for d in Direction}
    return next((Direction(a.name) for a in attributes if a.value is None and a.name in names), default)


def _int(text: str, what: str, limit: int = 2**64) -> int:
    """A decimal integer below ``limit`` (``str.isdigit`` alone would accept '²').

    Raises:
        SdpParseError: not ASCII digits, or too large.
    """
    if not (text.isascii() and text.isdigit()) or int(text) >= limit:
        raise SdpParseError(f"bad number in {what}: {text[:20]!r}")
    return int(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription:
    """A whole SDP body. ``extra`` keeps session lines we do not model (``i u e p z k``, unknown)."""

    version: int = 0
    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    bandwidths: tuple[str, ...] = ()
    timings: tuple[Timing, ...] = (Timing(),)
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    extra: tuple[tuple[str, str], ...] = field(default=())

    def direction(self) -> Direction:
        """The session-level direction attribute (sendrecv when absent)."""
        return _direction(self.attributes, Direction.SENDRECV)

    @classmethod
    def parse(cls, text: str | bytes) -> SessionDescription:
        """Parse an SDP body (CRLF or bare LF line ends).

        Raises:
            SdpParseError: not SDP (missing/invalid ``v=``, ``o=``, ``m=`` or ``c=`` lines).
        """
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        lines = [line.rstrip("\r") for line in text.split("\n")]
        if any(len(line) < 2 or line[1] != "=" for line in lines if line.strip()):
            raise SdpParseError("an SDP line is not <type>=<value>")
        pairs = [(line[0], line[2:]) for line in lines if line.strip()]
        if not pairs or pairs[0] != ("v", "0"):
            raise SdpParseError("SDP must start with v=0")
        origin: Origin | None = None
        name = "-"
        connection: Connection | None = None
        s_bw: list[str] = []
        s_attrs: list[Attribute] = []
        s_extra: list[tuple[str, str]] = []
        timings: list[Timing] = []
        media: list[tuple[MediaDescription, list[tuple[str, str]]]] = []
        for key, value in pairs[1:]:
            if key == "m":
                media.append((_parse_m(value), []))
            elif media:
                media[-1][1].append((key, value))
            elif key == "o":
                origin = _parse_origin(value)
            elif key == "s":
                name = value
            elif key == "c":
                connection = _parse_c(value)
            elif key == "b":
                s_bw.append(value)
            elif key == "t":
                start, _, stop = value.partition(" ")
                timings.append(Timing(start=_int(start, "t="), stop=_int(stop, "t=")))
            elif key == "r" and timings:
                timings[-1] = replace(timings[-1], repeats=(*timings[-1].repeats, value))
            elif key == "a":
                s_attrs.append(_parse_a(value))
            else:
                s_extra.append((key, value))
        if origin is None:
            raise SdpParseError("SDP has no o= line")
        return cls(
            origin=origin,
            session_name=name,
            connection=connection,
            bandwidths=tuple(s_bw),
            timings=tuple(timings),
            attributes=tuple(s_attrs),
            media=tuple(_with_media_lines(m, lines) for m, lines in media),
            extra=tuple(s_extra),
        )

    def serialize(self) -> str:
        """The body as text with CRLF line ends (RFC 4566 §5 line order)."""
        o = self.origin
        out = [
            f"v={self.version}",
            f"o={o.username} {o.session_id} {o.session_version} {o.net_type} {o.addr_type} {o.address}",
            f"s={self.session_name}",
            *(f"{k}={v}" for k, v in self.extra),
        ]
        if self.connection is not None:
            out.append(_format_c(self.connection))
        out += [f"b={b}" for b in self.bandwidths]
        for t in self.timings:
            out.append(f"t={t.start} {t.stop}")
            out += [f"r={r}" for r in t.repeats]
        out += [_format_a(a) for a in self.attributes]
        for m in self.media:
            port = f"{m.port}/{m.port_count}" if m.port_count is not None else str(m.port)
            out.append(" ".join(["m=" + m.media, port, m.proto, *m.formats]))
            out += [f"{k}={v}" for k, v in m.extra]
            if m.connection is not None:
                out.append(_format_c(m.connection))
            out += [f"b={b}" for b in m.bandwidths]
            out += [_format_a(a) for a in m.attributes]
        return "\r\n".join(out) + "\r\n"


def _parse_origin(value: str) -> Origin:
    user, sid, ver, net, addr_type, addr = _split(value, 6, "o=")
    return Origin(username=user, session_id=sid, session_version=ver, net_type=net, addr_type=addr_type, address=addr)


def _split(value: str, n: int, what: str) -> list[str]:
    parts = value.split(" ")
    if len(parts) != n or not all(parts):
        raise SdpParseError(f"bad {what} line: {value[:60]!r}")
    return parts


def _parse_c(value: str) -> Connection:
    net, addr_type, addr = _split(value, 3, "c=")
    return Connection(net_type=net, addr_type=addr_type, address=addr)


def _format_c(c: Connection) -> str:
    return f"c={c.net_type} {c.addr_type} {c.address}"


def _parse_a(value: str) -> Attribute:
    name, colon, rest = value.partition(":")
    return Attribute(name=name, value=rest if colon else None)


def _format_a(a: Attribute) -> str:
    return f"a={a.name}" if a.value is None else f"a={a.name}:{a.value}"


def _parse_m(value: str) -> MediaDescription:
    parts = value.split(" ")
    if len(parts) < 3:
        raise SdpParseError(f"bad m= line: {value!r}")
    port, slash, count = parts[1].partition("/")
    return MediaDescription(
        media=parts[0],
        port=_int(port, "m=", 65536),
        port_count=_int(count, "m=") if slash else None,
        proto=parts[2],
        formats=tuple(parts[3:]),
    )


def _with_media_lines(m: MediaDescription, lines: list[tuple[str, str]]) -> MediaDescription:
    """The media description with its c=, b=, a= and other lines (one copy, not one per line)."""
    if not lines:
        return m
    connection = m.connection
    bandwidths, attributes, extra = list(m.bandwidths), list(m.attributes), list(m.extra)
    for key, value in lines:
        if key == "c":
            connection = _parse_c(value)
        elif key == "b":
            bandwidths.append(value)
        elif key == "a":
            attributes.append(_parse_a(value))
        else:
            extra.append((key, value))
    return replace(m, connection=connection, bandwidths=tuple(bandwidths), attributes=tuple(attributes),
                   extra=tuple(extra))


# --- offer/answer (RFC 3264) -------------------------------------------------------------


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


def _session(local_addr: str, session_id: str, session_version: int, media: MediaDescription) -> SessionDescription:
    kind = _addr_type(local_addr)
    return SessionDescription(
        origin=Origin(session_id=session_id, session_version=str(session_version), addr_type=kind, address=local_addr),
        session_name="-",
        connection=Connection(addr_type=kind, address=local_addr),
        media=(media,),
    )


def _audio_media(
    port: int, formats: Sequence[tuple[int, str]], te_pt: int | None, ptime: int, direction: Direction
) -> MediaDescription:
    attrs = [Attribute(name="rtpmap", value=f"{pt} {name}/8000") for pt, name in formats]
    fmts = [str(pt) for pt, _ in formats]
    if te_pt is not None:
        fmts.append(str(te_pt))
        attrs += [
            Attribute(name="rtpmap", value=f"{te_pt} {TELEPHONE_EVENT}/8000"),
            Attribute(name="fmtp", value=f"{te_pt} 0-15"),
        ]
    attrs += [Attribute(name="ptime", value=str(ptime)), Attribute(name=direction.value)]
    return MediaDescription(media="audio", port=port, proto="RTP/AVP", formats=tuple(fmts), attributes=tuple(attrs))


def build_offer(
    local_addr: str,
    local_port: int,
    codecs: Sequence[Codec] = (Codec.PCMU, Codec.PCMA),
    *,
    telephone_event_pt: int | None = DEFAULT_TELEPHONE_EVENT_PT,
    ptime: int = DEFAULT_PTIME,
    direction: Direction = Direction.SENDRECV,
    session_id: str = "0",
    session_version: int = 0,
) -> SessionDescription:
    """Our own offer: one audio stream with ``codecs`` in preference order.

    Raises:
        LocalSipError: no codec, or a port or telephone-event PT out of range.
    """
    if not codecs or not 0 < local_port <= 65535:
        raise LocalSipError("an offer needs at least one codec and a port in 1-65535")
    if telephone_event_pt is not None and not 96 <= telephone_event_pt <= 127:
        raise LocalSipError("telephone-event needs a dynamic payload type (96-127)")
    media = _audio_media(local_port, [(int(c), c.name) for c in codecs], telephone_event_pt, ptime, direction)
    return _session(local_addr, session_id, session_version, media)


def _codec_pts(m: MediaDescription) -> tuple[dict[Codec, int], int | None]:
    """Map each G.711 codec the stream offers to its PT, and find telephone-event's PT."""
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


def _usable(m: MediaDescription) -> bool:
    return m.media == "audio" and m.port != 0 and m.proto.upper() == "RTP/AVP"


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
) -> Answer:
    """Answer ``offer`` (RFC 3264 §6): accept the first servable audio stream, refuse the rest.

    The codec is the first of ``local_codecs_preference`` present in the stream. The answer
    direction follows §6.1: "If a stream is offered as sendonly, the corresponding stream MUST
    be marked as recvonly or inactive in the answer", recvonly gives sendonly, inactive gives
    inactive; ``local_direction`` can only narrow it further.

    Raises:
        SdpNegotiationError: no audio stream with a common codec (488).
        SdpParseError: the chosen stream has no connection address.
    """
    chosen: MediaParameters | None = None
    answered: list[MediaDescription] = []
    for index, m in enumerate(offer.media):
        params = None
        if chosen is None and _usable(m):
            offered, te_pt = _codec_pts(m)
            codec = next((c for c in local_codecs_preference if c in offered), None)
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
        chosen = params
        formats = [(params.payload_type, params.codec.name)]
        answered.append(_audio_media(local_port, formats, params.telephone_event_pt, params.ptime, params.direction))
    if chosen is None:
        raise SdpNegotiationError("no audio stream with PCMU or PCMA over RTP/AVP in the offer")
    session = _session(local_addr, session_id, session_version, answered[0])
    return Answer(sdp=replace(session, media=tuple(answered)), media=chosen)


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> MediaParameters:
    """Read the peer's answer to our ``offer`` (RFC 3264 §7).

    Raises:
        SdpNegotiationError: the answer refuses every stream, or picks no codec we offered.
        SdpParseError: the accepted stream has no connection address.
    """
    if len(answer.media) != len(offer.media):
        raise SdpNegotiationError("answer and offer differ in their number of m= lines")
    for index, (ours, theirs) in enumerate(zip(offer.media, answer.media, strict=True)):
        if not _usable(ours) or not _usable(theirs):
            continue
        offered, _ = _codec_pts(ours)
        answered, te_pt = _codec_pts(theirs)
        codec = next((c for c in answered if c in offered), None)
        if codec is None:
            continue
        their_dir = theirs.direction(answer.direction())
        our_dir = ours.direction(offer.direction())
        ours_now = Direction.of(their_dir.receives and our_dir.sends, their_dir.sends and our_dir.receives)
        return _params(answer, theirs, codec, answered[codec], te_pt, ours_now, index)
    raise SdpNegotiationError("the answer accepts no audio stream with a codec we offered")
