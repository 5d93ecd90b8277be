"""What an INVITE must carry (cti/call/offercheck.py), against a real server: 415, 406 and 488 with Warning.

Raw SIP over UDP gives exact control of each hostile INVITE (the INVITE itself is
test_callpath_routing's, with its headers changed through the real parser); SIPp then makes a
normal call. The server runs with a rate limit of one new call a second, so a refusal that took
an admission place would leave the normal call right after it a 503.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from sip.message import Request, Response, parse_message
from tests.interop.test_callpath_routing import HOST, _invite, target
from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import OPERATOR_TOKEN, SippRunner, sipp_ready

pytestmark = [pytest.mark.interop, pytest.mark.skipif(not sipp_ready(), reason="sipp is not installed")]
REPO = Path(__file__).resolve().parents[2]


def sdp(c: str = "c=IN IP4 127.0.0.1", media: str = "m=audio 40000 RTP/AVP 0 101") -> bytes:
    return f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n{c}\r\nt=0 0\r\n{media}\r\n".encode()


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    warning: int
    reason: str  # the cti_calls_refused_total label
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()  # set on the INVITE (Content-Type, Accept...)
    drop: tuple[str, ...] = ()  # headers removed from the INVITE


MULTIPART = (b"--b1\r\nContent-Type: application/sdp\r\n\r\n" + sdp() + b"\r\n--b1\r\n"
             b"Content-Type: application/isup;version=itu-t92+\r\n\r\nxx\r\n--b1--\r\n")
CASES = [
    Case("no body", 488, 399, "no_offer", drop=("Content-Type",)),
    Case("text/plain", 415, 399, "unsupported_body", b"hello", (("Content-Type", "text/plain"),)),
    Case("multipart with SDP", 415, 399, "unsupported_body", MULTIPART,
         (("Content-Type", "multipart/mixed;boundary=b1"),)),
    Case("no Content-Type", 415, 399, "unsupported_body", sdp(), drop=("Content-Type",)),
    Case("gzip", 415, 399, "unsupported_body", sdp(), (("Content-Encoding", "gzip"),)),
    Case("Accept text/plain", 406, 399, "not_acceptable", sdp(), (("Accept", "text/plain"),)),
    Case("Accept sdp q=0", 406, 399, "not_acceptable", sdp(), (("Accept", "*/*, application/sdp;q=0"),)),
    Case("not SDP", 488, 399, "bad_sdp", b"this is not SDP"),
    Case("no c=", 488, 399, "bad_sdp", sdp(c="b=AS:64")),
    Case("c= a name", 488, 301, "bad_address", sdp(c="c=IN IP4 media.example.com")),
    Case("c= not an address", 488, 301, "bad_address", sdp(c="c=IN IP4 999.1.1.1")),
    Case("c= IP6 on an IPv4 node", 488, 301, "bad_address", sdp(c="c=IN IP6 ::1")),
    Case("c= not IN", 488, 300, "bad_address", sdp(c="c=ATM NSAP 47.0091")),
    Case("c= multicast", 488, 330, "bad_address", sdp(c="c=IN IP4 224.2.1.1/127")),
    Case("c= broadcast", 488, 399, "bad_address", sdp(c="c=IN IP4 255.255.255.255")),
    Case("video only", 488, 304, "no_audio", sdp(media="m=video 40000 RTP/AVP 96")),
    Case("RTP/SAVP", 488, 302, "no_common_transport", sdp(media="m=audio 40000 RTP/SAVP 0")),
    Case("G.729 only", 488, 305, "no_common_codec", sdp(media="m=audio 40000 RTP/AVP 18")),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("invite-checks")
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["flows_dir"] = str(REPO / "config" / "flows")
    config["prompts_dir"] = str(REPO / "config" / "prompts")
    config["limits"] = {"max_calls_per_second": 1}  # one admission place a second
    path = tmp / "cti.yaml"
    path.write_text(yaml.safe_dump(config))
    with run_server(tmp, config=path) as srv:
        yield srv


def build(server: ServerProcess, sock: socket.socket, tag: str, case: Case | None = None) -> Request:
    """test_callpath_routing's INVITE, with the case's body and headers."""
    request = parse_message(_invite(server.sip_port, sock.getsockname()[1], tag))
    assert isinstance(request, Request)
    if case is not None:
        request.body = case.body
        for name in case.drop:
            request.headers.remove(name)
        for name, value in case.headers:
            request.headers.set(name, value)
    return request


def responses(sock: socket.socket, call_id: str, timeout: float = 3.0) -> list[Response]:
    """The responses to ``call_id`` up to the first final one (others' retransmissions skipped)."""
    got: list[Response] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            message = parse_message(sock.recv(65535))
        except TimeoutError:
            break
        if isinstance(message, Response) and message.call_id == call_id:
            got.append(message)
            if message.status >= 200:
                break
    return got


def in_dialog(invite: Request, response: Response, method: str, cseq: int, branch: str | None = None) -> bytes:
    """ACK (§17.1.1.3: same branch for a non-2xx) or a BYE for ``invite`` answered by ``response``."""
    via = invite.headers.get("Via") or ""
    if branch is not None:
        via = via.replace(via.split("branch=")[1].split(";")[0], branch)
    head = [
        f"{method} {invite.uri} SIP/2.0", f"Via: {via}", "Max-Forwards: 70",
        f"From: {invite.headers.get('From')}", f"To: {response.headers.get('To')}",
        f"Call-ID: {invite.call_id}", f"CSeq: {cseq} {method}", "Content-Length: 0",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode()


def refused_counts(server: ServerProcess) -> dict[str, int]:
    request = urllib.request.Request(f"http://{HOST}:{server.http_port}/api/v1/status",
                                     headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return dict(json.loads(answer.read())["calls"]["refused"])


def test_each_unusable_invite_gets_its_answer_then_calls_still_work(server: ServerProcess, sipps: SippRunner) -> None:
    problems: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        for number, case in enumerate(CASES):
            invite = build(server, sock, f"check{number}", case)
            sock.sendto(bytes(invite), (HOST, server.sip_port))
            got = responses(sock, invite.call_id)
            if not got or got[-1].status < 200:
                problems.append(f"{case.name}: no final answer ({[r.status for r in got]})")
                continue
            final = got[-1]
            sock.sendto(in_dialog(invite, final, "ACK", 1), (HOST, server.sip_port))
            warning = final.headers.get("Warning") or ""
            if any(100 < r.status < 200 for r in got):
                problems.append(f"{case.name}: answered {[r.status for r in got]} before refusing")
            if final.status != case.status or not warning.startswith(f'{case.warning} cti "'):
                problems.append(f"{case.name}: got {final.status} {warning!r}, want {case.status} {case.warning}")
            if case.status == 415 and not final.headers.get("Accept") and not final.headers.get("Accept-Encoding"):
                problems.append(f"{case.name}: 415 without Accept or Accept-Encoding")

        # A usable offer right after the last refusal: it must get the one admission place of this second.
        invite = build(server, sock, "usable")
        sock.sendto(bytes(invite), (HOST, server.sip_port))
        got = responses(sock, invite.call_id, timeout=5.0)
        assert got and got[-1].status == 200, f"usable INVITE: {[r.status for r in got]}; refusals: {problems}"
        sock.sendto(in_dialog(invite, got[-1], "ACK", 1, branch="z9hG4bKusable-ack"), (HOST, server.sip_port))
        sock.sendto(in_dialog(invite, got[-1], "BYE", 2, branch="z9hG4bKusable-bye"), (HOST, server.sip_port))
        bye = responses(sock, invite.call_id, timeout=5.0)
        assert bye and bye[-1].status == 200, [r.status for r in bye]
    assert not problems, "\n".join(problems)

    counts = refused_counts(server)
    want: dict[str, int] = {}
    for case in CASES:
        want[case.reason] = want.get(case.reason, 0) + 1
    assert {reason: counts.get(reason, 0) for reason in want} == want
    assert counts.get("rate", 0) == 0
    assert server.log_text().count('"event": "call.refused"') >= len(CASES)

    time.sleep(1.1)  # the next second's admission place
    caller = sipps.carrier(target(server), digit="2", greeting_ms=500, hangup_ms=500, timeout=20)
    assert caller.wait(25) == 0, caller.report()
