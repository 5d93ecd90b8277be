"""Tests for sip.auth: RFC vectors, the header grammar, nonces, replay, the digest-uri rule, lockouts."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from sip.auth import (
    AuthError,
    AuthPolicy,
    AuthReason,
    AuthResult,
    DigestAlgorithm,
    DigestAuthenticator,
    DigestChallenge,
    DigestCredentials,
    LockoutPolicy,
    answer_challenge,
    compute_response,
    digest_uri_matches,
    parse_challenge,
    parse_credentials,
    parse_digest_params,
)

SECRET = b"0123456789abcdef0123456789abcdef"
REALM = "cti.example"
RURI = "sip:cti.example"


BOTH = (DigestAlgorithm.SHA_256, DigestAlgorithm.MD5)  # the policy of a server configured to offer SHA-256


def make(**policy: object) -> DigestAuthenticator:
    """An authenticator offering SHA-256 then MD5 unless ``algorithms`` says otherwise."""
    policy.setdefault("algorithms", BOTH)
    return DigestAuthenticator(AuthPolicy(realm=REALM, **policy), SECRET)  # type: ignore[arg-type]


def challenge_for(auth: DigestAuthenticator, alg: DigestAlgorithm, now: float) -> DigestChallenge:
    outcome = auth.authenticate(method="REGISTER", request_uri=RURI, authorization=(), account="1001",
                                password="pw", source="192.0.2.1", now=now)
    assert outcome.result is AuthResult.CHALLENGE
    return next(c for c in map(parse_challenge, outcome.challenges) if c.algorithm is alg)


def check(auth: DigestAuthenticator, creds: DigestCredentials | str, now: float, *, account: str = "1001",
          password: str | None = "pw", source: str = "192.0.2.1", ruri: str = RURI) -> tuple[AuthResult, AuthReason]:
    value = creds if isinstance(creds, str) else creds.header_value()
    o = auth.authenticate(method="REGISTER", request_uri=ruri, authorization=[value], account=account,
                          password=password, source=source, now=now)
    return o.result, o.reason


def answer(ch: DigestChallenge, *, password: str = "pw", nc: int = 1, uri: str = RURI) -> DigestCredentials:
    return answer_challenge(ch, username="1001", password=password, method="REGISTER", uri=uri, cnonce="c0ffee",
                            nc=nc)


# --- RFC test vectors -------------------------------------------------------------------------------------

RFC7616 = dict(username="Mufasa", realm="http-auth@example.org", password="Circle of Life", method="GET",
               uri="/dir/index.html", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", qop="auth",
               nc="00000001", cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")


@pytest.mark.parametrize(("alg", "expected"), [
    (DigestAlgorithm.MD5, "8ca523f5e9506fed4657c9700eebdbec"),
    (DigestAlgorithm.SHA_256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_rfc7616_3_9_1_vectors(alg: DigestAlgorithm, expected: str) -> None:
    assert compute_response(algorithm=alg, **RFC7616) == expected


def test_rfc7616_authorization_header_parses_and_recomputes() -> None:
    header = ('Digest username="Mufasa",\r\n realm="http-auth@example.org",\r\n uri="/dir/index.html",\r\n'
              ' algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001,'
              ' cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth,'
              ' response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",'
              ' opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')
    c = parse_credentials(header.replace("\r\n", ""))
    assert (c.algorithm, c.qop, c.nc, c.opaque) == (DigestAlgorithm.SHA_256, "auth", "00000001",
                                                    "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
    assert compute_response(algorithm=c.algorithm, username=c.username, realm=c.realm, password="Circle of Life",
                            method="GET", uri=c.uri, nonce=c.nonce, qop=c.qop, nc=c.nc, cnonce=c.cnonce) == c.response


def test_rfc2617_3_5_vector() -> None:
    assert compute_response(algorithm=DigestAlgorithm.MD5, username="Mufasa", realm="testrealm@host.com",
                            password="Circle Of Life", method="GET", uri="/dir/index.html",
                            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", qop="auth", nc="00000001",
                            cnonce="0a4f113b") == "6629fae49393a05397450978507c4ef1"


def test_pyvoip_style_rfc2069_response_matches_its_formula() -> None:
    ha1 = hashlib.md5(b"1001:cti.example:pw").hexdigest()
    ha2 = hashlib.md5(b"REGISTER:sip:cti.example;transport=UDP").hexdigest()
    expected = hashlib.md5(f"{ha1}:abc:{ha2}".encode()).hexdigest()
    assert compute_response(algorithm=DigestAlgorithm.MD5, username="1001", realm=REALM, password="pw",
                            method="REGISTER", uri="sip:cti.example;transport=UDP", nonce="abc") == expected


# --- header grammar ----------------------------------------------------------------------------------------

def test_parse_quoted_escapes_case_insensitive_names_and_blanks() -> None:
    p = parse_digest_params('dIgEsT  USERNAME = "a\\"b\\\\c" ,Realm="x, y",nc=00000001 ,  qop=auth')
    assert p == {"username": 'a"b\\c', "realm": "x, y", "nc": "00000001", "qop": "auth"}


@pytest.mark.parametrize("bad", [
    "", "Digest", "Digest ", "Basic dXNlcjpwYXNz", 'Digest realm="a", realm="b"', 'Digest realm="a" nonce="b"',
    'Digest realm="a",', 'Digest realm="unterminated', "Digest =x", 'Digest realm="a\x00b"', "Digest a=b\x01c",
    'Digest realm=a"b', "Digest realm=" + "x" * 9000,
])
def test_parse_garbage_is_a_clean_error(bad: str) -> None:
    with pytest.raises(AuthError):
        parse_digest_params(bad)


@pytest.mark.parametrize("bad", [
    'Digest username="a", realm="r", nonce="n", uri="u"',  # no response
    'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth',  # qop without nc/cnonce
    'Digest username="a", realm="r", nonce="n", uri="u", response="x", nc=00000001, cnonce="c"',  # no qop
    'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth, nc=1, cnonce="c"',
    'Digest username="a", realm="r", nonce="n", uri="u", response="x", algorithm=SHA-512',
])
def test_parse_credentials_refuses_inconsistent_values(bad: str) -> None:
    with pytest.raises(AuthError):
        parse_credentials(bad)


@given(st.text(max_size=300))
def test_fuzz_parse_credentials_never_raises_anything_else(text: str) -> None:
    try:
        parse_credentials(text)
    except AuthError:
        pass


@given(st.text(alphabet='Digest usernamrlocqp=",\\ \t', max_size=120))
def test_fuzz_near_miss_headers(text: str) -> None:
    try:
        parse_credentials(text)
        parse_challenge(text)
    except AuthError:
        pass


_value = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)


@given(username=_value, realm=_value, nonce=_value, uri=_value, cnonce=_value,
       alg=st.sampled_from(DigestAlgorithm), nc=st.integers(1, 2**32 - 1), with_qop=st.booleans())
def test_credentials_round_trip(username: str, realm: str, nonce: str, uri: str, cnonce: str,
                                alg: DigestAlgorithm, nc: int, with_qop: bool) -> None:
    creds = DigestCredentials(username=username, realm=realm, nonce=nonce, uri=uri, response="ab" * 16,
                              algorithm=alg, qop="auth" if with_qop else None, nc=f"{nc:08x}" if with_qop else None,
                              cnonce=cnonce if with_qop else None, opaque=cnonce)
    assert parse_credentials(creds.header_value()) == creds


# --- challenges --------------------------------------------------------------------------------------------

def test_the_default_policy_offers_md5_alone_and_refuses_sha256_answers() -> None:
    # baresip 1.0 gives up on a whole 401 when any of its challenges names SHA-256: MD5 alone by default.
    auth = DigestAuthenticator(AuthPolicy(realm=REALM), SECRET)
    assert [parse_challenge(v).algorithm for v in auth.challenges(1.0)] == [DigestAlgorithm.MD5]
    offered = make()
    sha = answer(challenge_for(offered, DigestAlgorithm.SHA_256, 0.0))
    assert check(auth, sha, 1.0) == (AuthResult.CHALLENGE, AuthReason.UNSUPPORTED)
    assert check(auth, answer(challenge_for(auth, DigestAlgorithm.MD5, 0.0)), 1.0)[0] is AuthResult.ACCEPTED


def test_challenges_follow_the_configured_order() -> None:
    order = (DigestAlgorithm.MD5, DigestAlgorithm.SHA_256)
    parsed = [parse_challenge(v) for v in make(algorithms=order).challenges(1.0)]
    assert tuple(c.algorithm for c in parsed) == order


def test_challenges_offer_sha256_then_md5_with_one_nonce_qop_and_opaque() -> None:
    auth = make()
    values = auth.challenges(100.0)
    parsed = [parse_challenge(v) for v in values]
    assert [c.algorithm for c in parsed] == [DigestAlgorithm.SHA_256, DigestAlgorithm.MD5]
    assert {c.nonce for c in parsed} == {parsed[0].nonce}
    assert all(c.qop == ("auth",) and c.opaque == auth.opaque and c.realm == REALM and not c.stale for c in parsed)
    assert all(parse_challenge(v).stale for v in auth.challenges(100.0, stale=True))
    assert auth.challenges(100.0)[0] != values[0]  # a fresh nonce each time


def test_pyvoip_reads_our_challenge() -> None:
    # pyVoIP 1.6.8 parses each WWW-Authenticate with this regex; the last header wins (ours: MD5).
    pyvoip = re.compile(r'(\w+)=("[^",]+"|[^ \t,]+)')
    last = make().challenges(1.0)[-1].replace("Digest ", "")
    fields = {k: v.strip('"') for k, v in pyvoip.findall(last)}
    assert fields["realm"] == REALM and fields["algorithm"] == "MD5" and len(fields["nonce"]) == 48


def test_answer_challenge_needs_cnonce_when_qop_offered() -> None:
    ch = DigestChallenge(realm=REALM, nonce="n", qop=("auth",))
    with pytest.raises(AuthError):
        answer_challenge(ch, username="u", password="p", method="REGISTER", uri=RURI)


# --- nonces and verification -------------------------------------------------------------------------------

def test_nonce_is_verified_without_storage_and_tampering_is_detected() -> None:
    auth = make()
    nonce = auth.issue_nonce(1234.5)
    assert auth.nonce_issued_at(nonce) == 1234.5
    assert make().nonce_issued_at(nonce) == 1234.5  # another instance, same secret
    assert DigestAuthenticator(AuthPolicy(realm=REALM), b"x" * 32).nonce_issued_at(nonce) is None
    assert DigestAuthenticator(AuthPolicy(realm="other"), SECRET).nonce_issued_at(nonce) is None
    flipped = nonce[:3] + ("A" if nonce[3] != "A" else "B") + nonce[4:]
    for bad in (flipped, nonce[:-1], nonce + "A", "é" * 48, "!" * 48, ""):
        assert auth.nonce_issued_at(bad) is None


@pytest.mark.parametrize("alg", [DigestAlgorithm.SHA_256, DigestAlgorithm.MD5])
def test_qop_auth_accepted(alg: DigestAlgorithm) -> None:
    auth = make()
    assert check(auth, answer(challenge_for(auth, alg, 0.0)), 1.0) == (AuthResult.ACCEPTED, AuthReason.OK)


def test_session_algorithms_when_enabled() -> None:
    auth = make(algorithms=(DigestAlgorithm.SHA_256_SESS, DigestAlgorithm.MD5_SESS))
    for alg in (DigestAlgorithm.SHA_256_SESS, DigestAlgorithm.MD5_SESS):
        assert check(auth, answer(challenge_for(auth, alg, 0.0)), 1.0)[0] is AuthResult.ACCEPTED


def test_rfc2069_no_qop_md5_like_pyvoip() -> None:
    auth = make()
    ch = replace(challenge_for(auth, DigestAlgorithm.MD5, 0.0), qop=())
    creds = answer(ch, uri="sip:cti.example;transport=UDP")
    assert creds.qop is None and creds.cnonce is None
    assert check(auth, creds, 1.0) == (AuthResult.ACCEPTED, AuthReason.OK)


def test_no_qop_refused_for_sha256_or_when_disabled() -> None:
    auth = make()
    ch = replace(challenge_for(auth, DigestAlgorithm.SHA_256, 0.0), qop=())
    assert check(auth, answer(ch), 1.0) == (AuthResult.REJECTED, AuthReason.UNSUPPORTED)
    strict = make(allow_no_qop=False)
    ch = replace(challenge_for(strict, DigestAlgorithm.MD5, 0.0), qop=())
    assert check(strict, answer(ch), 1.0) == (AuthResult.REJECTED, AuthReason.UNSUPPORTED)


def test_wrong_password_rejected_with_403() -> None:
    auth = make()
    creds = answer(challenge_for(auth, DigestAlgorithm.SHA_256, 0.0), password="guess")
    o = auth.authenticate(method="REGISTER", request_uri=RURI, authorization=[creds.header_value()],
                          account="1001", password="pw", source="192.0.2.1", now=1.0)
    assert (o.result, o.reason, o.status, o.challenges) == (AuthResult.REJECTED, AuthReason.BAD_RESPONSE, 403, ())


def test_response_must_match_method() -> None:
    auth = make()
    creds = answer(challenge_for(auth, DigestAlgorithm.MD5, 0.0))
    o = auth.authenticate(method="INVITE", request_uri=RURI, authorization=[creds.header_value()],
                          account="1001", password="pw", source="192.0.2.1", now=1.0)
    assert o.reason is AuthReason.BAD_RESPONSE


def test_expired_nonce_is_stale_only_when_response_is_right() -> None:
    auth = make(nonce_lifetime=300.0)
    ch = challenge_for(auth, DigestAlgorithm.SHA_256, 0.0)
    assert check(auth, answer(ch), 299.0)[0] is AuthResult.ACCEPTED
    auth = make(nonce_lifetime=300.0)
    o = auth.authenticate(method="REGISTER", request_uri=RURI, authorization=[answer(ch).header_value()],
                          account="1001", password="pw", source="192.0.2.1", now=300.0)
    assert (o.result, o.reason, o.status) == (AuthResult.STALE, AuthReason.NONCE_EXPIRED, 401)
    assert all(parse_challenge(v).stale for v in o.challenges) and len(o.challenges) == 2
    assert check(auth, answer(ch, password="bad"), 300.0) == (AuthResult.REJECTED, AuthReason.BAD_RESPONSE)


def test_unknown_or_future_nonce_gets_a_fresh_challenge() -> None:
    auth = make()
    ch = challenge_for(auth, DigestAlgorithm.MD5, 0.0)
    assert check(auth, answer(replace(ch, nonce="bogus")), 1.0) == (AuthResult.CHALLENGE, AuthReason.UNKNOWN_NONCE)
    future = replace(ch, nonce=auth.issue_nonce(50.0))
    assert check(auth, answer(future), 10.0) == (AuthResult.CHALLENGE, AuthReason.UNKNOWN_NONCE)


def test_identity_checks() -> None:
    auth = make()
    ch = challenge_for(auth, DigestAlgorithm.SHA_256, 0.0)
    assert check(auth, answer(ch), 1.0, account="1002") == (AuthResult.REJECTED, AuthReason.WRONG_USERNAME)
    assert check(auth, answer(ch), 1.0, password=None) == (AuthResult.REJECTED, AuthReason.UNKNOWN_ACCOUNT)
    foreign = answer(replace(ch, realm="elsewhere"))
    assert check(auth, foreign, 1.0) == (AuthResult.CHALLENGE, AuthReason.NO_CREDENTIALS)
    assert check(auth, replace(answer(ch), opaque="forged"), 1.0) == (AuthResult.REJECTED,
                                                                      AuthReason.OPAQUE_MISMATCH)
    assert check(auth, "Digest garbage", 1.0) == (AuthResult.REJECTED, AuthReason.MALFORMED)
    md5_only = make(algorithms=(DigestAlgorithm.MD5,))
    assert check(md5_only, answer(ch), 1.0) == (AuthResult.CHALLENGE, AuthReason.UNSUPPORTED)


def test_picks_our_realm_among_several_authorization_headers_and_proxy_uses_407() -> None:
    auth = make()
    ch = challenge_for(auth, DigestAlgorithm.SHA_256, 0.0)
    values = ["Digest junk", answer(replace(ch, realm="other")).header_value(), answer(ch).header_value()]
    o = auth.authenticate(method="REGISTER", request_uri=RURI, authorization=values, account="1001",
                          password="pw", source="192.0.2.1", now=1.0)
    assert o.result is AuthResult.ACCEPTED and o.status == 200
    o = auth.authenticate(method="INVITE", request_uri=RURI, authorization=(), account="1001", password="pw",
                          source="192.0.2.1", now=1.0, proxy=True)
    assert (o.result, o.status) == (AuthResult.CHALLENGE, 407)


# --- replay ------------------------------------------------------------------------------------------------

def test_qop_nc_must_grow() -> None:
    auth = make()
    ch = challenge_for(auth, DigestAlgorithm.SHA_256, 0.0)
    assert check(auth, answer(ch, nc=1), 1.0)[0] is AuthResult.ACCEPTED
    assert check(auth, answer(ch, nc=1), 2.0) == (AuthResult.REJECTED, AuthReason.NC_REPLAYED)
    assert check(auth, answer(ch, nc=3), 3.0)[0] is AuthResult.ACCEPTED
    assert check(auth, answer(ch, nc=2), 4.0) == (AuthResult.REJECTED, AuthReason.NC_REPLAYED)


def test_no_qop_nonce_serves_once_then_stale() -> None:
    auth = make()
    ch = replace(challenge_for(auth, DigestAlgorithm.MD5, 0.0), qop=())
    assert check(auth, answer(ch), 1.0)[0] is AuthResult.ACCEPTED
    assert check(auth, answer(ch), 2.0) == (AuthResult.STALE, AuthReason.NONCE_REUSED)


def test_replay_table_is_bounded_and_evicted_live_nonces_count_as_used() -> None:
    auth = make(max_tracked=2)
    chs = [challenge_for(auth, DigestAlgorithm.SHA_256, float(t)) for t in range(3)]
    for ch in chs:
        assert check(auth, answer(ch), 5.0)[0] is AuthResult.ACCEPTED
    assert len(auth._nonces) == 2
    assert check(auth, answer(chs[0], nc=2), 6.0) == (AuthResult.STALE, AuthReason.NONCE_REUSED)
    assert check(auth, answer(chs[2], nc=2), 6.0)[0] is AuthResult.ACCEPTED


def test_replay_entries_expire_with_their_nonce() -> None:
    auth = make(nonce_lifetime=10.0)
    first = challenge_for(auth, DigestAlgorithm.SHA_256, 0.0)
    assert check(auth, answer(first), 1.0)[0] is AuthResult.ACCEPTED
    later = challenge_for(auth, DigestAlgorithm.SHA_256, 20.0)
    assert check(auth, answer(later), 21.0)[0] is AuthResult.ACCEPTED
    assert list(auth._nonces) == [later.nonce]


# --- digest uri --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("digest_uri", "ruri", "ok"), [
    ("sip:cti.example;transport=UDP", "sip:cti.example", True),  # pyVoIP 1.6.8
    ("sip:cti.example;transport=tcp", "sip:cti.example;transport=UDP", True),
    ("SIP:CTI.example", "sip:cti.example", True),
    ("sip:%61lice@cti.example", "sip:alice@cti.example", True),
    ("sip:cti.example;lr;foo=1", "sip:cti.example;FOO=1", True),
    ("sip:Alice@cti.example", "sip:alice@cti.example", False),
    ("sip:cti.example:5060", "sip:cti.example", False),
    ("sip:other.example", "sip:cti.example", False),
    ("sips:cti.example", "sip:cti.example", False),
    ("sip:cti.example;user=phone", "sip:cti.example", False),
    ("sip:cti.example;maddr=192.0.2.1", "sip:cti.example", False),
    ("sip:cti.example;foo=1", "sip:cti.example;foo=2", False),
    ("sip:cti.example?subject=x", "sip:cti.example", False),
    ("sip:[2001:db8::1]:5070", "sip:[2001:DB8::1]:5070", True),
    ("/dir/index.html", "/dir/index.html", True),
    ("/dir/index.html", "sip:cti.example", False),
])
def test_digest_uri_matches(digest_uri: str, ruri: str, ok: bool) -> None:
    assert digest_uri_matches(digest_uri, ruri) is ok


def test_uri_mismatch_is_400() -> None:
    auth = make()
    creds = answer(challenge_for(auth, DigestAlgorithm.SHA_256, 0.0), uri="sip:elsewhere.example")
    assert check(auth, creds, 1.0) == (AuthResult.REJECTED, AuthReason.URI_MISMATCH)


# --- lockout -----------------------------------------------------------------------------------------------

def test_source_lockout_after_five_failures_then_released() -> None:
    auth = make(source_lockout=LockoutPolicy(max_failures=5, window=60.0, period=300.0))
    now = 0.0
    for _ in range(5):
        ch = challenge_for(auth, DigestAlgorithm.SHA_256, now)
        assert check(auth, answer(ch, password="guess"), now)[0] is AuthResult.REJECTED
        now += 10.0
    o = auth.authenticate(method="REGISTER", request_uri=RURI, authorization=(), account="1001", password="pw",
                          source="192.0.2.1", now=now)
    assert (o.result, o.status) == (AuthResult.LOCKED_OUT, 403)
    assert check(auth, "Digest x=y", now, source="192.0.2.99")[1] is AuthReason.MALFORMED  # other IPs unaffected
    now = 40.0 + 300.0
    ch = challenge_for(auth, DigestAlgorithm.SHA_256, now)
    assert check(auth, answer(ch), now)[0] is AuthResult.ACCEPTED


def test_failures_outside_the_window_do_not_lock() -> None:
    auth = make(source_lockout=LockoutPolicy(max_failures=3, window=60.0, period=300.0))
    for t in (0.0, 40.0, 80.0, 120.0, 160.0):
        ch = challenge_for(auth, DigestAlgorithm.SHA_256, t)
        assert check(auth, answer(ch, password="guess"), t)[0] is AuthResult.REJECTED


def test_user_lockout_across_sources_and_success_resets_user_count() -> None:
    auth = make(user_lockout=LockoutPolicy(max_failures=3, window=60.0, period=100.0))
    for i in range(2):
        ch = challenge_for(auth, DigestAlgorithm.SHA_256, 0.0)
        check(auth, answer(ch, password="guess"), 0.0, source=f"198.51.100.{i}")
    ch = challenge_for(auth, DigestAlgorithm.SHA_256, 0.0)
    assert check(auth, answer(ch), 1.0, source="203.0.113.5")[0] is AuthResult.ACCEPTED  # resets the user count
    for i in range(3):
        ch = challenge_for(auth, DigestAlgorithm.SHA_256, 2.0)
        check(auth, answer(ch, password="guess"), 2.0, source=f"198.51.100.{i + 10}")
    assert check(auth, "Digest x=y", 3.0, source="203.0.113.5") == (AuthResult.LOCKED_OUT, AuthReason.LOCKED_OUT)


def test_logs_name_the_event_and_never_the_secret_material() -> None:
    auth = make(source_lockout=LockoutPolicy(max_failures=1))
    ch = challenge_for(auth, DigestAlgorithm.SHA_256, 0.0)
    creds = answer(ch, password="hunter2")
    with capture_logs() as logs:
        check(auth, creds, 1.0)
    assert [e["event"] for e in logs] == ["sip.account.locked_out", "sip.credentials.refused"]
    text = repr(logs)
    assert "hunter2" not in text and creds.response not in text and "Digest" not in text


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        AuthPolicy(realm='bad"realm')
    with pytest.raises(ValueError):
        AuthPolicy(realm=REALM, algorithms=())
    with pytest.raises(ValueError):
        AuthPolicy(realm=REALM, algorithms=(DigestAlgorithm.MD5, DigestAlgorithm.MD5))
    with pytest.raises(ValueError):
        DigestAuthenticator(AuthPolicy(realm=REALM), b"short")


def test_real_pyvoip_digest_code_is_accepted() -> None:
    pytest.importorskip("pyVoIP.VoIP")  # importing pyVoIP.SIP first trips a circular import
    pyvoip_sip = pytest.importorskip("pyVoIP.SIP")
    from types import SimpleNamespace

    auth = make()
    pyvoip = re.compile(r'(\w+)=("[^",]+"|[^ \t,]+)')  # how pyVoIP 1.6.8 reads WWW-Authenticate
    challenge = {k: v.strip('"') for k, v in pyvoip.findall(auth.challenges(0.0)[-1].replace("Digest ", ""))}
    client = SimpleNamespace(username="1001", password="pw", server="cti.example")
    request = SimpleNamespace(authentication=challenge, headers={"CSeq": {"method": "REGISTER"}})
    response = pyvoip_sip.SIPClient.gen_authorization(client, request).decode()
    header = (f'Digest username="1001",realm="{challenge["realm"]}",nonce="{challenge["nonce"]}",'
              f'uri="sip:cti.example;transport=UDP",response="{response}",algorithm=MD5')  # as gen_register
    assert check(auth, header, 1.0) == (AuthResult.ACCEPTED, AuthReason.OK)
    assert check(auth, header, 2.0) == (AuthResult.STALE, AuthReason.NONCE_REUSED)


def test_tab_after_scheme() -> None:
    assert parse_digest_params("Digest\trealm=a") == {"realm": "a"}


# --- bounded tables under hostile traffic (issue 13) ------------------------------------------------------

def test_lockout_keys_are_bounded_in_size_and_number_and_evictions_are_counted() -> None:
    """The account name comes from the peer (the To user): a flood of long, distinct names must not
    grow the lock-out tables past ``max_tracked`` keys of at most ``LOCKOUT_KEY_MAX`` characters."""
    from sip.auth import LOCKOUT_KEY_MAX

    auth = make(max_tracked=8, source_lockout=LockoutPolicy(max_failures=1000))
    ch = challenge_for(auth, DigestAlgorithm.SHA_256, 0.0)
    for n in range(40):
        account = f"{n}-" + "a" * 5_000
        creds = answer_challenge(ch, username=account, password="wrong", method="REGISTER", uri=RURI,
                                 cnonce="c0ffee")
        assert check(auth, creds, 1.0, account=account)[1] is AuthReason.BAD_RESPONSE
    users = auth._by_user
    assert len(users._failures) <= 8 and users.evicted >= 32
    assert max(len(key) for key in users._failures) <= LOCKOUT_KEY_MAX
    # Long names still lock out, each by its own (hashed) key.
    locked = make(user_lockout=LockoutPolicy(max_failures=2))
    ch = challenge_for(locked, DigestAlgorithm.SHA_256, 0.0)
    account = "b" * 5000
    bad = answer_challenge(ch, username=account, password="x", method="REGISTER", uri=RURI, cnonce="c0ffee")
    check(locked, bad, 1.0, account=account)
    check(locked, bad, 1.0, account=account)
    assert check(locked, bad, 1.0, account=account)[0] is AuthResult.LOCKED_OUT
    assert check(locked, bad, 1.0, account="b" * 4999 + "c")[0] is not AuthResult.LOCKED_OUT


def test_nonce_evictions_are_counted() -> None:
    auth = make(max_tracked=2)
    for t in range(5):
        ch = challenge_for(auth, DigestAlgorithm.SHA_256, float(t))
        assert check(auth, answer(ch), 5.0)[0] is AuthResult.ACCEPTED
    assert len(auth._nonces) == 2 and auth.nonces_evicted == 3
