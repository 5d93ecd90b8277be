"""SDES in SDP (RFC 4568): the a=crypto line parsed and generated, and offer/answer with keys (sip.sdes,
sip.offer_answer). Pure: no sockets."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip import (
    RTP_AVP,
    RTP_SAVP,
    CryptoAttribute,
    LocalSipError,
    SdesError,
    SdpNegotiationError,
    SessionDescription,
    accept_answer,
    build_offer,
    negotiate,
    new_crypto,
)
from sip.rtp import Codec
from sip.sdes import SUITE, crypto_attributes, select_crypto
from sip.sdp import Attribute, MediaDescription

KEY = bytes(range(30))
B64 = base64.b64encode(KEY).decode()
HOST = "127.0.0.1"


def _media(*values: str, proto: str = RTP_SAVP) -> MediaDescription:
    return MediaDescription(media="audio", port=4000, proto=proto, formats=("0",),
                            attributes=tuple(Attribute(name="crypto", value=v) for v in values))


def test_a_line_is_read_and_written_back() -> None:
    parsed = CryptoAttribute.parse(f"1 {SUITE} inline:{B64}")
    assert parsed == CryptoAttribute(tag=1, key=KEY)
    assert parsed.attribute() == Attribute(name="crypto", value=f"1 {SUITE} inline:{B64}")
    assert CryptoAttribute.parse(f"7 {SUITE} inline:{B64}|2^20") == CryptoAttribute(tag=7, key=KEY)  # lifetime


@given(tag=st.integers(0, 999_999_999), key=st.binary(min_size=30, max_size=30))
def test_parse_of_the_generated_line_is_the_attribute(tag: int, key: bytes) -> None:
    attr = CryptoAttribute(tag=tag, key=key)
    value = attr.attribute().value
    assert value is not None and CryptoAttribute.parse(value) == attr


@pytest.mark.parametrize("value", [
    f"1 AES_CM_128_HMAC_SHA1_32 inline:{B64}",  # another suite
    f"1 AES_256_CM_HMAC_SHA1_80 inline:{B64}",
    f"1 {SUITE} inline:{B64}|2^20|1:4",  # an MKI
    f"1 {SUITE} inline:{B64};inline:{B64}",  # two keys
    f"1 {SUITE} inline:{B64} UNENCRYPTED_SRTP",  # a session parameter
])
def test_lines_we_cannot_honour_are_skipped(value: str) -> None:
    assert CryptoAttribute.parse(value) is None


@pytest.mark.parametrize("value", [
    "", "1", f"one {SUITE} inline:{B64}", f"1234567890 {SUITE} inline:{B64}", f"1 {SUITE} {B64}",
    f"1 {SUITE} uri:{B64}", f"1 {SUITE} inline:!!!!", f"1 {SUITE} inline:{base64.b64encode(KEY[:16]).decode()}",
    f"1 {SUITE} inline:{B64}|never", f"1 {SUITE} inline:{B64}|2^20|1:4|x",
])
def test_malformed_lines_of_our_suite_are_488(value: str) -> None:
    with pytest.raises(SdesError) as caught:
        CryptoAttribute.parse(value)
    assert caught.value.status_hint == 488


def test_the_first_usable_line_is_selected_and_tags_must_be_unique() -> None:
    other = base64.b64encode(bytes(30)).decode()
    m = _media(f"1 AES_CM_128_HMAC_SHA1_32 inline:{B64}", f"2 {SUITE} inline:{other}", f"3 {SUITE} inline:{B64}")
    assert [c.tag for c in crypto_attributes(m)] == [2, 3]
    assert select_crypto(m) == CryptoAttribute(tag=2, key=bytes(30))
    with pytest.raises(SdesError):
        select_crypto(_media(f"1 {SUITE} inline:{B64}", f"1 {SUITE} inline:{other}"))
    assert select_crypto(_media()) is None


def test_new_keys_are_random_and_keys_are_not_in_reprs() -> None:
    assert new_crypto().key != new_crypto().key
    keys = negotiate(_offer(RTP_SAVP, f"1 {SUITE} inline:{B64}"), (Codec.PCMU,), HOST, 5000,
                     local_key=bytes(30)).media.srtp
    assert keys is not None and B64 not in repr(keys) and "key" not in repr(keys).lower().replace("srtpkeys", "")


def _offer(proto: str, *crypto: str) -> SessionDescription:
    offer = build_offer(HOST, 4000, (Codec.PCMU,))
    return SessionDescription.parse(
        offer.serialize().replace(f"m=audio 4000 {RTP_AVP}", f"m=audio 4000 {proto}").replace(
            "a=sendrecv\r\n", "a=sendrecv\r\n" + "".join(f"a=crypto:{v}\r\n" for v in crypto)))


def test_an_savp_offer_with_a_key_is_answered_with_srtp_on_the_same_tag() -> None:
    ours = bytes(range(100, 130))
    answer = negotiate(_offer(RTP_SAVP, f"5 AES_CM_128_HMAC_SHA1_32 inline:{B64}", f"9 {SUITE} inline:{B64}"),
                       (Codec.PCMU,), HOST, 5000, local_key=ours)
    assert answer.media.srtp is not None
    assert (answer.media.srtp.local, answer.media.srtp.remote) == (ours, KEY)
    m = answer.sdp.media[0]
    assert m.proto == RTP_SAVP
    assert crypto_attributes(m) == [CryptoAttribute(tag=9, key=ours)]
    text = answer.sdp.serialize()
    assert f"a=crypto:9 {SUITE} inline:{base64.b64encode(ours).decode()}\r\n" in text


def test_best_effort_srtp_in_rtp_avp_is_answered_in_rtp_avp() -> None:
    answer = negotiate(_offer(RTP_AVP, f"1 {SUITE} inline:{B64}"), (Codec.PCMU,), HOST, 5000, local_key=bytes(30))
    assert answer.media.srtp is not None and answer.sdp.media[0].proto == RTP_AVP
    plain = negotiate(_offer(RTP_AVP), (Codec.PCMU,), HOST, 5000, local_key=bytes(30))
    assert plain.media.srtp is None and plain.sdp.media[0].attribute("crypto") is None


def test_without_a_local_key_keys_are_never_taken() -> None:
    """A plain (UDP/TCP) leg: RTP/SAVP cannot be served; an RTP/AVP offer's keys are not read, not answered."""
    with pytest.raises(SdpNegotiationError):
        negotiate(_offer(RTP_SAVP, f"1 {SUITE} inline:{B64}"), (Codec.PCMU,), HOST, 5000)
    answer = negotiate(_offer(RTP_AVP, f"1 {SUITE} inline:!!"), (Codec.PCMU,), HOST, 5000)
    assert answer.media.srtp is None and "crypto" not in answer.sdp.serialize()


