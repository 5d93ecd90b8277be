"""HTTP requests (answered and refused) and WebSocket sessions leave no cyclic garbage on the real server.

The node runs with automatic cyclic collection off (cti.app.tune_gc): what reference counting does not free waits
for a periodic or growth-triggered collection. So a request or a connection must not leave a reference cycle. Two
did: a request aiohttp refused itself (no route: its exception's traceback held the router's frames, which held
the exception) and every WebSocket session (its tasks' errors held their frames, which held the task group that
held the errors). The test hook ``CTI_TEST_GC_REPORT`` (cti/gcaudit.py) holds collection back and, on SIGUSR1,
reports what a collection finds.

What is still left is aiohttp's own and small: a request its router refused keeps its exception and the route that
names it in a cycle (about 7 objects), and a WebSocket connection its request, handler and response (about 40); no
frame, no traceback, nothing of the gateway's. The periodic and growth-triggered collections take those.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from tests.support.gcreport import gc_report
from tests.support.procs import run_server

OPERATOR = {"Authorization": "Bearer demo-operator-token-0001"}
ROUNDS = 40


async def _traffic(port: int, rounds: int) -> None:
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(rounds):
            for method, path, headers, status in (
                ("GET", "/api/v1/agents", OPERATOR, 200),
                ("GET", "/api/v1/queues", OPERATOR, 200),
                ("GET", "/api/v1/status", {}, 401),
                ("GET", "/no/such/page", {}, 404),
                ("DELETE", "/healthz", {}, 405),
                ("GET", "/metrics", {}, 200),
            ):
                async with http.request(method, base + path, headers=headers) as answer:
                    await answer.read()
                    assert answer.status == status, (method, path, answer.status)
        for _ in range(rounds // 4):
            async with http.post(base + "/auth/login",
                                 json={"role": "agent", "id": "1001", "password": "demo1001"}) as answer:
                token = (await answer.json())["token"]
            async with http.ws_connect(f"{base}/ws?token={token}") as ws:
                hello = await ws.receive_json(timeout=5)
                assert hello["type"] == "hello"


def test_requests_and_websocket_sessions_leave_no_reference_cycles(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "gc.json"
    monkeypatch.setenv("CTI_TEST_GC_REPORT", str(report))
    with run_server(tmp_path) as server:
        asyncio.run(_traffic(server.http_port, 2))  # first-use caches and lazily built objects
        gc_report(server.proc.pid, report)
        asyncio.run(_traffic(server.http_port, ROUNDS))
        time.sleep(0.5)  # the last session's close handshake
        found = gc_report(server.proc.pid, report)
    by_type = found["by_type"]
    ours = found["ours"]
    assert isinstance(by_type, dict) and isinstance(ours, dict)
    # A cycle through frames keeps every local of the code that raised: none may be left.
    assert "builtins.frame" not in by_type and "builtins.traceback" not in by_type, found
    assert [name for name in ours if name.startswith("cti.gateway.")] == [], found
    assert "asyncio.taskgroups.TaskGroup" not in by_type, found
    requests = ROUNDS * 6 + ROUNDS // 4 * 2
    objects = found["objects"]
    print(f"{objects} objects of cyclic garbage after {requests} requests")
    assert isinstance(objects, int) and objects < 6 * requests, found
