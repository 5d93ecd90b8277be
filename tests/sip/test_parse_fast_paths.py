"""The message layer's shortcuts give what the long way gives (issue 17, "Performance").

The typed views a message keeps once read, the ones a response inherits from its request, the values
put in the view cache for text we wrote (our Via with its branch, our To tag), the one-join
serialisation, the escaping skipped for plain URI text and the O(1) eviction of the caches: each is
checked against a fresh parse, the reference serialisation or ``urllib.parse.quote``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

import sip.message as message_module
import sip.sdp as sdp_module
import sip.uri as uri_module
from sip.errors import LocalSipError
from sip.headers import Contact, CSeq, NameAddr, Via
from sip.message import Headers, Message, Request, Response, parse_message, response_to
from tests.sip.pair import make_request
from tests.sip.test_message_properties import FUZZ, messages, requests, texts, tokens, vias


def _cache_is_true() -> None:
    """Every memoised view is what parsing its text gives now."""
    for (parse, raw), value in list(message_module._view_cache.items()):
        assert cast(Callable[[str], object], parse)(raw) == value, raw


def _views_are_true(message: Message) -> None:
    headers = message.headers
    first = headers.get_all("Via")
    assert message.top_via == Via.parse(first[0])
    assert message.vias == [Via.parse(v) for v in first]
    assert message.cseq == CSeq.parse(headers.get("CSeq") or "")
    assert message.from_ == NameAddr.parse(headers.get("From") or "")
    assert message.to == NameAddr.parse(headers.get("To") or "")
    assert message.call_id == (headers.get("Call-ID") or "").strip()
    assert message.contacts == [Contact.parse(v) for v in headers.get_all("Contact")]


def _reference_bytes(start: str, message: Message) -> bytes:
    """The serialisation as the layer always wrote it: each field, then a true Content-Length."""
    lines = [start] + [f"{name}: {value}" for name, value in message.headers if name != "Content-Length"]
    lines.append(f"Content-Length: {len(message.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + message.body


@given(requests(), tokens, st.sampled_from([100, 180, 200, 486]))
@FUZZ
def test_a_response_inherits_only_true_views(request: Request, to_tag: str, status: int) -> None:
    message_module.clear_parse_caches()  # _cache_is_true reads what this example put there
    parsed = parse_message(bytes(request))
    assert isinstance(parsed, Request)
    _views_are_true(parsed)
    response = response_to(parsed, status, to_tag=to_tag, headers=[("Contact", "<sip:us@192.0.2.9>")])
    _views_are_true(response)
    _cache_is_true()
    if status != 100 and parsed.to.tag is None:
        assert response.to.tag == to_tag


@given(requests(), vias)
@FUZZ
def test_a_replaced_top_via_is_what_its_text_parses_to(request: Request, via: Via) -> None:
    message_module.clear_parse_caches()
    parsed = parse_message(bytes(request))
    assert isinstance(parsed, Request)
    before = parsed.headers
    parsed.replace_top_via(via)
    assert parsed.top_via == via and parsed.headers is not before
    _views_are_true(parsed)
    _cache_is_true()
    assert parse_message(bytes(parsed)).top_via == via


@given(messages)
@FUZZ
def test_serialisation_is_the_reference_one(message: Message) -> None:
    start = (f"{message.method} {message.uri} SIP/2.0" if isinstance(message, Request)
             else f"SIP/2.0 {message.status} {message.reason}")
    without_length = message.headers.copy()
    without_length.remove("Content-Length")  # the one-join path
    built = Request(method=message.method, uri=message.uri, headers=without_length, body=message.body) \
        if isinstance(message, Request) else \
        Response(status=message.status, reason=message.reason, headers=without_length, body=message.body)
    assert bytes(built) == _reference_bytes(start, built)


def test_serialisation_still_refuses_header_injection_on_the_short_path() -> None:
    for name, value in (("Subject", "hi\r\nVia: SIP/2.0/UDP evil"), ("Subject", "a\nb"), ("Subject", "a\rb")):
        request = make_request("OPTIONS")
        request.headers.remove("Content-Length")
        request.headers.add(name, value)
        try:
            bytes(request)
        except LocalSipError:
            continue
        raise AssertionError(f"{value!r} was sent")


@given(st.one_of(texts, st.text(max_size=12)))
def test_plain_uri_text_is_kept_as_quote_keeps_it(text: str) -> None:
    for safe, plain in ((uri_module._USER_SAFE, uri_module._USER_PLAIN),
                        (uri_module._PASSWORD_SAFE, uri_module._PASSWORD_PLAIN),
                        (uri_module._PARAM_SAFE, uri_module._PARAM_PLAIN)):
        assert uri_module._escape(text, safe, plain) == quote(text, safe=safe)


def test_every_character_is_escaped_as_quote_escapes_it() -> None:
    for code in range(0x300):
        test_plain_uri_text_is_kept_as_quote_keeps_it.hypothesis.inner_test(chr(code))  # type: ignore[attr-defined]


def test_views_are_dropped_by_every_change_of_the_fields() -> None:
    def parsed() -> Request:
        message = parse_message(bytes(make_request("INVITE")))
        assert isinstance(message, Request)
        _ = (message.vias, message.cseq, message.from_, message.to, message.call_id, message.contacts)
        return message

    changes: list[Callable[[Headers], None]] = [
        lambda h: h.add("Via", "SIP/2.0/TCP second.example.com;branch=z9hG4bK2"),
        lambda h: h.prepend("Via", "SIP/2.0/TCP first.example.com;branch=z9hG4bK1"),
        lambda h: h.set("CSeq", "9 INVITE"),
        lambda h: h.set("To", "<sip:carol@example.com>;tag=t9"),
        lambda h: h.set("Call-ID", "another"),
        lambda h: h.remove("Contact"),
        lambda h: h.add("Contact", "<sip:more@192.0.2.8>"),
    ]
    for change in changes:
        message = parsed()
        change(message.headers)
        _views_are_true(message)
    message = parsed()
    message.headers = message.headers.replace_at_first("From", "<sip:x@example.com>;tag=new")
    _views_are_true(message)
    assert message.from_.tag == "new"
    message = parsed()
    message.headers = message.headers.copy()
    _views_are_true(message)
    whole = parsed()
    skeleton = whole.skeleton()  # To, Call-ID and CSeq only: no Via, From or Contact to read
    assert (skeleton.to, skeleton.call_id, skeleton.cseq) == (whole.to, whole.call_id, whole.cseq)
    assert skeleton.contacts == []
    assert [name for name, _ in skeleton.headers] == ["To", "Call-ID", "CSeq"]


def test_the_caches_drop_their_oldest_entry_first_and_stay_bounded(monkeypatch: object) -> None:
    message_module.clear_parse_caches()
    size = 64
    mp = cast("object", monkeypatch)
    mp.setattr(message_module, "VIEW_CACHE_SIZE", size)  # type: ignore[attr-defined]
    mp.setattr(sdp_module, "SDP_CACHE_SIZE", 8)  # type: ignore[attr-defined]
    for n in range(200):
        parse_message(bytes(make_request("OPTIONS", call_id=f"c{n}", from_tag=f"f{n}")))
        assert len(message_module._view_cache) <= size
    kept = [raw for (_, raw) in message_module._view_cache]
    assert any("f199" in raw for raw in kept) and not any("f100" in raw for raw in kept)
    for n in range(20):
        sdp_module.SessionDescription.parse(f"v=0\r\no=- {n} 0 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n")
    assert len(sdp_module._parsed) == 8
    assert [d.origin.session_id for d in sdp_module._parsed.values()] == [str(n) for n in range(12, 20)]
    message_module.clear_parse_caches()


def _reference_split_head(data: bytes) -> tuple[list[str], bytes, bool, bool]:
    """split_head as it was written before its short path (CR-LF normalised, regular expressions over the text)."""
    from sip.framing import MAX_HEADER_BYTES, bare_control
    data = data.lstrip(b"\r\n")
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n", 0, None if crlf < 0 else crlf)
    if lf >= 0:
        head, body = data[:lf].rstrip(b"\r"), data[lf + 2 :]
    elif crlf >= 0:
        head, body = data[:crlf], data[crlf + 4 :]
    else:
        head, body = data, b""
    too_large = len(head) > MAX_HEADER_BYTES
    if too_large:
        head = head[: head.rfind(b"\n", 0, MAX_HEADER_BYTES) + 1].rstrip(b"\r\n")
    try:
        text = head.decode("utf-8").replace("\r\n", "\n")
        bad_text = bare_control(text)
    except UnicodeDecodeError:
        text = head.decode("utf-8", errors="replace").replace("\r\n", "\n")
        bad_text = True
    lines: list[str] = []
    for line in text.split("\n"):
        if line[:1] in (" ", "\t") and len(lines) > 1:
            lines[-1] = lines[-1].rstrip() + " " + line.strip()
        else:
            lines.append(line)
    return lines, body, too_large, bad_text


_pieces = st.binary(max_size=20) | st.sampled_from(
    [b"\r", b"\r\n", b"\n", b"\r\n ", b"\n\t", b"\x7f", b'"\\\x01"', b"\xc3\xa9", b"\xc3", b"Via: x", b"\r\n\r\n"])


@given(st.lists(_pieces, max_size=12).map(b"".join), st.lists(_pieces, max_size=4).map(b"".join))
@FUZZ
def test_heads_are_cut_as_the_long_way_cuts_them(data: bytes, lead: bytes) -> None:
    from sip.framing import split_head
    for message in (b"OPTIONS sip:a@b SIP/2.0\r\nSubject: " + data + b"\r\n\r\nbody", lead + data, data):
        assert split_head(message) == _reference_split_head(message)
