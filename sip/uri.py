"""SIP, SIPS and tel URIs: parse, serialise, compare.

Implements RFC 3261 §19.1 (SIP and SIPS URI components, §19.1.2 escaping, §19.1.4 comparison)
and enough of RFC 3966 (tel URI) for caller numbers. Other schemes (absoluteURI in §25.1)
are kept as opaque :class:`AbsoluteUri` values: they may appear in To/From, but a request
to one is answered 416 by the server, not here.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from sip.errors import RemoteSipError

Params = tuple[tuple[str, str | None], ...]

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):(.*)$", re.DOTALL)
# §25.1 hostname = *( domainlabel "." ) toplabel [ "." ]; labels are alphanum with inner hyphens.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}\.?$")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]|0[0-9]{1,2})"  # 0-255, leading zeros allowed
_IPV4_RE = re.compile(rf"^{_OCTET}(?:\.{_OCTET}){{3}}$")
_NUMERIC_RE = re.compile(r"^[0-9.]+$")
# RFC 3261 §25.1: unreserved + user-unreserved may stand unescaped in the user part.
_USER_SAFE = "-_.!~*'()&=+$,;?/"
_PASSWORD_SAFE = "-_.!~*'()&=+$,"
_PARAM_SAFE = "-_.!~*'()[]/:&+$"
_HEADER_SAFE = "-_.!~*'()[]/?:+$"
# Text that quote() leaves as it is (its always-safe characters and the safe ones): no escaping to do.
_USER_PLAIN = re.compile(r"[A-Za-z0-9_.\-~!*'()&=+$,;?/]*")
_PASSWORD_PLAIN = re.compile(r"[A-Za-z0-9_.\-~!*'()&=+$,]*")
_PARAM_PLAIN = re.compile(r"[A-Za-z0-9_.\-~!*'()\[\]/:&+$]*")
# §25.1: a URI is ASCII; anything else (controls, SP, non-ASCII, <>") must be %-escaped.
_FORBIDDEN = re.compile(r"[^\x21-\x7e]|[<>\"]")


def _escape(text: str, safe: str, plain: re.Pattern[str]) -> str:
    """``quote(text, safe=safe)``, without its cost for the usual text that needs no escape."""
    return text if plain.fullmatch(text) else quote(text, safe=safe)


def _bad(text: str, why: str) -> RemoteSipError:
    return RemoteSipError(f"bad URI {text[:80]!r}: {why}", status_hint=400)


def _unescape(text: str, whole: str) -> str:
    if "%" not in text:
        return text
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise _bad(whole, "broken %-escape")
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError as exc:  # escaped octets that are not UTF-8: we keep text, so refuse
        raise _bad(whole, "escaped octets are not UTF-8") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class SipUri:
    """``sip:`` or ``sips:`` URI. ``user`` and ``password`` are stored unescaped."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str
    port: int | None = None
    params: Params = ()
    headers: Params = ()
    _text: str | None = field(default=None, init=False, repr=False, compare=False)  # str(self), once written

    def param(self, name: str) -> str | None:
        """Value of a URI parameter (``''`` for a flag such as ``;lr``), ``None`` if absent."""
        lname = name.lower()
        for key, value in self.params:
            if key == lname:
                return "" if value is None else value
        return None

    def has_param(self, name: str) -> bool:
        lname = name.lower()
        return any(key == lname for key, _ in self.params)

    def with_params(self, **changes: str | None) -> SipUri:
        """Copy with parameters set (``None`` removes one)."""
        kept = [(k, v) for k, v in self.params if k not in changes]
        kept.extend((k, v) for k, v in changes.items() if v is not None)
        return SipUri(
            scheme=self.scheme, user=self.user, password=self.password, host=self.host,
            port=self.port, params=tuple(kept), headers=self.headers,
        )

    @property
    def hostport(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        text = self._text
        if text is None:  # written once per value (frozen: the text cannot change)
            text = self._format()
            object.__setattr__(self, "_text", text)
        return text

    def _format(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(_escape(self.user, _USER_SAFE, _USER_PLAIN))
            if self.password is not None:
                out.append(":" + _escape(self.password, _PASSWORD_SAFE, _PASSWORD_PLAIN))
            out.append("@")
        out.append(self.hostport)
        for key, value in self.params:
            out.append(";" + _escape(key, _PARAM_SAFE, _PARAM_PLAIN))
            if value is not None:
                out.append("=" + _escape(value, _PARAM_SAFE, _PARAM_PLAIN))
        if self.headers:
            out.append("?" + "&".join(
                quote(k, safe=_HEADER_SAFE) + "=" + quote(v or "", safe=_HEADER_SAFE) for k, v in self.headers
            ))
        return "".join(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class TelUri:
    """``tel:`` URI (RFC 3966): a global (``+...``) or local number with parameters."""

    number: str
    params: Params = ()
    scheme: str = field(default="tel", init=False)

    def __str__(self) -> str:
        extra = "".join(
            ";" + quote(k, safe=_PARAM_SAFE) + ("" if v is None else "=" + quote(v, safe=_PARAM_SAFE))
            for k, v in self.params
        )
        return f"tel:{self.number}{extra}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AbsoluteUri:
    """Any other scheme, kept verbatim."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | TelUri | AbsoluteUri


def _parse_params(text: str, whole: str) -> Params:
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for item in text.split(";"):
        if not item:
            raise _bad(whole, "empty parameter")
        name, sep, value = item.partition("=")
        key = _unescape(name, whole).lower()
        if not key or key in seen:
            raise _bad(whole, f"empty or repeated parameter {key!r}")
        seen.add(key)
        out.append((key, _unescape(value, whole) if sep else None))
    return tuple(out)


def _parse_host_port(text: str, whole: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise _bad(whole, "unclosed IPv6 reference")
        host, rest = text[: end + 1], text[end + 1 :]
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError as exc:
            raise _bad(whole, "bad IPv6 reference") from exc
    else:
        host, colon, port_text = text.partition(":")
        rest = colon + port_text
    if not host:
        raise _bad(whole, "missing host")
    if not host.startswith("["):
        if _NUMERIC_RE.match(host):  # all digits and dots: must be a dotted-quad IPv4address
            if not _IPV4_RE.match(host):
                raise _bad(whole, f"bad IPv4 address {host!r}")
        elif not _HOSTNAME_RE.match(host):
            raise _bad(whole, f"bad host {host!r}")
    port: int | None = None
    if rest:
        if not rest.startswith(":") or not (rest[1:].isascii() and rest[1:].isdigit()) or len(rest) > 6:
            raise _bad(whole, "bad port")
        port = int(rest[1:])
        if not 0 < port < 65536:
            raise _bad(whole, "port out of range")
    return host.lower(), port


def parse_hostport(text: str) -> tuple[str, int | None]:
    """Parse ``host[:port]`` (a Via sent-by, RFC 3261 §25.1 hostport); the host comes back lower-cased.

    Raises:
        RemoteSipError: status_hint 400 for a malformed host or port.
    """
    if not text or _FORBIDDEN.search(text):
        raise _bad(text, "empty or has forbidden characters")
    return _parse_host_port(text, text)


def _parse_sip(scheme: str, rest: str, whole: str) -> SipUri:
    user: str | None = None
    password: str | None = None
    if "@" in rest:
        userinfo, _, rest = rest.partition("@")
        if not userinfo:
            raise _bad(whole, "empty user part")
        user_text, colon, pw_text = userinfo.partition(":")
        user = _unescape(user_text, whole)
        password = _unescape(pw_text, whole) if colon else None
    rest, qmark, header_text = rest.partition("?")
    hostport, semi, param_text = rest.partition(";")
    host, port = _parse_host_port(hostport, whole)
    params = _parse_params(param_text, whole) if semi else ()
    headers: Params = ()
    if qmark:
        pairs = []
        for item in header_text.split("&"):
            name, _, value = item.partition("=")
            if not name:
                raise _bad(whole, "empty URI header name")
            pairs.append((_unescape(name, whole), _unescape(value, whole)))
        headers = tuple(pairs)
    return SipUri(scheme=scheme, user=user, password=password, host=host, port=port, params=params, headers=headers)


URI_CACHE_SIZE = 4096
CACHED_URI_MAX = 256  # longer URIs are parsed every time: the cache stays small whatever peers send


def parse_uri(text: str) -> Uri:
    """Parse a URI from a start line or a header (memoised up to ``CACHED_URI_MAX`` characters: URIs
    are frozen, and a dialog's messages repeat the same ones).

    Raises:
        RemoteSipError: status_hint 400 for a malformed URI.
    """
    if len(text) > CACHED_URI_MAX:
        return _parse_uri(text)
    return _parse_uri_cached(text)


@functools.lru_cache(maxsize=URI_CACHE_SIZE)
def _parse_uri_cached(text: str) -> Uri:
    return _parse_uri(text)


def clear_uri_cache() -> None:
    """Forget the memoised URIs (after a burst: see :func:`sip.message.clear_parse_caches`)."""
    _parse_uri_cached.cache_clear()


def _parse_uri(text: str) -> Uri:
    """Raises: RemoteSipError (400)."""
    text = text.strip()
    if not text or _FORBIDDEN.search(text):
        raise _bad(text, "empty or has forbidden characters")
    match = _SCHEME_RE.match(text)
    if match is None:
        raise _bad(text, "no scheme")
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest, text)
    if scheme == "tel":
        number, semi, param_text = rest.partition(";")
        if not number or not re.fullmatch(r"\+?[0-9A-Fa-f*#.()\-]+", number):
            raise _bad(text, "bad telephone number")
        return TelUri(number=number, params=_parse_params(param_text, text) if semi else ())
    if not rest:
        raise _bad(text, "empty URI")
    return AbsoluteUri(scheme=scheme, rest=rest)


# RFC 3261 §19.1.4: "A URI omitting any component with a default value will not match a URI
# explicitly containing that component with its default value" — and these parameters must
# appear in both URIs to match.
_MUST_MATCH = ("user", "ttl", "method", "maddr", "transport")


def uri_equivalent(a: Uri, b: Uri, *, ignore_params: frozenset[str] = frozenset()) -> bool:
    """Compare two URIs by the rules of RFC 3261 §19.1.4 (``ignore_params`` are skipped)."""
    if isinstance(a, SipUri) and isinstance(b, SipUri):
        if (a.scheme, a.user, a.password, a.host, a.port) != (b.scheme, b.user, b.password, b.host, b.port):
            return False
        pa = {k: (v or "").lower() for k, v in a.params if k not in ignore_params}
        pb = {k: (v or "").lower() for k, v in b.params if k not in ignore_params}
        for key in _MUST_MATCH:
            if (key in pa or key in pb) and pa.get(key) != pb.get(key):
                return False
        if any(pa[k] != pb[k] for k in pa.keys() & pb.keys()):
            return False
        # "Any present header component MUST be present in both URIs and match": header names
        # are case-insensitive (§7.3.1); values are compared exactly, as we cannot know each rule.
        return sorted((k.lower(), v or "") for k, v in a.headers) == sorted((k.lower(), v or "") for k, v in b.headers)
    if isinstance(a, TelUri) and isinstance(b, TelUri):
        strip = str.maketrans("", "", ".-()")
        return a.number.translate(strip).lower() == b.number.translate(strip).lower()
    return str(a) == str(b)
