"""Resuming the event stream with ?since=<seq> against a real `cti serve` during 50 SIPp calls (docs/websocket.md).

Two operators and two connections of agent 1003 follow the node's WebSocket. One of each pair stays connected; the
other leaves for 5 s in the middle of the calls and comes back with ``?since=`` the last ``seq`` it saw. Afterwards
both of a pair must have received the very same events (by id), once each, in ``seq`` order: the replay gave the
one that was away exactly what it missed and was allowed to see (the agent only its own events). Every event the
node published is also checked against its schema (tests/support/procs.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import HOST, OPERATOR_TOKEN, Sipp, SippRunner, agent_login_ready, sipp_ready

pytestmark = [pytest.mark.interop, pytest.mark.skipif(not sipp_ready(), reason="sipp is not installed")]
REPO = Path(__file__).resolve().parents[2]
AGENTS = ("1002", "1003", "1004")
CALLS, RATE, HOLD_MS = 50, 5, 2000
AWAY_S = 5.0


def _config(tmp: Path) -> Path:
    """The demo, with number 200 queueing at once on support and no wrap-up (the agents take call after call)."""
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    flows = tmp / "flows"
    flows.mkdir(exist_ok=True)
    (flows / "main.yaml").write_text((REPO / "config" / "flows" / "main.yaml").read_text())
    (flows / "direct.yaml").write_text(yaml.safe_dump(
        {"flows": {"direct": {"start": "queue", "nodes": {"queue": {"type": "queue", "queue": "support"}}}}}))
    config["flows_dir"] = str(flows)
    config["prompts_dir"] = str(REPO / "config" / "prompts")
    config["trunks"][0]["numbers"]["200"] = "direct"
    for queue in config["queues"]:
        queue["wrap_up_s"] = 0
    path = tmp / "cti.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(tmp_path, config=_config(tmp_path)) as server:
        yield server


class Follower:
    """One WebSocket connection's event frames, in the order received."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        self.http, self.url, self.token = http, url, token
        self.events: list[dict[str, Any]] = []
        self.hellos: list[dict[str, Any]] = []
        self.other: list[dict[str, Any]] = []
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def last_seq(self) -> int:
        return int(self.events[-1]["seq"]) if self.events else int(self.hellos[-1]["data"]["seq"])

    async def connect(self, since: int | None = None) -> None:
        query = f"?token={self.token}" + (f"&since={since}" if since is not None else "")
        self._ws = await self.http.ws_connect(f"{self.url}/ws{query}")
        hello = await self._ws.receive_json(timeout=5)
        assert hello["type"] == "hello", hello
        self.hellos.append(hello)
        self._task = asyncio.get_running_loop().create_task(self._read(self._ws), name="ws-follower")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            frame = json.loads(message.data)
            (self.events if "seq" in frame and frame.get("type") not in ("hello", "resync") else self.other).append(
                frame)

    async def close(self) -> None:
        assert self._ws is not None and self._task is not None
        await self._ws.close()
        async with asyncio.timeout(5):
            await self._task


async def _token(http: aiohttp.ClientSession, url: str, role: str, subject: str) -> str:
    async with http.post(f"{url}/api/v1/tokens", json={"role": role, "subject": subject},
                         headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}) as resp:
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["token"])


def _compare(stayed: Follower, away: Follower, who: str) -> None:
    """Both saw the same events (by seq and id), once each, in order, between their common start and end."""
    start = max(int(stayed.hellos[0]["data"]["seq"]), int(away.hellos[0]["data"]["seq"]))
    end = min(stayed.last_seq, away.last_seq)
    want = [(e["seq"], e["id"]) for e in stayed.events if start < e["seq"] <= end]
    got = [(e["seq"], e["id"]) for e in away.events if start < e["seq"] <= end]
    assert len({i for _, i in got}) == len(got), f"{who}: an event came twice"
    assert [s for s, _ in got] == sorted(s for s, _ in got), f"{who}: events out of order"
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    assert got == want, f"{who}: {len(missing)} missing (first {missing[:3]}), {len(extra)} extra ({extra[:3]})"


async def test_a_client_away_5s_during_50_calls_gets_every_missed_event_once_in_order(
    server: ServerProcess, tmp_path: Path
) -> None:
    sipps = SippRunner(tmp_path / "sipp")
    url = f"http://{HOST}:{server.http_port}"
    try:
        uas = sipps.start("uas", "load_agent_uas.xml", calls=None, timeout=120, trace_msg=False)
        await asyncio.sleep(0.3)
        for agent in AGENTS:
            rc = await asyncio.to_thread(sipps.register_at, f"{HOST}:{server.sip_port}", agent, uas.port)
            assert rc == 0, f"agent {agent} did not register"
            await asyncio.to_thread(agent_login_ready, server.http_port, agent)
        async with aiohttp.ClientSession() as http:
            op_token = await _token(http, url, "operator", "watcher")
            agent_token = await _token(http, url, "agent", "1003")
            pairs = {"operator": (Follower(http, url, op_token), Follower(http, url, op_token)),
                     "agent 1003": (Follower(http, url, agent_token), Follower(http, url, agent_token))}
            for stayed, away in pairs.values():
                await stayed.connect()
                await away.connect()
            carrier: Sipp = sipps.start("carrier", "load_carrier.xml", "-s", "200", "-d", str(HOLD_MS), "-r",
                                        str(RATE), remote=f"{HOST}:{server.sip_port}", calls=CALLS, timeout=60,
                                        trace_msg=False)
            finished = asyncio.get_running_loop().run_in_executor(None, carrier.wait, 60.0)
            await asyncio.sleep(3.0)  # calls are up and coming
            left_at = {}
            for who, (_, away) in pairs.items():
                left_at[who] = away.last_seq
                await away.close()
            await asyncio.sleep(AWAY_S)
            for who, (_, away) in pairs.items():
                await away.connect(since=left_at[who])
                assert away.hellos[-1]["data"]["resumed"] is True, (who, away.hellos[-1], away.other)
            assert await finished == 0, carrier.report()
            operator = pairs["operator"][0]
            for _ in range(150):  # the last calls' ends, at most 15 s
                if sum(e["type"] == "call.ended" for e in operator.events) >= CALLS:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            for stayed, away in pairs.values():
                await stayed.close()
                await away.close()
    finally:
        sipps.stop_all()

    stayed_op, away_op = pairs["operator"]
    assert sum(e["type"] == "call.ended" for e in stayed_op.events) == CALLS
    seqs = [e["seq"] for e in stayed_op.events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the operator that stayed lost events: no reference"
    for who, (stayed, away) in pairs.items():
        _compare(stayed, away, who)
        missed = [e for e in away.events if left_at[who] < e["seq"] <= int(away.hellos[1]["data"]["seq"])]
        assert missed, f"{who}: nothing happened while it was away: the test proves nothing"
        assert not any(o.get("type") == "resync" for o in away.other)
    away_agent = pairs["agent 1003"][1]
    assert {e["data"].get("agent_id") for e in away_agent.events} == {"1003"}  # only what an agent may see
    assert len([e for e in away_op.events if left_at["operator"] < e["seq"]]) > 50
    assert '"ws.client.resumed"' in server.log_text()
