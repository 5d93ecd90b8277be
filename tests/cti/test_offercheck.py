"""What a trunk INVITE must carry (cti/call/offercheck.py): 415, 406 and 488 with Warning, before anything is answered.

INVITEs are written as bytes and read by the real parser, so compact forms, folded lists and
empty headers reach the check as they would from the wire.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cti.call.offercheck import CODECS, Refusal, RefusalReason, check_offer
from cti.call.srtp import SrtpPolicy
from sip.message import Request, parse_message
from sip.offer_answer import negotiate
from sip.sdp import SessionDescription

AUDIO = "m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"


def sdp(c: str = "c=IN IP4 192.0.2.10\r\n", media: str = AUDIO, *, session_c: bool = True) -> bytes:
    head = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\n"
    if session_c:
        return (head + c + "t=0 0\r\n" + media).encode()
    return (head + "t=0 0\r\n" + media + c).encode()


def invite(body: bytes | None = None, *headers: str, content_type: str | None = "application/sdp") -> Request:
    body = sdp() if body is None else body
    lines = [
        "INVITE sip:100@192.0.2.1 SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKcheck",
        "Max-Forwards: 70",
        "From: <sip:5550000@192.0.2.10>;tag=a1",
        "To: <sip:100@192.0.2.1>",
        "Call-ID: check@test",
        "CSeq: 1 INVITE",
        "Contact: <sip:5550000@192.0.2.10>",
        *([f"Content-Type: {content_type}"] if content_type is not None and body else []),
        *headers,
        f"Content-Length: {len(body)}",
    ]
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    assert isinstance(message, Request)
    return message


def refused(request: Request, **kwargs: Any) -> Refusal:
    refusal = check_offer(request, **kwargs)
    assert refusal is not None, "the INVITE was accepted"
    return refusal


def header(refusal: Refusal, name: str) -> str | None:
    return next((value for n, value in refusal.headers if n == name), None)


# --- accepted ------------------------------------------------------------------------------------
_USABLE = {
    "plain": invite(),
    "type-with-params": invite(content_type="Application/SDP; charset=UTF-8"),
    "accept-sdp": invite(sdp(), "Accept: application/sdp"),
    "accept-any": invite(sdp(), "Accept: text/plain, */*"),
    "accept-application-any": invite(sdp(), "Accept: application/*;q=0.5"),
    "accept-bad-q": invite(sdp(), "Accept: application/sdp;q=bogus"),  # a typo is not a refusal
    "identity": invite(sdp(), "Content-Encoding: identity"),
    "disposition-session": invite(sdp(), "Content-Disposition: session"),
    "disposition-optional": invite(sdp(), "Content-Disposition: render;handling=optional"),
    "ip6": invite(sdp("c=IN IP6 2001:db8::10\r\n")),
    "loopback": invite(sdp("c=IN IP4 127.0.0.1\r\n")),
    "hold-0.0.0.0": invite(sdp("c=IN IP4 0.0.0.0\r\n")),  # RFC 2543 hold, RFC 3264 §8.4: answered
    "media-level-c": invite(sdp("c=IN IP4 192.0.2.10\r\n", session_c=False)),
    "audio-second": invite(sdp(media="m=video 40002 RTP/AVP 96\r\nm=audio 40000 RTP/AVP 8\r\n")),
    "dynamic-pt": invite(sdp(media="m=audio 40000 RTP/AVP 96\r\na=rtpmap:96 PCMA/8000\r\n")),
}


@pytest.mark.parametrize("request_", _USABLE.values(), ids=_USABLE.keys())
def test_a_usable_offer_passes(request_: Request) -> None:
    assert check_offer(request_) is None


def test_the_codecs_are_those_the_media_answers_with() -> None:
    from cti.call.media import CODECS as MEDIA_CODECS

    assert CODECS == MEDIA_CODECS


# --- 488: no offer -------------------------------------------------------------------------------
def test_an_invite_without_a_body_keeps_its_488() -> None:
    refusal = refused(invite(b""))
    assert (refusal.status, refusal.reason, refusal.warn_code) == (488, RefusalReason.NO_OFFER, 399)
    assert refusal.reason.value == "no_offer"  # the /metrics label it always had


# --- 415 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("content_type", "body"), [
    ("text/plain", b"hello"),
    ("application/json", b'{"sdp": true}'),
    ("application/sdpx", sdp()),
    ("multipart/mixed;boundary=b1",
     b"--b1\r\nContent-Type: application/isup\r\n\r\nxx\r\n--b1--\r\n"),  # no SDP part
    ("multipart/mixed;boundary=b1",
     b"--b1\r\nContent-Type: application/sdp\r\n\r\n" + sdp() + b"\r\n--b1--\r\n"),  # with one: refused too
    (None, sdp()),  # §20.15: a body needs a Content-Type
])
def test_a_body_that_is_not_sdp_gets_415_with_accept(content_type: str | None, body: bytes) -> None:
    refusal = refused(invite(body, content_type=content_type))
    assert (refusal.status, refusal.reason, refusal.warn_code) == (415, RefusalReason.UNSUPPORTED_BODY, 399)
    assert header(refusal, "Accept") == "application/sdp"
    assert (header(refusal, "Warning") or "").startswith('399 cti "')


def test_the_compact_content_type_is_read() -> None:
    request = invite(sdp(), "c: text/plain", content_type=None)
    assert refused(request).status == 415
    assert check_offer(invite(sdp(), "c: application/sdp", content_type=None)) is None


def test_an_encoded_body_gets_415_with_accept_encoding() -> None:
    refusal = refused(invite(sdp(), "Content-Encoding: gzip"))
    assert refusal.status == 415
    assert header(refusal, "Accept-Encoding") == "identity"


@pytest.mark.parametrize("disposition", ["early-session", "render", "render;handling=required"])
def test_a_body_that_is_not_the_session_gets_415(disposition: str) -> None:
    assert refused(invite(sdp(), f"Content-Disposition: {disposition}")).status == 415


# --- 406 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("accept", [
    "Accept: text/plain",
    "Accept: application/json, text/*",
    "Accept: application/sdp;q=0",
    "Accept: */*, application/sdp;q=0.0",  # the most specific range decides
    "Accept: application/*;q=0",
    "Accept: ",  # §20.1: an empty Accept means no format is acceptable
])
def test_an_accept_that_excludes_sdp_gets_406(accept: str) -> None:
    refusal = refused(invite(sdp(), accept))
    assert (refusal.status, refusal.reason, refusal.warn_code) == (406, RefusalReason.NOT_ACCEPTABLE, 399)


def test_a_bad_body_is_refused_before_a_bad_accept() -> None:
    assert refused(invite(b"hello", "Accept: text/plain", content_type="text/plain")).status == 415


# --- 488 with Warning: the SDP -------------------------------------------------------------------
@pytest.mark.parametrize(("body", "reason", "code"), [
    (b"this is not SDP", RefusalReason.BAD_SDP, 399),
    (b"v=0\r\ns=-\r\n", RefusalReason.BAD_SDP, 399),  # no o=
    (b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio x RTP/AVP 0\r\n", RefusalReason.BAD_SDP, 399),
    (sdp("", AUDIO), RefusalReason.BAD_SDP, 399),  # no c= anywhere
    (sdp(media=""), RefusalReason.NO_AUDIO, 304),
    (sdp(media="m=video 40000 RTP/AVP 96\r\n"), RefusalReason.NO_AUDIO, 304),
    (sdp(media="m=audio 0 RTP/AVP 0\r\n"), RefusalReason.NO_AUDIO, 304),  # a refused stream
    (sdp(media="m=audio 40000 RTP/SAVP 0\r\n"), RefusalReason.NO_COMMON_TRANSPORT, 302),
    (sdp(media="m=audio 40000 UDP/TLS/RTP/SAVPF 0\r\n"), RefusalReason.NO_COMMON_TRANSPORT, 302),
    (sdp(media="m=audio 40000 RTP/AVP 18 9\r\n"), RefusalReason.NO_COMMON_CODEC, 305),
    (sdp(media="m=audio 40000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n"), RefusalReason.NO_COMMON_CODEC, 305),
    (sdp(media="m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 G729/8000\r\n"), RefusalReason.NO_COMMON_CODEC, 305),
    (sdp("c=ATM NSAP 47.0091\r\n"), RefusalReason.BAD_ADDRESS, 300),
    (sdp("c=IN IPX 192.0.2.10\r\n"), RefusalReason.BAD_ADDRESS, 301),
    (sdp("c=IN IP4 media.example.com\r\n"), RefusalReason.BAD_ADDRESS, 301),
    (sdp("c=IN IP4 999.1.1.1\r\n"), RefusalReason.BAD_ADDRESS, 301),
    (sdp("c=IN IP4 2001:db8::1\r\n"), RefusalReason.BAD_ADDRESS, 301),
    (sdp("c=IN IP6 192.0.2.10\r\n"), RefusalReason.BAD_ADDRESS, 301),
    (sdp("c=IN IP4 224.2.1.1/127\r\n"), RefusalReason.BAD_ADDRESS, 330),
    (sdp("c=IN IP6 ff15::101\r\n"), RefusalReason.BAD_ADDRESS, 330),
    (sdp("c=IN IP4 255.255.255.255\r\n"), RefusalReason.BAD_ADDRESS, 399),
    (sdp("c=IN IP4 240.0.0.1\r\n"), RefusalReason.BAD_ADDRESS, 399),
])
def test_an_unusable_offer_gets_488_with_a_warning(body: bytes, reason: RefusalReason, code: int) -> None:
    refusal = refused(invite(body))
    assert (refusal.status, refusal.reason, refusal.warn_code) == (488, reason, code)
    warning = header(refusal, "Warning")
    assert warning is not None and warning.startswith(f'{code} cti "') and warning.endswith('"')
    assert warning.count('"') == 2


def test_the_stream_negotiate_picks_is_the_one_checked() -> None:
    # The session c= is unusable but the audio stream carries its own, usable, c=.
    body = (b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 bad.example\r\nt=0 0\r\n"
            b"m=audio 40000 RTP/AVP 0\r\nc=IN IP4 192.0.2.10\r\n")
    assert check_offer(invite(body)) is None
    # And the other way round: a usable session c= does not save the stream's own unusable one.
    body = (b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
            b"m=audio 40000 RTP/AVP 0\r\nc=IN IP4 224.0.0.1/1\r\n")
    assert refused(invite(body)).warn_code == 330


@pytest.mark.parametrize(("local_host", "c", "passes"), [
    ("127.0.0.1", "c=IN IP6 ::1\r\n", False),
    ("10.0.0.1", "c=IN IP4 192.0.2.10\r\n", True),
    ("::1", "c=IN IP4 192.0.2.10\r\n", False),
    ("::1", "c=IN IP6 ::1\r\n", True),
    ("::", "c=IN IP4 192.0.2.10\r\n", True),  # maybe dual stack: not refused
    ("cti.example.com", "c=IN IP6 ::1\r\n", True),  # a name: the family is not known here
])
def test_the_offer_must_be_in_the_family_of_our_media(local_host: str, c: str, passes: bool) -> None:
    refusal = check_offer(invite(sdp(c)), local_host=local_host)
    assert (refusal is None) == passes
    if refusal is not None:
        assert (refusal.status, refusal.warn_code) == (488, 301)


def test_a_refusal_cannot_carry_a_quote_or_a_wrong_status() -> None:
    with pytest.raises(ValueError):
        Refusal(status=200, reason=RefusalReason.BAD_SDP, warn_code=399, warn_text="x")
    with pytest.raises(ValueError):
        Refusal(status=488, reason=RefusalReason.BAD_SDP, warn_code=399, warn_text='say "x"')


# --- property: garbage bodies --------------------------------------------------------------------
_known = st.sampled_from([
    "v=0", "o=- 1 1 IN IP4 192.0.2.10", "s=-", "t=0 0", "c=IN IP4 192.0.2.10", "c=IN IP6 ::1",
    "c=IN IP4 0.0.0.0", "c=IN IP4 224.0.0.1/1", "c=IN IP4 name", "m=audio 40000 RTP/AVP 0 8",
    "m=audio 0 RTP/AVP 0", "m=video 1 RTP/AVP 96", "m=audio 4 RTP/SAVP 0",
    "a=rtpmap:96 PCMA/8000", "a=rtpmap:0 G729/8000", "a=sendonly", "a=ptime:²", "m=audio 7 RTP/AVP ²",
])
_broken = st.sampled_from(["c=IN", "m=audio 65536 RTP/AVP 0", "o=-", "t=x"]) | st.text(max_size=30)


@settings(max_examples=400, deadline=None)
@given(st.booleans(), st.lists(_known, max_size=10), st.none() | st.tuples(st.integers(0, 14), _broken),
       st.sampled_from(["\r\n", "\n"]))
def test_garbage_bodies_are_refused_or_usable_never_an_exception(
    head: bool, lines: list[str], broken: tuple[int, str] | None, end: str
) -> None:
    if head:  # a valid start, so that the checks past the parser are reached too
        lines = ["v=0", "o=- 1 1 IN IP4 192.0.2.10", "s=-", "t=0 0", *lines]
    if broken is not None:
        lines.insert(*broken)
    body = end.join(lines).encode("utf-8", errors="surrogatepass")
    request = invite(body)
    refusal = check_offer(request, local_host="127.0.0.1")
    if refusal is None:  # usable: the call's own answer must then succeed
        answer = negotiate(SessionDescription.parse(body), CODECS, "127.0.0.1", 20000)
        assert answer.media.remote_port > 0
        event("usable")
    else:
        event(f"{refusal.status} {refusal.warn_code}")
        assert refusal.status in (415, 488)
        assert all(isinstance(name, str) and "\r" not in value for name, value in refusal.headers)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_bytes_are_refused_or_usable_never_an_exception(body: bytes) -> None:
    refusal = check_offer(invite(body))
    assert refusal is None or refusal.status in (415, 488)


# --- SRTP (SDES, RFC 4568; cti/call/srtp.py) ----------------------------------------------------------
_KEY = "inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
SAVP = f"m=audio 40000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 {_KEY}\r\n"
AVP_KEYED = f"m=audio 40000 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 {_KEY}\r\n"


@pytest.mark.parametrize(("transport", "policy", "media"), [
    ("TLS", SrtpPolicy.OPTIONAL, SAVP), ("TLS", SrtpPolicy.OPTIONAL, AVP_KEYED), ("TLS", SrtpPolicy.OPTIONAL, AUDIO),
    ("TLS", SrtpPolicy.MANDATORY, SAVP), ("TLS", SrtpPolicy.MANDATORY, AVP_KEYED),
    ("UDP", SrtpPolicy.MANDATORY, AUDIO), ("UDP", SrtpPolicy.OPTIONAL, AVP_KEYED), ("TLS", SrtpPolicy.OFF, AVP_KEYED),
])
def test_srtp_offers_the_policy_takes(transport: str, policy: SrtpPolicy, media: str) -> None:
    assert check_offer(invite(sdp(media=media)), transport=transport, srtp=policy) is None


@pytest.mark.parametrize(("transport", "policy", "media", "reason", "code", "words"), [
    ("UDP", SrtpPolicy.OPTIONAL, SAVP, RefusalReason.NO_COMMON_TRANSPORT, 302, "SIP over TLS only"),
    ("TCP", SrtpPolicy.MANDATORY, SAVP, RefusalReason.NO_COMMON_TRANSPORT, 302, "SIP over TLS only"),
    ("TLS", SrtpPolicy.OFF, SAVP, RefusalReason.NO_COMMON_TRANSPORT, 302, "SRTP is off"),
    ("TLS", SrtpPolicy.MANDATORY, AUDIO, RefusalReason.SRTP_REQUIRED, 302, "required on SIP over TLS"),
    ("TLS", SrtpPolicy.OPTIONAL, SAVP.replace("_80", "_32"), RefusalReason.BAD_CRYPTO, 302, "AES_CM_128_HMAC_SHA1_80"),
    ("TLS", SrtpPolicy.OPTIONAL, SAVP.replace(_KEY, "inline:c2hvcnQ="), RefusalReason.BAD_CRYPTO, 399, "RFC 4568"),
    ("TLS", SrtpPolicy.OPTIONAL, AVP_KEYED.replace("crypto:1", "crypto:x"), RefusalReason.BAD_CRYPTO, 399, "4568"),
])
def test_srtp_offers_refused_with_488_and_a_warning(transport: str, policy: SrtpPolicy, media: str,
                                                    reason: RefusalReason, code: int, words: str) -> None:
    refusal = refused(invite(sdp(media=media)), transport=transport, srtp=policy)
    assert (refusal.status, refusal.reason, refusal.warn_code) == (488, reason, code)
    assert words in (header(refusal, "Warning") or "")
