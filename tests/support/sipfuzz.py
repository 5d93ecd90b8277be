"""Mutational SIP for hostile-traffic tests and the fuzz benchmark (tests/bench/bench_sip_fuzz.py).

:class:`Mutator` makes valid requests (INVITE with SDP, REGISTER, OPTIONS, BYE, ACK, CANCEL, INFO)
and responses, then spoils them at random (seeded, so a run can be replayed): bytes flipped,
inserted or cut, header lines dropped, doubled or shuffled, tokens replaced (numbers, tags,
branches, methods, URIs), huge headers, many headers, bad Content-Length, truncated messages and
plain random bytes. Each message gets a fresh branch, Call-ID and tag unless a mutation reuses
one (so retransmission and merged-request paths are hit).

:class:`UdpFuzzer` sends datagrams at a rate; :func:`tcp_fuzz` opens connections that carry a few
messages each and end with a clean close, a reset (RST) or half a message. The probes
(:func:`probe_options`, :func:`probe_register`) and the readings (RSS from
:func:`tests.support.memtrace.rss_mb`,
:func:`metrics`) are what both callers assert on. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import struct
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from sip.errors import RemoteSipError
from sip.message import Request, parse_message, response_to
from tests.support.procs import options_request

HOST = "127.0.0.1"
METHODS = ("INVITE", "REGISTER", "OPTIONS", "BYE", "ACK", "CANCEL", "INFO")
TOKENS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "PRACK", "UPDATE", "REFER", "FOO",
          "SIP/2.0", "SIP/3.0", "0", "1", "-1", "4294967296", "99999999999999999999", "", " ", ";", ":", "@",
          "<", ">", '"', "\\", "z9hG4bK", "tag=", "%00", "\x00", "\xff", "sip:", "sips:", "tel:", "[::1]",
          "127.0.0.1", "0.0.0.0", "255.255.255.255", "65536", "\r\n", "\r\n ", "\t", ",", "*", "application/sdp")
SDP = ("v=0\r\no=fuzz 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")


# ------------------------------------------------------------------------------------------ messages
class Mutator:
    """Valid SIP messages to the server, then spoiled at random (seeded: a run can be replayed)."""

    def __init__(self, rng: random.Random, server_port: int) -> None:
        self.rng = rng
        self.port = server_port
        self.serial = 0
        self._recent: list[tuple[str, str, str]] = []  # (branch, call-id, tag) reused for retransmissions

    def _ids(self) -> tuple[str, str, str]:
        if self._recent and self.rng.random() < 0.1:
            return self.rng.choice(self._recent)
        self.serial += 1
        ids = (f"z9hG4bKfz{self.serial}x{self.rng.getrandbits(32):x}", f"fz{self.serial}@{HOST}",
               f"t{self.rng.getrandbits(24):x}")
        if len(self._recent) > 64:
            self._recent.pop(0)
        self._recent.append(ids)
        return ids

    def seed(self, method: str, transport: str, local_port: int) -> list[str]:
        """A valid request as header lines (start line first); the body is appended last ("" if none)."""
        branch, call_id, tag = self._ids()
        rng = self.rng
        if rng.random() < 0.05:
            branch = f"old{rng.getrandbits(16)}"  # an RFC 2543 branch: the fallback matching rules
        user = rng.choice(("100", "1001", "1002", "sup1", "nobody", "200"))
        uri = f"sip:{user}@{HOST}:{self.port}" if method != "REGISTER" else f"sip:{HOST}:{self.port}"
        to_tag = f";tag=s{rng.getrandbits(16):x}" if method in ("BYE", "INFO") or rng.random() < 0.1 else ""
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/{transport} {HOST}:{local_port};branch={branch};rport",
            f"Max-Forwards: {rng.choice((70, 70, 70, 1, 0))}",
            f"From: \"Fuzz\" <sip:{user if method == 'REGISTER' else 'fuzz'}@{HOST}>;tag={tag}",
            f"To: <sip:{user}@{HOST}>{to_tag}",
            f"Call-ID: {call_id}",
            f"CSeq: {rng.randint(1, 5)} {method}",
            f"Contact: <sip:{user}@{HOST}:{local_port};transport={transport.lower()}>",
            "User-Agent: cti-fuzz/1",
        ]
        body = ""
        if method == "REGISTER":
            lines.append(f"Expires: {rng.choice((0, 60, 3600, 1))}")
            if rng.random() < 0.5:
                lines.append(f'Authorization: Digest username="{user}", realm="cti.demo", nonce="{branch}", '
                             f'uri="sip:{HOST}", response="{rng.getrandbits(128):032x}", algorithm=MD5')
        if method == "INVITE":
            body = SDP
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        lines.append(body)
        return lines

    def response(self, local_port: int) -> list[str]:
        branch, call_id, tag = self._ids()
        status = self.rng.choice((100, 180, 200, 401, 486, 500, 603))
        return [f"SIP/2.0 {status} Whatever", f"Via: SIP/2.0/UDP {HOST}:{self.port};branch={branch}",
                f"From: <sip:100@{HOST}>;tag={tag}", f"To: <sip:fuzz@{HOST}>;tag=x", f"Call-ID: {call_id}",
                f"CSeq: 1 {self.rng.choice(METHODS)}", "Content-Length: 0", ""]

    def message(self, transport: str, local_port: int) -> bytes:
        """One fuzzed message (bytes)."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.04:
            return rng.randbytes(rng.randint(0, 1400))
        lines = self.response(local_port) if roll < 0.08 else self.seed(rng.choice(METHODS), transport, local_port)
        if rng.random() < 0.15:  # valid as is: the server must answer it (and keep a transaction)
            return _join(lines)
        for _ in range(rng.randint(1, 3)):
            lines = rng.choice(LINE_MUTATIONS)(rng, lines)
        data = _join(lines)
        for _ in range(rng.choice((0, 0, 1, 2, 4))):
            data = rng.choice(BYTE_MUTATIONS)(rng, data)
        return data


