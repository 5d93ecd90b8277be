"""What one live call costs the node in memory: callers the IVR answered and that never ACK.

Run: ``python tests/bench/bench_call_memory.py [--calls 300 600]``. Not collected by pytest.

A real node (``cti serve --demo``) gets ``--calls`` INVITEs to the demo IVR (number 100) from one UDP
socket that never ACKs: each call is answered, its greeting plays, and it stays up until Timer L
(64*T1, 32 s) ends it with a BYE. This is the call a flood of INVITEs makes (tests/bench/bench_sip_fuzz.py:
its INVITEs the IVR answers live about 35 s each), so the RSS per live call bounds how far such a flood
raises the node's memory. Printed for each level: live calls and transactions (from /metrics), RSS before and
with the calls up, and RSS per call.

``CTI_SOAK_TRACEMALLOC=N`` (frames) also prints the Python memory traced per call and the source lines
holding the most (tests/support/memtrace.py; tracing makes the node slower and larger, so its RSS figures
are not comparable with an untraced run).
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support import memtrace  # noqa: E402
from tests.support.procs import run_server  # noqa: E402
from tests.support.sipfuzz import HOST, SDP, metrics  # noqa: E402


def invite(server_port: int, local_port: int, serial: int) -> bytes:
    caller = f"555{serial:05d}"
    head = [
        f"INVITE sip:100@{HOST}:{server_port} SIP/2.0",
        f"Via: SIP/2.0/UDP {HOST}:{local_port};branch=z9hG4bKmem{serial};rport",
        "Max-Forwards: 70",
        f"From: <sip:{caller}@{HOST}>;tag=m{serial}",
        f"To: <sip:100@{HOST}>",
        f"Call-ID: mem{serial}@{HOST}",
        "CSeq: 1 INVITE",
        f"Contact: <sip:{caller}@{HOST}:{local_port}>",
        "Content-Type: application/sdp",
        f"Content-Length: {len(SDP)}",
    ]
    return ("\r\n".join(head) + "\r\n\r\n" + SDP).encode()


def level(calls: int, workdir: Path) -> None:
    folder = memtrace.prepare(workdir)
    with run_server(workdir, start_timeout=90) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        time.sleep(3)  # the node settles after its start
        memtrace.snapshot(server.proc.pid, folder, "before")
        before = memtrace.rss_mb(server.proc.pid)
        for serial in range(calls):
            sock.sendto(invite(server.sip_port, sock.getsockname()[1], serial), (HOST, server.sip_port))
            time.sleep(0.005)  # 200 calls/s: well within what the node takes
        time.sleep(4)  # every call answered and its greeting playing; Timer L is 32 s away
        figures = metrics(server.http_port)
        live, transactions = figures.get("cti_calls_active", 0), figures.get("cti_sip_transactions", 0)
        memtrace.snapshot(server.proc.pid, folder, "calls")
        after = memtrace.rss_mb(server.proc.pid)
    print(f"{calls:>6} calls: {live:.0f} live, {transactions:.0f} transactions; RSS {before:.1f} -> {after:.1f} MB, "
          f"{(after - before) * 1024 / calls:.1f} KiB per live call")
    if folder is None or not (folder / "calls.tracemalloc").exists():
        return
    first = tracemalloc.Snapshot.load(str(folder / "before.tracemalloc"))
    second = tracemalloc.Snapshot.load(str(folder / "calls.tracemalloc"))
    grown = second.compare_to(first, "lineno")
    print(f"        traced Python memory: {sum(s.size_diff for s in grown) / 1024 / calls:.1f} KiB per live call; "
          f"lines holding the most:")
    for stat in grown[:20]:
        print(f"        {stat.size_diff / calls:8.0f} B {stat.count_diff / calls:6.1f} blocks  {stat.traceback[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[300, 600], help="live calls at each level")
    args = parser.parse_args()
    for calls in args.calls:
        with tempfile.TemporaryDirectory(prefix="cti-callmem-") as tmp:
            level(calls, Path(tmp))


if __name__ == "__main__":
    main()
