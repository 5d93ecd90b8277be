"""The 49 RFC 4475 torture messages through the parser (sans-I/O): what each one parses to.

The messages are in tests/sip/rfc4475/ byte for byte (README.md there groups them by the RFC's
sections). What a node answers to each is in tests/interop/test_rfc4475.py; this file pins the
parser's part: a message the RFC calls valid parses, an invalid one raises RemoteSipError with
the status to answer and, for a request, the headers needed to answer it (``partial``).
"""

from __future__ import annotations

import pytest

from sip.errors import RemoteSipError
from sip.message import Request, Response, parse_message
from tests.support import torture

# name -> what the parser makes of it: "request"/"response" (parsed), or the RemoteSipError's
# status_hint with "answer" (partial headers: the request can be answered) or "drop".
PARSED: dict[str, str] = {
    # §3.1.1 valid messages
    "wsinv": "request", "intmeth": "request", "esc01": "request", "escnull": "request",
    "esc02": "request", "lwsdisp": "request", "longreq": "request", "dblreq": "request",
    "semiuri": "request", "transports": "request", "mpart01": "request", "unreason": "response",
    "noreason": "response",
    # §3.1.2 invalid messages
    "badinv01": "400 answer", "clerr": "400 answer", "ncl": "400 answer", "scalar02": "400 answer",
    "scalarlg": "400 drop",  # a response: never answered
    "quotbal": "400 answer", "ltgtruri": "400 answer", "lwsruri": "400 answer", "lwsstart": "400 answer",
    "trws": "400 answer", "escruri": "400 answer",
    "baddate": "request",  # §3.1.2.13: a liberal element may ignore a Date it does not use
    "regbadct": "400 answer",
    "badaspec": "request",  # §3.1.2.15: may be accepted ignoring the spaces (responses keep them)
    "baddn": "400 answer", "badvers": "505 answer", "mismatch01": "400 answer", "mismatch02": "400 answer",
    "bigcode": "400 drop",  # a response
    # §3.2 transaction layer
    "badbranch": "request",
    # §3.3 application layer: syntactically valid, refused (or not) above the parser
    "insuf": "400 answer", "unkscm": "416 answer", "novelsc": "416 answer", "unksm2": "request",
    "bext01": "request", "invut": "request", "regaut01": "request", "multi01": "400 answer",
    "mcl01": "400 answer", "bcast": "response", "zeromf": "request", "cparam01": "request",
    "cparam02": "request", "regescrt": "request", "sdp01": "request",
    # §3.4 backward compatibility
    "inv2543": "request",
}


def test_the_set_is_complete() -> None:
    assert len(torture.names()) == 49
    assert sorted(PARSED) == torture.names()


def _outcome(data: bytes, stream: bool) -> str:
    try:
        message = parse_message(data, stream=stream)
    except RemoteSipError as exc:
        return f"{exc.status_hint} {'answer' if exc.partial is not None else 'drop'}"
    return "request" if isinstance(message, Request) else "response"


@pytest.mark.parametrize("name", sorted(PARSED))
def test_torture_message_parses_as_the_rfc_says(name: str) -> None:
    data = torture.load(name)
    assert _outcome(data, stream=torture.via_transport(data) == "TCP") == PARSED[name]


def test_intmeth_escaped_control_characters_in_a_quoted_string_are_legal() -> None:
    """§25.1 quoted-pair = "\\" (%x00-09 / %x0B-0C / %x0E-7F): BEL, NUL and DEL escaped in the To
    display name. A bare control character, or an escaped CR, is still refused."""
    message = parse_message(torture.load("intmeth"), stream=True)
    assert isinstance(message, Request)
    assert message.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert message.to.display == "BEL:\x07 NUL:\ufffd DEL:\x7f"  # the NUL we keep is U+FFFD
    assert '"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f"' in (message.headers.get("To") or "")  # echoed as received
    good = torture.load("lwsdisp")
    for bad in (b'Subject: bell\x07\r\n', b'Subject: x\\\x07\r\n', b'Subject: "x\\\rx"\r\n', b'Subject: "x\x07"\r\n'):
        with pytest.raises(RemoteSipError) as caught:
            parse_message(good.replace(b"l: 0\r\n", bad + b"l: 0\r\n"))
        assert caught.value.status_hint == 400, bad
    ok = parse_message(good.replace(b"l: 0\r\n", b'Subject: "x\\\x07" and "\\\x00"\r\nl: 0\r\n'))
    assert ok.headers.get("Subject") == '"x\\\x07" and "\\\x00"'


def test_baddn_fails_on_its_display_name_with_or_without_the_missing_empty_line() -> None:
    """The archive's 'baddn' ends without the empty line; with it, the unquoted display name with
    a comma is what §3.1.2.16 refuses."""
    data = torture.load("baddn")
    assert not data.endswith(b"\r\n\r\n")
    with pytest.raises(RemoteSipError, match="display name") as caught:
        parse_message(data + b"\r\n")
    assert caught.value.status_hint == 400 and caught.value.partial is not None


def test_badinv01_and_badvers_keep_what_is_needed_for_an_answer() -> None:
    """Their top Via is malformed past its sent-by (empty parameters; SIP/7.0): still answerable."""
    for name, status in (("badinv01", 400), ("badvers", 505)):
        with pytest.raises(RemoteSipError) as caught:
            parse_message(torture.load(name))
        assert caught.value.status_hint == status
        assert caught.value.partial is not None and caught.value.partial.get("Call-ID") == f"{name}." + {
            "badinv01": "0ha0isndaksdjasdf3234nas", "badvers": "31417@c.example.com"}[name]


def test_dblreq_the_second_request_in_the_datagram_is_ignored() -> None:
    message = parse_message(torture.load("dblreq"))
    assert isinstance(message, Request) and message.body == b""
    assert message.call_id.startswith("dblreq.")


def test_responses_in_the_set_parse_or_are_dropped() -> None:
    for name in ("bcast", "unreason", "noreason"):
        assert isinstance(parse_message(torture.load(name)), Response)
    unreason = parse_message(torture.load("unreason"))
    assert isinstance(unreason, Response) and unreason.status == 200 and unreason.reason  # UTF-8 reason kept
    noreason = parse_message(torture.load("noreason"))
    assert isinstance(noreason, Response) and noreason.reason == ""


def test_readdress_changes_only_the_top_via_sent_by() -> None:
    for name in torture.names():
        data = torture.load(name)
        moved = torture.readdress(data, 4242)
        if name in ("bigcode", "bcast", "noreason", "unreason", "scalarlg"):
            continue  # responses are never sent by the node tests
        assert b"127.0.0.1:4242" in moved, name
        assert moved.count(b"rport") == max(1, data.count(b"rport")), name
        assert len(moved) - len(data) < 40, name
