"""The HTTP listener's guard (cti/http_guard): the pure limits stepped by hand, then the node's real application
(admin API + gateway routes from build_app) served by serve_http on 127.0.0.1 and driven over raw sockets."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from config.schema import HttpConfig
from cti.call.offercheck import RefusalReason
from cti.events.bus import Bus
from cti.gateway import add_gateway_routes
from cti.http.api import CALL_REFUSAL_REASONS, build_app
from cti.http.guard import (
    HTTP_GUARD_KEY,
    BodyError,
    CloseReason,
    ConnectionPhase,
    ReadDeadlines,
    RefusalLog,
    parse_json,
    serve_http,
)
from cti.node.admission import Refusal as AdmissionRefusal
from cti.tokens import TokenIssuer
from tests.cti.test_gateway_fake import FakeControl

DOCS = Path(__file__).resolve().parents[2] / "docs"
OPERATOR_TOKEN = "op-token-0123456789"
WAIT = 10.0  # the most any answer or close may take in these tests (a loaded shared host): never reached normally


# ---------------------------------------------------------------------------------------------- the pure limits

def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(("raw", "status", "code"), [
    (nested(10_000), 400, "json_too_deep"),  # RecursionError inside json: never a 500
    (nested(33), 400, "json_too_deep"),
    (b'{"a": ' * 40 + b"1" + b"}" * 40, 400, "json_too_deep"),
    (b'{"role": "agent",', 400, "bad_json"),
    (b"\xff\xfe\xfa", 400, "bad_json"),
    (b'{"x": NaN}', 400, "bad_json"),
    (b"1" * 5000, 400, "bad_json"),  # past the interpreter's integer digit limit
    (b" " + b"0" * 70_000, 413, "body_too_large"),
])
def test_parse_json_refuses_with_a_status_and_code(raw: bytes, status: int, code: str) -> None:
    with pytest.raises(BodyError) as caught:
        parse_json(raw, max_bytes=64 * 1024, max_depth=32)
    assert (caught.value.status, caught.value.code) == (status, code), str(caught.value)


def test_parse_json_takes_what_is_within_the_limits() -> None:
    assert parse_json(nested(32), max_bytes=1024, max_depth=32) == json.loads(nested(32))
    assert parse_json(b'{"a": [1, {"b": "c"}]}', max_bytes=1024, max_depth=3) == {"a": [1, {"b": "c"}]}
    assert parse_json(b" \r\n", max_bytes=1024, max_depth=1) is None
    assert parse_json(b"7", max_bytes=1024, max_depth=1) == 7


@given(st.binary(max_size=200) | st.recursive(st.just(b"1"), lambda inner: st.builds(
    lambda parts, brace: (b"{" if brace else b"[") + b",".join(
        (b'"k%d":' % i if brace else b"") + p for i, p in enumerate(parts)) + (b"}" if brace else b"]"),
    st.lists(inner, max_size=3), st.booleans()), max_leaves=30))
def test_any_bytes_give_a_value_or_a_body_error(raw: bytes) -> None:
    try:
        parse_json(raw, max_bytes=150, max_depth=4)
    except BodyError as exc:
        assert exc.status in (400, 413)


def test_read_deadlines_idle_then_head_then_busy() -> None:
    now = 0.0
    d = ReadDeadlines(idle_s=15.0, head_s=10.0, send_s=60.0, now=now)
    assert d.get_timer() == 15.0 and d.handle_timer(14.9) is None
    assert d.handle_timer(15.0) is CloseReason.IDLE  # never sent a request
    d = ReadDeadlines(idle_s=15.0, head_s=10.0, send_s=60.0, now=now)
    now = 5.0
    d.data_received(now)
    assert d.phase is ConnectionPhase.HEAD and d.get_timer() == 15.0
    d.data_received(now + 4)  # more bytes of the same head do not move the deadline
    assert d.get_timer() == 15.0 and d.handle_timer(15.0) is CloseReason.HEADER_TIMEOUT
    d.request_started(now)
    assert d.get_timer() is None and d.handle_timer(1e9) is None  # a request being handled: no deadline here
    d.request_finished(100.0)
    assert d.phase is ConnectionPhase.IDLE and d.get_timer() == 115.0


def test_read_deadlines_let_a_client_take_its_answer_but_not_stall() -> None:
    d = ReadDeadlines(idle_s=15.0, head_s=10.0, send_s=60.0, now=0.0)
    d.request_started(0.0)
    d.answer_started(0.5)
    assert d.phase is ConnectionPhase.SENDING and d.get_timer() == 60.5
    assert d.handle_timer(60.0, pending_write=10**6) is None  # a long download is not idleness
    assert d.handle_timer(60.5) is CloseReason.SEND_TIMEOUT
    d.request_finished(1.0)
    assert d.handle_timer(16.0, pending_write=50_000) is None  # still taking the answer
    assert d.get_timer() == 31.0
    assert d.handle_timer(31.0, pending_write=20_000) is None
    assert d.handle_timer(46.0, pending_write=20_000) is CloseReason.IDLE  # no progress for idle_s


def test_refusal_log_writes_a_burst_then_a_rate_and_counts_what_it_held() -> None:
    log = RefusalLog(per_s=1.0, burst=3, now=0.0)
    assert [log.admit(0.0) for _ in range(5)] == [0, 0, 0, None, None]
    assert log.admit(0.5) is None
    assert log.admit(1.6) == 3  # one token back: this line reports the three held back
    assert log.suppressed_total == 3
    assert [log.admit(100.0) for _ in range(4)] == [0, 0, 0, None]  # refilled to the burst, not beyond


def test_call_refusal_reasons_name_the_offer_checks_and_are_documented() -> None:
    reasons = set(CALL_REFUSAL_REASONS)
    assert {r.value for r in RefusalReason} <= reasons and {r.value for r in AdmissionRefusal} <= reasons
    assert {"unsupported_body", "not_acceptable", "bad_sdp", "bad_address", "no_audio", "no_common_transport",
            "no_common_codec"} <= reasons
    row = next(line for line in (DOCS / "api.md").read_text().splitlines() if line.startswith("| `cti_calls_refused"))
    assert all(f"`{reason}`" in row for reason in CALL_REFUSAL_REASONS), row


# ---------------------------------------------------------------------------------------------- a served node

class FakeMetrics:
    def calls_total(self) -> int:
        return 0

    def calls_active(self) -> int:
        return 0

    def loop_lag(self) -> tuple[float, bool]:
        return 0.0, False

    def calls_refused(self) -> dict[str, int]:
        return {}

    def sip_messages_rejected(self) -> int:
        return 0

    def sip_retransmissions(self) -> tuple[int, int]:
        return 0, 0

    def sip_transactions(self) -> int:
        return 0

    def bus_published(self) -> int:
        return 0

    def bus_dropped(self) -> int:
        return 0


@dataclass
class Node:
    app: web.Application
    port: int

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data

    def code(self) -> object:
        error = self.json()["error"]
        assert isinstance(error, dict)
        return error["code"]


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    async with asyncio.timeout(WAIT):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(int(lines[0].split()[1]), headers, body)


async def ask(node: Node, raw: bytes) -> Answer:
    reader, writer = await node.connect()
    try:
        writer.write(raw)
        return await read_answer(reader)
    finally:
        writer.close()


def post(path: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: node", "Content-Type: application/json", f"Content-Length: {len(body)}",
            *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def get(path: str, *extra: str) -> bytes:
    return ("\r\n".join([f"GET {path} HTTP/1.1", "Host: node", *extra]) + "\r\n\r\n").encode()


async def closed_after(reader: asyncio.StreamReader) -> tuple[bytes, float]:
    """What the node sent before closing, and how long the close took."""
    started = time.monotonic()
    async with asyncio.timeout(WAIT):
        data = await reader.read()
    return data, time.monotonic() - started


LIMITS = HttpConfig(port=0, idle_timeout_s=0.6, header_timeout_s=0.6, body_timeout_s=0.6, send_timeout_s=1.0,
                    max_connections=6,
                    max_body_bytes=256 * 1024, refusal_log_burst=3, refusal_log_per_s=0.01)


BIG = 16 * 1024 * 1024  # more than the socket buffers of both ends hold


async def big(_: web.Request) -> web.Response:
    return web.Response(body=b"x" * BIG)


async def boom(_: web.Request) -> web.Response:
    raise RuntimeError("a bug in a handler")


@pytest.fixture
async def node(request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    config: HttpConfig = getattr(request, "param", LIMITS)
    control = FakeControl()
    app = build_app(control, token=OPERATOR_TOKEN, node="n1", metrics=FakeMetrics(), http=config)
    app.router.add_get("/big", big)
    app.router.add_get("/boom", boom)
    add_gateway_routes(app, control=control, bus=Bus(), tokens=TokenIssuer(b"k" * 32, ttl_s=600, clock=time.time),
                       operator_token=OPERATOR_TOKEN, node="n1")
    runner, port = await serve_http(app)
    try:
        yield Node(app, port)
    finally:
        await runner.cleanup()


async def test_nested_json_to_login_is_400_and_the_node_still_serves(node: Node) -> None:
    deep = await ask(node, post("/auth/login", nested(10_000)))
    assert (deep.status, deep.code()) == (400, "json_too_deep")
    assert "32" in str(deep.json()["error"])
    too_big = await ask(node, post("/auth/login", nested(40_000)))
    assert (too_big.status, too_big.code()) == (413, "body_too_large")
    bad = await ask(node, post("/api/v1/agents/a1/login", b"\xff{", f"Authorization: Bearer {OPERATOR_TOKEN}"))
    assert (bad.status, bad.code()) == (400, "bad_json")  # was a 500 (UnicodeDecodeError)
    deep_api = await ask(node, post("/api/v1/agents/a1/login", nested(50), f"Authorization: Bearer {OPERATOR_TOKEN}"))
    assert (deep_api.status, deep_api.code()) == (400, "json_too_deep")
    body = json.dumps({"role": "agent", "id": "a1", "password": "pw-a1"}).encode()
    login = await ask(node, post("/auth/login", body))
    assert login.status == 200 and "token" in login.json()


async def test_a_connection_that_sends_nothing_is_closed_within_the_idle_timeout(node: Node) -> None:
    reader, writer = await node.connect()
    data, took = await closed_after(reader)
    writer.close()
    assert data == b"" and 0.5 <= took < LIMITS.idle_timeout_s + 3.0, took
    # and a keep-alive connection after an answer
    reader, writer = await node.connect()
    writer.write(get("/healthz"))
    assert (await read_answer(reader)).status == 200
    data, took = await closed_after(reader)
    writer.close()
    assert data == b"" and took < LIMITS.idle_timeout_s + 3.0
    assert node.app[HTTP_GUARD_KEY].stats().connections_closed["idle"] == 2


async def test_a_head_that_does_not_complete_gets_408(node: Node) -> None:
    reader, writer = await node.connect()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: no")
    for _ in range(4):  # trickling bytes does not extend the deadline
        await asyncio.sleep(0.1)
        writer.write(b"d")
    data, took = await closed_after(reader)
    writer.close()
    assert data.startswith(b"HTTP/1.1 408 ") and b'"header_timeout"' in data
    assert took < LIMITS.header_timeout_s + 3.0
    assert node.app[HTTP_GUARD_KEY].stats().connections_closed["header_timeout"] == 1


async def test_a_body_that_does_not_arrive_gets_408_and_the_connection_closes(node: Node) -> None:
    reader, writer = await node.connect()
    writer.write(post("/auth/login", b"x" * 100)[:-90])  # declares 100 bytes, sends 10
    answer = await read_answer(reader)
    assert (answer.status, answer.code()) == (408, "body_timeout")
    assert (await closed_after(reader))[0] == b""
    writer.close()


async def test_a_client_that_does_not_take_its_answer_loses_the_connection(node: Node) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", node.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(get("/big"))
    await writer.drain()
    stats = node.app[HTTP_GUARD_KEY].stats
    for _ in range(int(WAIT / 0.05)):  # counted at the close, released when the transport is gone: wait for both
        if stats().connections_closed["send_timeout"] and not stats().open:
            break
        await asyncio.sleep(0.05)
    assert stats().connections_closed["send_timeout"] == 1 and stats().open == 0
    writer.close()
    # a client that reads gets all of it
    reader, writer = await node.connect()
    writer.write(get("/big"))
    answer = await read_answer(reader)
    writer.close()
    assert answer.status == 200 and len(answer.body) == BIG


async def test_a_declared_body_past_max_body_bytes_is_413_before_it_is_sent(node: Node) -> None:
    reader, writer = await node.connect()
    writer.write(b"POST /api/v1/agents HTTP/1.1\r\nHost: node\r\nContent-Length: 10000000\r\n\r\n")
    answer = await read_answer(reader)
    writer.close()
    assert (answer.status, answer.code()) == (413, "body_too_large")


async def test_the_cap_refuses_the_connection_past_it(node: Node) -> None:
    held = [await node.connect() for _ in range(LIMITS.max_connections)]
    for reader, writer in held:  # each one served: they are admitted
        writer.write(get("/healthz"))
        assert (await read_answer(reader)).status == 200
    reader, writer = await node.connect()
    data, took = await closed_after(reader)
    writer.close()
    assert data.startswith(b"HTTP/1.1 503 ") and b'"too_many_connections"' in data and b"Server: cti-server" in data
    stats = node.app[HTTP_GUARD_KEY].stats()
    assert stats.connections_refused == {"max_connections": 1} and stats.open == LIMITS.max_connections
    held[0][1].close()
    await held[0][1].wait_closed()
    for _ in range(100):  # the node sees the close
        if node.app[HTTP_GUARD_KEY].stats().open < LIMITS.max_connections:
            break
        await asyncio.sleep(0.02)
    assert (await ask(node, get("/healthz"))).status == 200  # a place is free again
    for _, writer in held[1:]:
        writer.close()


@pytest.mark.parametrize("node", [LIMITS.model_copy(update={"max_connections_per_host": 2})], indirect=True)
async def test_the_per_host_cap(node: Node) -> None:
    held = [await node.connect() for _ in range(2)]
    reader, writer = await node.connect()
    data, _ = await closed_after(reader)
    writer.close()
    assert data.startswith(b"HTTP/1.1 503 ")
    assert node.app[HTTP_GUARD_KEY].stats().connections_refused == {"max_connections_per_host": 1}
    for _, w in held:
        w.close()


@pytest.mark.parametrize("raw", [get("/healthz"), get("/metrics"), get("/api/v1/status"), get("/nowhere"),
                                 get("/ws"), post("/auth/login", b"{}"), post("/healthz", b"")])
async def test_security_headers_on_every_answer_and_no_version(node: Node, raw: bytes) -> None:
    answer = await ask(node, raw)
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-frame-options"] == "DENY" and answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["server"] == "cti-server"


async def test_a_request_that_is_not_http_is_400_without_versions_and_counted(node: Node) -> None:
    with capture_logs() as logs:
        answer = await ask(node, b"GARBAGE\x01 / HTTP/1.1\r\n\r\n")
        long_header = await ask(node, get("/healthz", "X-Long: " + "a" * 9000))
    assert answer.status == 400 and answer.headers["server"] == "cti-server"
    assert "python" not in str(answer.headers).lower() and "aiohttp" not in str(answer.headers).lower()
    assert long_header.status in (400, 431)
    assert node.app[HTTP_GUARD_KEY].stats().requests_refused[400] >= 1
    assert [entry["code"] for entry in logs if entry["event"] == "http.request.refused"] == ["bad_http", "bad_http"]


async def test_refusals_are_counted_and_logged_within_the_rate(node: Node) -> None:
    with capture_logs() as logs:
        for _ in range(10):
            assert (await ask(node, get("/api/v1/status", "Authorization: Bearer wrong"))).status == 401
        login = await ask(node, post("/auth/login", b'{"role": "agent", "id": "a1", "password": "nope"}'))
    assert login.status == 401
    refused = [entry for entry in logs if entry["event"] == "http.request.refused"]
    assert len(refused) == LIMITS.refusal_log_burst  # the rest were held back, counted
    assert refused[0] == {"event": "http.request.refused", "log_level": "info", "status": 401, "code": "unauthorized",
                          "method": "GET", "path": "/api/v1/status", "remote": "127.0.0.1"}
    stats = node.app[HTTP_GUARD_KEY].stats()
    assert stats.requests_refused == {401: 11} and stats.logs_suppressed == 8
    metrics = await ask(node, get("/metrics"))
    text = metrics.body.decode()
    assert 'cti_http_requests_refused_total{status="401"} 11' in text
    assert "cti_http_refusal_logs_suppressed_total 8" in text and "cti_http_connections " in text


async def test_a_failed_login_is_logged_with_what_was_tried(node: Node) -> None:
    with capture_logs() as logs:
        answer = await ask(node, post("/auth/login", b'{"role": "agent", "id": "a9", "password": "nope"}'))
    assert answer.status == 401
    (line,) = [entry for entry in logs if entry["event"] == "http.request.refused"]
    assert line["code"] == "bad_credentials" and line["role"] == "agent" and line["subject"] == "a9"


async def test_a_handler_that_raises_is_500_logged_with_its_traceback_and_the_node_serves_on(node: Node) -> None:
    with capture_logs() as logs:
        answer = await ask(node, get("/boom"))
    assert answer.status == 500 and answer.headers["server"] == "cti-server"
    (line,) = [entry for entry in logs if entry["event"] == "http.request.failed"]
    assert line["log_level"] == "error" and isinstance(line["exc_info"], RuntimeError)
    assert (await ask(node, get("/healthz"))).status == 200
