"""cti.tokens: issue/verify round trip, expiry on a fake clock, tampering, malformed input."""

from __future__ import annotations

import base64
import json

import pytest

from cti.tokens import Principal, Role, TokenError, TokenIssuer

SECRET = b"s" * 32


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def issuer(clock: FakeClock, secret: bytes = SECRET, ttl_s: float = 60.0) -> TokenIssuer:
    return TokenIssuer(secret, ttl_s=ttl_s, clock=clock)


@pytest.mark.parametrize("role", list(Role))
def test_round_trip_for_every_role(role: Role) -> None:
    clock = FakeClock()
    issued = issuer(clock).issue(role, "1001")
    assert issued.expires_at == clock.now + 60.0
    assert issuer(clock).verify(issued.token) == Principal(role=role, subject="1001", expires_at=clock.now + 60.0)


def test_token_ids_differ_and_token_is_url_safe() -> None:
    tokens = issuer(FakeClock())
    a, b = tokens.issue(Role.AGENT, "1001"), tokens.issue(Role.AGENT, "1001")
    assert a.token_id != b.token_id and a.token != b.token
    assert set(a.token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_expires_exactly_at_expiry() -> None:
    clock = FakeClock()
    tokens = issuer(clock)
    token = tokens.issue(Role.SUPERVISOR, "sup1", ttl_s=10).token
    clock.now += 9.999
    assert tokens.verify(token).subject == "sup1"
    clock.now += 0.001
    with pytest.raises(TokenError) as err:
        tokens.verify(token)
    assert err.value.code == "token_expired"


def test_other_secret_is_a_bad_signature() -> None:
    clock = FakeClock()
    token = issuer(clock, secret=b"x" * 32).issue(Role.OPERATOR, "operator").token
    with pytest.raises(TokenError) as err:
        issuer(clock).verify(token)
    assert err.value.code == "token_bad_signature"


def test_edited_claims_are_a_bad_signature() -> None:
    clock = FakeClock()
    tokens = issuer(clock)
    payload, signature = tokens.issue(Role.AGENT, "1001").token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "operator"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError) as err:
        tokens.verify(f"{forged}.{signature}")
    assert err.value.code == "token_bad_signature"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", ".x", "x.", "é.é", "a" * 5000])
def test_malformed(token: str) -> None:
    with pytest.raises(TokenError) as err:
        issuer(FakeClock()).verify(token)
    assert err.value.code == "token_malformed"


def test_signed_garbage_claims_are_refused() -> None:
    import hashlib
    import hmac

    def sign(payload: str) -> str:
        digest = hmac.new(SECRET, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    tokens = issuer(FakeClock())
    for claims in (b"[1]", b'{"v": 1, "role": "root", "sub": "x", "iat": 0, "exp": 1e12}', b"not json"):
        payload = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
        with pytest.raises(TokenError) as err:
            tokens.verify(f"{payload}.{sign(payload)}")
        assert err.value.code in {"token_invalid_claims", "token_malformed"}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        TokenIssuer(b"short", ttl_s=1, clock=FakeClock())
    with pytest.raises(ValueError):
        TokenIssuer(SECRET, ttl_s=0, clock=FakeClock())
    with pytest.raises(ValueError):
        issuer(FakeClock()).issue(Role.AGENT, "")
    with pytest.raises(ValueError):
        issuer(FakeClock()).issue(Role.AGENT, "1001", ttl_s=-1)
