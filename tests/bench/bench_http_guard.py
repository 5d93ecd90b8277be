"""Cost of the HTTP guard on the request path (a script, not collected by pytest).

    python tests/bench/bench_http_guard.py [--connections 50] [--requests 200] [--rounds 3]

The node's application (build_app with an in-memory Control, as in the unit tests) is served in a child process,
once by aiohttp's plain TCPSite (the guard's middleware finds no guarded connection and does nothing but its
headers and counts) and once by ``serve_http`` (a connection proxy per socket, deadlines, the answer sent by the
middleware). This process opens ``--connections`` keep-alive connections and sends ``--requests`` GET /healthz on
each, one at a time per connection, over raw sockets. Rounds alternate the two modes, so a slow moment of the shared
host hits both. The script prints, for each round, requests/s, p99 latency and the server's CPU time per request
(user + system of the child process, from the first request to the last: steadier than throughput on a shared
host), then the median ratios guarded/plain.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"


async def serve(mode: str) -> None:
    from aiohttp import web

    from config.schema import HttpConfig
    from cti.http.api import build_app
    from cti.http.guard import serve_http
    from tests.cti.test_gateway_fake import FakeControl
    from tests.cti.test_http_guard import FakeMetrics

    app = build_app(FakeControl(), token="bench-token-0123456789", node="bench", metrics=FakeMetrics(),
                    http=HttpConfig(port=0, max_connections=10_000))
    if mode == "guarded":
        runner, port = await serve_http(app)
    else:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # the parent starts the measured load
    before = resource.getrusage(resource.RUSAGE_SELF)
    await loop.run_in_executor(None, sys.stdin.readline)  # ... and says when it is over
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, flush=True)
    await runner.cleanup()


async def one_connection(port: int, requests: int, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(requests):
            started = time.perf_counter()
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


async def run_round(mode: str, connections: int, requests: int) -> tuple[float, float, float]:
    child = await asyncio.create_subprocess_exec(sys.executable, __file__, "--serve", mode,
                                                 stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None and child.stdin is not None
    try:
        port = int(await child.stdout.readline())
        await one_connection(port, 20, [])  # warm up
        latencies: list[float] = []
        child.stdin.write(b"start\n")
        await child.stdin.drain()
        started = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for i in range(connections):
                tg.create_task(one_connection(port, requests, latencies), name=f"bench-conn-{i}")
        elapsed = time.perf_counter() - started
        child.stdin.write(b"stop\n")
        await child.stdin.drain()
        cpu_s = float(await child.stdout.readline())
    finally:
        child.stdin.close()
        async with asyncio.timeout(10):
            await child.wait()
    latencies.sort()
    return (len(latencies) / elapsed, latencies[int(len(latencies) * 0.99) - 1] * 1000,
            cpu_s / len(latencies) * 1e6)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", choices=("plain", "guarded"))
    args = parser.parse_args()
    if args.serve:
        await serve(args.serve)
        return
    rate_ratios, cpu_ratios = [], []
    print(f"{args.connections} connections x {args.requests} GET /healthz, keep-alive")
    for n in range(args.rounds):
        rates, cpus = {}, {}
        for mode in ("plain", "guarded") if n % 2 == 0 else ("guarded", "plain"):
            rate, p99, cpu_us = await run_round(mode, args.connections, args.requests)
            rates[mode], cpus[mode] = rate, cpu_us
            print(f"round {n + 1} {mode:8} {rate:8.0f} req/s   p99 {p99:6.1f} ms   server CPU {cpu_us:5.1f} us/request")
        rate_ratios.append(rates["guarded"] / rates["plain"])
        cpu_ratios.append(cpus["guarded"] / cpus["plain"])
    print(f"guarded / plain, median of {args.rounds}: throughput {statistics.median(rate_ratios):.3f}, "
          f"server CPU per request {statistics.median(cpu_ratios):.3f}")


if __name__ == "__main__":
    asyncio.run(main())
