"""Supervisors learn of VIP callers at once: alert.raised reaches the supervisor's WebSocket
within 1 s of the VIP call entering the queue. Real `cti serve --demo`, SIPp carrier, WS client."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.procs import run_server
from tests.support.sipp import SippRunner, sipp_ready

pytestmark = [pytest.mark.interop, pytest.mark.skipif(not sipp_ready(), reason="sipp is not installed")]


async def test_vip_caller_raises_an_alert_for_the_supervisor_within_1s(tmp_path: Path) -> None:
    sipps = SippRunner(tmp_path / "sipp")
    with run_server(tmp_path) as server:
        try:
            base = f"http://127.0.0.1:{server.http_port}"
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{base}/auth/login",
                                     json={"role": "supervisor", "id": "sup1", "password": "demosup1"}) as resp:
                    assert resp.status == 200, await resp.text()
                    token = (await resp.json())["token"]
                ws = await http.ws_connect(f"{base}/ws?token={token}")
                seen: dict[str, tuple[float, dict[str, Any]]] = {}
                carrier = sipps.carrier(f"127.0.0.1:{server.sip_port}", digit="2", caller="+15550100",
                                        talk_ms=3000, timeout=30)
                async with asyncio.timeout(20):
                    while "alert.raised" not in seen or "call.queued" not in seen:
                        frame = json.loads((await ws.receive()).data)
                        if frame.get("type") in ("call.queued", "alert.raised") and frame["type"] not in seen:
                            seen[frame["type"]] = (time.monotonic(), frame["data"])
                queued_at, queued = seen["call.queued"]
                alerted_at, alert = seen["alert.raised"]
                assert queued["vip"] is True and queued["queue"] == "support"
                assert alert["kind"] == "vip_in_queue" and alert["call_id"] == queued["call_id"]
                assert alert["queue"] == "support" and alert["severity"] in ("warning", "critical")
                assert alerted_at - queued_at < 1.0
                await ws.close()
                assert await asyncio.to_thread(carrier.wait, 30) == 0, carrier.report()
        finally:
            await asyncio.to_thread(sipps.stop_all)
