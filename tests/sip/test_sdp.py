"""SDP parse/serialise round-trips and the RFC 3264 negotiation table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip import accept_answer, build_offer, negotiate
from sip.errors import LocalSipError, RemoteSipError
from sip.rtp import Codec
from sip.sdp import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    Timing,
)

PHONE_OFFER = (
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 198.51.100.7\r\n"
    "s=Talk\r\n"
    "i=a call\r\n"
    "c=IN IP4 198.51.100.7\r\n"
    "b=AS:64\r\n"
    "t=0 0\r\n"
    "a=tool:softphone 1.0\r\n"
    "m=audio 49170 RTP/AVP 0 8 9 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=x-unknown-thing:yes\r\n"
    "a=sendrecv\r\n"
    "m=video 51372 RTP/AVP 31\r\n"
    "a=rtpmap:31 H261/90000\r\n"
)


def offer(formats: str, *, extra: str = "", port: int = 49170, session_c: bool = True, media_c: str = "") -> str:
    rtpmaps = {
        "0": "a=rtpmap:0 PCMU/8000\r\n",
        "8": "a=rtpmap:8 PCMA/8000\r\n",
        "101": "a=rtpmap:101 telephone-event/8000\r\n",
        "18": "a=rtpmap:18 G729/8000\r\n",
    }
    return (
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"
        + ("c=IN IP4 192.0.2.1\r\n" if session_c else "")
        + "t=0 0\r\n"
        + f"m=audio {port} RTP/AVP {formats}\r\n"
        + media_c
        + "".join(rtpmaps.get(f, "") for f in formats.split())
        + extra
    )


def test_real_offer_round_trips_byte_for_byte() -> None:
    sdp = SessionDescription.parse(PHONE_OFFER)
    assert sdp.serialize() == PHONE_OFFER
    assert SessionDescription.parse(sdp.serialize()) == sdp
    audio = sdp.media[0]
    assert audio.rtpmap()[101] == ("telephone-event", 8000)
    assert audio.ptime() == 20
    assert audio.attribute("x-unknown-thing") == "yes"
    assert sdp.extra == (("i", "a call"),)


def test_bare_lf_and_bytes_are_accepted() -> None:
    sdp = SessionDescription.parse(PHONE_OFFER.replace("\r\n", "\n").encode())
    assert sdp == SessionDescription.parse(PHONE_OFFER)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "o=- 1 1 IN IP4 x\r\n",
        "v=1\r\n",
        "v=0\r\ns=-\r\n",
        "v=0\r\no=- 1 IN IP4 x\r\n",
        "v=0\r\nnonsense\r\n",
        "v=0\r\no=- 1 1 IN IP4 h\r\nm=audio x RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 99999 RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4\r\n",
        "v=0\r\no=- 1 1 IN IP4 h\r\nt=²\r\n",
    ],
)
def test_garbage_is_a_400_parse_error(text: str) -> None:
    with pytest.raises(SdpParseError) as info:
        SessionDescription.parse(text)
    assert info.value.status_hint == 400


_token = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=8)
_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
_attr = st.builds(Attribute, name=_token.filter(lambda t: ":" not in t), value=st.none() | _text)
_conn = st.builds(Connection, address=_token)
_media = st.builds(
    MediaDescription,
    media=_token,
    port=st.integers(0, 65535),
    port_count=st.none() | st.integers(1, 9),
    proto=_token,
    formats=st.lists(_token, max_size=4).map(tuple),
    connection=st.none() | _conn,
    bandwidths=st.lists(_text, max_size=2).map(tuple),
    attributes=st.lists(_attr, max_size=4).map(tuple),
    extra=st.lists(st.tuples(st.sampled_from("ik"), _text), max_size=2).map(tuple),
)
_session = st.builds(
    SessionDescription,
    origin=st.builds(Origin, username=_token, session_id=_token, session_version=_token, address=_token),
    session_name=_text,
    connection=st.none() | _conn,
    bandwidths=st.lists(_text, max_size=2).map(tuple),
    timings=st.lists(
        st.builds(
            Timing,
            start=st.integers(0, 2**40),
            stop=st.integers(0, 2**40),
            repeats=st.lists(_text, max_size=2).map(tuple),
        ),
        max_size=2,
    ).map(tuple),
    attributes=st.lists(_attr, max_size=3).map(tuple),
    media=st.lists(_media, max_size=3).map(tuple),
    extra=st.lists(st.tuples(st.sampled_from("iuepzk"), _text), max_size=3).map(tuple),
)


@given(_session)
def test_parse_serialize_round_trip(sdp: SessionDescription) -> None:
    assert SessionDescription.parse(sdp.serialize()) == sdp


@given(st.text(max_size=300))
def test_garbage_text_parses_or_raises_remote_error(text: str) -> None:
    try:
        SessionDescription.parse("v=0\r\no=- 1 1 IN IP4 h\r\n" + text)
    except RemoteSipError:
        pass


# --- negotiation table -----------------------------------------------------------------

BOTH = [Codec.PCMU, Codec.PCMA]


@pytest.mark.parametrize(
    ("formats", "preference", "codec", "pt", "te_pt"),
    [
        ("0", BOTH, Codec.PCMU, 0, None),
        ("8", BOTH, Codec.PCMA, 8, None),
        ("0 8", [Codec.PCMA, Codec.PCMU], Codec.PCMA, 8, None),
        ("8 0", [Codec.PCMU, Codec.PCMA], Codec.PCMU, 0, None),
        ("18 0 101", BOTH, Codec.PCMU, 0, 101),
        ("8 101", [Codec.PCMA], Codec.PCMA, 8, 101),
    ],
)
def test_negotiation_table(formats: str, preference: list[Codec], codec: Codec, pt: int, te_pt: int | None) -> None:
    answer = negotiate(SessionDescription.parse(offer(formats)), preference, "203.0.113.5", 20000)
    media = answer.media
    assert (media.codec, media.payload_type, media.telephone_event_pt) == (codec, pt, te_pt)
    assert (media.remote_addr, media.remote_port, media.direction) == ("192.0.2.1", 49170, Direction.SENDRECV)
    m = answer.sdp.media[0]
    assert m.port == 20000 and m.formats == ((str(pt),) if te_pt is None else (str(pt), str(te_pt)))
    assert answer.sdp.connection == Connection(address="203.0.113.5")
    assert SessionDescription.parse(answer.sdp.serialize()) == answer.sdp


def test_dynamic_pt_with_rtpmap_is_matched_by_name() -> None:
    text = offer("96 97", extra="a=rtpmap:96 PCMA/8000\r\na=rtpmap:97 telephone-event/8000\r\n")
    media = negotiate(SessionDescription.parse(text), BOTH, "203.0.113.5", 20000).media
    assert (media.codec, media.payload_type, media.telephone_event_pt) == (Codec.PCMA, 96, 97)


def test_telephone_event_can_be_declined() -> None:
    answer = negotiate(SessionDescription.parse(offer("0 101")), BOTH, "203.0.113.5", 20000, telephone_event=False)
    assert answer.media.telephone_event_pt is None and answer.sdp.media[0].formats == ("0",)


def test_no_common_codec_is_488() -> None:
    with pytest.raises(SdpNegotiationError) as info:
        negotiate(SessionDescription.parse(offer("18")), BOTH, "203.0.113.5", 20000)
    assert info.value.status_hint == 488
    with pytest.raises(SdpNegotiationError):
        negotiate(SessionDescription.parse(offer("8")), [Codec.PCMU], "203.0.113.5", 20000)


@pytest.mark.parametrize(
    ("offered", "ours", "on_hold"),
    [
        ("sendrecv", Direction.SENDRECV, False),
        ("sendonly", Direction.RECVONLY, True),  # RFC 3264 §6.1: sendonly -> recvonly
        ("recvonly", Direction.SENDONLY, False),
        ("inactive", Direction.INACTIVE, True),
    ],
)
def test_answer_direction(offered: str, ours: Direction, on_hold: bool) -> None:
    answer = negotiate(SessionDescription.parse(offer("0", extra=f"a={offered}\r\n")), BOTH, "203.0.113.5", 20000)
    assert answer.media.direction is ours and answer.media.on_hold is on_hold
    assert answer.sdp.media[0].direction() is ours


def test_session_level_direction_applies_to_media() -> None:
    text = offer("0").replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n")
    assert negotiate(SessionDescription.parse(text), BOTH, "h", 20000).media.direction is Direction.RECVONLY


def test_local_direction_narrows_the_answer() -> None:
    answer = negotiate(SessionDescription.parse(offer("0")), BOTH, "h", 2000, local_direction=Direction.SENDONLY)
    assert answer.media.direction is Direction.SENDONLY


def test_media_level_connection_wins_and_is_required_somewhere() -> None:
    text = offer("0", session_c=False, media_c="c=IN IP4 10.0.0.9\r\n")
    assert negotiate(SessionDescription.parse(text), BOTH, "h", 2000).media.remote_addr == "10.0.0.9"
    with pytest.raises(SdpParseError):
        negotiate(SessionDescription.parse(offer("0", session_c=False)), BOTH, "h", 2000)


def test_old_style_hold_address_is_on_hold() -> None:
    text = offer("0").replace("c=IN IP4 192.0.2.1", "c=IN IP4 0.0.0.0")
    assert negotiate(SessionDescription.parse(text), BOTH, "h", 2000).media.on_hold


def test_rejected_streams_keep_their_place_with_port_zero() -> None:
    answer = negotiate(SessionDescription.parse(PHONE_OFFER), BOTH, "203.0.113.5", 20000)
    assert [(m.media, m.port) for m in answer.sdp.media] == [("audio", 20000), ("video", 0)]
    assert answer.media.ptime == 20 and answer.media.telephone_event_pt == 101


def test_port_zero_offer_stream_is_rejected_and_next_one_taken() -> None:
    text = offer("0", port=0) + "m=audio 40000 RTP/AVP 8\r\n"
    answer = negotiate(SessionDescription.parse(text), BOTH, "h", 20000)
    assert [m.port for m in answer.sdp.media] == [0, 20000]
    assert (answer.media.media_index, answer.media.remote_port, answer.media.codec) == (1, 40000, Codec.PCMA)
    with pytest.raises(SdpNegotiationError):
        negotiate(SessionDescription.parse(offer("0", port=0)), BOTH, "h", 20000)


def test_build_offer_and_accept_answer() -> None:
    ours = build_offer("192.0.2.10", 30000, [Codec.PCMA, Codec.PCMU], session_id="42")
    assert ours.media[0].formats == ("8", "0", "101")
    parsed = SessionDescription.parse(ours.serialize())
    assert parsed == ours
    answer = negotiate(parsed, [Codec.PCMU], "198.51.100.1", 40000, local_direction=Direction.RECVONLY)
    media = accept_answer(ours, SessionDescription.parse(answer.sdp.serialize()))
    assert (media.codec, media.remote_addr, media.remote_port) == (Codec.PCMU, "198.51.100.1", 40000)
    assert media.direction is Direction.SENDONLY and media.telephone_event_pt == 101


def test_accept_answer_refusing_everything_is_488() -> None:
    ours = build_offer("192.0.2.10", 30000)
    refused = SessionDescription.parse(ours.serialize().replace("m=audio 30000", "m=audio 0"))
    with pytest.raises(SdpNegotiationError):
        accept_answer(ours, refused)


def test_build_offer_rejects_misuse() -> None:
    with pytest.raises(LocalSipError):
        build_offer("h", 30000, [])
    with pytest.raises(LocalSipError):
        build_offer("h", 30000, telephone_event_pt=13)


def test_a_body_read_again_is_the_same_description_and_the_memo_is_bounded() -> None:
    from sip import sdp

    body = (b"v=0\r\no=memo 42 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
            b"m=audio 4000 RTP/AVP 0\r\n")
    first = SessionDescription.parse(body)
    assert SessionDescription.parse(bytes(body)) is first  # an equal body (another object) is a look-up
    assert SessionDescription.parse(body.decode()) == first  # text and bytes give the same description
    for _ in range(2):  # a bad body is refused every time, never remembered
        with pytest.raises(SdpParseError):
            SessionDescription.parse(b"v=0\r\nm=audio 1 RTP/AVP 0\r\n")
    for n in range(sdp.SDP_CACHE_SIZE + 10):
        SessionDescription.parse(body.replace(b"42", str(1000 + n).encode()))
    assert len(sdp._parsed) == sdp.SDP_CACHE_SIZE
    assert SessionDescription.parse(body) is not first and SessionDescription.parse(body) == first  # first out
    sdp.clear_sdp_cache()
    assert not sdp._parsed


@pytest.mark.parametrize("offer_text", [
    PHONE_OFFER,
    # a video stream first (refused, port 0), then two audio streams: the second audio one is not taken
    "v=0\r\no=a 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=video 5002 RTP/AVP 96\r\n"
    "a=rtpmap:96 H264/90000\r\nm=audio 5000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=recvonly\r\n"
    "m=audio 5004 RTP/AVP 0\r\n",
    # SRTP (SDES) offered: answered with our key on the chosen stream
    "v=0\r\no=a 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 5000 RTP/SAVP 0\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n",
])
@pytest.mark.parametrize("port", [1, 20000, 65535])
def test_an_answer_moved_to_a_port_is_the_answer_negotiated_for_that_port(offer_text: str, port: int) -> None:
    """The node answers the caller once with port 9 (to refuse a bad offer before taking a port), then moves that
    answer to the port it opened instead of answering again: the result must be what answering again gives."""
    from sip import answer_at_port

    offer = SessionDescription.parse(offer_text)
    key = bytes(range(30))
    first = negotiate(offer, (Codec.PCMA, Codec.PCMU), "192.0.2.1", 9, local_key=key)
    assert answer_at_port(first, port) == negotiate(offer, (Codec.PCMA, Codec.PCMU), "192.0.2.1", port,
                                                    local_key=key)
