"""HTTP Digest authentication for SIP, sans-I/O (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760).

Server side: :class:`DigestAuthenticator` builds challenges (SHA-256 first, then MD5, RFC 8760 §2.4),
verifies credentials against stateless HMAC nonces, refuses replays and locks out brute force.
Client side: :func:`answer_challenge`.  Nothing here reads a clock, a socket or the SIP message
layer: callers pass header *values* as strings and ``now``.  Decisions: ``docs/sip-auth.md``.

Exception tree::

    AuthError    a malformed Digest header, or an impossible call (``status_hint``: 400 or 500)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import struct
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote

import structlog

log = structlog.get_logger(__name__)


class AuthError(Exception):
    """A Digest header we cannot use, or an API misuse; ``status_hint`` is the status to answer."""

    def __init__(self, message: str, *, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint


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


class AuthResult(Enum):
    ACCEPTED = "accepted"  # go on with the request
    CHALLENGE = "challenge"  # answer ``status`` (401/407) with ``challenges``, one header each
    STALE = "stale"  # the same, the challenges carry stale=true: the client retries silently
    REJECTED = "rejected"  # answer ``status`` (400 or 403)
    LOCKED_OUT = "locked_out"  # answer 403: too many failures from this source or for this account


class AuthReason(Enum):
    """Why, for logs and metrics only: never put it in a response (it would tell accounts apart)."""

    OK = "ok"
    NO_CREDENTIALS = "no_credentials"
    MALFORMED = "malformed"
    UNSUPPORTED = "unsupported"
    URI_MISMATCH = "uri_mismatch"
    OPAQUE_MISMATCH = "opaque_mismatch"
    UNKNOWN_NONCE = "unknown_nonce"
    WRONG_USERNAME = "wrong_username"
    UNKNOWN_ACCOUNT = "unknown_account"
    BAD_RESPONSE = "bad_response"
    NONCE_EXPIRED = "nonce_expired"
    NONCE_REUSED = "nonce_reused"
    NC_REPLAYED = "nc_replayed"
    LOCKED_OUT = "locked_out"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthOutcome:
    result: AuthResult
    status: int  # 200 accepted, 401/407 challenge or stale, 400/403 rejected, 403 locked out
    reason: AuthReason
    challenges: tuple[str, ...] = ()
    username: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LockoutPolicy:
    """``max_failures`` failures within ``window`` seconds lock the key out for ``period`` seconds."""

    max_failures: int = 5
    window: float = 60.0
    period: float = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthPolicy:
    realm: str
    nonce_lifetime: float = 300.0
    algorithms: tuple[DigestAlgorithm, ...] = (DigestAlgorithm.SHA_256, DigestAlgorithm.MD5)
    allow_no_qop: bool = True  # RFC 2069 responses (pyVoIP); MD5 only
    source_lockout: LockoutPolicy = LockoutPolicy()
    user_lockout: LockoutPolicy = LockoutPolicy(max_failures=10)
    max_tracked: int = 10_000  # nonces in the replay table; keys in each lockout table

    def __post_init__(self) -> None:
        if not self.realm or _CONTROL.search(self.realm) or any(c in self.realm for c in '",\\'):
            raise ValueError("the realm must be plain text without quotes, commas or backslashes")
        if not self.algorithms or self.nonce_lifetime <= 0 or self.max_tracked < 1:
            raise ValueError("AuthPolicy needs an algorithm, a positive nonce lifetime and table size")


class _Lockouts:
    """Sliding-window failure counts per key; least recently failing keys are dropped past ``max_keys``."""

    def __init__(self, policy: LockoutPolicy, max_keys: int) -> None:
        self._policy, self._max = policy, max_keys
        self._failures: dict[str, deque[float]] = {}
        self._until: dict[str, float] = {}

    def locked(self, key: str, now: float) -> bool:
        if now >= self._until.get(key, -math.inf):
            self._until.pop(key, None)
            return False
        return True

    def fail(self, key: str, now: float) -> bool:
        """Count a failure; True when it starts a lockout."""
        times = self._failures.pop(key, deque())
        times.append(now)
        while times[0] <= now - self._policy.window:
            times.popleft()
        if len(times) >= self._policy.max_failures:
            self._until[key] = now + self._policy.period
            while len(self._until) > self._max:
                del self._until[next(iter(self._until))]
            return True
        self._failures[key] = times
        while len(self._failures) > self._max:
            del self._failures[next(iter(self._failures))]
        return False

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)


_TS = struct.Struct(">d")
_RAND, _MAC = 12, 16
_NONCE_LEN = (_TS.size + _RAND + _MAC) * 4 // 3


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


class DigestAuthenticator:
    """Server-side Digest for one realm: challenges, verification, a replay table and lockouts.

    ``secret`` keys the nonce HMAC (share it between nodes, keep it across restarts, if nonces must
    survive those); every ``now`` must come from the same clock.  ``random_bytes`` is for tests.
    """

    def __init__(self, policy: AuthPolicy, secret: bytes,
                 *, random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret must be at least 16 bytes")
        self.policy, self._secret, self._random = policy, secret, random_bytes
        self.opaque = _b64(self._mac(b"opaque", b""))
        self._nonces: dict[str, tuple[float, int]] = {}  # nonce -> (issued, highest nc; 0: used without qop)
        self._watermark = -math.inf  # live nonces issued at or before this were evicted: treat as used
        self._by_source = _Lockouts(policy.source_lockout, policy.max_tracked)
        self._by_user = _Lockouts(policy.user_lockout, policy.max_tracked)

    def _mac(self, label: bytes, data: bytes) -> bytes:
        msg = label + b"|" + self.policy.realm.encode("utf-8") + b"|" + data
        return hmac.new(self._secret, msg, hashlib.sha256).digest()[:_MAC]

    def issue_nonce(self, now: float) -> str:
        """base64url(timestamp ‖ 12 random bytes ‖ HMAC-SHA-256(secret, "nonce"|realm|those 20 bytes)[:16])."""
        body = _TS.pack(now) + self._random(_RAND)
        return _b64(body + self._mac(b"nonce", body))

    def nonce_issued_at(self, nonce: str) -> float | None:
        """The nonce's timestamp if we issued it, else None.  Never raises."""
        if len(nonce) != _NONCE_LEN or not re.fullmatch(r"[A-Za-z0-9_-]+", nonce):
            return None
        raw = base64.urlsafe_b64decode(nonce)
        body, mac = raw[:-_MAC], raw[-_MAC:]
        if not hmac.compare_digest(mac, self._mac(b"nonce", body)):
            return None
        issued: float = _TS.unpack(body[: _TS.size])[0]
        return issued if math.isfinite(issued) else None

    def challenges(self, now: float, *, stale: bool = False) -> tuple[str, ...]:
        """One challenge per policy algorithm, in policy order, sharing one fresh nonce."""
        nonce = self.issue_nonce(now)
        return tuple(DigestChallenge(realm=self.policy.realm, nonce=nonce, algorithm=alg, qop=("auth",),
                                     opaque=self.opaque, stale=stale).header_value()
                     for alg in self.policy.algorithms)

    def authenticate(self, *, method: str, request_uri: str, authorization: Iterable[str], account: str,
                     password: str | None, source: str, now: float, proxy: bool = False) -> AuthOutcome:
        """Check Digest credentials for ``account`` (``password`` None: no such account).

        ``authorization``: every Authorization value (Proxy-Authorization with ``proxy``: 407);
        ``source``: the peer's IP address.  Never raises: bad input becomes an outcome.
        """

        def out(result: AuthResult, reason: AuthReason, status: int = 403) -> AuthOutcome:
            challenges: tuple[str, ...] = ()
            if result in (AuthResult.CHALLENGE, AuthResult.STALE):
                status = 407 if proxy else 401
                challenges = self.challenges(now, stale=result is AuthResult.STALE)
            if result is not AuthResult.ACCEPTED:  # a plain first challenge is routine: debug only
                emit = log.debug if reason is AuthReason.NO_CREDENTIALS else log.info
                emit("sip.credentials.refused", result=result.value, reason=reason.value, account=account,
                     source=source)
            return AuthOutcome(result=result, status=status, reason=reason, challenges=challenges, username=account)

        def fail(reason: AuthReason) -> AuthOutcome:
            if self._by_source.fail(source, now) | self._by_user.fail(account, now):
                log.warning("sip.account.locked_out", account=account, source=source)
            return out(AuthResult.REJECTED, reason)

        if self._by_source.locked(source, now) or self._by_user.locked(account, now):
            return out(AuthResult.LOCKED_OUT, AuthReason.LOCKED_OUT)
        creds, malformed = None, False
        for value in authorization:
            try:
                parsed = parse_credentials(value)
            except AuthError:
                malformed = True
                continue
            if parsed.realm == self.policy.realm:
                creds = parsed
                break
        if creds is None:
            if malformed:
                return out(AuthResult.REJECTED, AuthReason.MALFORMED, 400)
            return out(AuthResult.CHALLENGE, AuthReason.NO_CREDENTIALS)
        if creds.algorithm not in self.policy.algorithms:
            return out(AuthResult.CHALLENGE, AuthReason.UNSUPPORTED)
        rfc2069 = self.policy.allow_no_qop and creds.algorithm is DigestAlgorithm.MD5
        if creds.qop != "auth" and not (creds.qop is None and rfc2069):
            return out(AuthResult.REJECTED, AuthReason.UNSUPPORTED, 400)
        if creds.opaque is not None and not hmac.compare_digest(creds.opaque.encode(), self.opaque.encode()):
            return out(AuthResult.REJECTED, AuthReason.OPAQUE_MISMATCH, 400)
        if not digest_uri_matches(creds.uri, request_uri):  # RFC 2617 §3.2.2.5: "SHOULD return 400"
            return out(AuthResult.REJECTED, AuthReason.URI_MISMATCH, 400)
        issued = self.nonce_issued_at(creds.nonce)
        if issued is None or issued > now:
            return out(AuthResult.CHALLENGE, AuthReason.UNKNOWN_NONCE)
        if creds.username != account:
            return fail(AuthReason.WRONG_USERNAME)
        if password is None:
            return fail(AuthReason.UNKNOWN_ACCOUNT)
        expected = compute_response(algorithm=creds.algorithm, username=creds.username, realm=creds.realm,
                                    password=password, method=method, uri=creds.uri, nonce=creds.nonce,
                                    qop=creds.qop, nc=creds.nc, cnonce=creds.cnonce)
        if not hmac.compare_digest(expected.encode(), creds.response.lower().encode()):
            return fail(AuthReason.BAD_RESPONSE)
        # RFC 7616 §3.3: stale=true means the nonce was stale but the response was right, so check it now.
        if now >= issued + self.policy.nonce_lifetime:
            return out(AuthResult.STALE, AuthReason.NONCE_EXPIRED)
        refused = self._use_nonce(creds.nonce, issued, int(creds.nc, 16) if creds.nc else 0, now)
        if refused is not None:
            return out(*refused)
        self._by_user.clear(account)
        return out(AuthResult.ACCEPTED, AuthReason.OK, 200)

    def _use_nonce(self, nonce: str, issued: float, nc: int, now: float) -> tuple[AuthResult, AuthReason] | None:
        """Record a use: with qop the nc must grow (RFC 7616 §3.4); without qop (nc 0) a nonce serves once."""
        seen = self._nonces.get(nonce)
        if (seen is None and issued <= self._watermark) or (seen is not None and nc == 0):
            return AuthResult.STALE, AuthReason.NONCE_REUSED
        if seen is not None and nc <= seen[1]:
            return AuthResult.REJECTED, AuthReason.NC_REPLAYED
        self._nonces.pop(nonce, None)
        self._nonces[nonce] = (issued, nc)  # re-inserted last: the dict runs least recently used first
        while self._nonces:
            oldest = next(iter(self._nonces))
            old_issued = self._nonces[oldest][0]
            alive = now < old_issued + self.policy.nonce_lifetime
            if alive and len(self._nonces) <= self.policy.max_tracked:
                break
            del self._nonces[oldest]
            if alive:
                self._watermark = max(self._watermark, old_issued)
        return None
