"""Typed header values: Via, CSeq, name-addr, Contact, parameter lists (RFC 3261 §20, §25.1)."""

from __future__ import annotations

import pytest

from sip.errors import LocalSipError, RemoteSipError
from sip.headers import Contact, CSeq, NameAddr, Via, format_params, parse_params, split_list
from sip.uri import AbsoluteUri, SipUri, TelUri, parse_uri

# -- Via (§20.42) -----------------------------------------------------------------------------------


def test_via_basic() -> None:
    via = Via.parse("SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds")
    assert (via.transport, via.host, via.port, via.branch) == ("UDP", "pc33.atlanta.com", None, "z9hG4bK776asdhds")
    assert str(via) == "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds"


def test_via_with_lws_everywhere() -> None:
    via = Via.parse("SIP / 2.0 / tcp   client.biloxi.example.com : 5060 ; branch = z9hG4bK74bf9 ;  rport")
    assert (via.transport, via.host, via.port) == ("TCP", "client.biloxi.example.com", 5060)
    assert via.params == (("branch", "z9hG4bK74bf9"), ("rport", None))
    assert via.rport == "" and via.received is None


def test_via_ipv6_received_and_rport_values() -> None:
    via = Via.parse("SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bK1;received=2001:db8::9;rport=5071")
    assert (via.host, via.port, via.received, via.rport) == ("[2001:db8::9]", 5070, "2001:db8::9", "5071")
    assert Via.parse(str(via)) == via


def test_via_with_param_adds_or_replaces() -> None:
    via = Via.parse("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKx")
    filled = via.with_param("rport", "40000").with_param("received", "192.0.2.7")
    assert str(filled) == "SIP/2.0/UDP 10.0.0.1:5060;rport=40000;branch=z9hG4bKx;received=192.0.2.7"


def test_via_quoted_param_value() -> None:
    via = Via.parse('SIP/2.0/UDP h;branch=z9hG4bK1;x-note="two words; and \\"quotes\\""')
    assert via.params[-1] == ("x-note", 'two words; and "quotes"')
    assert Via.parse(str(via)) == via


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP ;branch=z9hG4bK1",
        "SIP/2.0 UDP host",
        "SIP/3.0/UDP host;branch=z9hG4bK1",
        "SIP/2.0/UDP host:port;branch=z9hG4bK1",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP host:\u00b2",
        "SIP/2.0/UDP user@host",
        "SIP/2.0/UDP host;branch=",
        "SIP/2.0/UDP host;branch=a;branch=b",
        "SIP/2.0/UDP host;;branch=a",
        "SIP/2.0/UDP host junk",
        'SIP/2.0/UDP host;x="unclosed',
    ],
)
def test_malformed_via_is_400(text: str) -> None:
    with pytest.raises(RemoteSipError) as info:
        Via.parse(text)
    assert info.value.status_hint == 400


# -- CSeq (§20.16) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seq", "method"),
    [
        ("4711 INVITE", 4711, "INVITE"),
        ("  0   ACK ", 0, "ACK"),
        ("00042\tBYE", 42, "BYE"),
        (f"{2**31 - 1} X", 2**31 - 1, "X"),
    ],
)
def test_cseq(text: str, seq: int, method: str) -> None:
    cseq = CSeq.parse(text)
    assert (cseq.seq, cseq.method) == (seq, method)
    assert CSeq.parse(str(cseq)) == cseq


@pytest.mark.parametrize(
    "text",
    ["", "INVITE", "1", "\u00b2 INVITE", "\u0661 INVITE", "1 2 INVITE", "-1 INVITE", "+1 INVITE", "one INVITE"]
    + [f"{2**31} INVITE", "00000000001 INVITE", "1 INV/ITE"],
)
def test_malformed_cseq_is_400(text: str) -> None:
    with pytest.raises(RemoteSipError) as info:
        CSeq.parse(text)
    assert info.value.status_hint == 400


# -- name-addr / addr-spec (§20.10, §20.20, §20.39, §25.1) -------------------------------------------


