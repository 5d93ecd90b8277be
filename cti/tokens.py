"""Signed bearer tokens for the WebSocket gateway and the login route: JSON Web Tokens (RFC 7519) through PyJWT.

A token is a JWT signed with HS256 (HMAC-SHA256, RFC 7518 §3.2) under ``token_secret``. The claims are
``{"v": 1, "role", "sub", "iat", "exp", "jti"}``: role (``agent``, ``supervisor`` or ``operator``), subject (agent
id, supervisor id or ``"operator"``), issued-at and expiry (UTC epoch seconds) and a random token id. Tokens are
opaque to clients: they only hand them back.

PyJWT signs, parses and checks the signature in constant time; only ``HS256`` is accepted on the way in (no
``none``, no algorithm taken from the token). The issuer never reads a clock of its own: ``clock`` (UTC epoch
seconds) is injected and the expiry is checked against it here (PyJWT's own time checks are off), so tests step
time by hand. RFC 7518 §3.2: "A key of the same size as the hash output (for instance, 256 bits for "HS256") or
larger MUST be used with this algorithm", hence the 32-byte minimum for the secret.

Errors::

    CtiError (cti.errors)
    └── TokenError        code: token_malformed | token_bad_signature | token_expired | token_invalid_claims
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import jwt

from cti.errors import CtiError, SettingsError

__all__ = ["MIN_SECRET_BYTES", "IssuedToken", "Principal", "Role", "TokenError", "TokenIssuer"]

_VERSION: Final = 1
_MAX_TOKEN_LEN: Final = 4096
_ALGORITHM: Final = "HS256"
MIN_SECRET_BYTES: Final = 32
# The expiry is checked against the injected clock, not PyJWT's; the claims must be there all the same.
_DECODE_OPTIONS: Final[Any] = {
    "verify_signature": True, "verify_exp": False, "verify_iat": False, "verify_nbf": False,
    "require": ["exp", "iat", "sub", "jti"],
}


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


class TokenIssuer:
    """Issues and verifies tokens signed with ``secret``; ``ttl_s`` is the default lifetime."""

    def __init__(self, secret: bytes, *, ttl_s: float, clock: Callable[[], float]) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise SettingsError(f"token secret must be at least {MIN_SECRET_BYTES} bytes (RFC 7518 §3.2)")
        if ttl_s <= 0:
            raise SettingsError("ttl_s must be positive")
        self._secret = secret
        self._ttl_s = ttl_s
        self._clock = clock

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

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
        token = jwt.encode(claims, self._secret, algorithm=_ALGORITHM)
        return IssuedToken(token=token, role=role, subject=subject, issued_at=now,
                           expires_at=now + lifetime, token_id=token_id)

    def verify(self, token: str) -> Principal:
        """Check the signature and expiry of ``token`` and return who it speaks for.

        Raises:
            TokenError: ``token_malformed`` (shape), ``token_bad_signature``, ``token_invalid_claims`` (a signed
                token with claims this version does not understand) or ``token_expired``.
        """
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_LEN or token.count(".") != 2 or not token.isascii():
            raise TokenError("token_malformed", "token must be a JSON Web Token (three base64url parts)")
        try:
            claims = jwt.decode(token, self._secret, algorithms=[_ALGORITHM], options=_DECODE_OPTIONS)
        except jwt.InvalidSignatureError as exc:
            raise TokenError("token_bad_signature", "token signature does not match") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise TokenError("token_bad_signature", "token is not signed with HS256") from exc
        except jwt.DecodeError as exc:
            raise TokenError("token_malformed", "token is not a well-formed JSON Web Token") from exc
        except jwt.InvalidTokenError as exc:  # a required claim missing or of the wrong type
            raise TokenError("token_invalid_claims", "token claims are not understood") from exc
        claims = self._checked(claims)
        if self._clock() >= claims["exp"]:
            raise TokenError("token_expired", "token has expired")
        return Principal(role=Role(claims["role"]), subject=claims["sub"], expires_at=float(claims["exp"]))

    @staticmethod
    def _checked(claims: dict[str, Any]) -> dict[str, Any]:
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
