"""Typed SIP header values: Via, CSeq, name-addr (From/To/Contact/Route), parameter lists.

RFC 3261 §20 (header fields), §25.1 (grammar), §7.3.1 (comma-separated lists) and
RFC 3581 (``rport``). Parsing is forgiving about white space and case, strict about
structure: anything malformed raises :class:`RemoteSipError` with status_hint 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sip.errors import LocalSipError, RemoteSipError
from sip.uri import Params, Uri, parse_hostport, parse_uri

_TOKEN_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+\Z")
# §25.1 gen-value = token / host / quoted-string; host may be an IPv6 reference or a bare IPv6address.
_VALUE_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~:\[\]]+\Z")
_QUOTED_RE = re.compile(r'^"(?:[^"\\]|\\.)*"\Z', re.S)
_DISPLAY_TOKENS_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+(?:[ \t]+[A-Za-z0-9\-.!%*_+`'~]+)*\Z")
_UNSENDABLE = re.compile(r"[\x00\r\n]")
_DIGITS_RE = re.compile(r"[0-9]{1,10}")
_QUOTED_DISPLAY_RE = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*(<.*)$', re.S)
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.S)
_SPACE_RE = re.compile(r"\s")  # what str.strip() strips
_VIA_PROTOCOL_RE = re.compile(r"\s*SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-]+)\s+", re.I)


def _bad(what: str, text: str) -> RemoteSipError:
    return RemoteSipError(f"bad {what}: {text[:80]!r}", status_hint=400)


def _split_unquoted(text: str, separator: str, *, angles: bool) -> tuple[list[str], bool]:
    """Split ``text`` at ``separator`` where it is not inside a quoted string (nor ``<...>`` when
    ``angles``). Returns the parts and whether a quoted string was left open."""
    parts: list[str] = []
    in_angle = in_quote = escaped = False
    start = 0
    for index, char in enumerate(text):
        if in_quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_quote = False
        elif char == '"':
            in_quote = True
        elif angles and char == "<":
            in_angle = True
        elif angles and char == ">":
            in_angle = False
        elif char == separator and not in_angle:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts, in_quote


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, honouring quotes and ``<...>`` (RFC 3261 §7.3.1)."""
    if "," not in value:  # one item (the usual Via, Contact, Route)
        value = value.strip()
        return [value] if value else []
    if '"' not in value and "<" not in value:  # fast path: nothing can hide a comma
        return [item for item in (part.strip() for part in value.split(",")) if item]
    parts, _ = _split_unquoted(value, ",", angles=True)
    return [item for item in (part.strip() for part in parts) if item]


def parse_params(text: str, what: str) -> Params:
    """Parse ``;name=value;flag`` header parameters (values may be quoted strings)."""
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    if not text.strip():
        return ()
    if not text.lstrip().startswith(";"):
        raise _bad(what, text)
    for raw in _split_semicolons(text.lstrip()[1:]):
        name, sep, value = raw.partition("=")
        name = name.strip().lower()
        if not name or not _TOKEN_RE.match(name):
            raise _bad(what, text)
        if name in seen:
            raise _bad(what + " (repeated parameter)", text)
        seen.add(name)
        value = value.strip()
        if sep and value.startswith('"'):
            if not _QUOTED_RE.match(value):
                raise _bad(what, text)
            value = _QUOTED_PAIR_RE.sub(r"\1", value[1:-1]) if "\\" in value else value[1:-1]
            if _UNSENDABLE.search(value):  # legal as quoted-pair, but we could never send it back
                raise _bad(what + " (NUL, CR or LF)", text)
        elif sep and not value and name != "rport":  # RFC 3581 senders may write "rport="
            raise _bad(what, text)
        elif sep and value and not _VALUE_RE.match(value):
            raise _bad(what, text)
        out.append((name, value if sep else None))
    return tuple(out)


def _split_semicolons(text: str) -> list[str]:
    if '"' not in text:  # fast path: no quoted-string can hide a semicolon
        return text.split(";")
    parts, unclosed = _split_unquoted(text, ";", angles=False)
    if unclosed:
        raise _bad("parameters (unclosed quote)", text)
    return parts


