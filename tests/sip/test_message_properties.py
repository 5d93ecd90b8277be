"""Property tests of the SIP message layer, after h11's fuzz harness and h2's Hypothesis tests.

(a) ``parse_message(bytes(m)) == m`` for generated valid requests and responses;
(b) ``parse_uri(str(u)) == u`` and the same for typed header values;
(c) any bytes in ⇒ a message or :class:`RemoteSipError`, never another exception — for
    ``parse_message`` (datagram and stream), the URI and header parsers, and ``StreamFramer``
    fed random chunks; valid messages are also mutated (flips, inserts, deletes) to reach deep code.

Example counts are modest; ``SIP_FUZZ_EXAMPLES=5000 pytest tests/sip/test_message_properties.py``
runs a deeper search.
"""

from __future__ import annotations

import os
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip.errors import RemoteSipError
from sip.headers import Contact, CSeq, NameAddr, Via
from sip.message import KeepAlivePing, Message, Request, Response, StreamFramer, parse_message, response_to
from sip.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri

EXAMPLES = int(os.environ.get("SIP_FUZZ_EXAMPLES", "50"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_MORE = settings(max_examples=EXAMPLES * 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
LOWER_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~"

tokens = st.text(TOKEN_CHARS, min_size=1, max_size=10)
lower_tokens = st.text(LOWER_TOKEN_CHARS, min_size=1, max_size=8)
# Header text: any character but controls (refused in a header section) and surrogates.
texts = st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=16)
raw_texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=16)  # for escaped URI parts

_label = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,6}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(_label, min_size=1, max_size=3).map(".".join).filter(lambda h: not h.replace(".", "").isdigit())
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a}]")
hosts = st.one_of(hostnames, ipv4, ipv6)
ports = st.none() | st.integers(1, 65535)


Params = tuple[tuple[str, str | None], ...]
M = TypeVar("M", Request, Response)


def _unique_params(values: st.SearchStrategy[str | None], max_size: int = 3) -> st.SearchStrategy[Params]:
    pairs = st.lists(st.tuples(lower_tokens, values), max_size=max_size, unique_by=lambda kv: kv[0])
    return pairs.map(tuple)


sip_uris = st.builds(
    SipUri,
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.none() | st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=10),
    password=st.none(),
    host=hosts,
    port=ports,
    params=_unique_params(st.none() | raw_texts),
    headers=st.lists(st.tuples(st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=6), raw_texts),
                     max_size=2).map(tuple),
)
sip_uris_with_password = st.builds(
    lambda u, pw: SipUri(scheme=u.scheme, user=u.user or "u", password=pw, host=u.host, port=u.port,
                         params=u.params, headers=u.headers),
    sip_uris, raw_texts,
)
tel_uris = st.builds(
    TelUri,
    number=st.from_regex(r"\+?[0-9A-F*#.()\-]{1,12}", fullmatch=True),
    params=_unique_params(st.none() | raw_texts),
)
absolute_uris = st.builds(
    AbsoluteUri,
    scheme=st.from_regex(r"[a-z][a-z0-9+.\-]{0,6}", fullmatch=True).filter(lambda s: s not in ("sip", "sips", "tel")),
    rest=st.from_regex(r"[!#-;=?-~]{1,20}", fullmatch=True),  # printable ASCII without < > "
)
uris: st.SearchStrategy[Uri] = st.one_of(sip_uris, sip_uris_with_password, tel_uris, absolute_uris)
# §19.1.1 Table 1: no header component in a Request-URI.
request_uris: st.SearchStrategy[Uri] = st.one_of(sip_uris.filter(lambda u: not u.headers), tel_uris)