def test_name_addr_with_quoted_display_and_escapes() -> None:
    value = NameAddr.parse('"Bob \\"the builder\\" \\\\ Smith" <sip:bob@biloxi.com>;tag=a6c85cf')
    assert value.display == 'Bob "the builder" \\ Smith'
    assert value.uri == parse_uri("sip:bob@biloxi.com")
    assert value.tag == "a6c85cf"
    assert str(value) == '"Bob \\"the builder\\" \\\\ Smith" <sip:bob@biloxi.com>;tag=a6c85cf'
    assert NameAddr.parse(str(value)) == value


def test_name_addr_token_display_and_lws() -> None:
    value = NameAddr.parse("  Bob Smith   <sip:bob@biloxi.com> ;  tag = 1928301774 ")
    assert value.display == "Bob Smith"
    assert value.tag == "1928301774"


def test_name_addr_without_display() -> None:
    value = NameAddr.parse("<sips:alice@atlanta.com;transport=tcp>;tag=88sja8x")
    assert value.display is None
    assert isinstance(value.uri, SipUri) and value.uri.param("transport") == "tcp"
    assert value.tag == "88sja8x"


def test_addr_spec_params_belong_to_the_header() -> None:
    # §20: in addr-spec form, parameters after the URI are header parameters, not URI ones.
    value = NameAddr.parse("sip:alice@atlanta.com;tag=1928301774")
    assert value.tag == "1928301774"
    assert isinstance(value.uri, SipUri) and value.uri.params == ()
    # ... and inside <> they are URI parameters.
    bracketed = NameAddr.parse("<sip:alice@atlanta.com;tag=1928301774>")
    assert bracketed.tag is None
    assert isinstance(bracketed.uri, SipUri) and bracketed.uri.param("tag") == "1928301774"


def test_addr_spec_with_uri_headers_or_commas_needs_brackets() -> None:
    with pytest.raises(RemoteSipError):
        NameAddr.parse("sip:alice@atlanta.com?subject=x")
    assert NameAddr.parse("<sip:alice@atlanta.com?subject=x>").uri == parse_uri("sip:alice@atlanta.com?subject=x")


def test_name_addr_other_schemes() -> None:
    assert NameAddr.parse("<tel:+12015550123>;tag=x").uri == TelUri(number="+12015550123")
    unknown = NameAddr.parse('"Weird" <nosuchscheme:whatever/thing>')
    assert unknown.uri == AbsoluteUri(scheme="nosuchscheme", rest="whatever/thing")


def test_name_addr_with_param() -> None:
    value = NameAddr.parse("<sip:bob@biloxi.com>")
    assert str(value.with_param("tag", "314159")) == "<sip:bob@biloxi.com>;tag=314159"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<sip:alice@atlanta.com",
        "sip:alice@atlanta.com>",
        '"Alice <sip:alice@atlanta.com>',
        '"Alice" sip:alice@atlanta.com',
        "<sip:alice@atlanta.com> junk",
        "<sip:alice@atlanta.com>;tag=",
        "<sip:alice@atlanta.com>;tag=1;tag=2",
        "<not a uri>",
        "<sip:alice@atlanta.com>;=x",
        'Bob" <sip:bob@biloxi.com>',  # once accepted with display 'Bob"'
        "bob@home <sip:bob@biloxi.com>",  # '@' is not a token character: quote it
        "<sip:a@b>;x=a b",  # once accepted as the value 'a b'
        "<sip:a@b>;x=<y>",
        "<sip:a@b>;x=\u00e9",  # non-ASCII needs a quoted-string
        '<sip:a@b>;x="a"x"b"',  # once accepted as 'a"x"b'
        '<sip:a@b>;x="a\\"',  # the closing quote is escaped
        '<sip:a@b>;x="\x00"',  # found by fuzzing: parsed, then str() raised LocalSipError
        '<sip:a@b>;x="\\\x00"',
        '"nul\x00" <sip:a@b>',  # once a LocalSipError out of a parser
    ],
)
def test_malformed_name_addr_is_400(text: str) -> None:
    with pytest.raises(RemoteSipError) as info:
        NameAddr.parse(text)
    assert info.value.status_hint == 400


