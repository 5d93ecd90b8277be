"""`cti serve --demo` against real peers on loopback: SIPp, raw sockets (pyVoIP: test_pyvoip.py)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from sip.auth import answer_challenge, parse_challenge
from sip.errors import RemoteSipError
from sip.message import Headers, Response, parse_message
from tests.sip.hostile import HOSTILE, SENT_BY, HostileCase
from tests.support.procs import ServerProcess, options_request, run_server, run_sipp, sipp_available

pytestmark = pytest.mark.interop
needs_sipp = pytest.mark.skipif(not sipp_available(), reason="sipp is not installed (Debian sip-tester)")


class UdpClient:
    """A bare SIP-over-UDP client for exact control of what is sent."""

    def __init__(self, server: ServerProcess) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.target = ("127.0.0.1", server.sip_port)

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def recv(self, timeout: float = 2.0) -> Response | None:
        """The next final response (provisional ones are skipped), or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                return None
            try:
                message = parse_message(data)
            except RemoteSipError:
                # An answer to a request that lacked From/To/Call-ID/CSeq cannot have them either.
                status = int(data.split(b" ", 2)[1])
                message = Response(status=status, reason="", headers=Headers(), body=b"")
            assert isinstance(message, Response)
            if message.status >= 200:
                return message
        return None

    def options_ok(self, tag: str) -> bool:
        self.send(options_request("127.0.0.1", self.target[1], self.port, f"ping-{tag}").encode())
        response = self.recv()
        return response is not None and response.status == 200

    def close(self) -> None:
        self.sock.close()


def register(client: UdpClient, user: str, password: str, call_id: str, *, expires: int = 300) -> Response:
    """REGISTER, answer the challenge, return the final response."""
    port = client.target[1]

    def request(cseq: int, auth: str | None) -> bytes:
        lines = [
            f"REGISTER sip:127.0.0.1:{port} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{client.port};branch=z9hG4bK{call_id}{cseq};rport",
            "Max-Forwards: 70",
            f"From: <sip:{user}@127.0.0.1>;tag={call_id}",
            f"To: <sip:{user}@127.0.0.1>",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} REGISTER",
            f"Contact: <sip:{user}@127.0.0.1:{client.port}>",
            f"Expires: {expires}",
        ]
        if auth:
            lines.append(f"Authorization: {auth}")
        return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

    client.send(request(1, None))
    challenge = client.recv()
    assert challenge is not None
    if challenge.status != 401:
        return challenge
    parsed = parse_challenge(challenge.headers.get_all("WWW-Authenticate")[0])
    creds = answer_challenge(parsed, username=user, password=password, method="REGISTER",
                             uri=f"sip:127.0.0.1:{port}", cnonce="0a4f113b", nc=1)
    client.send(request(2, creds.header_value()))
    final = client.recv()
    assert final is not None
    return final


@needs_sipp
def test_sipp_options_gets_200(demo_server: ServerProcess, tmp_path: Path) -> None:
    result = run_sipp("options.xml", f"127.0.0.1:{demo_server.sip_port}", "-m", "1", tmp=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@needs_sipp
def test_sipp_options_over_tcp(demo_server: ServerProcess, tmp_path: Path) -> None:
    result = run_sipp("options.xml", f"127.0.0.1:{demo_server.sip_port}", "-m", "1", "-t", "t1", tmp=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@needs_sipp
def test_sipp_register_with_digest_succeeds(demo_server: ServerProcess, tmp_path: Path) -> None:
    result = run_sipp("register_auth.xml", f"127.0.0.1:{demo_server.sip_port}", "-m", "1",
                      "-s", "1002", "-au", "1002", "-ap", "demo1002", tmp=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert '"sip.binding.added"' in demo_server.log_text()


@needs_sipp
def test_sipp_register_with_wrong_password_fails(demo_server: ServerProcess, tmp_path: Path) -> None:
    # The scenario succeeds only if the authenticated REGISTER is answered 401 or 403, never 200.
    result = run_sipp("register_wrong_password.xml", f"127.0.0.1:{demo_server.sip_port}", "-m", "1",
                      "-s", "1003", "-au", "1003", "-ap", "not-the-password", tmp=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_register_unregister_and_log_has_no_secrets(demo_server: ServerProcess) -> None:
    client = UdpClient(demo_server)
    try:
        ok = register(client, "1004", "demo1004", "reg-1004")
        assert ok.status == 200
        contacts = ok.headers.get_all("Contact")
        assert any(f":{client.port}>" in c and "expires=" in c for c in contacts)
        gone = register(client, "1004", "demo1004", "reg-1004b", expires=0)
        assert gone.status == 200
        assert not any(f":{client.port}>" in c for c in gone.headers.get_all("Contact"))
    finally:
        client.close()
    log = demo_server.log_text()
    assert "demo1004" not in log
    assert "Digest " not in log and "response=" not in log


@pytest.mark.parametrize("case", HOSTILE, ids=[c.name for c in HOSTILE])
def test_hostile_message_answered_as_the_rfc_says(demo_server: ServerProcess, case: HostileCase) -> None:
    client = UdpClient(demo_server)
    try:
        data = case.data.replace(SENT_BY.encode(), f"127.0.0.1:{client.port}".encode())
        client.send(data)
        response = client.recv(timeout=2.0 if case.expected_status is not None else 0.5)
        if case.expected_status is None:
            assert response is None, f"expected no answer, got {response.status if response else None}"
        else:
            assert response is not None, "no answer"
            assert response.status == case.expected_status, case.why
        assert client.options_ok(case.name), "the server stopped answering OPTIONS"
    finally:
        client.close()


def test_tcp_huge_header_is_bounded_and_server_keeps_serving(demo_server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", demo_server.sip_port), timeout=5) as conn:
        conn.sendall(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nX-Big: ")
        chunk = b"a" * 65536
        sent = 0
        try:
            while sent < 10 * 1024 * 1024:
                conn.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < 10 * 1024 * 1024, "the server kept reading a 10 MB header section"
    client = UdpClient(demo_server)
    try:
        assert client.options_ok("after-huge-tcp")
    finally:
        client.close()


def test_lockout_after_repeated_failures(tmp_path: Path) -> None:
    with run_server(tmp_path) as server:
        client = UdpClient(server)
        try:
            statuses = [register(client, "1001", f"wrong-{i}", f"lock-{i}").status for i in range(6)]
            assert all(s == 403 for s in statuses), statuses
            locked = register(client, "1001", "demo1001", "lock-right")
            assert locked.status == 403, "a locked-out source must be refused even with the right password"
            assert client.options_ok("after-lockout")
        finally:
            client.close()
