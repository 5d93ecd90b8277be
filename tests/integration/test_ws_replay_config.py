"""The replay window is the node's configuration (http.ws_replay_events, docs/websocket.md): with one event kept, a
client that comes back with ?since= after several were published gets a resync frame instead of a replay."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import yaml

from tests.support.procs import run_server

REPO = Path(__file__).resolve().parents[2]
TOKEN = "demo-operator-token-0001"


def test_a_node_that_keeps_one_event_answers_a_resume_with_resync(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["flows_dir"] = str(REPO / "config" / "flows")
    config["prompts_dir"] = str(REPO / "config" / "prompts")
    config["http"]["ws_replay_events"] = 1
    path = tmp_path / "cti.yaml"
    path.write_text(yaml.safe_dump(config))

    async def run(http_port: int) -> None:
        base = f"http://127.0.0.1:{http_port}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/v1/tokens", json={"role": "operator", "subject": "replay-test"},
                                 headers=auth) as answer:
                assert answer.status in (200, 201), await answer.text()
                token = (await answer.json())["token"]
            async with http.ws_connect(f"{base}/ws?token={token}") as ws:
                hello = await ws.receive_json(timeout=10)
                seq = hello["data"]["seq"]
            async with http.post(f"{base}/api/v1/agents/1001/login", json={"ready": True}, headers=auth) as answer:
                assert answer.status == 200, await answer.text()  # publishes agent.state_changed while we are away
            for step in ("not-ready", "ready"):  # more events than the window keeps
                async with http.post(f"{base}/api/v1/agents/1001/{step}", json={}, headers=auth) as answer:
                    assert answer.status == 200, await answer.text()
            await asyncio.sleep(0.5)
            async with http.ws_connect(f"{base}/ws?token={token}&since={seq}") as ws:
                frames = [await ws.receive_json(timeout=10) for _ in range(2)]
        kinds = [f["type"] for f in frames]
        assert kinds[0] == "hello" and frames[0]["data"]["resumed"] is False, frames[0]
        assert "resync" in kinds, kinds

    with run_server(tmp_path, config=path) as server:
        asyncio.run(run(server.http_port))
