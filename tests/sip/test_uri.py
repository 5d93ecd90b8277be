"""SIP, SIPS and tel URIs: RFC 3261 §19.1 examples, §19.1.4 comparison, escapes, IPv6, RFC 3966."""

from __future__ import annotations

import pytest

from sip.errors import RemoteSipError
from sip.uri import AbsoluteUri, SipUri, TelUri, parse_hostport, parse_uri, uri_equivalent

# RFC 3261 §19.1.3, every example URI.
RFC_EXAMPLES = [
    "sip:alice@atlanta.com",
    "sip:alice:secretword@atlanta.com;transport=tcp",
    "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
    "sip:+1-212-555-1212:1234@gateway.com;user=phone",
    "sips:1212@gateway.com",
    "sip:alice@192.0.2.4",
    "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
    "sip:alice;day=tuesday@atlanta.com",
]


@pytest.mark.parametrize("text", RFC_EXAMPLES)
def test_rfc_examples_parse_and_serialise_verbatim(text: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    assert str(uri) == text
    assert parse_uri(str(uri)) == uri


def test_rfc_example_components() -> None:
    uri = parse_uri("sip:alice:secretword@atlanta.com;transport=tcp")
    assert isinstance(uri, SipUri)
    assert (uri.scheme, uri.user, uri.password) == ("sip", "alice", "secretword")
    assert (uri.host, uri.port) == ("atlanta.com", None)
    assert uri.param("transport") == "tcp"
    phone = parse_uri("sip:+1-212-555-1212:1234@gateway.com;user=phone")
    assert isinstance(phone, SipUri)
    assert (phone.user, phone.password, phone.param("user")) == ("+1-212-555-1212", "1234", "phone")
    headers = parse_uri("sips:alice@atlanta.com?subject=project%20x&priority=urgent")
    assert isinstance(headers, SipUri)
    assert headers.headers == (("subject", "project x"), ("priority", "urgent"))
    register = parse_uri("sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com")
    assert isinstance(register, SipUri)
    assert (register.user, register.param("method")) == (None, "REGISTER")
    assert register.headers == (("to", "alice@atlanta.com"),)
    odd_user = parse_uri("sip:alice;day=tuesday@atlanta.com")
    assert isinstance(odd_user, SipUri)
    assert (odd_user.user, odd_user.params) == ("alice;day=tuesday", ())


# RFC 3261 §19.1.4: groups of equivalent URIs ...
EQUIVALENT = [
    ["sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"],
    ["sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"],
    [
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ],
    [
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        "sip:alice@atlanta.com?Subject=project%20x&PRIORITY=urgent",  # header names are case-insensitive
    ],
]
# ... and pairs that are not.
NOT_EQUIVALENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),  # user is case-sensitive
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),  # default port still differs
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),  # default transport still differs
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),  # headers never ignored
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),  # no DNS resolution in comparison
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),  # the intransitivity example
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
    ("sip:alice:pw@atlanta.com", "sip:alice:PW@atlanta.com"),
    ("sip:alice@atlanta.com;maddr=10.0.0.1", "sip:alice@atlanta.com"),
    ("sip:alice@atlanta.com;user=phone", "sip:alice@atlanta.com"),
]


@pytest.mark.parametrize("group", EQUIVALENT)
def test_rfc_equivalent_uris(group: list[str]) -> None:
    uris = [parse_uri(text) for text in group]
    for a in uris:
        for b in uris:
            assert uri_equivalent(a, b), (a, b)


@pytest.mark.parametrize(("left", "right"), NOT_EQUIVALENT)
def test_rfc_non_equivalent_uris(left: str, right: str) -> None:
    a, b = parse_uri(left), parse_uri(right)
    assert not uri_equivalent(a, b)
    assert not uri_equivalent(b, a)


def test_comparison_can_ignore_params() -> None:
    a = parse_uri("sip:alice@atlanta.com;transport=udp")
    b = parse_uri("sip:alice@atlanta.com")
    assert uri_equivalent(a, b, ignore_params=frozenset({"transport"}))