def _join(lines: list[str]) -> bytes:
    head, body = lines[:-1], lines[-1]
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode("utf-8", errors="surrogateescape")


def _drop_line(rng: random.Random, lines: list[str]) -> list[str]:
    if len(lines) > 2:
        del lines[rng.randrange(1, len(lines) - 1)]
    return lines


def _double_line(rng: random.Random, lines: list[str]) -> list[str]:
    index = rng.randrange(0, len(lines) - 1)
    lines.insert(index, lines[index])
    return lines


def _shuffle_lines(rng: random.Random, lines: list[str]) -> list[str]:
    head = lines[1:-1]
    rng.shuffle(head)
    return [lines[0], *head, lines[-1]]


def _replace_token(rng: random.Random, lines: list[str]) -> list[str]:
    index = rng.randrange(0, len(lines) - 1)
    parts = re.split(r"([ :;,=<>@/])", lines[index])
    if parts:
        parts[rng.randrange(len(parts))] = rng.choice(TOKENS)
    lines[index] = "".join(parts)
    return lines


def _huge_header(rng: random.Random, lines: list[str]) -> list[str]:
    size = rng.choice((1000, 8000, 33_000, 60_000))
    lines.insert(rng.randrange(1, len(lines)), f"X-Fuzz: {'a' * size}")
    return lines


def _many_headers(rng: random.Random, lines: list[str]) -> list[str]:
    name = rng.choice(("Via", "Route", "Record-Route", "Contact", "X-H", "Require", "Authorization"))
    extra = [f"{name}: <sip:h{i}@{HOST}>;lr" if name != "Via" else f"Via: SIP/2.0/UDP h{i}.invalid;branch=z9hG4bK{i}"
             for i in range(rng.choice((10, 100, 500)))]
    return [lines[0], *extra, *lines[1:]]