def test_format_params_output_always_reparses() -> None:
    # Once an empty value came out as ";x=" and a non-ASCII one unquoted: both unparseable.
    params = (("x", ""), ("y", "\u00e9t\u00e9"), ("z", "a b"), ("w", '"q"\\'), ("v", "[::1]"), ("u", None))
    text = format_params(params)
    assert text == ';x="";y="\u00e9t\u00e9";z="a b";w="\\"q\\"\\\\";v=[::1];u'
    assert parse_params(text, "t") == params
    value = NameAddr(uri=parse_uri("sip:a@b"), display="\u00c9milie \"E\"", params=params)
    assert NameAddr.parse(str(value)) == value


@pytest.mark.parametrize("bad", ["a\r\nVia: injected", "nul\x00", "lf\n"])
def test_values_that_would_inject_headers_are_local_errors(bad: str) -> None:
    with pytest.raises(LocalSipError):
        format_params((("x", bad),))
    with pytest.raises(LocalSipError):
        NameAddr(uri=parse_uri("sip:a@b"), display=bad)
    with pytest.raises(LocalSipError):
        format_params(((bad, None),))


def test_empty_quoted_display_is_no_display() -> None:
    assert NameAddr.parse('"" <sip:a@b>').display is None


def test_param_without_value_is_a_flag() -> None:
    assert NameAddr.parse("<sip:alice@atlanta.com>;tag").tag == ""


# -- Contact (§20.10) -------------------------------------------------------------------------------


def test_contact_wildcard_expires_q() -> None:
    assert Contact.parse(" * ").is_wildcard
    assert str(Contact.parse("*")) == "*"
    contact = Contact.parse('"Mr. Watson" <sip:watson@worcester.bell-telephone.com>;q=0.7;expires=3600')
    assert not contact.is_wildcard
    assert (contact.q, contact.expires) == (0.7, 3600)
    assert Contact.parse("<sip:a@b>").expires is None and Contact.parse("<sip:a@b>").q is None
    assert Contact.parse("<sip:a@b>;expires=99999999999").expires == 2**32 - 1
    assert Contact.parse("<sip:a@b>;expires=" + "9" * 5000).expires == 2**32 - 1  # past int()'s digit limit
    assert Contact.parse("<sip:a@b>;expires=0000000000000060").expires == 60


@pytest.mark.parametrize(
    "param", ["q=1.5", "q=abc", "q=0.1234", "q=0.\u0665", "expires=soon", "expires=-1", "expires=\u00b2"]
)
def test_contact_bad_q_or_expires(param: str) -> None:
    with pytest.raises(RemoteSipError):  # refused by the parameter grammar or by the typed view
        contact = Contact.parse(f"<sip:a@b>;{param}")
        _ = contact.q if param.startswith("q") else contact.expires


# -- lists and parameters ----------------------------------------------------------------------------


def test_split_list_honours_quotes_and_brackets() -> None:
    value = '"Doe, John" <sip:j@x.com;a=1,2>, <sip:b@y.com>,sip:c@z.com ,, "a \\" , b" <sip:d@w>'
    assert split_list(value) == [
        '"Doe, John" <sip:j@x.com;a=1,2>',
        "<sip:b@y.com>",
        "sip:c@z.com",
        '"a \\" , b" <sip:d@w>',
    ]


def test_parse_and_format_params() -> None:
    params = parse_params(' ; Tag=Ab3 ;lr; x="a b"', "t")
    assert params == (("tag", "Ab3"), ("lr", None), ("x", "a b"))
    assert format_params(params) == ';tag=Ab3;lr;x="a b"'
    assert parse_params("", "t") == ()
    with pytest.raises(RemoteSipError):
        parse_params("tag=1", "t")