def test_escapes_are_decoded_and_reencoded() -> None:
    uri = parse_uri("sip:%61l%69ce%20smith@atlanta.com;x=a%3Bb")
    assert isinstance(uri, SipUri)
    assert uri.user == "alice smith"
    assert uri.param("x") == "a;b"
    assert str(uri) == "sip:alice%20smith@atlanta.com;x=a%3Bb"
    assert parse_uri(str(uri)) == uri


def test_escaped_nul_and_utf8_are_legal() -> None:
    # RFC 4475 'escnull': an escaped NUL in the user part is a valid URI.
    uri = parse_uri("sip:null-%00-null@example.com")
    assert isinstance(uri, SipUri) and uri.user == "null-\x00-null"
    assert str(uri) == "sip:null-%00-null@example.com"
    utf8 = parse_uri("sip:jos%C3%A9@example.com")
    assert isinstance(utf8, SipUri) and utf8.user == "jos\u00e9"
    assert str(utf8) == "sip:jos%C3%A9@example.com"


def test_user_characters_that_need_escaping() -> None:
    uri = SipUri(user="a@b:c%d", password="p;w", host="example.com")
    assert str(uri) == "sip:a%40b%3Ac%25d:p%3Bw@example.com"
    assert parse_uri(str(uri)) == uri


@pytest.mark.parametrize(
    "text",
    [
        "sip:al%ice@atlanta.com",  # % not followed by two hex digits
        "sip:alice%4@atlanta.com",
        "sip:alice@atlanta.com;transport=%zz",
        "sip:alice@atlanta.com?subject=%",
        "sip:%FF@atlanta.com",  # not UTF-8 once unescaped (leaked UnicodeDecodeError)
        "sip:alice@atlanta.com;x=%C3%28",
        "sip:alice@atlanta.com?h=%E2%82",
        "tel:+1234;x=%FF",
    ],
)
def test_broken_escapes_are_400(text: str) -> None:
    with pytest.raises(RemoteSipError) as info:
        parse_uri(text)
    assert info.value.status_hint == 400


def test_ipv6_references() -> None:
    uri = parse_uri("sip:alice@[2001:DB8::10]:5070;transport=udp")
    assert isinstance(uri, SipUri)
    assert (uri.host, uri.port, uri.hostport) == ("[2001:db8::10]", 5070, "[2001:db8::10]:5070")
    assert str(uri) == "sip:alice@[2001:db8::10]:5070;transport=udp"
    v4mapped = parse_uri("sips:[::ffff:192.0.2.1]")
    assert isinstance(v4mapped, SipUri)
    assert v4mapped.host == "[::ffff:192.0.2.1]"


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@[2001:db8::10",
        "sip:[2001:db8::10]x",
        "sip:[fe80::g]",
        "sip:[]",
        "sip:[:::]",  # once accepted: any run of hex digits, colons and dots passed
        "sip:[1:2:3:4:5:6:7:8:9]",
        "sip:[::1.2.3]",
        "sip:[192.0.2.1]",
    ],
)
def test_bad_ipv6_references(text: str) -> None:
    with pytest.raises(RemoteSipError):
        parse_uri(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "alice@atlanta.com",  # no scheme
        "sip:",
        "sip:@atlanta.com",  # empty userinfo
        "sip:alice@",
        "sip:alice@atlanta.com:0",
        "sip:alice@atlanta.com:65536",
        "sip:alice@atlanta.com:50x",
        "sip:alice@atlanta.com:\u00b2",  # superscript two: isdigit() but not DIGIT (leaked ValueError)
        "sip:alice@atlanta.com:\u0665\u0660\u0666\u0660",  # Arabic-Indic digits
        "sip:alice@\u0661.\u0661.\u0661.\u0661",
        "sip:alice@atlanta.com:",
        "sip:alice@-atlanta.com",
        "sip:alice@atl_anta.com",
        "sip:alice@atlanta..com",
        "sip:alice@.atlanta.com",
        "sip:alice@atlanta-.com",
        "sip:alice@256.0.0.1",
        "sip:alice@1.2.3",
        "sip:alice@1.2.3.4.5",
        "sip:alice smith@atlanta.com",
        "sip:<alice>@atlanta.com",
        "sip:jos\u00e9@example.com",  # raw non-ASCII must be escaped
        "sip:alice@example.com;x=\u00e9",
        "sip:alice\x7f@example.com",
        "sip:alice@atlanta.com;;lr",
        "sip:alice@atlanta.com;=x",
        "sip:alice@atlanta.com?=x",
        "tel:",
        "tel:call-me-maybe",
        "urn:",
    ],
)
def test_malformed_uris_are_400(text: str) -> None:
    with pytest.raises(RemoteSipError) as info:
        parse_uri(text)
    assert info.value.status_hint == 400


