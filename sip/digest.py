"""Digest header grammar and client-side response for SIP, sans-I/O (RFC 3261 §22, RFC 2617, RFC 7616,
RFC 8760).

The ``Digest`` auth-param grammar (RFC 7235 §2.1, RFC 3261 §25.1): :func:`parse_digest_params`,
:class:`DigestCredentials` / :func:`parse_credentials` (RFC 7616 §3.4), :class:`DigestChallenge` /
:func:`parse_challenge` (RFC 7616 §3.3); the ``response`` value (:func:`compute_response`, RFC 7616 §3.4.1,
RFC 2069) and the client side (:func:`answer_challenge`); the digest-uri rule (:func:`digest_uri_matches`,
RFC 7616 §3.4.6 with RFC 3261 §19.1.4 URI comparison).  The server side lives in :mod:`sip.auth`.
Nothing here reads a clock, a socket or the SIP message layer.  Decisions: ``docs/sip-auth.md``.

Exception tree::

    SipError (sip.errors)
    └── AuthError    a malformed Digest header, or an impossible call (``status_hint``: 400 or 500)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote

from sip.errors import SipError

__all__ = [
    "AuthError", "DigestAlgorithm", "DigestChallenge", "DigestCredentials", "answer_challenge", "compute_response",
    "digest_uri_matches", "parse_challenge", "parse_credentials", "parse_digest_params",
]


class AuthError(SipError):
    """A Digest header we cannot use, or an API misuse; ``status_hint`` is the status to answer."""


class DigestAlgorithm(Enum):
    """``algorithm`` values of RFC 7616 §6.1 that SIP uses (RFC 8760 §2.1)."""

    MD5 = "MD5"
    MD5_SESS = "MD5-sess"
    SHA_256 = "SHA-256"
    SHA_256_SESS = "SHA-256-sess"

    @property
    def hash_name(self) -> str:
        return "md5" if self.value.startswith("MD5") else "sha256"

    @property
    def is_session(self) -> bool:
        return self.value.endswith("-sess")

    @classmethod
    def parse(cls, text: str) -> DigestAlgorithm:
        """Case-insensitive lookup.  Raises: AuthError for an unknown algorithm."""
        for alg in cls:
            if alg.value.lower() == text.lower():
                return alg
        raise AuthError("unsupported digest algorithm")


# auth-param = token LWS "=" LWS ( token / quoted-string ), then "," or the end (RFC 3261 §25.1).
# Bare values are read leniently (any run without blanks, commas or quotes).
_PARAM = re.compile(r"[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*=[ \t]*"
                    r'(?:"((?:[^"\\]|\\.)*)"|([^ \t,"]+))[ \t]*(,|\Z)', re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MAX_HEADER = 8192
_NC = re.compile(r"[0-9a-fA-F]{8}\Z")


def parse_digest_params(value: str) -> dict[str, str]:
    """Parse ``Digest k=v, k="v"`` into a dict keyed by lower-case names (RFC 7235 §2.1).

    Raises:
        AuthError: not a Digest header, bad syntax, a control character, a duplicate, too long.
    """
    text = value.strip(" \t\r\n")
    scheme, _, rest = text.replace("\t", " ", 1).partition(" ")
    if len(text) > _MAX_HEADER or scheme.lower() != "digest":
        raise AuthError("not a Digest header")
    params: dict[str, str] = {}
    pos = 0
    while True:
        m = _PARAM.match(rest, pos)
        if m is None:
            raise AuthError("bad Digest parameter syntax")
        name, quoted, bare, sep = m.groups()
        param = re.sub(r"\\(.)", r"\1", quoted, flags=re.DOTALL) if quoted is not None else bare
        if _CONTROL.search(param):
            raise AuthError("control character in a Digest parameter")
        if name.lower() in params:
            raise AuthError(f"duplicate Digest parameter {name.lower()!r}")
        params[name.lower()] = param
        if not sep:
            return params
        pos = m.end()


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestCredentials:
    """An ``Authorization``/``Proxy-Authorization`` Digest value (RFC 7616 §3.4)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: DigestAlgorithm = DigestAlgorithm.MD5
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    def header_value(self) -> str:
        quoted = ("username", "realm", "nonce", "uri", "response")
        parts = [f"{k}={_quote(getattr(self, k))}" for k in quoted] + [f"algorithm={self.algorithm.value}"]
        if self.qop is not None and self.nc is not None and self.cnonce is not None:
            parts += [f"qop={self.qop}", f"nc={self.nc}", f"cnonce={_quote(self.cnonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        return "Digest " + ", ".join(parts)


def parse_credentials(value: str) -> DigestCredentials:
    """Parse a Digest credentials header value.

    Raises:
        AuthError: bad syntax, a missing parameter, a bad ``nc``, qop/nc/cnonce inconsistency.
    """
    p = parse_digest_params(value)
    missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in p]
    if missing:
        raise AuthError(f"Digest credentials lack {', '.join(missing)}")
    qop, nc, cnonce = p["qop"].lower() if "qop" in p else None, p.get("nc"), p.get("cnonce")
    if qop is not None and (nc is None or cnonce is None):
        raise AuthError("qop requires nc and cnonce")  # RFC 7616 §3.4: "MUST be specified if a qop ... is sent"
    if qop is None and (nc is not None or cnonce is not None):
        raise AuthError("nc/cnonce without qop")  # RFC 2617 §3.2.2: "MUST NOT be specified if ... no qop"
    if nc is not None and not _NC.match(nc):
        raise AuthError("nc must be 8 hex digits")
    return DigestCredentials(username=p["username"], realm=p["realm"], nonce=p["nonce"], uri=p["uri"],
                             response=p["response"], algorithm=DigestAlgorithm.parse(p.get("algorithm", "MD5")),
                             qop=qop, nc=nc, cnonce=cnonce, opaque=p.get("opaque"))


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestChallenge:
    """A ``WWW-Authenticate``/``Proxy-Authenticate`` Digest value (RFC 7616 §3.3)."""

    realm: str
    nonce: str
    algorithm: DigestAlgorithm = DigestAlgorithm.MD5
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    def header_value(self) -> str:
        parts = [f"realm={_quote(self.realm)}", f"nonce={_quote(self.nonce)}"]
        parts += [f"opaque={_quote(self.opaque)}"] if self.opaque is not None else []
        parts.append(f"algorithm={self.algorithm.value}")
        parts += [f"qop={_quote(','.join(self.qop))}"] if self.qop else []
        return "Digest " + ", ".join(parts + (["stale=true"] if self.stale else []))


