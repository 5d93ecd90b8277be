"""WebSocket gateway fan-out benchmark (a script, not collected by pytest).

    python tests/bench/bench_ws_fanout.py [--clients 1000 5000] [--rate 1000] [--duration 8]

For each client count N: the gateway runs in this process (aiohttp app + a real Bus + a small in-memory Control
with N agents); a second process (this script with ``--client-mode``) opens N agent WebSockets to it. This process
then publishes ``--rate`` ``agent.state_changed`` events per second for ``--duration`` seconds, round-robin over
the agents, so each event is delivered to exactly one client (the usual case: an agent's own events) while every
agent's bus subscription and visibility filter sees it. Each event carries its publish time (``sent_at``, an
additive key); the clients measure delivery latency and report p50/p99. Server RSS comes from /proc/self/status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cti.events.bus import Bus  # noqa: E402
from cti.events.registry import Envelope  # noqa: E402
from cti.floor.control import ControlError  # noqa: E402
from cti.gateway import GATEWAY_KEY, GatewaySettings, add_gateway_routes  # noqa: E402
from cti.tokens import Role, TokenIssuer  # noqa: E402


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class BenchControl:
    """Just enough of :class:`cti.floor.control.Control` for agent connections."""

    def __init__(self, n: int) -> None:
        self.ids = [f"b{i}" for i in range(n)]
        self._known = set(self.ids)

    def agent_snapshot(self, agent_id: str) -> dict[str, Any]:
        if agent_id not in self._known:
            raise ControlError("unknown_agent", agent_id)
        return {"agent_id": agent_id, "name": agent_id, "team": "t", "state": "available", "reason": None,
                "since": time.time(), "call_id": None, "registered": True, "skills": {}, "queues": ["q"]}

    def current_call(self, agent_id: str) -> dict[str, Any] | None:
        return None


# ---------------------------------------------------------------------------------------------- client process
async def client_main(url: str, tokens: list[str], duration: float) -> None:
    raise_nofile()
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        sockets: list[aiohttp.ClientWebSocketResponse] = []
        for start in range(0, len(tokens), 200):
            batch = tokens[start:start + 200]
            sockets += await asyncio.gather(*(http.ws_connect(f"{url}/ws?token={t}", protocols=("cti.json",),
                                                              heartbeat=None) for t in batch))
        for ws in sockets:
            await ws.receive()  # hello
        print("READY", flush=True)

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    frame = json.loads(msg.data)
                    sent = frame.get("data", {}).get("sent_at")
                    if sent is not None:
                        latencies.append(time.time() - sent)

        try:
            async with asyncio.timeout(duration + 3), asyncio.TaskGroup() as tg:
                for i, ws in enumerate(sockets):
                    tg.create_task(read(ws), name=f"bench-read-{i}")
        except TimeoutError:
            pass
    latencies.sort()
    n = len(latencies)
    result = {"received": n,
              "p50_ms": 1000 * latencies[n // 2] if n else None,
              "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))] if n else None,
              "max_ms": 1000 * latencies[-1] if n else None}
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------- server side
async def run_one(n: int, rate: int, duration: float) -> dict[str, Any]:
    control, bus = BenchControl(n), Bus()
    tokens = TokenIssuer(b"bench-secret-0123456789-abcdefghij", ttl_s=3600, clock=time.time)
    app = web.Application()
    add_gateway_routes(app, control=control, bus=bus, tokens=tokens, operator_token=None,  # type: ignore[arg-type]
                       node="bench", settings=GatewaySettings(slow_consumer_timeout_s=30.0))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    rss_idle = rss_mib()
    token_file = Path(f"/tmp/bench_ws_tokens_{n}.json")
    issued = json.dumps([tokens.issue(Role.AGENT, a).token for a in control.ids])
    await asyncio.to_thread(token_file.write_text, issued)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client-mode", url, str(token_file), str(duration),
        stdout=subprocess.PIPE)
    assert proc.stdout is not None
    connect_started = time.monotonic()
    async with asyncio.timeout(120):
        line = await proc.stdout.readline()
    assert line.strip() == b"READY", line
    connect_s = time.monotonic() - connect_started
    rss_connected = rss_mib()
    published, tick = 0, 0.01
    per_tick = max(1, round(rate * tick))
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < duration:
        due = int(elapsed * rate) + per_tick
        while published < due:
            agent = control.ids[published % n]
            bus.publish(Envelope.new("agent.state_changed", {
                "agent_id": agent, "state": "paused", "previous_state": "available", "reason": "bench",
                "call_id": None, "sent_at": time.time()}, node="bench", now=time.time()))
            published += 1
        await asyncio.sleep(tick)
    rss_peak = rss_mib()
    async with asyncio.timeout(30):
        out, _ = await proc.communicate()
    result_line = next(ln for ln in out.decode().splitlines() if ln.startswith("RESULT "))
    stats = app[GATEWAY_KEY].stats()
    await runner.cleanup()
    await asyncio.to_thread(token_file.unlink, missing_ok=True)
    return {"clients": n, "published": published, "connect_s": round(connect_s, 1),
            "rss_idle_mib": round(rss_idle, 1), "rss_connected_mib": round(rss_connected, 1),
            "rss_end_mib": round(rss_peak, 1), "bus_dropped": stats.events_dropped,
            **json.loads(result_line.removeprefix("RESULT "))}


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client-mode":
        url, token_file, duration = sys.argv[2], sys.argv[3], float(sys.argv[4])
        asyncio.run(client_main(url, json.loads(Path(token_file).read_text()), duration))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--rate", type=int, default=1000, help="events published per second")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of publishing per client count")
    args = parser.parse_args()
    raise_nofile()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up
    print(f"{'clients':>7} {'published':>9} {'received':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'connect s':>9} {'RSS idle/conn/end MiB':>22} {'bus dropped':>11}")
    for n in args.clients:
        r = asyncio.run(run_one(n, args.rate, args.duration))
        rss = f"{r['rss_idle_mib']}/{r['rss_connected_mib']}/{r['rss_end_mib']}"
        print(f"{r['clients']:>7} {r['published']:>9} {r['received']:>8} {fmt(r['p50_ms']):>8} "
              f"{fmt(r['p99_ms']):>8} {fmt(r['max_ms']):>8} {r['connect_s']:>9} {rss:>22} {r['bus_dropped']:>11}",
              flush=True)


if __name__ == "__main__":
    main()
