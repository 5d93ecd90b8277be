"""Signed bearer tokens for the WebSocket gateway and the login route.

A token is ``base64url(claims JSON) + "." + base64url(HMAC-SHA256(secret, first part))`` with no padding. The
claims are ``{"v": 1, "role", "sub", "iat", "exp", "jti"}``: role (``agent``, ``supervisor`` or ``operator``),
subject (agent id, supervisor id or ``"operator"``), issued-at and expiry (UTC epoch seconds) and a random token
id. Tokens are opaque to clients: they only hand them back.

The issuer never reads a clock of its own: ``clock`` (UTC epoch seconds) is injected, so tests step time by hand.
Signatures are compared in constant time (:func:`hmac.compare_digest`) before the claims are even decoded.

Errors::

    TokenError            code: token_malformed | token_bad_signature | token_expired | token_invalid_claims
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from cti.errors import CtiError, SettingsError

__all__ = ["IssuedToken", "Principal", "Role", "TokenError", "TokenIssuer"]

_VERSION: Final = 1
_MAX_TOKEN_LEN: Final = 4096


class Role(enum.StrEnum):
    """Who a token speaks for."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    OPERATOR = "operator"


class TokenError(CtiError):
    """A token was refused; ``code`` is stable and safe to show to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """The verified identity behind a token."""

    role: Role
    subject: str
    expires_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedToken:
    """A freshly issued token and what it grants."""

    token: str
    role: Role
    subject: str
    issued_at: float
    expires_at: float
    token_id: str

    @property
    def principal(self) -> Principal:
        return Principal(role=self.role, subject=self.subject, expires_at=self.expires_at)


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("token_malformed", "token is not base64url") from exc


class TokenIssuer:
    """Issues and verifies tokens signed with ``secret``; ``ttl_s`` is the default lifetime."""

    def __init__(self, secret: bytes, *, ttl_s: float, clock: Callable[[], float]) -> None:
        if len(secret) < 16:
            raise SettingsError("token secret must be at least 16 bytes")
        if ttl_s <= 0:
            raise SettingsError("ttl_s must be positive")
        self._secret = secret
        self._ttl_s = ttl_s
        self._clock = clock

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    def _sign(self, payload: str) -> str:
        return _b64encode(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, role: Role, subject: str, *, ttl_s: float | None = None) -> IssuedToken:
        """Issue a token for ``subject`` acting as ``role``, valid ``ttl_s`` (default: the issuer's) seconds.

        Raises:
            SettingsError: empty subject or non-positive ttl.
        """
        if not subject:
            raise SettingsError("subject must not be empty")
        lifetime = self._ttl_s if ttl_s is None else ttl_s
        if lifetime <= 0:
            raise SettingsError("ttl_s must be positive")
        now = self._clock()
        token_id = secrets.token_urlsafe(12)
        claims = {"v": _VERSION, "role": role.value, "sub": subject, "iat": now, "exp": now + lifetime,
                  "jti": token_id}
        payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
        return IssuedToken(token=f"{payload}.{self._sign(payload)}", role=role, subject=subject, issued_at=now,
                           expires_at=now + lifetime, token_id=token_id)

    def verify(self, token: str) -> Principal:
        """Check the signature and expiry of ``token`` and return who it speaks for.

        Raises:
            TokenError: ``token_malformed`` (shape), ``token_bad_signature``, ``token_invalid_claims`` (a signed
                token with claims this version does not understand) or ``token_expired``.
        """
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_LEN or token.count(".") != 1:
            raise TokenError("token_malformed", "token must be two base64url parts joined by '.'")
        payload, signature = token.split(".")
        if not payload or not signature or not payload.isascii() or not signature.isascii():
            raise TokenError("token_malformed", "token must be two base64url parts joined by '.'")
        if not hmac.compare_digest(self._sign(payload).encode(), signature.encode()):
            raise TokenError("token_bad_signature", "token signature does not match")
        claims = self._claims(payload)
        if self._clock() >= claims["exp"]:
            raise TokenError("token_expired", "token has expired")
        return Principal(role=Role(claims["role"]), subject=claims["sub"], expires_at=float(claims["exp"]))

    @staticmethod
    def _claims(payload: str) -> dict[str, Any]:
        try:
            claims = json.loads(_b64decode(payload))
        except (UnicodeDecodeError, ValueError) as exc:
            raise TokenError("token_malformed", "token claims are not JSON") from exc
        valid = (
            isinstance(claims, dict)
            and claims.get("v") == _VERSION
            and claims.get("role") in {r.value for r in Role}
            and isinstance(claims.get("sub"), str) and claims["sub"]
            and all(isinstance(claims.get(k), int | float) and not isinstance(claims.get(k), bool)
                    for k in ("iat", "exp"))
        )
        if not valid:
            raise TokenError("token_invalid_claims", "token claims are not understood")
        checked: dict[str, Any] = claims
        return checked