def parse_challenge(value: str) -> DigestChallenge:
    """Parse a Digest challenge header value.  Raises: AuthError when malformed."""
    p = parse_digest_params(value)
    if "realm" not in p or "nonce" not in p:
        raise AuthError("Digest challenge lacks realm or nonce")
    qop = tuple(q.strip().lower() for q in p.get("qop", "").split(",") if q.strip())
    return DigestChallenge(realm=p["realm"], nonce=p["nonce"], qop=qop, opaque=p.get("opaque"),
                           algorithm=DigestAlgorithm.parse(p.get("algorithm", "MD5")),
                           stale=p.get("stale", "").lower() == "true")


def compute_response(*, algorithm: DigestAlgorithm, username: str, realm: str, password: str, method: str,
                     uri: str, nonce: str, qop: str | None = None, nc: str | None = None,
                     cnonce: str | None = None) -> str:
    """``response`` per RFC 7616 §3.4.1 (qop=auth) or RFC 2069 (no qop), in lower-case hex.

    Raises:
        AuthError: a qop other than ``auth``, or qop/-sess without nc and cnonce.
    """

    def h(data: str) -> str:
        return hashlib.new(algorithm.hash_name, data.encode("utf-8")).hexdigest()

    ha1 = h(f"{username}:{realm}:{password}")
    if algorithm.is_session:
        if cnonce is None:
            raise AuthError("-sess algorithms need a cnonce")
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}")
    if qop != "auth" or nc is None or cnonce is None:
        raise AuthError("only qop=auth with nc and cnonce is supported")
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def answer_challenge(challenge: DigestChallenge, *, username: str, password: str, method: str, uri: str,
                     cnonce: str | None = None, nc: int = 1) -> DigestCredentials:
    """Client side: credentials for ``challenge``, with qop=auth whenever it is offered.

    Raises:
        AuthError: qop=auth or a -sess algorithm is offered and ``cnonce`` is None (status_hint 500).
    """
    qop = "auth" if "auth" in challenge.qop else None
    if (qop or challenge.algorithm.is_session) and cnonce is None:
        raise AuthError("this challenge needs a cnonce", status_hint=500)
    nc_text, cnonce = (f"{nc:08x}", cnonce) if qop else (None, None)
    response = compute_response(algorithm=challenge.algorithm, username=username, realm=challenge.realm,
                                password=password, method=method, uri=uri, nonce=challenge.nonce, qop=qop,
                                nc=nc_text, cnonce=cnonce)
    return DigestCredentials(username=username, realm=challenge.realm, nonce=challenge.nonce, uri=uri,
                             response=response, algorithm=challenge.algorithm, qop=qop, nc=nc_text,
                             cnonce=cnonce, opaque=challenge.opaque)


_SIP_URI = re.compile(r"(?i)(sips?):(?:([^@;?]*)@)?(\[[^\]]*\]|[^:;?]+)(?::(\d+))?((?:;[^;?]*)*)(?:\?(.*))?\Z")
_NEVER_IGNORED = frozenset({"user", "ttl", "method", "maddr"})  # RFC 3261 §19.1.4


def digest_uri_matches(digest_uri: str, request_uri: str) -> bool:
    """True when the credentials' ``uri`` names the Request-URI (RFC 7616 §3.4.6: "the same resource").

    SIP/SIPS URIs compare by RFC 3261 §19.1.4 with ONE deviation: ``transport`` is ignored on both
    sides (pyVoIP sends ``sip:host;transport=UDP`` for ``sip:host``; see docs/sip-auth.md).  Other
    URIs must be identical.  Never raises.
    """
    a, b = _SIP_URI.match(digest_uri.strip()), _SIP_URI.match(request_uri.strip())
    if a is None or b is None:
        return digest_uri == request_uri
    if (a[1].lower(), a[2] and unquote(a[2]), a[3].lower(), a[4]) != (b[1].lower(), b[2] and unquote(b[2]),
                                                                       b[3].lower(), b[4]):
        return False
    if {unquote(h) for h in (a[6] or "").split("&") if h} != {unquote(h) for h in (b[6] or "").split("&") if h}:
        return False
    pa, pb = (dict(unquote(p).lower().partition("=")[::2] for p in m[5].split(";")[1:]) for m in (a, b))
    pa.pop("transport", None), pb.pop("transport", None)
    if any(pa[k] != pb[k] for k in pa.keys() & pb.keys()):
        return False
    return not (pa.keys() ^ pb.keys()) & _NEVER_IGNORED
