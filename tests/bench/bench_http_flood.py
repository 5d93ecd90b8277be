"""Idle-connection flood against a real `cti serve --demo` (a script, not collected by pytest; issue 13 finding 6).

    python tests/bench/bench_http_flood.py [--connections 6000] [--wait 60]

Opens ``--connections`` TCP connections to the node's HTTP port at once and sends nothing on them. Prints how many
the node answered 503 (past ``http.max_connections``, default 4096) and how fast, when it closed the others (after
``http.idle_timeout_s``, default 15 s), connections still open after ``--wait`` seconds (0 expected), the node's
``cti_http_*`` metrics and its RSS before and after. The process file limit is raised for both ends.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.procs import run_server  # noqa: E402


def rss_mb(pid: int) -> int:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS"))
    return int(line.split()[1]) // 1024


async def hold(port: int, outcomes: list[tuple[bool, float]]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    data = await reader.read()
    outcomes.append((data.startswith(b"HTTP/1.1 503"), time.monotonic() - started))
    writer.close()


async def flood(port: int, connections: int, wait_s: float) -> None:
    outcomes: list[tuple[bool, float]] = []
    tasks = [asyncio.ensure_future(hold(port, outcomes)) for _ in range(connections)]  # all awaited below
    done, pending = await asyncio.wait(tasks, timeout=wait_s)
    for task in pending:
        task.cancel()
    failed = sum(1 for task in done if task.exception() is not None)
    refused = [took for was_refused, took in outcomes if was_refused]
    closed = [took for was_refused, took in outcomes if not was_refused]
    print(f"{connections} connections: {len(refused)} answered 503 (slowest after {max(refused, default=0):.2f} s), "
          f"{len(closed)} closed by the node after {min(closed, default=0):.1f}-{max(closed, default=0):.1f} s, "
          f"{len(pending)} still open after {wait_s:g} s, {failed} failed to connect")
    text = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode())
    print("\n".join(line for line in text.splitlines() if line.startswith("cti_http")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=6000)
    parser.add_argument("--wait", type=float, default=60.0)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    files = args.connections + 1024
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(files, hard) if hard != resource.RLIM_INFINITY else files, hard))
    with tempfile.TemporaryDirectory() as tmp, run_server(Path(tmp)) as server:
        time.sleep(1.0)
        print(f"server RSS before: {rss_mb(server.proc.pid)} MB")
        asyncio.run(flood(server.http_port, args.connections, args.wait))
        print(f"server RSS after: {rss_mb(server.proc.pid)} MB")


if __name__ == "__main__":
    main()