def format_params(params: Params) -> str:
    """Serialise header parameters, quoting values that are not a token or host.

    Raises:
        LocalSipError: a name that is not a token, or a value holding NUL, CR or LF (which no
            quoted-string can carry: it would inject a header).
    """
    out = []
    for key, value in params:
        if not _TOKEN_RE.match(key) or (value is not None and _UNSENDABLE.search(value)):
            raise LocalSipError(f"cannot send header parameter {key!r}={value!r}")
        if value is None:
            out.append(f";{key}")
        elif _VALUE_RE.match(value):
            out.append(f";{key}={value}")
        else:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f';{key}="{escaped}"')
    return "".join(out)


def _param(params: Params, name: str) -> str | None:
    for key, value in params:
        if key == name:
            return "" if value is None else value
    return None


def _with_param(params: Params, name: str, value: str | None) -> Params:
    for key, _ in params:
        if key == name:
            return tuple([(k, value if k == name else v) for k, v in params])
    return (*params, (name, value))


@dataclass(frozen=True, slots=True, kw_only=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=z9hG4bK...;rport`` (RFC 3261 §20.42)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    _text: str | None = field(default=None, init=False, repr=False, compare=False)  # str(self), once written

    @property
    def branch(self) -> str | None:
        return _param(self.params, "branch")

    @property
    def received(self) -> str | None:
        return _param(self.params, "received")

    @property
    def rport(self) -> str | None:
        """``''`` when the client asked for rport (RFC 3581 §3), the port once filled in, else None."""
        return _param(self.params, "rport")

    def with_param(self, name: str, value: str | None) -> Via:
        return Via(transport=self.transport, host=self.host, port=self.port,
                   params=_with_param(self.params, name, value))

    def __str__(self) -> str:
        text = self._text
        if text is None:  # written once per value (frozen: the text cannot change)
            hostport = self.host if self.port is None else f"{self.host}:{self.port}"
            text = f"SIP/2.0/{self.transport} {hostport}{format_params(self.params)}"
            object.__setattr__(self, "_text", text)
        return text

    @classmethod
    def parse(cls, text: str) -> Via:
        """Raises: RemoteSipError (400) for a malformed Via."""
        # No regex spans the sent-by: "([^;]+?)\s*(;.*)?$" once took seconds on a run of spaces.
        match = _VIA_PROTOCOL_RE.match(text)
        if match is None:
            raise _bad("Via", text)
        transport = match.group(1).upper()
        sent_by, semi, rest = text[match.end() :].partition(";")  # a sent-by holds no ";"
        if _SPACE_RE.search(sent_by):  # LWS around ":" is legal
            sent_by = ":".join([part.strip() for part in sent_by.split(":")])
        hostport = sent_by
        try:
            host, port = parse_hostport(hostport)
        except RemoteSipError as exc:
            raise _bad("Via sent-by", text) from exc
        return cls(transport=transport, host=host, port=port, params=parse_params(semi + rest, "Via"))


@dataclass(frozen=True, slots=True, kw_only=True)
class CSeq:
    """``CSeq: 4711 INVITE`` (RFC 3261 §20.16): sequence number below 2**31, and the method."""

    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Raises: RemoteSipError (400) for a malformed CSeq."""
        parts = text.split()
        if len(parts) != 2 or not _DIGITS_RE.fullmatch(parts[0]) or not _TOKEN_RE.match(parts[1]):
            raise _bad("CSeq", text)
        seq = int(parts[0])
        if seq >= 2**31:
            raise _bad("CSeq (number must be below 2**31)", text)
        return cls(seq=seq, method=parts[1])


@dataclass(frozen=True, slots=True, kw_only=True)
class NameAddr:
    """From, To, Contact, Route, Record-Route values: ``"Name" <uri>;params`` or ``uri;params``."""

    uri: Uri
    display: str | None = None
    params: Params = ()
    _text: str | None = field(default=None, init=False, repr=False, compare=False)  # str(self), once written

    def __post_init__(self) -> None:
        if self.display is not None and _UNSENDABLE.search(self.display):
            raise LocalSipError(f"display name {self.display[:40]!r} holds NUL, CR or LF")

    @property
    def tag(self) -> str | None:
        return _param(self.params, "tag")

    def param(self, name: str) -> str | None:
        return _param(self.params, name)

    def with_param(self, name: str, value: str | None) -> NameAddr:
        return NameAddr(uri=self.uri, display=self.display, params=_with_param(self.params, name, value))

    def __str__(self) -> str:
        text = self._text
        if text is None:  # written once per value (frozen: the text cannot change)
            if self.display:
                escaped = self.display.replace("\\", "\\\\").replace('"', '\\"')
                head = f'"{escaped}" <{self.uri}>'
            else:
                head = f"<{self.uri}>"
            text = head + format_params(self.params)
            object.__setattr__(self, "_text", text)
        return text

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Raises: RemoteSipError (400) for a malformed value."""
        text = text.strip()
        display: str | None = None
        if text.startswith('"'):
            match = _QUOTED_DISPLAY_RE.match(text)
            if match is None:
                raise _bad("name-addr", text)
            quoted = match.group(1)
            display = (_QUOTED_PAIR_RE.sub(r"\1", quoted) if "\\" in quoted else quoted) or None
            if display is not None and "\x00" in display and "\x00" not in _QUOTED_PAIR_RE.sub("", quoted):
                # §25.1 allows an escaped NUL (RFC 4475 'intmeth'); the value we keep cannot hold one
                # (a store or a log would cut it): U+FFFD stands in. Responses copy the raw header.
                display = display.replace("\x00", "\ufffd")
            if display is not None and _UNSENDABLE.search(display):
                raise _bad("display name (NUL, CR or LF)", text)
            text = match.group(2)
        elif "<" in text:
            name, _, rest = text.partition("<")
            display = name.strip() or None
            if display is not None and not _DISPLAY_TOKENS_RE.match(display):  # display-name = *(token LWS)
                raise _bad("display name (quote it)", text)
            text = "<" + rest
        if text.startswith("<"):
            end = text.find(">")
            if end < 0:
                raise _bad("name-addr (no '>')", text)
            uri_text, param_text = text[1:end], text[end + 1 :]
        else:
            # addr-spec form: RFC 3261 §20: parameters after the URI are header parameters.
            uri_text, semi, rest = text.partition(";")
            param_text = semi + rest
            if "?" in uri_text or "," in uri_text:
                raise _bad("addr-spec (needs <> around a URI with headers or commas)", text)
        return cls(uri=parse_uri(uri_text), display=display, params=parse_params(param_text, "name-addr"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    """A Contact value: a name-addr with ``expires``/``q``, or the wildcard ``*`` (RFC 3261 §20.10)."""

    address: NameAddr | None  # None is the wildcard "*"

    @property
    def is_wildcard(self) -> bool:
        return self.address is None

    @property
    def expires(self) -> int | None:
        """Raises: RemoteSipError (400) for a non-numeric expires parameter."""
        if self.address is None:
            return None
        value = self.address.param("expires")
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()):
            raise _bad("Contact expires", value)
        digits = value.lstrip("0")
        return 2**32 - 1 if len(digits) > 10 else min(int(value), 2**32 - 1)

    @property
    def q(self) -> float | None:
        """Raises: RemoteSipError (400) for a q outside 0..1."""
        if self.address is None:
            return None
        value = self.address.param("q")
        if value is None:
            return None
        if not re.fullmatch(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?", value):
            raise _bad("Contact q", value)
        return float(value)

    def __str__(self) -> str:
        return "*" if self.address is None else str(self.address)

    @classmethod
    def parse(cls, text: str) -> Contact:
        if text.strip() == "*":
            return cls(address=None)
        return cls(address=NameAddr.parse(text))
