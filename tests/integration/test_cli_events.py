"""``cti events`` against a real ``cti serve --demo``: it tails the stream, filters by type, and when its connection is
cut it reconnects with ``since`` and prints every event of the gap exactly once, in order.

The command reaches the node through a small TCP relay of this test that can cut every connection and refuse new
ones for a while (the node itself stays up). A WebSocket client connected straight to the node is the reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.procs import ServerProcess, free_port, run_server

TOKEN = "demo-operator-token-0001"  # the demo operator token (README)
AGENT = "1001"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(tmp_path) as server:
        yield server


class Relay:
    """A TCP relay on 127.0.0.1:``port`` to the node; :meth:`cut` drops every connection and stops listening."""

    def __init__(self, target: int) -> None:
        self.target, self.port = target, free_port("tcp")
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()


def _api(server: ServerProcess, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{server.http_port}{path}", method="POST",
                                     data=json.dumps(body or {}).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read() or b"null")


async def _toggle(server: ServerProcess, times: int) -> None:
    """Flip agent 1001 between available and paused ``times`` times (one agent.state_changed each)."""
    for _ in range(times):
        agent = await asyncio.to_thread(_api_get, server, f"/api/v1/agents/{AGENT}")
        action = "not-ready" if agent["state"] == "available" else "ready"
        await asyncio.to_thread(_api, server, f"/api/v1/agents/{AGENT}/{action}")


def _api_get(server: ServerProcess, path: str) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{server.http_port}{path}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


async def _line(stream: asyncio.StreamReader, within: float = 10.0) -> str:
    async with asyncio.timeout(within):
        line = await stream.readline()
    assert line, "cti events ended early"
    return line.decode()


async def test_cti_events_filters_and_resumes_after_a_cut_with_nothing_lost_or_repeated(server: ServerProcess) -> None:
    await asyncio.to_thread(_api, server, f"/api/v1/agents/{AGENT}/login", {"ready": True})
    relay = Relay(server.http_port)
    await relay.start()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{server.http_port}/api/v1/tokens",
                             json={"role": "operator", "subject": "reference"},
                             headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            token = (await resp.json())["token"]
        reference = await http.ws_connect(f"http://127.0.0.1:{server.http_port}/ws?token={token}")
        assert (await reference.receive_json(timeout=5))["type"] == "hello"
        env = {**os.environ, "CTI_URL": f"http://127.0.0.1:{relay.port}", "CTI_TOKEN": TOKEN}
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cti", "events", "--json", "--type", "agent.state_changed", "--count", "30",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        try:
            assert cli.stdout is not None and cli.stderr is not None
            printed: list[dict[str, Any]] = []
            for _ in range(50):  # until the command is connected: its first event comes out
                await _toggle(server, 1)
                try:
                    printed.append(json.loads(await _line(cli.stdout, within=0.3)))
                    break
                except TimeoutError:
                    continue
            assert printed, "cti events printed nothing"
            await _toggle(server, 9)
            printed += [json.loads(await _line(cli.stdout)) for _ in range(9)]
            await relay.cut()  # the command loses its connection; the node goes on
            await _toggle(server, 10)
            await asyncio.sleep(1.0)
            await relay.start()
            await _toggle(server, 10)
            async with asyncio.timeout(30):
                out, err = await cli.communicate()
            printed += [json.loads(line) for line in out.decode().splitlines()]
            assert cli.returncode == 0, err.decode()
        finally:
            if cli.returncode is None:
                cli.kill()
                await cli.wait()
        seen: list[dict[str, Any]] = []
        while True:  # the reference: every agent.state_changed the node published meanwhile
            try:
                frame = await reference.receive_json(timeout=1)
            except TimeoutError:
                break
            seen.append(frame)
        await reference.close()
    await relay.cut()
    want = [(f["seq"], f["id"]) for f in seen if f["type"] == "agent.state_changed"]
    got = [(f["seq"], f["id"]) for f in printed]
    assert {f["type"] for f in printed} == {"agent.state_changed"}  # --type filters the queue.stats out
    assert got == want[want.index(got[0]):][:30], "missing, repeated or out of order after the reconnect"
    assert len(got) == 30 and len(set(got)) == 30
    assert "reconnected, resuming after seq" in err.decode()