def test_savp_without_a_usable_key_and_bad_keys_are_refused() -> None:
    with pytest.raises(SdpNegotiationError):
        negotiate(_offer(RTP_SAVP, f"1 AES_CM_128_HMAC_SHA1_32 inline:{B64}"), (Codec.PCMU,), HOST, 5000,
                  local_key=bytes(30))
    with pytest.raises(SdesError):
        negotiate(_offer(RTP_SAVP, f"1 {SUITE} inline:c2hvcnQ="), (Codec.PCMU,), HOST, 5000, local_key=bytes(30))


@pytest.mark.parametrize("proto", [RTP_SAVP, RTP_AVP])
def test_our_offer_with_a_key_and_the_answer(proto: str) -> None:
    mine = CryptoAttribute(tag=1, key=bytes(30))
    offer = build_offer(HOST, 4000, (Codec.PCMU,), crypto=mine, proto=proto)
    assert offer.media[0].proto == proto and crypto_attributes(offer.media[0]) == [mine]
    answered = negotiate(SessionDescription.parse(offer.serialize()), (Codec.PCMU,), HOST, 6000, local_key=KEY)
    params = accept_answer(offer, SessionDescription.parse(answered.sdp.serialize()))
    assert params.srtp is not None and (params.srtp.local, params.srtp.remote) == (bytes(30), KEY)
    as_plain = offer.serialize().replace(RTP_SAVP, RTP_AVP)
    plain = negotiate(SessionDescription.parse(as_plain), (Codec.PCMU,), HOST, 6000)  # a phone without SRTP
    if proto == RTP_SAVP:
        with pytest.raises(SdpNegotiationError):
            accept_answer(offer, plain.sdp)
    else:
        assert accept_answer(offer, plain.sdp).srtp is None  # best effort declined: plain RTP


def test_an_answer_on_a_tag_we_did_not_offer_is_refused() -> None:
    offer = build_offer(HOST, 4000, (Codec.PCMU,), crypto=CryptoAttribute(tag=1, key=bytes(30)), proto=RTP_SAVP)
    answer = SessionDescription.parse(offer.serialize().replace("a=crypto:1 ", "a=crypto:2 "))
    with pytest.raises(SdesError):
        accept_answer(offer, answer)


def test_an_savp_offer_needs_a_key() -> None:
    with pytest.raises(LocalSipError):
        build_offer(HOST, 4000, (Codec.PCMU,), proto=RTP_SAVP)
