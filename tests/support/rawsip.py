"""A tiny trunk caller over UDP for reliability tests: INVITE, then CANCEL or ACK+BYE at a chosen moment.

It speaks just enough SIP (RFC 3261 §13, §15, §9) to play a carrier whose caller hangs up at any
instant, reading responses with the project's own parser. Every wait is bounded.
"""

from __future__ import annotations

import itertools
import socket
import time
from dataclasses import dataclass, field

from sip.message import Request, Response, parse_message

HOST = "127.0.0.1"
SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
_seq = itertools.count(1)


@dataclass
class CallOutcome:
    """What one quick-hang-up call saw."""

    call_id: str
    statuses: list[int] = field(default_factory=list)  # INVITE responses, in order
    hung_up_with: str = ""  # "BYE" or "CANCEL"
    bye_status: int | None = None
    cancel_status: int | None = None
    bye_rtt_s: float | None = None  # BYE sent -> its final response (call_with_hold)


class RawCaller:
    """One UDP socket placing calls to ``number`` at the server's ``port``."""

    def __init__(self, port: int, number: str, *, bind: str = HOST) -> None:
        self.port = port
        self.number = number
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, 0))
        self.local = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawCaller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, text: str, body: bytes = b"") -> None:
        self.sock.sendto(text.encode() + body, (HOST, self.port))

    def _head(self, method: str, tag: str, call_id: str, cseq: int, branch: str, to: str) -> list[str]:
        return [f"{method} sip:{self.number}@{HOST}:{self.port} SIP/2.0",
                f"Via: SIP/2.0/UDP {HOST}:{self.local};branch=z9hG4bK{branch};rport", "Max-Forwards: 70",
                f"From: <sip:5550000@{HOST}>;tag={tag}", f"To: {to}", f"Call-ID: {call_id}", f"CSeq: {cseq} {method}"]

    def _recv(self, until: float, call_id: str) -> Response | None:
        while (left := until - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                message = parse_message(self.sock.recv(65535))
            except TimeoutError:
                return None
            if isinstance(message, Response) and message.call_id == call_id:
                return message
        return None

    def _invite(self, prefix: str, kind: str) -> tuple[int, str, str, str, str]:
        """Send a new call's INVITE; (sequence number, From tag, Call-ID, branch, To URI)."""
        n = next(_seq)
        tag, call_id = f"{prefix}{n}", f"{kind}-{n}-{time.monotonic_ns()}@test"
        branch, to_uri = f"{prefix}inv{n}x{time.monotonic_ns()}", f"<sip:{self.number}@{HOST}:{self.port}>"
        invite = self._head("INVITE", tag, call_id, 1, branch, to_uri) + [
            f"Contact: <sip:5550000@{HOST}:{self.local}>", "Content-Type: application/sdp",
            f"Content-Length: {len(SDP)}", "", ""]
        self._send("\r\n".join(invite), SDP)
        return n, tag, call_id, branch, to_uri

    def call(self, hang_up: str | float, *, timeout: float = 5.0) -> CallOutcome:
        """Place one call and hang up: ``hang_up`` is ``"on_100"``/``"on_180"``/``"on_200"`` (the moment
        that response arrives) or a delay in seconds after the INVITE. Before a final answer the caller
        CANCELs; after a 200 it ACKs and sends BYE at once."""
        n, tag, call_id, branch, to_uri = self._invite("q", "quick")
        out = CallOutcome(call_id)
        started = time.monotonic()
        deadline = started + timeout
        hang_at = started + hang_up if isinstance(hang_up, float) else None
        wanted = {"on_100": 100, "on_180": 180, "on_200": 200}.get(hang_up) if isinstance(hang_up, str) else None
        final: Response | None = None
        while final is None and time.monotonic() < deadline:
            until = min(deadline, hang_at) if hang_at is not None else deadline
            response = self._recv(until, call_id)
            if response is None:
                break  # the moment to hang up (or the deadline)
            if response.cseq.method != "INVITE":
                continue
            out.statuses.append(response.status)
            if response.status >= 200:
                final = response
            if wanted is not None and response.status >= wanted:
                break
        if final is None:
            out.hung_up_with = "CANCEL"
            cancel = self._head("CANCEL", tag, call_id, 1, branch, to_uri) + ["Content-Length: 0", "", ""]
            self._send("\r\n".join(cancel))
            while time.monotonic() < deadline and (final is None or out.cancel_status is None):
                response = self._recv(deadline, call_id)
                if response is None:
                    break
                if response.cseq.method == "CANCEL":
                    out.cancel_status = response.status
                elif response.status >= 200 and final is None:
                    final = response
                    out.statuses.append(response.status)
        if final is None:
            return out
        to = final.headers.get("To") or to_uri
        if final.status >= 300:  # ACK for a failure is part of the INVITE transaction (same branch)
            ack = self._head("ACK", tag, call_id, 1, branch, to) + ["Content-Length: 0", "", ""]
            self._send("\r\n".join(ack))
            return out
        out.hung_up_with = out.hung_up_with or "BYE"
        ack = self._head("ACK", tag, call_id, 1, f"ack{n}x{time.monotonic_ns()}", to) + ["Content-Length: 0", "", ""]
        bye = self._head("BYE", tag, call_id, 2, f"bye{n}x{time.monotonic_ns()}", to) + ["Content-Length: 0", "", ""]
        self._send("\r\n".join(ack))
        self._send("\r\n".join(bye))
        while time.monotonic() < deadline:
            response = self._recv(deadline, call_id)
            if response is None:
                break
            if response.cseq.method == "BYE":
                out.bye_status = response.status
                break
        return out

    def _answer_bye(self, until: float, call_id: str) -> bool:
        """Wait until ``until`` for the server's BYE in this call; answer it 200. True when it came."""
        while (left := until - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                return False
            message = parse_message(data)
            if isinstance(message, Request) and message.method == "BYE" and message.call_id == call_id:
                head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")[1:]
                names = ("via", "from", "to", "call-id", "cseq")
                keep = [h for h in head if h.split(":", 1)[0].strip().lower() in names]
                self._send("\r\n".join(["SIP/2.0 200 OK", *keep, "Content-Length: 0", "", ""]))
                return True
        return False

    def call_with_hold(self, hold_s: float, *, timeout: float = 5.0) -> CallOutcome:
        """A normal call: answered, held ``hold_s`` seconds, then BYE. A BYE from the server during
        the hold is answered 200 and ends the call (``hung_up_with == "server"``)."""
        n, tag, call_id, branch, to_uri = self._invite("t", "talk")
        out = CallOutcome(call_id)
        deadline = time.monotonic() + timeout
        final: Response | None = None
        while final is None:
            response = self._recv(deadline, call_id)
            if response is None:
                return out
            if response.cseq.method == "INVITE":
                out.statuses.append(response.status)
                if response.status >= 200:
                    final = response
        if final.status != 200:
            return out
        to = final.headers.get("To") or to_uri
        ack = self._head("ACK", tag, call_id, 1, f"tack{n}", to) + ["Content-Length: 0", "", ""]
        self._send("\r\n".join(ack))
        if self._answer_bye(time.monotonic() + hold_s, call_id):
            out.hung_up_with = "server"
            return out
        bye = self._head("BYE", tag, call_id, 2, f"tbye{n}", to) + ["Content-Length: 0", "", ""]
        sent = time.monotonic()
        self._send("\r\n".join(bye))
        out.hung_up_with = "BYE"
        deadline = sent + timeout
        while (response := self._recv(deadline, call_id)) is not None:
            if response.cseq.method == "BYE":
                out.bye_status = response.status
                out.bye_rtt_s = time.monotonic() - sent
                break
        return out