gen_values = st.none() | tokens | texts  # format_params quotes what is not a token or host
vias = st.builds(
    Via,
    transport=st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS", "WSS"]),
    host=hosts,
    port=ports,
    params=st.tuples(tokens.map(lambda t: "z9hG4bK" + t), _unique_params(gen_values)).map(
        lambda bp: (("branch", bp[0]), *((k, v) for k, v in bp[1] if k != "branch"))
    ),
)
name_addrs = st.builds(
    NameAddr,
    uri=uris,
    display=st.none() | texts.filter(bool),
    params=_unique_params(gen_values),
)
cseqs = st.builds(CSeq, seq=st.integers(0, 2**31 - 1), method=tokens)
header_values = texts.map(str.strip)
extra_headers = st.lists(st.tuples(tokens.map(lambda t: "X-" + t), header_values), max_size=4)
bodies = st.binary(max_size=300)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(tokens)
    request = Request(method=method, uri=draw(request_uris))
    headers: list[tuple[str, str]] = [("Via", str(v)) for v in draw(st.lists(vias, min_size=1, max_size=3))]
    headers += [
        ("Max-Forwards", str(draw(st.integers(0, 255)))),
        ("From", str(draw(name_addrs))),
        ("To", str(draw(name_addrs))),
        ("Call-ID", draw(tokens) + draw(st.sampled_from(["", "@example.com"]))),
        ("CSeq", str(CSeq(seq=draw(st.integers(0, 2**31 - 1)), method=method))),
    ]
    headers += [("Contact", str(draw(name_addrs))) for _ in range(draw(st.integers(0, 2)))]
    headers += draw(extra_headers)
    return _finish(draw, request, headers)


@st.composite
def responses(draw: st.DrawFn) -> Response:
    response = Response(status=draw(st.integers(100, 699)), reason=draw(texts))
    headers: list[tuple[str, str]] = [("Via", str(v)) for v in draw(st.lists(vias, min_size=1, max_size=3))]
    headers += [
        ("From", str(draw(name_addrs))),
        ("To", str(draw(name_addrs))),
        ("Call-ID", draw(tokens)),
        ("CSeq", str(draw(cseqs))),
    ]
    headers += draw(extra_headers)
    return _finish(draw, response, headers)


def _finish(draw: st.DrawFn, message: M, headers: list[tuple[str, str]]) -> M:
    headers = draw(st.permutations(headers))
    message.body = draw(bodies)
    # A valid message states its body's length; serialisation keeps Content-Length where it stands.
    headers.insert(draw(st.integers(0, len(headers))), ("Content-Length", str(len(message.body))))
    for name, value in headers:
        message.headers.add(name, value)
    return message


messages = st.one_of(requests(), responses())


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, where, value in edits:
        if not buf:
            buf.append(value)
            continue
        index = where % len(buf)
        if kind == 0:
            buf[index] ^= 1 << (value % 8)
        elif kind == 1:
            buf.insert(index, value)
        elif kind == 2:
            del buf[index : index + 1 + value % 8]
        elif kind == 3:
            buf[index:index] = bytes(buf[index : index + 1 + value % 16])  # duplicate a run
        else:
            buf.insert(index, b"\r\n:;,<>\"\\ %@[]\x00\xff"[value % 16])
    return bytes(buf)


edits = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6)


def _exercise(message: Message) -> None:
    """Touch every typed view: each may raise RemoteSipError and nothing else."""
    for view in (
        lambda: message.vias, lambda: message.cseq, lambda: message.from_, lambda: message.to,
        lambda: [(c.q, c.expires) for c in message.contacts], lambda: bytes(message),
        lambda: message.max_forwards if isinstance(message, Request) else None,
    ):
        try:
            view()
        except RemoteSipError:
            pass


def _parse_or_refuse(data: bytes, *, stream: bool = False) -> None:
    try:
        message = parse_message(data, stream=stream)
    except RemoteSipError as exc:
        if exc.partial is not None:  # an answerable error can always be answered
            assert exc.is_request is True
            bytes(response_to(exc.partial, exc.status_hint))
        return
    _exercise(message)
    assert parse_message(bytes(message), stream=True) == parse_message(bytes(message))


# -- (a) round trips of whole messages ---------------------------------------------------------------


@FUZZ_MORE
@given(messages)
def test_parse_serialise_round_trip(message: Request | Response) -> None:
    assert parse_message(bytes(message)) == message
    assert parse_message(bytes(message), stream=True) == message


@FUZZ
@given(requests())
def test_round_trip_without_content_length_appends_it(request: Request) -> None:
    request.headers.remove("Content-Length")
    parsed = parse_message(bytes(request))
    request.headers.add("Content-Length", str(len(request.body)))
    assert parsed == request


