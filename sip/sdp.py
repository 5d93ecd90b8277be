"""SDP parse/serialise (RFC 4566); the offer/answer model (RFC 3264) is in :mod:`sip.offer_answer`.

Unknown lines, attributes and codecs are kept by the parser (so
:func:`SessionDescription.serialize` round-trips them). The RFC 3264 offer/answer names
(:class:`MediaParameters`, :class:`Answer`, :func:`negotiate`, :func:`build_offer`,
:func:`accept_answer`) are defined in :mod:`sip.offer_answer`; import them from ``sip``.

Errors: :class:`SdpParseError` (400) for text that is not SDP, :class:`SdpNegotiationError`
(488 Not Acceptable Here, RFC 3261 §21.4.26) for an offer we cannot serve. Both are
:class:`~sip.errors.RemoteSipError`, so the SIP adapter answers them with ``status_hint``.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sip.errors import RemoteSipError

__all__ = [
    "Attribute", "Connection", "Direction", "MediaDescription", "Origin", "SdpNegotiationError", "SdpParseError",
    "SessionDescription", "Timing",
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
    _line: str | None = field(default=None, init=False, repr=False, compare=False)  # its a= line, once written


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
    # What sip.offer_answer reads of the stream, worked out once (the value is frozen).
    _codecs: object = field(default=None, init=False, repr=False, compare=False)

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


_DIRECTIONS = {d.value: d for d in Direction}


def _direction(attributes: Sequence[Attribute], default: Direction) -> Direction:
    for a in attributes:
        if a.value is None and a.name in _DIRECTIONS:
            return _DIRECTIONS[a.name]
    return default


def _int(text: str, what: str, limit: int = 2**64) -> int:
    """A decimal integer below ``limit`` (``str.isdigit`` alone would accept '²').

    Raises:
        SdpParseError: not ASCII digits, or too large.
    """
    if not (text.isascii() and text.isdigit()) or int(text) >= limit:
        raise SdpParseError(f"bad number in {what}: {text[:20]!r}")
    return int(text)


# SessionDescription.parse's memo: body (bytes or text) -> its description, the oldest dropped first.
SDP_CACHE_SIZE = 256
CACHED_BODY_MAX = 4096
_parsed: OrderedDict[str | bytes, SessionDescription] = OrderedDict()  # O(1) drop of the oldest


def clear_sdp_cache() -> None:
    """Forget the memoised descriptions (after a burst: see :func:`sip.message.clear_parse_caches`)."""
    _parsed.clear()
    _ATTRIBUTES.clear()
    _CONNECTIONS.clear()
    _TIMINGS.clear()


# The a=, c= and t= lines repeat from body to body (rtpmap, fmtp, ptime, the sender's address): their
# values are frozen, so one is shared by every body that has the same line. Bounded: past _SHARED_MAX
# entries (a peer inventing lines) new ones are made each time and not kept.
_SHARED_MAX = 512
_SHARED_TEXT_MAX = 128
_ATTRIBUTES: dict[str, Attribute] = {}
_CONNECTIONS: dict[str, Connection] = {}
_TIMINGS: dict[str, Timing] = {}


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

        The same body is read more than once in a call (the offer is checked at the door, then answered): the
        descriptions of the last bodies are kept (:data:`SDP_CACHE_SIZE`; frozen, so shared safely).

        Raises:
            SdpParseError: not SDP (missing/invalid ``v=``, ``o=``, ``m=`` or ``c=`` lines).
        """
        if cls is not SessionDescription:
            return cls._parse(text)
        try:
            return _parsed[text]
        except KeyError:
            pass
        description = cls._parse(text)  # an error is raised each time: only descriptions are kept
        if len(text) <= CACHED_BODY_MAX:
            if len(_parsed) >= SDP_CACHE_SIZE:
                _parsed.popitem(last=False)  # the oldest first
            _parsed[text] = description
        return description

    @classmethod
    def _parse(cls, text: str | bytes) -> SessionDescription:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        pairs: list[tuple[str, str]] = []
        for line in text.split("\n"):
            if not line.strip():
                continue
            if line[-1:] == "\r":
                line = line.rstrip("\r")
            if len(line) < 2 or line[1] != "=":
                raise SdpParseError("an SDP line is not <type>=<value>")
            pairs.append((line[0], line[2:]))
        if not pairs or pairs[0] != ("v", "0"):
            raise SdpParseError("SDP must start with v=0")
        origin: Origin | None = None
        name = "-"
        connection: Connection | None = None
        s_bw: list[str] = []
        s_attrs: list[Attribute] = []
        s_extra: list[tuple[str, str]] = []
        timings: list[Timing] = []
        media: list[tuple[_MLine, list[tuple[str, str]]]] = []
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
                timing = _TIMINGS.get(value)
                if timing is None:
                    start, _, stop = value.partition(" ")
                    timing = Timing(start=_int(start, "t="), stop=_int(stop, "t="))
                    if len(_TIMINGS) < _SHARED_MAX:
                        _TIMINGS[value] = timing
                timings.append(timing)
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
    connection = _CONNECTIONS.get(value)
    if connection is None:
        net, addr_type, addr = _split(value, 3, "c=")
        connection = Connection(net_type=net, addr_type=addr_type, address=addr)
        if len(value) <= _SHARED_TEXT_MAX and len(_CONNECTIONS) < _SHARED_MAX:
            _CONNECTIONS[value] = connection
    return connection


def _format_c(c: Connection) -> str:
    return f"c={c.net_type} {c.addr_type} {c.address}"


def _parse_a(value: str) -> Attribute:
    attribute = _ATTRIBUTES.get(value)
    if attribute is None:
        name, colon, rest = value.partition(":")
        attribute = Attribute(name=name, value=rest if colon else None)
        if len(value) <= _SHARED_TEXT_MAX and len(_ATTRIBUTES) < _SHARED_MAX:
            _ATTRIBUTES[value] = attribute
    return attribute


def _format_a(a: Attribute) -> str:
    line = a._line
    if line is None:
        line = f"a={a.name}" if a.value is None else f"a={a.name}:{a.value}"
        object.__setattr__(a, "_line", line)
    return line


# An m= line read: media, port, port count, proto, formats.
_MLine = tuple[str, int, int | None, str, tuple[str, ...]]


def _parse_m(value: str) -> _MLine:
    parts = value.split(" ")
    if len(parts) < 3:
        raise SdpParseError(f"bad m= line: {value!r}")
    port, slash, count = parts[1].partition("/")
    return (parts[0], _int(port, "m=", 65536), _int(count, "m=") if slash else None, parts[2], tuple(parts[3:]))


def _with_media_lines(m: _MLine, lines: list[tuple[str, str]]) -> MediaDescription:
    """The media description of an m= line with its c=, b=, a= and other lines."""
    if not lines:
        return MediaDescription(media=m[0], port=m[1], port_count=m[2], proto=m[3], formats=m[4])
    connection: Connection | None = None
    bandwidths: list[str] = []
    attributes: list[Attribute] = []
    extra: list[tuple[str, str]] = []
    for key, value in lines:
        if key == "c":
            connection = _parse_c(value)
        elif key == "b":
            bandwidths.append(value)
        elif key == "a":
            attributes.append(_parse_a(value))
        else:
            extra.append((key, value))
    return MediaDescription(media=m[0], port=m[1], port_count=m[2], proto=m[3], formats=m[4],
                            connection=connection, bandwidths=tuple(bandwidths), attributes=tuple(attributes),
                            extra=tuple(extra))
