"""SIP fuzz benchmark: mutational SIP over UDP and TCP against a real `cti serve --demo`.

Run: ``python tests/bench/bench_sip_fuzz.py`` (a short run: 20,000 datagrams) or
``python tests/bench/bench_sip_fuzz.py --deep`` (1,000,000 UDP datagrams plus TCP streams).
Not collected by pytest; tests/interop/test_sip_fuzz.py runs a few thousand as a regression test.

* The server is started on free ports with a temporary data directory (tests/support/procs), logging
  at ``warning`` so that the log does not become the benchmark.
* Messages come from tests/support/sipfuzz.py (shared with the CI test): mutations of valid INVITE
  (with SDP), REGISTER, OPTIONS, BYE, ACK, CANCEL and INFO requests and of responses.
* UDP: datagrams are sent at ``--rate`` per second from a few sockets (answers are read and thrown
  away; the server's BYEs to the fuzz calls are answered only with ``--answer-byes``). TCP:
  connections carry a few mutated messages each and then close cleanly, reset (RST) or stop
  half-way through a message.
* Every ``--probe-every`` datagrams, and at the end, the sender pauses and probes the server with an
  OPTIONS (10 s to answer, retried): a server that died or stopped answering is a **crash** (must
  be 0). At the end it also checks that a REGISTER is answered (401 challenge).
* Printed: crashes, datagrams sent and the rate, RSS (VmRSS of the server) before the traffic, at
  the end of the traffic, ``--idle-s`` (60 s) after it and after the drain, and the live calls and
  SIP transactions (``cti_calls_active``, ``cti_sip_transactions`` from /metrics) with the time
  each took to reach 0. A fuzz INVITE that was answered is a call nobody ACKs or talks to: it ends
  by Timer L or the RTP timeout (about 32 s), and its BYE, unanswered, by Timer F (32 s more), so
  everything must be back to 0 within 2 x 64*T1 of the traffic (``--drain-s``: 100 s).

* ``--bursts N`` sends N bursts in a row to the same server (seeds SEED, SEED+1...), each followed by its
  drain: what the first burst left must be reused by the next ones (RSS after the last drain within 5 % of
  the baseline above the RSS after the first). The RSS by kind of mapping (C heap, anonymous mappings where
  Python's arenas live, files) is printed before the traffic and after each drain.
* With the memory probe on (``CTI_SOAK_GC=1`` or ``CTI_SOAK_TRACEMALLOC=N``, tests/support/memtrace.py) it
  takes snapshots before the traffic and after the drain, and ``--snapshots-at 200000,300000`` adds some
  during the traffic; what grew between each two is printed (``CTI_MEMTRACE_OWNERS=Call,IvrRunner`` also
  prints who holds the live objects of those types).

Exit status 0 when there was no crash, calls and transactions drained to 0 and (with several bursts) the
memory was reused, else 1.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support import memtrace  # noqa: E402
from tests.support.memtrace import breakdown, rss_mb  # noqa: E402
from tests.support.procs import ServerProcess, run_server  # noqa: E402
from tests.support.sipfuzz import (  # noqa: E402
    Counts,
    Mutator,
    UdpFuzzer,
    live_transactions,
    metrics,
    probe_options,
    probe_register,
    tcp_fuzz,
)

REUSE_SLACK = 0.05  # --bursts: the later bursts may add this share of the baseline, at most


def alive(server: ServerProcess, counts: Counts, when: str) -> bool:
    if server.proc.poll() is not None:
        counts.crashes.append(f"{when}: the server exited with status {server.proc.returncode}")
        return False
    if not probe_options(server.sip_port):
        counts.crashes.append(f"{when}: the server stopped answering OPTIONS")
        return False
    return True


# -------------------------------------------------------------------------------------------- run
@dataclass
class Report:
    counts: Counts
    rss_before: float
    rss_end: float = float("nan")
    rss_idle: float | None = None
    rss_drained: float | None = None
    transactions_end: int | None = None
    calls_end: int | None = None
    transactions_drained: int | None = None
    calls_drained: int | None = None
    calls_zero_after: float | None = None  # seconds after the traffic
    transactions_zero_after: float | None = None
    waited: float = 0.0
    idle_s: float = 0.0
    register_status: int | None = None
    kinds_before: dict[str, float] = field(default_factory=dict)  # memtrace.breakdown
    kinds_drained: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.counts.crashes and self.transactions_drained == 0 and self.calls_drained == 0

    def lines(self) -> list[str]:
        c = self.counts
        rate = (c.udp + c.tcp_messages) / c.seconds if c.seconds else 0.0

        def mb(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} MB"

        def kinds(values: dict[str, float]) -> str:
            return ", ".join(f"{k} {v:.1f}" for k, v in values.items()) or "-"

        def after(value: float | None) -> str:
            return "not within the wait" if value is None else f"{value:.0f} s after the traffic"

        return [
            f"crashes                         {len(c.crashes)}",
            *(f"  {text}" for text in c.crashes),
            f"UDP datagrams sent              {c.udp}",
            f"TCP messages sent               {c.tcp_messages} on {c.tcp_connections} connections"
            f" ({c.tcp_refused} refused)",
            f"answers read                    {c.answers}",
            f"traffic time                    {c.seconds:.1f} s ({rate:.0f} messages/s)",
            f"RSS before                      {mb(self.rss_before)}",
            f"RSS at the end of the traffic   {mb(self.rss_end)}",
            f"RSS {self.idle_s:.0f} s after the traffic     {mb(self.rss_idle)}",
            f"RSS after the drain             {mb(self.rss_drained)} (waited {self.waited:.0f} s)",
            f"  by mapping, before            {kinds(self.kinds_before)}",
            f"  by mapping, after the drain   {kinds(self.kinds_drained)}",
            f"live calls at the end           {self.calls_end}, 0 {after(self.calls_zero_after)}",
            f"live transactions at the end    {self.transactions_end}, 0 {after(self.transactions_zero_after)}",
            f"after the drain                 {self.calls_drained} calls, {self.transactions_drained} transactions",
            f"REGISTER answered with          {self.register_status}",
        ]


def fuzz(server: ServerProcess, *, datagrams: int, tcp_connections: int, rate: float, probe_every: int,
         drain_s: float, idle_s: float, seed: int, answer_byes: bool = False,
         progress: Callable[[str], None] = lambda _: None,
         after_batch: Callable[[int], None] = lambda _: None) -> Report:
    """Run the fuzz traffic against a started server and measure (see the module docstring);
    ``after_batch(sent)`` runs after each batch of ``probe_every`` datagrams."""
    rng = random.Random(seed)
    mutator = Mutator(rng, server.sip_port)
    counts = Counts()
    pid = server.proc.pid
    report = Report(counts, rss_mb(pid), idle_s=idle_s, kinds_before=breakdown(pid))
    udp = UdpFuzzer(mutator, server.sip_port, answer_byes=answer_byes)
    start = time.monotonic()
    try:
        sent = 0
        tcp_per_round = max(1, tcp_connections * probe_every // max(1, datagrams)) if tcp_connections else 0
        tcp_done = 0
        while sent < datagrams:
            batch = min(probe_every, datagrams - sent)
            udp.send(batch, rate, counts)
            sent += batch
            if tcp_done < tcp_connections:
                n = min(tcp_per_round, tcp_connections - tcp_done)
                tcp_fuzz(mutator, server.sip_port, n, counts)
                tcp_done += n
            counts.seconds = time.monotonic() - start
            progress(f"  {sent} datagrams, {counts.tcp_messages} TCP messages, {counts.seconds:.0f} s, "
                     f"RSS {rss_mb(pid) if server.proc.poll() is None else float('nan'):.0f} MB, "
                     f"transactions {live_transactions(server.http_port)}")
            if not alive(server, counts, f"after {sent} datagrams"):
                break
            after_batch(sent)
        if tcp_done < tcp_connections and not counts.crashes:
            tcp_fuzz(mutator, server.sip_port, tcp_connections - tcp_done, counts)
        counts.seconds = time.monotonic() - start
        udp.drain()
        if server.proc.poll() is None:
            _drain(server, udp, report, drain_s, idle_s, progress)
    finally:
        udp.close()
    return report


def _drain(server: ServerProcess, udp: UdpFuzzer, report: Report, drain_s: float, idle_s: float,
           progress: Callable[[str], None]) -> None:
    """After the traffic: probe, then follow live calls, transactions and RSS until both are 0 and
    ``idle_s`` has passed, or ``drain_s``. The fuzz sockets stay open and are read (they are the
    Contact of the fuzz calls: the server's BYEs arrive there, answered only with ``answer_byes``)."""
    pid, counts = server.proc.pid, report.counts
    end = time.monotonic()
    report.rss_end = rss_mb(pid)
    reading = metrics(server.http_port)
    report.transactions_end = _int(reading.get("cti_sip_transactions"))
    report.calls_end = _int(reading.get("cti_calls_active"))
    if not counts.crashes:
        alive(server, counts, "at the end of the traffic")
    report.register_status = probe_register(server.sip_port)
    while server.proc.poll() is None:
        time.sleep(1.0)
        counts.answers += udp.drain()
        elapsed = time.monotonic() - end
        reading = metrics(server.http_port)
        report.calls_drained = _int(reading.get("cti_calls_active"))
        report.transactions_drained = _int(reading.get("cti_sip_transactions"))
        if report.calls_drained == 0 and report.calls_zero_after is None:
            report.calls_zero_after = elapsed
        if report.transactions_drained == 0 and report.transactions_zero_after is None:
            report.transactions_zero_after = elapsed
        if report.rss_idle is None and elapsed >= idle_s:
            report.rss_idle = rss_mb(pid)
        if int(elapsed) % 10 == 0:
            progress(f"  +{elapsed:.0f} s: calls {report.calls_drained}, transactions "
                     f"{report.transactions_drained}, RSS {rss_mb(pid):.0f} MB")
        drained = report.calls_drained == 0 and report.transactions_drained == 0
        if (drained and report.rss_idle is not None) or elapsed >= drain_s:
            break
    report.waited = time.monotonic() - end
    if server.proc.poll() is None:
        report.rss_drained = rss_mb(pid)
        report.kinds_drained = breakdown(pid)
        alive(server, counts, "after the drain")


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deep", action="store_true", help="1,000,000 UDP datagrams and 20,000 TCP connections")
    parser.add_argument("--datagrams", type=int, default=None, help="UDP datagrams (default 20,000; deep 10^6)")
    parser.add_argument("--tcp-connections", type=int, default=None, help="TCP connections (default 400)")
    parser.add_argument("--rate", type=float, default=4000.0, help="UDP datagrams per second to aim at")
    parser.add_argument("--probe-every", type=int, default=5000, help="datagrams between liveness probes")
    parser.add_argument("--drain-s", type=float, default=100.0,
                        help="wait at most this long for calls and transactions to drain (default: 64*T1 for "
                             "Timer L or the RTP timeout, 64*T1 for the unanswered BYE's Timer F, 36 s of slack)")
    parser.add_argument("--answer-byes", action="store_true",
                        help="answer the server's BYEs to the fuzz calls (a phone would); default: silent peer")
    parser.add_argument("--idle-s", type=float, default=60.0, help="measure RSS this long after the traffic")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--bursts", type=int, default=1,
                        help="bursts in a row on the same server (seeds SEED, SEED+1...), each drained; with 2 or "
                             "more the RSS after the last drain must stay within 5 %% of the baseline of the first")
    parser.add_argument("--snapshots-at", default="",
                        help="datagram counts (e.g. 150000,400000) at which the memory probe takes a snapshot "
                             "(CTI_SOAK_GC / CTI_SOAK_TRACEMALLOC); what grew between them is printed")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    args = parser.parse_args()
    datagrams = args.datagrams or (1_000_000 if args.deep else 20_000)
    tcp_connections = args.tcp_connections if args.tcp_connections is not None else (20_000 if args.deep else 400)
    trace_dir = memtrace.prepare(Path(tempfile.mkdtemp(prefix="cti-fuzz-trace-")))
    marks = sorted(int(n) for n in args.snapshots_at.split(",") if n.strip())
    taken: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cti-fuzz-") as tmp, \
            run_server(Path(tmp), "--log-level", "warning", "--loop", args.loop,
                       start_timeout=180.0 if trace_dir else 15.0) as server:  # tracemalloc slows start-up
        memtrace.snapshot(server.proc.pid, trace_dir, "before")
        print(f"server pid {server.proc.pid}, SIP port {server.sip_port}, HTTP port {server.http_port}; "
              f"{datagrams} UDP datagrams at up to {args.rate:.0f}/s, {tcp_connections} TCP connections, "
              f"seed {args.seed}", flush=True)
        reports: list[Report] = []
        for burst in range(args.bursts):
            if burst:
                print(f"burst {burst + 1} of {args.bursts} (seed {args.seed + burst})", flush=True)
            reports.append(fuzz(server, datagrams=datagrams, tcp_connections=tcp_connections, rate=args.rate,
                                probe_every=args.probe_every, drain_s=args.drain_s, idle_s=args.idle_s,
                                seed=args.seed + burst, answer_byes=args.answer_byes,
                                progress=lambda text: print(text, flush=True),
                                after_batch=lambda sent: _mark(server, trace_dir, marks, taken, sent)))
            if not reports[-1].ok or server.proc.poll() is not None:
                break
        if server.proc.poll() is None:
            memtrace.snapshot(server.proc.pid, trace_dir, "after")
        errors = [line for line in server.log_text().splitlines() if '"level": "error"' in line]
        for number, report in enumerate(reports, 1):
            if len(reports) > 1:
                print(f"-- burst {number}")
            for line in report.lines():
                print(line)
        print(f"error lines in the server log     {len(errors)}")
        for line in errors[:5]:
            print(f"  {line[:300]}")
        reused = _reused(reports)
    for first, second in zip(["before", *taken], [*taken, "after"], strict=True):
        if trace_dir is not None:
            print(f"-- memory from {first} to {second}")
        memtrace.report(trace_dir, first, second)
    return 0 if all(r.ok for r in reports) and reused else 1


def _mark(server: ServerProcess, trace_dir: Path | None, marks: list[int], taken: list[str], sent: int) -> None:
    """Take the probe's snapshot once the traffic has passed the next of ``marks`` (datagrams sent)."""
    while marks and sent >= marks[0]:
        name = f"at{marks.pop(0)}"
        if memtrace.snapshot(server.proc.pid, trace_dir, name):
            taken.append(name)


def _reused(reports: list[Report]) -> bool:
    """With several bursts: what the first left behind is reused by the next ones, so RSS after the last
    drain is within REUSE_SLACK of the baseline of the RSS after the first (a burst's memory is a
    high-water mark, not a leak). Prints the figures; True with one burst."""
    if len(reports) < 2 or reports[0].rss_drained is None or reports[-1].rss_drained is None:
        return True
    base, first, last = reports[0].rss_before, reports[0].rss_drained, reports[-1].rss_drained
    limit = first + REUSE_SLACK * base
    print(f"RSS after drain 1 -> after drain {len(reports)}  {first:.1f} -> {last:.1f} MB "
          f"({last - first:+.1f} MB; must stay under {limit:.1f} MB)")
    return last <= limit


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)