@FUZZ
@given(requests(), st.sampled_from([200, 400, 486, 100]), tokens)
def test_response_to_round_trips(request: Request, status: int, tag: str) -> None:
    response = response_to(request, status, to_tag=tag)
    parsed = parse_message(bytes(response))
    assert isinstance(parsed, Response) and parsed.cseq == request.cseq and parsed.call_id == request.call_id
    assert [str(v) for v in parsed.vias] == [str(v) for v in request.vias]
    assert parsed.to.tag == (request.to.tag if request.to.tag is not None or status == 100 else tag)


# -- (b) round trips of URIs and typed header values ---------------------------------------------------


@FUZZ_MORE
@given(uris)
def test_uri_round_trip(uri: Uri) -> None:
    assert parse_uri(str(uri)) == uri


@FUZZ
@given(vias)
def test_via_round_trip(via: Via) -> None:
    assert Via.parse(str(via)) == via


@FUZZ
@given(name_addrs)
def test_name_addr_round_trip(value: NameAddr) -> None:
    assert NameAddr.parse(str(value)) == value


@FUZZ
@given(cseqs)
def test_cseq_round_trip(value: CSeq) -> None:
    assert CSeq.parse(str(value)) == value


# -- (c) garbage in ⇒ a message or RemoteSipError ---------------------------------------------------


@FUZZ_MORE
@given(st.binary(max_size=600))
def test_any_bytes_parse_or_refuse(data: bytes) -> None:
    _parse_or_refuse(data)
    _parse_or_refuse(data, stream=True)


@FUZZ_MORE
@given(messages, edits)
def test_mutated_messages_parse_or_refuse(message: Request | Response, changes: list[tuple[int, int, int]]) -> None:
    data = _mutate(bytes(message), changes)
    _parse_or_refuse(data)
    _parse_or_refuse(data, stream=True)


@FUZZ_MORE
@given(st.one_of(raw_texts, st.text(max_size=40), uris.map(str), uris.map(str).map(lambda s: s + "%")))
def test_any_text_to_the_value_parsers(text: str) -> None:
    for parse in (parse_uri, Via.parse, NameAddr.parse, CSeq.parse, Contact.parse):
        try:
            value = parse(text)
        except RemoteSipError:
            continue
        str(value)
        if isinstance(value, Contact):
            try:
                _ = (value.q, value.expires)
            except RemoteSipError:
                pass


@FUZZ
@given(st.lists(st.one_of(vias.map(str), name_addrs.map(str)), min_size=1), edits)
def test_mutated_header_values(values: list[str], changes: list[tuple[int, int, int]]) -> None:
    text = _mutate(", ".join(values).encode(), changes).decode("utf-8", errors="replace")
    for parse in (Via.parse, NameAddr.parse, Contact.parse):
        try:
            str(parse(text))
        except RemoteSipError:
            pass


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@FUZZ
@given(st.data(), st.lists(requests(), min_size=1, max_size=3), st.lists(st.sampled_from([b"\r\n", b"\r\n\r\n"])))
def test_framer_recovers_valid_messages_from_any_chunking(
    data: st.DataObject, batch: list[Request], pings: list[bytes]
) -> None:
    stream = b"".join(pings) + b"".join(bytes(m) for m in batch)
    framer = StreamFramer()
    frames: list[bytes | KeepAlivePing] = []
    for chunk in data.draw(chunked(stream)):
        framer.feed(chunk)
        while (frame := framer.next_frame()) is not None:
            frames.append(frame)
    assert [f for f in frames if isinstance(f, bytes)] == [bytes(m) for m in batch]
    assert [parse_message(f, stream=True) for f in frames if isinstance(f, bytes)] == batch


@FUZZ_MORE
@given(st.data(), st.lists(st.one_of(st.binary(max_size=200), messages.map(bytes)), max_size=4), edits)
def test_framer_fed_garbage_only_raises_remote_errors(
    data: st.DataObject, parts: list[bytes], changes: list[tuple[int, int, int]]
) -> None:
    stream = _mutate(b"".join(parts), changes)
    framer = StreamFramer(max_header_bytes=512, max_body_bytes=256)
    try:
        for chunk in data.draw(chunked(stream)):
            framer.feed(chunk)
            assert framer.buffered <= 512 + 4 + 256 + len(chunk) + 4 * 4096
            while (frame := framer.next_frame()) is not None:
                if isinstance(frame, bytes):
                    _parse_or_refuse(frame, stream=True)
    except RemoteSipError:
        pass
