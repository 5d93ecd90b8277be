"""The hostile corpus: SIP datagrams a server must survive, each with the answer the RFC asks for.

Written in the spirit of RFC 4475 (SIP torture tests), not copied from it. Each case is one UDP
datagram. ``expected_status`` is the status the *server* must answer with, or ``None`` when no
response can or should be sent (the message is dropped). ``layer`` says who decides:

- ``"parser"``: :func:`sip.message.parse_message` raises :class:`~sip.errors.RemoteSipError` with
  ``status_hint == expected_status``; ``partial`` is set iff the case is answerable.
- ``"server"``: the parser accepts the message; the server (transaction layer, UAS core) decides.

Every request carries the sent-by :data:`SENT_BY` with ``rport`` (RFC 3581), a unique branch, From
tag and Call-ID, so a replayer may rewrite ``SENT_BY`` to its own address and the server never
mistakes one case for a retransmission of another. Requests go to :data:`TARGET` (the demo's IVR
number). Nothing here is a test: the parser tests and the server replay both import ``HOSTILE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SENT_BY = "127.0.0.1:5070"
TARGET = "sip:100@127.0.0.1"

Layer = Literal["parser", "server"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HostileCase:
    name: str
    data: bytes
    expected_status: int | None  # None: dropped, no response
    why: str  # one line citing the rule
    layer: Layer


_SDP = (
    b"v=0\r\no=tester 2890844526 2890844526 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 49170 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)


def _headers(name: str, method: str) -> list[tuple[str, str]]:
    return [
        ("Via", f"SIP/2.0/UDP {SENT_BY};branch=z9hG4bK-hostile-{name};rport"),
        ("Max-Forwards", "70"),
        ("From", f'"Hostile Tester" <sip:tester@127.0.0.1>;tag=ht-{name}'),
        ("To", f"<{TARGET}>"),
        ("Call-ID", f"hostile-{name}@127.0.0.1"),
        ("CSeq", f"1 {method}"),
        ("Contact", "<sip:tester@127.0.0.1:5070>"),
        ("User-Agent", "cti-hostile-corpus/1"),
    ]


def _request(
    name: str,
    method: str = "OPTIONS",
    *,
    start: str | None = None,
    drop: tuple[str, ...] = (),
    replace: dict[str, str] | None = None,
    extra: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    content_length: str | None = None,
    raw_extra: bytes = b"",
) -> bytes:
    """A well-formed request, then spoiled: ``drop`` headers, ``replace`` values, add ``extra``."""
    replace = replace or {}
    lines = [start or f"{method} {TARGET} SIP/2.0"]
    for header, value in _headers(name, method):
        if header in drop:
            continue
        lines.append(f"{header}: {replace.get(header, value)}")
    lines.extend(f"{header}: {value}" for header, value in extra or ())
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    return "\r\n".join(lines).encode() + b"\r\n" + raw_extra + b"\r\n" + body


def _insert(data: bytes, before: bytes, raw: bytes) -> bytes:
    index = data.index(before)
    return data[:index] + raw + data[index:]


def _response(name: str, status_line: str) -> bytes:
    lines = [
        status_line,
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-never-sent-{name}",
        "From: <sip:100@127.0.0.1>;tag=srv-1",
        f"To: <sip:tester@127.0.0.1>;tag=ht-{name}",
        f"Call-ID: hostile-{name}@127.0.0.1",
        "CSeq: 1 OPTIONS",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _case(name: str, layer: Layer, expected: int | None, why: str, data: bytes) -> HostileCase:
    return HostileCase(name=name, data=data, expected_status=expected, why=why, layer=layer)


_GARBAGE = bytes((i * 73 + 41) % 256 for i in range(512))
_PADDING = "x" * 40_000  # > MAX_HEADER_BYTES (32 KiB) yet one UDP datagram on loopback
_VIAS = ", ".join(f"SIP/2.0/UDP proxy{i}.example.net;branch=z9hG4bK-hop{i}" for i in range(79))

HOSTILE: list[HostileCase] = [
    # -- mandatory headers (RFC 3261 §8.1.1) --------------------------------------------------
    _case("missing_via", "parser", None,
          "§8.1.1 Via is mandatory and §18.2.2 routes responses by the top Via: none, no response",
          _request("missing_via", drop=("Via",))),
    _case("missing_from", "parser", 400,
          "§8.1.1 From is mandatory; RFC 4475 'insuf': ideally answer 400",
          _request("missing_from", drop=("From",))),
    _case("missing_to", "parser", 400,
          "§8.1.1 To is mandatory; RFC 4475 'insuf': ideally answer 400",
          _request("missing_to", drop=("To",))),
    _case("missing_call_id", "parser", 400,
          "§8.1.1 Call-ID is mandatory; RFC 4475 'insuf': ideally answer 400",
          _request("missing_call_id", drop=("Call-ID",))),
    _case("missing_cseq", "parser", 400,
          "§8.1.1 CSeq is mandatory; answered 400 (the client cannot match it, but may log it)",
          _request("missing_cseq", drop=("CSeq",))),
    _case("missing_max_forwards", "server", 200,
          "§8.1.1.6 Max-Forwards SHOULD be sent; its absence is tolerated, OPTIONS answered 200 (§11.2)",
          _request("missing_max_forwards", drop=("Max-Forwards",))),
    # -- CSeq (§8.1.1.5, §20.16) --------------------------------------------------------------------
    _case("cseq_method_mismatch", "parser", 400,
          "§8.1.1.5 the CSeq method MUST match the request method (RFC 4475 'mismatch01')",
          _request("cseq_method_mismatch", replace={"CSeq": "1 INVITE"})),
    _case("cseq_non_numeric", "parser", 400,
          "§25.1 CSeq = 1*DIGIT LWS Method",
          _request("cseq_non_numeric", replace={"CSeq": "one OPTIONS"})),
    _case("cseq_negative", "parser", 400,
          "§25.1 CSeq = 1*DIGIT LWS Method: no sign allowed",
          _request("cseq_negative", replace={"CSeq": "-1 OPTIONS"})),
    _case("cseq_too_big", "parser", 400,
          "§8.1.1.5 the sequence number MUST be less than 2**31 (RFC 4475 'scalar02')",
          _request("cseq_too_big", replace={"CSeq": f"{2**31} OPTIONS"})),
    # -- Content-Length (§18.3, §20.14) -------------------------------------------------------------
    _case("content_length_negative", "parser", 400,
          "§20.14 Content-Length = 1*DIGIT (RFC 4475 'ncl')",
          _request("content_length_negative", "INVITE", body=_SDP, content_length="-5")),
    _case("content_length_non_numeric", "parser", 400,
          "§20.14 Content-Length = 1*DIGIT",
          _request("content_length_non_numeric", "INVITE", body=_SDP, content_length="lots")),
    _case("content_length_huge", "parser", 400,
          "§20.14 and RFC 4475 'scalar02': an overlarge Content-Length is refused with 400",
          _request("content_length_huge", "INVITE", body=_SDP, content_length="9" * 30)),
    _case("content_length_exceeds_body", "parser", 400,
          "§18.3 a UDP packet ending before the body does: a request SHOULD be answered 400 (RFC 4475 'clerr')",
          _request("content_length_exceeds_body", "INVITE", body=_SDP, content_length=str(len(_SDP) + 100))),
    _case("content_length_conflicting", "parser", 400,
          "§7.3.1 Content-Length is single-valued, §18.3 frames the body with it: 400 (RFC 4475 'mcl01')",
          _request("content_length_conflicting", "INVITE", body=_SDP, extra=[("Content-Length", "3")])),
    # -- start line --------------------------------------------------------------------------------
    _case("sip_version_3", "parser", 505,
          "§21.5.7 505 Version Not Supported for SIP/3.0 (RFC 4475 'badvers')",
          _request("sip_version_3", start=f"OPTIONS {TARGET} SIP/3.0")),
    _case("unsupported_uri_scheme", "parser", 416,
          "§8.2.2.1 a Request-URI scheme the UAS does not support MUST be answered 416 (RFC 4475 'unkscm')",
          _request("unsupported_uri_scheme", start="OPTIONS nosuchscheme:anything-at-all SIP/2.0")),
    _case("request_line_extra_spaces", "parser", 400,
          "§7.1 Request-Line = Method SP Request-URI SP SIP-Version: single SPs (RFC 4475 'lwsstart')",
          _request("request_line_extra_spaces", start=f"OPTIONS  {TARGET}   SIP/2.0")),
    _case("unknown_method", "server", 501,
          "§8.2.1 parser accepts any token method; the UAS SHOULD answer 501 Not Implemented",
          _request("unknown_method", "FROBNICATE")),
    _case("uri_bad_escape", "parser", 400,
          "§25.1 escaped = \"%\" HEXDIG HEXDIG: '%G0' is malformed",
          _request("uri_bad_escape", start="OPTIONS sip:10%G0@127.0.0.1 SIP/2.0")),
    _case("uri_duplicate_params", "parser", 400,
          "§19.1.1 any given URI parameter name MUST NOT appear more than once",
          _request("uri_duplicate_params", start=f"OPTIONS {TARGET};transport=udp;transport=tcp SIP/2.0")),
    # -- Max-Forwards (§20.22, §16.3 step 3) ---------------------------------------------------------
    _case("max_forwards_zero_invite", "server", 483,
          "§16.3 step 3: Max-Forwards 0 on a non-OPTIONS request MUST be answered 483 (server decides)",
          _request("max_forwards_zero_invite", "INVITE", replace={"Max-Forwards": "0"}, body=_SDP)),
    _case("max_forwards_zero_options", "server", 200,
          "§16.3 step 3: with Max-Forwards 0 an OPTIONS MAY be answered locally (§11): the server says 200",
          _request("max_forwards_zero_options", replace={"Max-Forwards": "0"})),
    _case("max_forwards_non_numeric", "parser", 400,
          "§25.1 Max-Forwards = 1*DIGIT",
          _request("max_forwards_non_numeric", replace={"Max-Forwards": "seventy"})),
    _case("max_forwards_over_255", "parser", 400,
          "§20.22 Max-Forwards is an integer in the range 0-255",
          _request("max_forwards_over_255", replace={"Max-Forwards": "256"})),
    # -- extensions ----------------------------------------------------------------------------------
    _case("require_unknown_option", "server", 420,
          "§8.2.2.3 an unknown option-tag in Require MUST get 420 with an Unsupported header (server decides)",
          _request("require_unknown_option", "INVITE", extra=[("Require", "x-no-such-extension")], body=_SDP)),
    # -- limits (§21.5.11 513; our caps: 32 KiB of headers, 256 fields) -----------------------------
    _case("header_section_huge", "parser", 513,
          "§21.5.11 513 Message Too Large: header section over our 32 KiB cap",
          _request("header_section_huge", extra=[("X-Padding", _PADDING)])),
    _case("too_many_header_fields", "parser", 513,
          "§21.5.11 513 Message Too Large: more than our 256 header fields",
          _request("too_many_header_fields", extra=[(f"X-Filler-{i}", "x") for i in range(300)])),
    _case("many_vias", "server", 200,
          "no RFC limit on Via count (483 is only for Max-Forwards 0, §21.4.20); size caps bound it: 200",
          _request("many_vias", extra=[("Via", _VIAS)])),
    # -- bytes that are not text ----------------------------------------------------------------------
    _case("binary_garbage", "parser", None,
          "§7 not a SIP message at all: no Via to answer (§18.2.2), drop",
          _GARBAGE),
    _case("nul_in_header", "parser", 400,
          "§25.1 header values are TEXT-UTF8 / LWS: NUL is not allowed",
          _request("nul_in_header", extra=[("Subject", "hello\x00world")])),
    _case("control_char_in_header", "parser", 400,
          "§25.1 header values are TEXT-UTF8 / LWS: CTL characters other than HTAB are not allowed",
          _request("control_char_in_header", extra=[("Subject", "bell\x07here")])),
    _case("invalid_utf8_in_header", "parser", 400,
          "§25.1 TEXT-UTF8char: the header section must be valid UTF-8",
          _request("invalid_utf8_in_header", extra=[("Subject", "XX")]).replace(b"Subject: XX", b"Subject: caf\xc3(")),
    _case("empty_datagram", "parser", None,
          "§7 an empty datagram is not a message: drop",
          b""),
    _case("only_crlfs", "parser", None,
          "§7.5 CRLFs before a message are ignored; alone they are a keep-alive (RFC 5626 §3.5.1): drop",
          b"\r\n\r\n"),
    # -- structured headers -------------------------------------------------------------------------
    _case("malformed_via", "parser", None,
          "§18.2.2 routes by the top Via sent-by and §18.1.2 makes the client discard a response with a "
          "foreign sent-by: a Via without sent-by cannot be answered, drop",
          _request("malformed_via", replace={"Via": "SIP/2.0/UDP ;branch=z9hG4bK-hostile-malformed_via"})),
    _case("malformed_second_via", "parser", 400,
          "§20.42 Via grammar; the top Via is good, so the 400 can be routed (§18.2.2)",
          _request("malformed_second_via", extra=[("Via", "SIP/2.0/UDP")])),
    _case("malformed_from", "parser", 400,
          "§20.20 From = name-addr / addr-spec: '<' without '>'",
          _request("malformed_from", replace={"From": "<sip:tester@127.0.0.1;tag=ht-malformed_from"})),
    _case("malformed_to", "parser", 400,
          "§20.39 To = name-addr / addr-spec: stray '>'",
          _request("malformed_to", replace={"To": f"{TARGET}>"})),
    _case("unclosed_quote_display_name", "parser", 400,
          "§25.1 quoted-string needs its closing DQUOTE (RFC 4475 'quotbal')",
          _request("unclosed_quote_display_name",
                   replace={"From": '"Hostile Tester <sip:tester@127.0.0.1>;tag=ht-unclosed'})),
    _case("header_without_colon", "parser", 400,
          "§7.3 message-header = field-name HCOLON field-value: no colon",
          _request("header_without_colon", extra=[("Subject no colon", "")]).replace(b"colon: ", b"colon")),
    _case("folding_onto_start_line", "parser", 400,
          "§7.3.1 folding continues a header field; a continuation line right after the start line is bad",
          _insert(_request("folding_onto_start_line"), b"Via:", b" continued\r\n")),
    _case("call_id_with_space", "parser", 400,
          "§25.1 Call-ID = word [\"@\" word]: no white space inside",
          _request("call_id_with_space", replace={"Call-ID": "hostile call id@127.0.0.1"})),
    _case("duplicate_call_id", "parser", 400,
          "§20 Call-ID is single-valued: two of them is malformed (RFC 4475 'multi01')",
          _request("duplicate_call_id", extra=[("Call-ID", "second-call-id@127.0.0.1")])),
    _case("duplicate_from", "parser", 400,
          "§20 From is single-valued: two of them is malformed (RFC 4475 'multi01')",
          _request("duplicate_from", extra=[("From", "<sip:someone-else@127.0.0.1>;tag=other")])),
    _case("request_uri_with_headers", "parser", 400,
          "§19.1.1 Table 1: a header component is not allowed in a Request-URI (RFC 4475 'escruri')",
          _request("request_uri_with_headers", start=f"OPTIONS {TARGET}?Route=%3Csip:evil.example%3E SIP/2.0")),
    _case("invite_wildcard_contact", "parser", 400,
          "§20.10/§10.2.2 Contact '*' is only for REGISTER with Expires 0",
          _request("invite_wildcard_contact", "INVITE", replace={"Contact": "*"}, body=_SDP)),
    # -- valid but weird: the parser must accept (RFC 4475 §3.1.1, valid messages, in spirit) -------------------------
    _case("weird_but_valid_whitespace", "server", 200,
          "§7.3.1 LWS around HCOLON, header folding and case-insensitive names are legal (RFC 4475 'wsinv')",
          (f"OPTIONS {TARGET} SIP/2.0\r\n"
           f"via  :SIP/2.0/UDP {SENT_BY}\r\n   ;branch=z9hG4bK-hostile-weird_ws;rport\r\n"
           "MAX-FORWARDS:\t70\r\n"
           'from: "Weird \\"quoted\\" Tester"\r\n <sip:tester@127.0.0.1> ; tag = ht-weird\r\n'
           f"tO:<{TARGET}>\r\n"
           "call-id   : hostile-weird_ws@127.0.0.1\r\n"
           "cseq: 0009\r\n\t OPTIONS\r\n"
           "X-Unknown-Header: <nosuchscheme:whatever>;p1;p2=v2\r\n"
           "l: 0\r\n\r\n").encode()),
    _case("compact_forms", "server", 200,
          "§7.3.3 compact header names v, f, t, i, m, l are equivalent to the long ones",
          (f"OPTIONS {TARGET} SIP/2.0\r\n"
           f"v: SIP/2.0/UDP {SENT_BY};branch=z9hG4bK-hostile-compact;rport\r\n"
           "Max-Forwards: 70\r\n"
           "f: <sip:tester@127.0.0.1>;tag=ht-compact\r\n"
           f"t: {TARGET}\r\n"
           "i: hostile-compact@127.0.0.1\r\n"
           "CSeq: 1 OPTIONS\r\n"
           "m: <sip:tester@127.0.0.1:5070>\r\n"
           "l: 0\r\n\r\n").encode()),
    _case("escaped_user_in_uri", "server", 200,
          "§19.1.2 escaped characters in the user part are legal (RFC 4475 'esc01' spirit)",
          _request("escaped_user_in_uri", start="OPTIONS sip:%31%300@127.0.0.1 SIP/2.0")),
    # -- responses: never answered (§17.1.3, §18.1.2) -------------------------------------------------
    _case("unsolicited_response", "server", None,
          "§17.1.3/§18.1.2 a well-formed response that matches no client transaction is dropped",
          _response("unsolicited_response", "SIP/2.0 200 OK")),
    _case("response_bad_status", "parser", None,
          "§7.2 Status-Code is 3DIGIT in 100-699; responses are never answered, so drop",
          _response("response_bad_status", "SIP/2.0 999 Beyond")),
    _case("response_garbled_status_line", "parser", None,
          "§7.2 Status-Line = SIP-Version SP Status-Code SP Reason-Phrase: no code, drop",
          _response("response_garbled_status_line", "SIP/2.0 OK")),
]

if len({case.name for case in HOSTILE}) != len(HOSTILE):  # pragma: no cover - guards edits
    raise RuntimeError("duplicate hostile case names")