def _bad_length(rng: random.Random, lines: list[str]) -> list[str]:
    value = rng.choice(("-1", "99999999", "abc", "10", "0", "1e3", "4294967297", "5, 6"))
    return [f"Content-Length: {value}" if line.startswith("Content-Length") else line for line in lines]


def _method_swap(rng: random.Random, lines: list[str]) -> list[str]:
    method = rng.choice(TOKENS[:11])
    first = lines[0].split(" ", 1)
    lines[0] = f"{method} {first[1]}" if len(first) == 2 else method
    if rng.random() < 0.5:
        lines = [re.sub(r"^CSeq: (\d+) \S+", rf"CSeq: \1 {method}", line) for line in lines]
    return lines


def _uri_mutate(rng: random.Random, lines: list[str]) -> list[str]:
    first = lines[0].split(" ")
    if len(first) >= 2:
        first[1] = rng.choice((f"sip:{rng.getrandbits(20)}@{HOST}", "sip:", "tel:+1555", "sip:[::1", "*",
                               f"sip:a@{HOST}:{rng.randint(0, 70000)};transport=tcp", "sip:%zz@x", "<sip:x>"))
    lines[0] = " ".join(first)
    return lines


LINE_MUTATIONS: tuple[Callable[[random.Random, list[str]], list[str]], ...] = (
    _drop_line, _double_line, _shuffle_lines, _replace_token, _replace_token, _huge_header, _many_headers,
    _bad_length, _method_swap, _uri_mutate, _uri_mutate,
)


def _flip(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    index = rng.randrange(len(data))
    return data[:index] + bytes([data[index] ^ (1 << rng.randrange(8))]) + data[index + 1:]


def _insert_bytes(rng: random.Random, data: bytes) -> bytes:
    index = rng.randrange(len(data) + 1)
    return data[:index] + rng.randbytes(rng.randint(1, 16)) + data[index:]


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _cut(rng: random.Random, data: bytes) -> bytes:
    if len(data) < 2:
        return data
    a = rng.randrange(len(data))
    return data[:a] + data[a + rng.randint(1, 32):]


BYTE_MUTATIONS: tuple[Callable[[random.Random, bytes], bytes], ...] = (_flip, _flip, _insert_bytes, _truncate, _cut)


# ------------------------------------------------------------------------------------------- senders
@dataclass
class Counts:
    udp: int = 0
    tcp_messages: int = 0
    tcp_connections: int = 0
    tcp_refused: int = 0
    answers: int = 0
    seconds: float = 0.0
    crashes: list[str] = field(default_factory=list)


class UdpFuzzer:
    """Fuzzed datagrams from a few sockets. Answers are read and thrown away; with ``answer_byes`` the
    BYEs the server sends to end the fuzz calls it answered (their Contact names these sockets) get a
    200, as a phone would, so those calls' transactions end at once instead of after Timer F."""

    def __init__(self, mutator: Mutator, port: int, sockets: int = 4, *, answer_byes: bool = False) -> None:
        self.mutator = mutator
        self.port = port
        self.answer_byes = answer_byes
        self.byes_answered = 0
        self.socks = []
        for _ in range(sockets):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((HOST, 0))
            sock.setblocking(False)
            self.socks.append(sock)

    def send(self, count: int, rate: float, counts: Counts) -> None:
        start = time.monotonic()
        for n in range(count):
            sock = self.socks[n % len(self.socks)]
            data = self.mutator.message("UDP", sock.getsockname()[1])[:65_000]
            with contextlib.suppress(BlockingIOError, OSError):
                sock.sendto(data, (HOST, self.port))
            counts.udp += 1
            if n % 64 == 63:
                counts.answers += self.drain()
                ahead = (n + 1) / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)

    def drain(self) -> int:
        """Read what the server sent (answering BYEs if asked); the number of datagrams read."""
        got = 0
        for sock in self.socks:
            while True:
                try:
                    data, addr = sock.recvfrom(65535)
                except (BlockingIOError, OSError):
                    break
                got += 1
                if self.answer_byes and data.startswith(b"BYE "):
                    self._answer_bye(sock, data, addr)
        return got

    def _answer_bye(self, sock: socket.socket, data: bytes, addr: tuple[str, int]) -> None:
        try:
            request = parse_message(data)
        except RemoteSipError:
            return
        if isinstance(request, Request):
            with contextlib.suppress(OSError):
                sock.sendto(bytes(response_to(request, 200)), addr)
                self.byes_answered += 1

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def tcp_fuzz(mutator: Mutator, port: int, connections: int, counts: Counts) -> None:
    """Connections carrying a few mutated messages each, then a clean close, an RST or a half message."""
    rng = mutator.rng
    for _ in range(connections):
        try:
            sock = socket.create_connection((HOST, port), timeout=2)
        except OSError:
            counts.tcp_refused += 1
            continue
        counts.tcp_connections += 1
        local = sock.getsockname()[1]
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            for _ in range(rng.randint(1, 8)):
                data = mutator.message("TCP", local)
                if rng.random() < 0.05:
                    data = b"\r\n\r\n"  # a keep-alive ping
                with contextlib.suppress(BlockingIOError):
                    sock.send(data)
                counts.tcp_messages += 1
                with contextlib.suppress(BlockingIOError):
                    while sock.recv(65535):
                        counts.answers += 1
        ending = rng.random()
        if ending < 0.4:  # reset: the server's answers find the connection gone
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif ending < 0.5:
            with contextlib.suppress(OSError):
                sock.send(b"INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1")  # half a message
        sock.close()


