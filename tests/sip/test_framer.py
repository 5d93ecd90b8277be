"""StreamFramer: whole SIP messages out of a TCP/TLS byte stream (RFC 3261 §18.3, RFC 5626 §3.5.1)."""

from __future__ import annotations

import time

import pytest

from sip.errors import MessageTooLargeError, RemoteSipError
from sip.message import KeepAlivePing, Request, StreamFramer, parse_message


def message(n: int, body: bytes = b"", *, length: int | None = None) -> bytes:
    head = (
        f"MESSAGE sip:agent@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK{n}\r\n"
        f"From: <sip:a@example.com>;tag={n}\r\nTo: <sip:agent@example.com>\r\n"
        f"Call-ID: framer-{n}\r\nCSeq: {n} MESSAGE\r\nMax-Forwards: 70\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


def drain(framer: StreamFramer) -> list[bytes | KeepAlivePing]:
    out: list[bytes | KeepAlivePing] = []
    while (frame := framer.next_frame()) is not None:
        out.append(frame)
    return out


def test_one_message_one_chunk() -> None:
    framer = StreamFramer()
    framer.feed(message(1, b"hello"))
    frames = drain(framer)
    assert frames == [message(1, b"hello")]
    assert framer.buffered == 0
    parsed = parse_message(message(1, b"hello"), stream=True)
    assert isinstance(parsed, Request) and parsed.body == b"hello"


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_message_split_across_chunks(size: int) -> None:
    data = message(1, b"body\r\n\r\nwith blank lines") + message(2, b"x")
    framer = StreamFramer()
    frames: list[bytes | KeepAlivePing] = []
    for index in range(0, len(data), size):
        framer.feed(data[index : index + size])
        frames.extend(drain(framer))
    assert frames == [message(1, b"body\r\n\r\nwith blank lines"), message(2, b"x")]
    assert framer.buffered == 0


def test_several_messages_in_one_chunk_and_a_partial_tail() -> None:
    data = message(1) + message(2, b"abc") + message(3, b"0123456789")
    framer = StreamFramer()
    framer.feed(data + message(4, b"tail")[:-2])
    assert drain(framer) == [message(1), message(2, b"abc"), message(3, b"0123456789")]
    framer.feed(b"il")
    assert drain(framer) == [message(4, b"tail")]


def test_keep_alive_ping_and_stray_crlfs() -> None:
    framer = StreamFramer()
    framer.feed(b"\r\n\r\n")
    assert drain(framer) == [KeepAlivePing()]
    framer.feed(b"\r\n")  # a pong, or half a ping: wait
    assert framer.next_frame() is None
    framer.feed(b"\r\n")
    assert drain(framer) == [KeepAlivePing()]
    framer.feed(b"\r\n" + message(1) + b"\r\n\r\n" + message(2))
    assert drain(framer) == [message(1), KeepAlivePing(), message(2)]
    framer.feed(b"\r")
    assert framer.next_frame() is None and framer.buffered == 1


def test_compact_and_folded_content_length() -> None:
    data = message(1, b"12345").replace(b"Content-Length: 5", b"l  :\r\n 5")
    framer = StreamFramer()
    framer.feed(data + message(2))
    assert drain(framer) == [data, message(2)]
    assert parse_message(data, stream=True).body == b"12345"


def test_missing_content_length_frames_an_empty_body_that_the_parser_refuses() -> None:
    data = message(1).replace(b"Content-Length: 0\r\n", b"")
    framer = StreamFramer()
    framer.feed(data)
    assert drain(framer) == [data]
    with pytest.raises(RemoteSipError):
        parse_message(data, stream=True)


@pytest.mark.parametrize("value", [b"-1", b"abc", b"1e3", b"9999999999", "\u00b2".encode()])
def test_bad_content_length_raises(value: bytes) -> None:
    framer = StreamFramer()
    with pytest.raises(RemoteSipError):
        framer.feed(message(1).replace(b"Content-Length: 0", b"Content-Length: " + value))
        framer.next_frame()


def test_conflicting_content_lengths_raise() -> None:
    framer = StreamFramer()
    with pytest.raises(RemoteSipError):  # once the last one silently won
        framer.feed(message(1, b"abc").replace(b"\r\n\r\n", b"\r\nl: 0\r\n\r\n"))


def test_body_over_the_limit_raises_before_it_arrives() -> None:
    framer = StreamFramer(max_body_bytes=1000)
    with pytest.raises(MessageTooLargeError) as info:
        framer.feed(message(1, length=1001))
    assert info.value.status_hint == 513
    framer = StreamFramer(max_body_bytes=1000)
    framer.feed(message(1, b"x" * 1000))
    assert drain(framer) == [message(1, b"x" * 1000)]


def test_ten_megabyte_header_section_is_refused_with_bounded_memory() -> None:
    # The peer never ends its header section. The caller feeds 64 KiB chunks and never gets to
    # next_frame(): feed() itself must refuse once the limit is passed, before 10 MB pile up.
    framer = StreamFramer()
    chunk = b"X-Junk: " + b"j" * (64 * 1024 - 10) + b"\r\n"
    head = message(1).split(b"\r\n\r\n")[0] + b"\r\n"
    peak = 0
    with pytest.raises(MessageTooLargeError):
        framer.feed(head)
        for _ in range(10 * 1024 * 1024 // len(chunk)):
            framer.feed(chunk)
            peak = max(peak, framer.buffered)
    assert framer.buffered <= 32 * 1024 + len(chunk) + len(head)
    assert peak <= 32 * 1024


def test_header_limit_counts_from_the_message_not_the_leading_crlfs() -> None:
    framer = StreamFramer(max_header_bytes=len(message(1)))
    framer.feed(b"\r\n" * 100 + message(1))
    assert drain(framer)[-1] == message(1)


def test_header_exactly_at_the_limit_passes_one_byte_over_fails() -> None:
    data = message(1)
    head_size = data.index(b"\r\n\r\n")
    framer = StreamFramer(max_header_bytes=head_size)
    framer.feed(data)
    assert drain(framer) == [data]
    framer = StreamFramer(max_header_bytes=head_size - 1)
    with pytest.raises(MessageTooLargeError):
        framer.feed(data[:-4])
        framer.feed(data[-4:])
        framer.next_frame()


def test_one_byte_chunks_are_linear_time() -> None:
    # A head that arrives one byte at a time must not be searched again from the start each time:
    # with a 100 kB head the old quadratic search took ~3.4 s here, the linear one ~0.15 s.
    data = message(1).replace(b"Max-Forwards: 70", b"X-Pad: " + b"p" * 100_000 + b"\r\nMax-Forwards: 70")
    framer = StreamFramer(max_header_bytes=128 * 1024)
    started = time.perf_counter()
    frames: list[bytes | KeepAlivePing] = []
    for index in range(len(data)):
        framer.feed(data[index : index + 1])
        frames.extend(drain(framer))
    assert frames == [data]
    assert time.perf_counter() - started < 1.5
