"""cti.tokens: issue/verify round trip, expiry on a fake clock, tampering, malformed input (JWTs, HS256)."""

from __future__ import annotations

import base64
import json
import warnings

import jwt
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


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_edited_claims_are_a_bad_signature() -> None:
    clock = FakeClock()
    tokens = issuer(clock)
    header, payload, signature = tokens.issue(Role.AGENT, "1001").token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "operator"
    forged = _b64(json.dumps(claims).encode())
    with pytest.raises(TokenError) as err:
        tokens.verify(f"{header}.{forged}.{signature}")
    assert err.value.code == "token_bad_signature"


def test_unsigned_and_other_algorithm_tokens_are_refused() -> None:
    clock = FakeClock()
    tokens = issuer(clock)
    header, payload, _ = tokens.issue(Role.AGENT, "1001").token.split(".")
    unsigned = _b64(b'{"alg":"none","typ":"JWT"}')
    for token in (f"{unsigned}.{payload}.", f"{unsigned}.{payload}.{_}"):
        with pytest.raises(TokenError) as err:
            tokens.verify(token)
        assert err.value.code in {"token_bad_signature", "token_malformed"}
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    with warnings.catch_warnings():  # PyJWT would like a longer key for HS512: beside the point here
        warnings.simplefilter("ignore")
        other = jwt.encode(claims, SECRET, algorithm="HS512")  # the right secret, an algorithm we do not accept
    with pytest.raises(TokenError) as err:
        tokens.verify(other)
    assert err.value.code == "token_bad_signature"


def test_a_token_is_a_standard_hs256_jwt() -> None:
    clock = FakeClock()
    issued = issuer(clock).issue(Role.SUPERVISOR, "sup1")
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"
    claims = jwt.decode(issued.token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["sub"] == "sup1" and claims["role"] == "supervisor" and claims["jti"] == issued.token_id


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", ".x", "x.", "é.é", "a" * 5000])
def test_malformed(token: str) -> None:
    with pytest.raises(TokenError) as err:
        issuer(FakeClock()).verify(token)
    assert err.value.code == "token_malformed"


def test_signed_garbage_claims_are_refused() -> None:
    import hashlib
    import hmac

    def sign(signing_input: str) -> str:
        return _b64(hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest())

    tokens = issuer(FakeClock())
    header = _b64(b'{"alg":"HS256","typ":"JWT"}')
    for claims in (b"[1]", b'{"v": 1, "role": "root", "sub": "x", "iat": 0, "exp": 1e12, "jti": "j"}', b"not json",
                   b'{"v": 1, "role": "agent", "sub": "x", "iat": 0, "exp": 1e12}',  # no jti
                   b'{"v": 2, "role": "agent", "sub": "x", "iat": 0, "exp": 1e12, "jti": "j"}',
                   b'{"v": 1, "role": "agent", "sub": "x", "iat": 0, "exp": "never", "jti": "j"}'):
        signing_input = f"{header}.{_b64(claims)}"
        with pytest.raises(TokenError) as err:
            tokens.verify(f"{signing_input}.{sign(signing_input)}")
        assert err.value.code in {"token_invalid_claims", "token_malformed"}, claims


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        TokenIssuer(b"short", ttl_s=1, clock=FakeClock())
    with pytest.raises(ValueError):  # HS256 wants a 256-bit key (RFC 7518 §3.2)
        TokenIssuer(b"s" * 31, ttl_s=1, clock=FakeClock())
    with pytest.raises(ValueError):
        TokenIssuer(SECRET, ttl_s=0, clock=FakeClock())
    with pytest.raises(ValueError):
        issuer(FakeClock()).issue(Role.AGENT, "")
    with pytest.raises(ValueError):
        issuer(FakeClock()).issue(Role.AGENT, "1001", ttl_s=-1)
