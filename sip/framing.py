"""Framing: where SIP messages, their header sections and lines begin and end. Sans-I/O.

:class:`StreamFramer` cuts a TCP/TLS byte stream into whole messages, memory-bounded. RFC 3261
§18.3: on a stream transport "the Content-Length header field MUST be used" to find the end of
each message, and CRLFs may precede a message (§7.5). RFC 5626 §3.5.1: a double CRLF is a
keep-alive ping, answered with a single CRLF (pong). :func:`split_head` cuts one message into
unfolded header lines (§7.3.1) and body for :func:`sip.message.parse_message`, which re-exports
the public names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sip.errors import MessageTooLargeError, RemoteSipError

MAX_HEADER_BYTES = 32 * 1024
MAX_BODY_BYTES = 256 * 1024
# Control characters other than HTAB and LF (§25.1 TEXT-UTF8, LWS). split_head normalises CRLF
# line ends to LF first, so any CR this finds is a lone one: refused too.
CTL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# §25.1: quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F), so inside a quoted-string an escaped
# control character is legal (RFC 4475 'intmeth': "BEL:\<07> NUL:\<00> DEL:\<7F>"); a bare one or an
# escaped CR never is. One quoted-string whose content is legal: qdtext (no CTL but HTAB) or a
# quoted-pair of anything but CR and LF.
# Bytes that are never a control character of CTL_RE (in UTF-8 a byte >= 0x80 is part of a character
# >= U+0080), except CR and LF (what is left of a head without them must be CRLF pairs).
_TEXT_BYTES = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
_LEGAL_QUOTED_RE = re.compile(r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\r\n])*"')


def bare_control(text: str) -> bool:
    """True when ``text`` (a header section, LF line ends) holds a control character that is not
    escaped inside a quoted-string: the only place §25.1 lets one appear.

    Regular expressions only (no loop over characters in Python): a peer can make every header
    section take this path, so it must cost about what the plain search costs.
    """
    if CTL_RE.search(text) is None:
        return False
    return CTL_RE.search(_LEGAL_QUOTED_RE.sub('""', text)) is not None


def split_head(data: bytes, max_header_bytes: int = MAX_HEADER_BYTES) -> tuple[list[str], bytes, bool, bool]:
    """Cut one message into unfolded lines (start line first) and body.

    Returns ``(lines, body, too_large, bad_text)``: ``too_large`` when the header section is over
    ``max_header_bytes`` (only its first whole lines are returned, so a 513 can still be answered),
    ``bad_text`` when it is not UTF-8 or holds control characters. Never raises.
    """
    data = data.lstrip(b"\r\n")  # §7.5: CRLFs before a message are ignored
    crlf = data.find(b"\r\n\r\n")  # the first empty line, CRLF CRLF or (tolerated) LF LF
    if 0 <= crlf <= max_header_bytes:
        usual = _usual_head(data[:crlf])
        if usual is not None:
            return usual, data[crlf + 4 :], False, False
    lf = data.find(b"\n\n", 0, None if crlf < 0 else crlf)
    if lf >= 0:
        head, body = data[:lf].rstrip(b"\r"), data[lf + 2 :]
    elif crlf >= 0:
        head, body = data[:crlf], data[crlf + 4 :]
    else:
        head, body = data, b""
    too_large = len(head) > max_header_bytes
    if too_large:
        head = head[: head.rfind(b"\n", 0, max_header_bytes) + 1].rstrip(b"\r\n")
    try:
        text = head.decode("utf-8").replace("\r\n", "\n")
        bad_text = bare_control(text)
    except UnicodeDecodeError:
        text = head.decode("utf-8", errors="replace").replace("\r\n", "\n")
        bad_text = True
    if "\n " not in text and "\n\t" not in text:  # nothing folded (the usual case)
        return text.split("\n"), body, too_large, bad_text
    lines: list[str] = []
    for line in text.split("\n"):
        if line[:1] in (" ", "\t") and len(lines) > 1:  # a fold onto the start line stays a bad line
            lines[-1] = lines[-1].rstrip() + " " + line.strip()
        else:
            lines.append(line)
    return lines, body, too_large, bad_text


def _usual_head(head: bytes) -> list[str] | None:
    """The lines of the usual header section: UTF-8, CRLF line ends only, no control byte, nothing folded
    (what :func:`split_head` would return for it, found with a few C passes over the bytes instead of the
    regular expressions' passes over the text); None for any other, which split_head reads the long way.
    """
    line_ends = head.translate(None, _TEXT_BYTES)  # the CRs and LFs, and any control byte
    pairs = len(line_ends) // 2
    if line_ends != b"\r\n" * pairs or head.count(b"\r\n") != pairs or b"\n " in head or b"\n\t" in head:
        return None
    try:
        return head.decode("utf-8").split("\r\n")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True, slots=True)
class KeepAlivePing:
    """A CRLF CRLF keep-alive on a stream (RFC 5626 §3.5.1): answer with one CRLF."""


def _content_length(head: bytes) -> int:
    """Content-Length of a header section (0 when absent; parse_message then refuses the frame).

    Raises: RemoteSipError for a value that is not 1*DIGIT or for conflicting values.
    """
    lines: list[bytes] = []
    for line in head.split(b"\r\n")[1:]:
        if line[:1] in (b" ", b"\t") and lines:  # folded continuation (§7.3.1)
            lines[-1] += b" " + line.strip()
        else:
            lines.append(line)
    found: set[bytes] = set()
    for line in lines:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            found.add(value.strip())
    if not found:
        return 0
    if len(found) > 1:
        raise RemoteSipError("conflicting Content-Length values on stream")
    text = found.pop()
    if not text.isdigit() or len(text) > 9:  # bytes.isdigit() is ASCII-only
        raise RemoteSipError("bad Content-Length on stream")
    return int(text)


class StreamFramer:
    """Cuts a byte stream (TCP, TLS) into whole SIP messages.

    Use: ``feed(chunk)``, then call ``next_frame()`` until it returns None. Memory is bounded: the
    pending header section may not pass ``max_header_bytes`` before its blank line is seen —
    :meth:`feed` itself raises once it does, so an endless header costs at most the limit plus one
    chunk — and the body may not pass ``max_body_bytes``. Each byte is searched once, however small
    the chunks. After any error the connection must be closed: a stream cannot be resynchronised.
    """

    def __init__(self, *, max_header_bytes: int = MAX_HEADER_BYTES, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self._buffer = bytearray()
        self._max_header = max_header_bytes
        self._max_body = max_body_bytes
        self._scanned = 0  # bytes of the pending message (after leading CRLFs) searched for CRLF CRLF
        self._frame_size: int | None = None  # size of the pending message once its head is complete

    def feed(self, data: bytes) -> None:
        """Append received bytes.

        Raises:
            MessageTooLargeError: the pending header section is over the limit.
            RemoteSipError: the pending message has a bad Content-Length.
        """
        self._buffer += data
        if self._frame_size is None:
            self._scan()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _scan(self) -> None:
        buf = self._buffer
        lead = 0
        while buf.startswith(b"\r\n", lead):  # pings and stray CRLFs: next_frame consumes them
            lead += 2
        if lead == len(buf):
            return
        limit = lead + self._max_header + 4
        end = buf.find(b"\r\n\r\n", lead + max(0, self._scanned - 3), limit)
        if end < 0:
            self._scanned = len(buf) - lead
            if self._scanned > self._max_header:
                raise MessageTooLargeError("header section too large on stream")
            return
        length = _content_length(bytes(buf[lead:end]))
        if length > self._max_body:
            raise MessageTooLargeError("body too large on stream")
        self._frame_size = end - lead + 4 + length

    def next_frame(self) -> bytes | KeepAlivePing | None:
        """The next whole message's bytes, a keep-alive ping, or None if more data is needed.

        Raises:
            MessageTooLargeError: header section or body over the limits.
            RemoteSipError: a Content-Length that is not a number, or conflicting ones.
        """
        buf = self._buffer
        while buf.startswith(b"\r\n"):
            if buf.startswith(b"\r\n\r\n"):
                del buf[:4]
                return KeepAlivePing()
            if len(buf) < 4 and b"\r\n\r\n".startswith(bytes(buf)):
                return None  # maybe the first half of a ping: wait for more
            del buf[:2]  # a pong, or a stray CRLF between messages (RFC 3261 §7.5)
        if not buf:
            return None
        if self._frame_size is None:
            self._scan()
            if self._frame_size is None:
                return None
        size = self._frame_size
        if len(buf) < size:
            return None
        frame = bytes(buf[:size])
        del buf[:size]
        self._frame_size = None
        self._scanned = 0
        return frame