# ------------------------------------------------------------------------------------------ probes
def probe_options(port: int, timeout: float = 10.0) -> bool:
    """True when the server answers an OPTIONS 200 within ``timeout`` (retried every 0.5 s)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(0.5)
        local = sock.getsockname()[1]
        n = 0
        while time.monotonic() < deadline:
            n += 1
            call_id = f"fuzz-probe-{time.monotonic_ns()}-{n}"
            sock.sendto(options_request(HOST, port, local, call_id).encode(), (HOST, port))
            with contextlib.suppress(TimeoutError):
                while True:
                    data = sock.recv(65535)
                    if data.startswith(b"SIP/2.0 200") and call_id.encode() in data:
                        return True
    return False


def probe_register(port: int, timeout: float = 10.0) -> int | None:
    """The status the server answers an unauthenticated REGISTER for agent 1001 with (401 expected)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(0.5)
        local = sock.getsockname()[1]
        n = 0
        while time.monotonic() < deadline:
            n += 1
            call_id = f"fuzz-reg-{time.monotonic_ns()}-{n}"
            request = (f"REGISTER sip:{HOST}:{port} SIP/2.0\r\n"
                       f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{call_id};rport\r\nMax-Forwards: 70\r\n"
                       f"From: <sip:1001@{HOST}>;tag=r{n}\r\nTo: <sip:1001@{HOST}>\r\nCall-ID: {call_id}\r\n"
                       f"CSeq: 1 REGISTER\r\nContact: <sip:1001@{HOST}:{local}>\r\nExpires: 60\r\n"
                       "Content-Length: 0\r\n\r\n")
            sock.sendto(request.encode(), (HOST, port))
            with contextlib.suppress(TimeoutError):
                while True:
                    data = sock.recv(65535)
                    if call_id.encode() in data and data.startswith(b"SIP/2.0 "):
                        status = int(data[8:11])
                        if status >= 200:
                            return status
    return None


def metrics(http_port: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    return {name: float(value) for name, value in re.findall(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


def live_transactions(http_port: int) -> int | None:
    value = metrics(http_port).get("cti_sip_transactions")
    return None if value is None else int(value)
