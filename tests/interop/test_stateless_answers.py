"""Stateless answers (RFC 3261 §8.2.7) on a real node: an out-of-dialog non-INVITE refused with an answer it would
get again (here the challenge to a REGISTER without credentials) holds no transaction, so a retransmission is
answered afresh; §8.2.7 then requires the To tag to be "the same tag for the same request consistently"."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

from sip.message import NameAddr, Response, parse_message
from tests.support.procs import run_server

HOST = "127.0.0.1"


def _register(port: int, local: int, branch: str, cseq: int) -> bytes:
    return (f"REGISTER sip:{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\n"
            f"From: <sip:1001@{HOST}>;tag=stateless-test\r\nTo: <sip:1001@{HOST}>\r\nCall-ID: stateless-test@{HOST}\r\n"
            f"CSeq: {cseq} REGISTER\r\nContact: <sip:1001@{HOST}:{local}>\r\nExpires: 60\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def _answer(sock: socket.socket, data: bytes, port: int) -> Response:
    sock.sendto(data, (HOST, port))
    while True:
        answer = parse_message(sock.recv(65535))
        if isinstance(answer, Response) and answer.status >= 200:
            return answer


def _live_transactions(http_port: int) -> float:
    """The node's live SIP transactions (``cti_sip_transactions`` on /metrics)."""
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=5) as page:
        text = page.read().decode()
    live = [line for line in text.splitlines() if line.startswith("cti_sip_transactions ")]
    assert live, "no cti_sip_transactions on /metrics"
    return float(live[0].split()[1])


def _to_tag(answer: Response) -> str | None:
    return NameAddr.parse(answer.headers.get("To") or "").tag


def test_a_retransmitted_request_gets_the_same_stateless_answer_tag(tmp_path: Path) -> None:
    with run_server(tmp_path) as srv, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(5)
        local = sock.getsockname()[1]
        first = _register(srv.sip_port, local, "first", 1)
        answers = [_answer(sock, first, srv.sip_port) for _ in range(3)]  # the request, then two retransmissions
        assert [a.status for a in answers] == [401, 401, 401]
        tags = {_to_tag(a) for a in answers}
        assert len(tags) == 1 and None not in tags, tags
        other = _answer(sock, _register(srv.sip_port, local, "second", 2), srv.sip_port)
        assert other.status == 401 and _to_tag(other) not in tags  # another request: another tag


def _options(port: int, local: int, branch: str) -> bytes:
    return (f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\n"
            f"From: <sip:probe@{HOST}>;tag=options-test\r\nTo: <sip:{HOST}>\r\nCall-ID: options-{branch}@{HOST}\r\n"
            "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


def test_options_is_answered_statelessly_the_same_each_time(tmp_path: Path) -> None:
    """The 200 to an OPTIONS changes nothing, so the node answers it as a stateless UAS: a retransmission gets
    the same answer with the same To tag, and no transaction is left for Timer J (cti_sip_transactions)."""
    with run_server(tmp_path) as srv, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(5)
        local = sock.getsockname()[1]
        answers = [_answer(sock, _options(srv.sip_port, local, "ping1"), srv.sip_port) for _ in range(3)]
        assert [a.status for a in answers] == [200, 200, 200]
        assert all("OPTIONS" in (a.headers.get("Allow") or "") for a in answers)
        tags = {_to_tag(a) for a in answers}
        assert len(tags) == 1 and None not in tags, tags
        assert _live_transactions(srv.http_port) == 0


def _invite(port: int, local: int, branch: str, number: str) -> bytes:
    body = (f"v=0\r\no=probe 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {local + 2} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    return (f"INVITE sip:{number}@{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\n"
            f"From: <sip:13800138000@{HOST}>;tag=invite-test\r\nTo: <sip:{number}@{HOST}>\r\n"
            f"Call-ID: invite-{branch}@{HOST}\r\nCSeq: 1 INVITE\r\nContact: <sip:13800138000@{HOST}:{local}>\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()


def _answers(sock: socket.socket, data: bytes, port: int) -> list[Response]:
    """Everything the node sends back to one INVITE, up to its final answer."""
    sock.sendto(data, (HOST, port))
    seen = []
    while True:
        answer = parse_message(sock.recv(65535))
        if isinstance(answer, Response):
            seen.append(answer)
            if answer.status >= 200:
                return seen


def test_an_invite_to_an_unknown_number_is_refused_statelessly(tmp_path: Path) -> None:
    """An INVITE refused for what it is (here a number with no flow) gets its 404 and nothing before it (a
    stateless UAS sends no 1xx, so the caller keeps retransmitting until it hears the answer), keeps no
    transaction for Timer H, and a retransmission gets the same answer with the same To tag."""
    with run_server(tmp_path) as srv, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(5)
        local = sock.getsockname()[1]
        invite = _invite(srv.sip_port, local, "nobody1", "99999")
        rounds = [_answers(sock, invite, srv.sip_port) for _ in range(3)]
        assert [[a.status for a in answers] for answers in rounds] == [[404], [404], [404]]
        tags = {_to_tag(answers[-1]) for answers in rounds}
        assert len(tags) == 1 and None not in tags, tags
        assert _live_transactions(srv.http_port) == 0


def test_a_register_with_a_malformed_digest_header_is_refused_statelessly(tmp_path: Path) -> None:
    """A malformed Authorization header gets 400 whatever the moment, and counts toward no lock-out: the node
    answers it as a stateless UAS, with the same To tag for a retransmission and no transaction left."""
    with run_server(tmp_path) as srv, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(5)
        local = sock.getsockname()[1]
        register = _register(srv.sip_port, local, "baddigest", 1).replace(
            b"Expires: 60\r\n", b"Expires: 60\r\nAuthorization: Digest realm=\r\n")
        answers = [_answer(sock, register, srv.sip_port) for _ in range(2)]
        assert [a.status for a in answers] == [400, 400]
        tags = {_to_tag(a) for a in answers}
        assert len(tags) == 1 and None not in tags, tags
        assert _live_transactions(srv.http_port) == 0