@pytest.mark.parametrize("host", ["a", "example.com.", "x-1.example.com", "1a.example", "255.255.255.255", "a--b.c"])
def test_valid_hosts(host: str) -> None:
    uri = parse_uri(f"sip:{host}")
    assert isinstance(uri, SipUri) and uri.host == host


def test_params_are_case_insensitive_names_and_keep_order() -> None:
    uri = parse_uri("sip:proxy.example.com;LR;Transport=TCP;maddr=239.255.255.1")
    assert isinstance(uri, SipUri)
    assert uri.params == (("lr", None), ("transport", "TCP"), ("maddr", "239.255.255.1"))
    assert uri.param("lr") == "" and uri.has_param("LR") and uri.param("ttl") is None
    assert str(uri.with_params(lr=None, ttl="5")) == "sip:proxy.example.com;transport=TCP;maddr=239.255.255.1;ttl=5"


def test_scheme_and_host_are_case_insensitive() -> None:
    uri = parse_uri("SIPS:Alice@Example.COM")
    assert isinstance(uri, SipUri)
    assert (uri.scheme, uri.user, uri.host) == ("sips", "Alice", "example.com")


def test_tel_uris() -> None:
    global_number = parse_uri("tel:+1-201-555-0123")
    assert global_number == TelUri(number="+1-201-555-0123")
    local = parse_uri("tel:7042;phone-context=example.com")
    assert isinstance(local, TelUri)
    assert local.params == (("phone-context", "example.com"),)
    assert str(local) == "tel:7042;phone-context=example.com"
    assert uri_equivalent(parse_uri("tel:+1-201-555-0123"), parse_uri("tel:+1(201)5550123"))
    assert not uri_equivalent(parse_uri("tel:+12015550123"), parse_uri("tel:+12015550124"))


def test_tel_params_are_escaped_when_serialised() -> None:
    uri = parse_uri("tel:+1234;x=a%3Bb%20c;isub=12")
    assert isinstance(uri, TelUri) and uri.params == (("x", "a;b c"), ("isub", "12"))
    assert str(uri) == "tel:+1234;x=a%3Bb%20c;isub=12"  # was "tel:+1234;x=a;b c;isub=12"
    assert parse_uri(str(uri)) == uri


def test_other_schemes_are_opaque() -> None:
    uri = parse_uri("urn:service:sos")
    assert uri == AbsoluteUri(scheme="urn", rest="service:sos")
    assert str(uri) == "urn:service:sos"
    assert not uri_equivalent(uri, parse_uri("sip:sos@example.com"))


def test_parse_hostport() -> None:
    assert parse_hostport("Proxy.Example.COM:5061") == ("proxy.example.com", 5061)
    assert parse_hostport("[2001:DB8::1]") == ("[2001:db8::1]", None)
    assert parse_hostport("192.0.2.1:1") == ("192.0.2.1", 1)
    for bad in ("", "host:", "host:0", "a b", "user@host", "host;x", "[::1", "host:5060:1"):
        with pytest.raises(RemoteSipError):
            parse_hostport(bad)
