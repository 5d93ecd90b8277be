"""HTTP Digest authentication for SIP, server side, sans-I/O (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760).

Server side: :class:`DigestAuthenticator` builds one challenge per configured algorithm (MD5 alone by
default; SHA-256 only when the policy lists it, in the policy's order, RFC 8760 §2.4), verifies
credentials against stateless HMAC nonces, refuses replays and locks out brute force.
The header grammar, the ``response`` computation, the client side (:func:`answer_challenge`) and the
digest-uri rule live in :mod:`sip.digest`; this module re-exports them, so ``from sip.auth import X``
keeps working.  Nothing here reads a clock, a socket or the SIP message layer: callers pass header
*values* as strings and ``now``.  Decisions: ``docs/sip-auth.md``.

Exception tree (defined in :mod:`sip.digest`)::

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

import structlog

from sip.digest import (
    _CONTROL,
    AuthError,
    DigestAlgorithm,
    DigestChallenge,
    DigestCredentials,
    answer_challenge,
    compute_response,
    digest_uri_matches,
    parse_challenge,
    parse_credentials,
    parse_digest_params,
)

__all__ = [
    "AuthError", "AuthOutcome", "AuthPolicy", "AuthReason", "AuthResult", "DigestAlgorithm", "DigestAuthenticator",
    "DigestChallenge", "DigestCredentials", "LockoutPolicy", "answer_challenge", "compute_response",
    "digest_uri_matches", "parse_challenge", "parse_credentials", "parse_digest_params",
]

log = structlog.get_logger(__name__)

# Lock-out keys come from the peer (its IP address, and the account it names). A key longer than
# this is replaced by its SHA-256, so the tables hold at most ``max_tracked`` keys of bounded size.
LOCKOUT_KEY_MAX = 128


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

    @property
    def repeatable(self) -> bool:
        """Nothing was counted or consumed, and the same request would be answered the same again: a challenge
        (with a fresh nonce) or a malformed request's 400. Such an answer may be sent as a stateless UAS (RFC
        3261 §8.2.7, whose own example is the challenge); a 403 counted toward a lock-out, a lock-out's 403 and
        an acceptance (a nonce count used) may not."""
        return self.result in (AuthResult.CHALLENGE, AuthResult.STALE) or (
            self.result is AuthResult.REJECTED and self.status == 400)


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
    # One challenge per entry, most preferred first (RFC 8760 §2.4). MD5 alone by default: some phones
    # (baresip 1.0) give up on a 401 as soon as one of its challenges names an algorithm they lack.
    algorithms: tuple[DigestAlgorithm, ...] = (DigestAlgorithm.MD5,)
    allow_no_qop: bool = True  # RFC 2069 responses (pyVoIP); MD5 only
    source_lockout: LockoutPolicy = LockoutPolicy()
    user_lockout: LockoutPolicy = LockoutPolicy(max_failures=10)
    max_tracked: int = 10_000  # nonces in the replay table; keys in each lockout table

    def __post_init__(self) -> None:
        if not self.realm or _CONTROL.search(self.realm) or any(c in self.realm for c in '",\\'):
            raise ValueError("the realm must be plain text without quotes, commas or backslashes")
        if not self.algorithms or self.nonce_lifetime <= 0 or self.max_tracked < 1:
            raise ValueError("AuthPolicy needs an algorithm, a positive nonce lifetime and table size")
        if len(set(self.algorithms)) != len(self.algorithms):
            raise ValueError("each digest algorithm may be listed once")


def _bounded_key(key: str) -> str:
    if len(key) <= LOCKOUT_KEY_MAX:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class _Lockouts:
    """Sliding-window failure counts per key; least recently failing keys are dropped past ``max_keys``
    (counted in ``evicted``). Keys are at most ``LOCKOUT_KEY_MAX`` characters (longer ones are hashed)."""

    def __init__(self, policy: LockoutPolicy, max_keys: int) -> None:
        self._policy, self._max = policy, max_keys
        self._failures: dict[str, deque[float]] = {}
        self._until: dict[str, float] = {}
        self.evicted = 0  # keys dropped to stay within max_keys (their failures or lock-out forgotten)

    def locked(self, key: str, now: float) -> bool:
        key = _bounded_key(key)
        if now >= self._until.get(key, -math.inf):
            self._until.pop(key, None)
            return False
        return True

    def fail(self, key: str, now: float) -> bool:
        """Count a failure; True when it starts a lockout."""
        key = _bounded_key(key)
        times = self._failures.pop(key, deque())
        times.append(now)
        while times[0] <= now - self._policy.window:
            times.popleft()
        if len(times) >= self._policy.max_failures:
            self._until[key] = now + self._policy.period
            while len(self._until) > self._max:
                del self._until[next(iter(self._until))]
                self.evicted += 1
            return True
        self._failures[key] = times
        while len(self._failures) > self._max:
            del self._failures[next(iter(self._failures))]
            self.evicted += 1
        return False

    def clear(self, key: str) -> None:
        self._failures.pop(_bounded_key(key), None)


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
        self.nonces_evicted = 0  # live nonces dropped from the full replay table (they count as used)

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
            if value.strip().replace("\t", " ").partition(" ")[0].lower() != "digest":
                # RFC 7235 §4.2: credentials "for the realm of the resource being requested"; a scheme
                # we do not speak names none of ours, so it is ignored and a challenge follows
                # (RFC 4475 'regaut01': an unknown scheme gets 401, not 400).
                continue
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
                self.nonces_evicted += 1
                self._watermark = max(self._watermark, old_issued)
        return None
