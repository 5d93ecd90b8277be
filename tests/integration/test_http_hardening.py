"""The HTTP listener of a real `cti serve` under hostile clients (issue 13, finding 6): nested JSON to the
unauthenticated /auth/login, connections that send nothing, more connections than the cap, and the answer headers.
Raw sockets, so that nothing a client library does (pooling, retries) hides what the node does."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.procs import ServerProcess, run_server

REPO = Path(__file__).resolve().parents[2]
IDLE_S = 1.0
CAP = 8
WAIT_S = 10.0  # the most an answer may take on a loaded host; a node that keeps a connection open fails here


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("http")
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["flows_dir"] = str(REPO / "config" / "flows")
    config["prompts_dir"] = str(REPO / "config" / "prompts")
    config["http"].update(idle_timeout_s=IDLE_S, header_timeout_s=IDLE_S, max_connections=CAP)
    path = tmp / "cti.yaml"
    path.write_text(yaml.safe_dump(config))
    with run_server(tmp, config=path) as server:
        deadline = time.monotonic() + WAIT_S
        while True:  # run_server waits for SIP; the HTTP listener is bound just after it
            try:
                socket.create_connection(("127.0.0.1", server.http_port), timeout=WAIT_S).close()
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "the HTTP listener did not start"
                time.sleep(0.05)
        yield server


def connect(node: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", node.http_port), timeout=WAIT_S)
    return sock


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP answer read off ``sock`` (status, lower-cased headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(lines[0].split()[1]), headers, body


def ask(node: ServerProcess, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    with connect(node) as sock:
        sock.sendall(raw)
        return answer(sock)


def post(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def healthy(node: ServerProcess) -> bool:
    status, _, body = ask(node, b"GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n")
    return status == 200 and json.loads(body)["status"] == "ok"


def test_nested_json_to_login_is_400_and_the_node_still_serves(node: ServerProcess) -> None:
    for depth in (100_000 // 4, 1_000, 33):
        status, _, body = ask(node, post("/auth/login", b"[" * depth + b"]" * depth))
        assert status == 400 and json.loads(body)["error"]["code"] == "json_too_deep", (depth, status, body)
    status, _, body = ask(node, post("/auth/login", b'{"role": "agent", "id": "1001", "password": "\xff"}'))
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_json"
    assert healthy(node)
    assert node.proc.poll() is None
    log = node.log_text()
    assert "RecursionError" not in log and "Traceback" not in log


def test_a_connection_that_sends_nothing_is_closed_in_time(node: ServerProcess) -> None:
    with connect(node) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed by the node (a timeout here raises: still open after WAIT_S)
        took = time.monotonic() - started
    assert IDLE_S * 0.8 <= took < IDLE_S + 5.0, took


def test_the_connection_past_the_cap_is_refused_at_once(node: ServerProcess) -> None:
    held = [connect(node) for _ in range(CAP)]
    try:
        for sock in held:  # each one is served: all are admitted
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n")
            assert answer(sock)[0] == 200
        with connect(node) as extra:
            status, headers, body = answer(extra)
            assert status == 503 and json.loads(body)["error"]["code"] == "too_many_connections"
            assert headers["connection"] == "close" and extra.recv(1) == b""
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + WAIT_S
    while True:  # the node sees the closes, then serves again
        try:
            if healthy(node):
                break
        except (AssertionError, ConnectionError):
            pass
        assert time.monotonic() < deadline, "the node did not serve again after the held connections closed"
        time.sleep(0.1)
    status, _, metrics = ask(node, b"GET /metrics HTTP/1.1\r\nHost: node\r\n\r\n")
    assert status == 200 and 'cti_http_connections_refused_total{reason="max_connections"}' in metrics.decode()
    assert '"http.connection.refused"' in node.log_text()


@pytest.mark.parametrize("raw", [b"GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n",
                                 b"GET /api/v1/status HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer wrong\r\n\r\n",
                                 b"GET /metrics HTTP/1.1\r\nHost: node\r\n\r\n",
                                 b"BAD\x00REQUEST\r\n\r\n"])
def test_answers_carry_the_security_headers_and_no_version(node: ServerProcess, raw: bytes) -> None:
    status, headers, _ = ask(node, raw)
    assert headers["server"] == "cti-server", headers
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store"
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("raw", [b"GARBAGE\x01 / HTTP/1.1\r\n\r\n",
                                 b"GET / HTTP/1.1\r\nHost: node\r\nContent-Length: abc\r\n\r\n",
                                 b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"],
                         ids=["bad-method", "bad-content-length", "line-too-long"])
def test_an_unparsable_request_gets_the_nodes_json_400_without_its_bytes_echoed(node: ServerProcess,
                                                                                 raw: bytes) -> None:
    status, headers, body = ask(node, raw)
    assert status == 400 and headers["content-type"].startswith("application/json"), (headers, body)
    assert json.loads(body)["error"]["code"] == "bad_request"
    assert b"GARBAGE" not in body and b"abc" not in body and b"aaaa" not in body
    assert headers["x-content-type-options"] == "nosniff"
    assert healthy(node)


def test_an_api_401_is_logged(node: ServerProcess) -> None:
    status, _, _ = ask(node, b"GET /api/v1/agents HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer nope\r\n\r\n")
    assert status == 401
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in node.log_text().splitlines() if line.startswith("{")]
        if any(entry.get("event") == "http.request.refused" and entry.get("path") == "/api/v1/agents"
               and entry.get("status") == 401 for entry in lines):
            return
        time.sleep(0.1)
    raise AssertionError("no http.request.refused line for the 401")
