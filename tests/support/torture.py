"""The RFC 4475 torture messages (tests/sip/rfc4475/*.dat) and a way to send them to a real node.

The messages are kept byte for byte. To see a node's answer, the sent-by of the top Via is
rewritten to the test's own socket and ``;rport`` is added (nothing else changes); a message is
sent over the transport its top Via names (TCP for ``SIP/2.0/TCP``, UDP otherwise).
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

DIR = Path(__file__).resolve().parent.parent / "sip" / "rfc4475"
HOST = "127.0.0.1"

# The top Via's protocol, transport and sent-by; "\s" spans folded lines (RFC 4475 'wsinv').
_VIA = re.compile(rb"(?im)^(?:via|v)[ \t]*:\s*(SIP\s*/\s*[0-9.]+\s*/\s*([A-Za-z]+)\s+)([^;,\s]+(?:\s*:\s*[0-9]+)?)")


def names() -> list[str]:
    """The 49 message names (file stems), sorted."""
    return sorted(path.stem for path in DIR.glob("*.dat"))


def load(name: str) -> bytes:
    return (DIR / f"{name}.dat").read_bytes()


def via_transport(data: bytes) -> str:
    """The transport the top Via names, upper case ('UDP' when there is no readable Via)."""
    match = _VIA.search(data)
    return match.group(2).decode().upper() if match else "UDP"


def readdress(data: bytes, port: int) -> bytes:
    """``data`` with the top Via's sent-by pointing at ``127.0.0.1:port`` and ``;rport`` added."""
    match = _VIA.search(data)
    if match is None:
        return data
    start, end = match.span(3)
    value_end = re.search(rb",|\r\n(?![ \t])", data[end:])
    has_rport = re.search(rb"(?i);\s*rport\b", data[end:end + (value_end.start() if value_end else 0)])
    return data[:start] + f"{HOST}:{port}{'' if has_rport else ';rport'}".encode() + data[end:]


def readdress_uri(data: bytes, uri: str) -> bytes:
    """``data`` with its Request-URI replaced by ``uri`` (to reach a number the node serves)."""
    method, _, rest = data.partition(b" ")
    _, _, rest = rest.partition(b" ")
    return method + b" " + uri.encode() + b" " + rest


@dataclass
class Answer:
    """What a node sent back for one message: status lines of the responses in arrival order."""

    name: str
    transport: str
    responses: list[bytes]

    @property
    def statuses(self) -> list[int]:
        return [int(r.split(b" ", 2)[1]) for r in self.responses if r.startswith(b"SIP/2.0 ")]

    @property
    def final(self) -> int | None:
        finals = [s for s in self.statuses if s >= 200]
        return finals[0] if finals else None


def _heads(buffer: bytes) -> list[bytes]:
    """Split a byte stream of responses (bodies are skipped by their Content-Length)."""
    out = []
    while b"\r\n\r\n" in buffer:
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([0-9]+)", head)
        size = int(length.group(1)) if length else 0
        out.append(head)
        buffer = rest[size:]
    return out


def send(name: str, port: int, *, wait: float = 1.0, data: bytes | None = None) -> Answer:
    """Send message ``name`` (or ``data`` under that name) to the node at ``port``; collect what it
    answers within ``wait`` seconds (the wait ends early after a final response)."""
    raw = load(name) if data is None else data
    transport = "TCP" if via_transport(raw) == "TCP" else "UDP"
    responses: list[bytes] = []
    deadline = time.monotonic() + wait
    if transport == "TCP":
        with socket.create_connection((HOST, port), timeout=wait) as sock:
            sock.sendall(readdress(raw, sock.getsockname()[1]))
            buffer = b""
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    break
                if not chunk:
                    break
                buffer += chunk
                responses = _heads(buffer)
                if any(r.startswith(b"SIP/2.0 ") and r[8:9] != b"1" for r in responses):
                    break
        return Answer(name, transport, responses)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.sendto(readdress(raw, sock.getsockname()[1]), (HOST, port))
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                datagram = sock.recv(65536)
            except TimeoutError:
                break
            responses.append(datagram.partition(b"\r\n\r\n")[0])
            if datagram.startswith(b"SIP/2.0 ") and datagram[8:9] != b"1":
                break
    return Answer(name, transport, responses)
