"""Soak benchmark: ~200 concurrent calls with media through one node for 10 minutes; RSS growth and failed calls.

Run: ``python tests/bench/bench_soak.py`` (600 s of calls plus set-up and drain, about 12 minutes;
not collected by pytest). ``--duration 120 --calls 50`` for a short run.

* The server is ``cti serve --config tests/bench/load/load.yaml`` on free ports (tests/support/procs):
  number 200 queues at once (no prompt) to queue ``load``, 1000 agents, wrap-up 0.
* ``--agents`` (3001-3260 by default, more than ``--calls``) are registered at ONE SIPp UAS
  (``load_agent_uas.xml`` with ``-rtp_echo``) and logged in ready (tests/support/loadagents.py, the
  registration is refreshed every ``--reregister-s``); the UAS answers every offer and echoes the
  RTP the node relays to it.
* The carrier (tests/support/scenarios/soak_carrier.xml) keeps ``--calls`` calls up (SIPp ``-l``,
  new calls at most ``--rate`` a second); each call plays ``g711a.pcap`` (A-law, 30 ms packets)
  towards the node for 35-56 s and hangs up, so calls turn over (about 4 a second at 200). Media
  crosses the node both ways: carrier -> node -> agent UAS (echo) -> node -> carrier.
* Every ``--sample-s`` (60 s) a line: server RSS (VmRSS), growth against the baseline, live calls
  (``cti_calls_active`` and the carrier's own count), calls attempted / completed / failed, live SIP
  transactions (``cti_sip_transactions``), the server's CPU (whole process and event-loop thread, %
  of one core, over the interval), and the RTP datagrams the node sent back towards the carrier's
  media port (the kernel's count of datagrams that socket received: SIPp does not read it, so it
  is ``drops`` of /proc/net/udp plus what waits in the buffer; a lower bound).
  The baseline is the RSS at the end of the warm-up (``--warmup-s``, the first minute).
* At ``--duration`` the carrier stops placing calls (SIGUSR1) and its calls end; the final lines
  give the RSS at the end of the traffic (calls still up, comparable with the baseline) and after
  the drain, and the totals.
* ``CTI_SOAK_GC=1`` counts the server's live objects by type (after a full collection) at the baseline,
  at the middle of the run and at the end; ``CTI_SOAK_TRACEMALLOC=N`` also takes tracemalloc snapshots
  (N frames) there (tests/support/memtrace.py). The types and source lines that grew are printed for
  each half. Both slow the server down (a collection and a heap walk per snapshot; tracemalloc on every
  allocation): use them to find what grows, not for the figures.

Exit status: 0 when no call failed and RSS grew less than ``--max-growth`` (5 %), 1 otherwise, 2 when
the run could not be made (SIPp missing, agents not registered).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_callpath import agent_uas, cpu_seconds, parse_agents, read_metrics  # noqa: E402
from tests.support import memtrace  # noqa: E402
from tests.support.loadagents import REGISTRATION_S, register_agents  # noqa: E402
from tests.support.memtrace import rss_mb  # noqa: E402
from tests.support.procs import ServerProcess, run_server  # noqa: E402
from tests.support.sipp import HOST, Sipp, SippRunner, SippStats, read_stats, sipp_ready  # noqa: E402

CARRIER = ROOT / "tests" / "support" / "scenarios" / "soak_carrier.xml"
LONGEST_CALL_S = 8 * 7.05  # soak_carrier.xml: at most 8 plays of the 7.05 s pcap


# ------------------------------------------------------------------------------------------- readings
def carrier_counts(sipp: Sipp) -> dict[str, int]:
    """The carrier's cumulative counters from its -trace_stat file (last line; zeros before the first)."""
    stats = read_stats(sipp.workdir)
    row = _last_stat_row(sipp.workdir)
    return {"attempted": int(row.get("OutgoingCall(C)", 0) or 0), "completed": stats.successful,
            "failed": stats.failed, "current": int(row.get("CurrentCall", 0) or 0)}


def _last_stat_row(workdir: Path) -> dict[str, str]:
    files = sorted(workdir.glob("*_.csv"))
    if not files:
        return {}
    lines = files[-1].read_text(errors="replace").splitlines()
    if len(lines) < 2:
        return {}
    return dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))


def udp_received(port: int) -> int | None:
    """Datagrams received so far by the UDP socket bound to ``HOST:port`` that nobody reads.

    The socket's ``drops`` (its buffer is full) plus what waits in the buffer (``rx_queue`` bytes
    over the ~1 KiB the kernel charges per small datagram): a lower bound of what arrived.
    """
    wanted = f"0100007F:{port:04X}"
    try:
        text = Path("/proc/net/udp").read_text()
    except OSError:
        return None
    for line in text.splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted:
            queued = int(fields[4].split(":")[1], 16)
            return int(fields[-1]) + queued // 1024
    return None


@dataclass
class Sample:
    """One reading of the server and the carrier."""

    t: float
    rss: float
    calls_active: int | None
    transactions: int | None
    cpu: float
    loop_cpu: float
    carrier: dict[str, int]
    rtp_back: int | None


def _cpu(pid: int, thread: int | None = None) -> float:
    try:
        return cpu_seconds(pid, thread)
    except OSError:  # the server is gone
        return float("nan")


def sample(server: ServerProcess, carrier: Sipp, media_port: int, started: float) -> Sample:
    pid = server.proc.pid
    metrics = read_metrics(server.http_port)
    active = metrics.get("cti_calls_active")
    transactions = metrics.get("cti_sip_transactions")
    return Sample(time.monotonic() - started, rss_mb(pid), None if active is None else int(active),
                  None if transactions is None else int(transactions), _cpu(pid), _cpu(pid, pid),
                  carrier_counts(carrier), udp_received(media_port))


def fmt(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


HEADER = (f"{'t s':>6} {'RSS MB':>7} {'growth %':>9} {'live calls':>10} {'carrier':>8} {'attempted':>10} "
          f"{'completed':>10} {'failed':>7} {'SIP tx':>7} {'CPU %':>6} {'loop %':>7} {'RTP back/s':>11}")


def line(now: Sample, before: Sample | None, baseline: float | None) -> str:
    span = now.t - before.t if before else 0.0
    cpu = (now.cpu - before.cpu) / span * 100 if before and span > 0 else None
    loop = (now.loop_cpu - before.loop_cpu) / span * 100 if before and span > 0 else None
    rtp = ((now.rtp_back - before.rtp_back) / span if before and span > 0 and now.rtp_back is not None
           and before.rtp_back is not None else None)
    growth = (now.rss - baseline) / baseline * 100 if baseline else None
    c = now.carrier
    return (f"{now.t:>6.0f} {now.rss:>7.1f} {fmt(growth, '+.2f'):>9} {fmt(now.calls_active):>10} "
            f"{c['current']:>8} {c['attempted']:>10} {c['completed']:>10} {c['failed']:>7} "
            f"{fmt(now.transactions):>7} {fmt(cpu):>6} {fmt(loop):>7} {fmt(rtp):>11}")


# -------------------------------------------------------------------------------------------- the run
class Refresher:
    """Calls ``register`` every ``every`` seconds in a thread (phones refreshing their bindings)."""

    def __init__(self, every: float, register: Callable[[], None]) -> None:
        self.every = every
        self.register = register
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="re-register", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.register()
            except RuntimeError as exc:
                self.errors.append(str(exc))

    def __enter__(self) -> Refresher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


@dataclass
class Traffic:
    """The readings of one run: a sample per interval, the one taken as the baseline, the end."""

    started: float  # time.monotonic() when the carrier started
    samples: list[Sample]
    baseline: Sample | None
    middle: Sample | None  # the first sample past the middle of the measured span
    stopped_early: bool


def run_traffic(args: argparse.Namespace, server: ServerProcess, carrier: Sipp, trace_dir: Path | None) -> Traffic:
    """Sample every ``--sample-s`` (the first at the warm-up's end if sooner) until ``--duration``."""
    started = time.monotonic()
    samples: list[Sample] = []
    baseline: Sample | None = None
    middle: Sample | None = None
    marks = sorted({*(t for t in _range(args.sample_s, args.duration, args.sample_s)), args.warmup_s,
                    args.duration})
    print(HEADER, flush=True)
    for mark in marks:
        time.sleep(max(0.0, started + mark - time.monotonic()))
        if server.proc.poll() is not None or carrier.proc.poll() is not None:
            print(f"stopped early: server exit code {server.proc.poll()}, carrier exit code {carrier.proc.poll()}")
            return Traffic(started, samples, baseline, middle, True)
        now = sample(server, carrier, carrier.media_port, started)
        note = ""
        if baseline is None and mark >= args.warmup_s:
            baseline, note = now, "  <- baseline (end of the warm-up)"
            memtrace.snapshot(server.proc.pid, trace_dir, "baseline")
        elif baseline is not None and middle is None and mark >= (args.warmup_s + args.duration) / 2:
            middle = now
            memtrace.snapshot(server.proc.pid, trace_dir, "middle")
        print(line(now, samples[-1] if samples else None, baseline.rss if baseline else None) + note, flush=True)
        samples.append(now)
    return Traffic(started, samples, baseline, middle, False)


def _range(start: float, stop: float, step: float) -> list[float]:
    marks, t = [], start
    while t < stop:
        marks.append(t)
        t += step
    return marks


def soak_config(source: Path, rtp_ports: tuple[int, int], workdir: Path) -> Path:
    """``source`` with ``media.rtp_port_min/max = rtp_ports``, written to ``workdir``.

    Other tests on this host run servers with the load config's range (20000-39999) at the same
    time; a node whose next ports are all held by another process fails the call (see
    docs/performance.md, Soak), so the soak's node gets a range of its own.
    """
    import yaml

    data = yaml.safe_load(source.read_text())
    for key in ("flows_dir", "prompts_dir"):  # relative to the config file: make them absolute
        if key in data:
            data[key] = str((source.parent / data[key]).resolve())
    data.setdefault("media", {}).update(rtp_port_min=rtp_ports[0], rtp_port_max=rtp_ports[1])
    path = workdir / "soak.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def soak(args: argparse.Namespace, work: Path) -> int:
    runner = SippRunner(work / "sipp")
    agents = parse_agents(args.agents)
    server_dir = work / "server"
    server_dir.mkdir()
    trace_dir = memtrace.prepare(server_dir)
    uas_args = argparse.Namespace(media=True, budget_s=args.duration + 3 * LONGEST_CALL_S + 600)
    try:
        config = soak_config(args.config, args.rtp_ports, server_dir)
        with run_server(server_dir, config=config) as server, agent_uas(runner, "agents", uas_args) as uas:
            print(f"server pid {server.proc.pid}, SIP port {server.sip_port}, HTTP port {server.http_port}; "
                  f"agent UAS port {uas.port}", flush=True)

            def register(login: bool = False) -> None:
                register_agents(runner, server.sip_port, agents, uas.port, password=args.password,
                                http_port=server.http_port if login else None)

            t0 = time.monotonic()
            try:
                register(login=True)
            except RuntimeError as exc:
                print(exc, file=sys.stderr)
                return 2
            print(f"{len(agents)} agents registered and ready in {time.monotonic() - t0:.1f} s", flush=True)
            with Refresher(args.reregister_s, register) as refresher:
                carrier = runner.start(
                    "carrier", str(CARRIER), "-s", args.dialled, "-l", str(args.calls), "-r", str(args.rate),
                    "-trace_stat", "-fd", "5", remote=f"{HOST}:{server.sip_port}", calls=10_000_000,
                    timeout=args.duration + LONGEST_CALL_S + 120, trace_msg=False, quiet=True)
                print(f"carrier: {args.calls} concurrent calls (new ones at most {args.rate:g}/s) for "
                      f"{args.duration:.0f} s; warm-up {args.warmup_s:.0f} s", flush=True)
                traffic = run_traffic(args, server, carrier, trace_dir)
                if traffic.stopped_early:
                    carrier.stop()
                    rc = carrier.wait(5)
                else:
                    memtrace.snapshot(server.proc.pid, trace_dir, "end")
                    carrier.proc.send_signal(signal.SIGUSR1)  # no new calls; SIPp exits once its calls have ended
                    rc = carrier.wait(LONGEST_CALL_S + 60)
                time.sleep(1.5)  # the UAS writes its stat line once a second
            drained = sample(server, carrier, carrier.media_port, traffic.started)
            return summary(args, traffic, drained, carrier_counts(carrier), read_stats(uas.workdir), rc,
                           server.proc.poll() is None, refresher.errors, trace_dir)
    finally:
        runner.stop_all()


def summary(args: argparse.Namespace, traffic: Traffic, drained: Sample, counts: dict[str, int],
            agent_side: SippStats, carrier_rc: int, alive: bool, register_errors: list[str],
            trace_dir: Path | None) -> int:
    """Print the totals; the exit status (0: no failed call and growth under the limit)."""
    base, samples = traffic.baseline, traffic.samples
    end = samples[-1] if samples else drained
    print(line(drained, end, base.rss if base else None) + "  <- after the drain")
    print()
    unfinished = counts["attempted"] - counts["completed"] - counts["failed"]
    failed = counts["failed"] + agent_side.failed + max(0, unfinished) + int(traffic.stopped_early) + int(not alive)
    print(f"calls attempted {counts['attempted']}, completed {counts['completed']}, failed {counts['failed']}, "
          f"unfinished {unfinished} (carrier exit code {carrier_rc})")
    print(f"agent legs answered {agent_side.incoming}, failed on the agent side {agent_side.failed}")
    live = [s.calls_active for s in samples if base and s.t >= base.t and s.calls_active is not None]
    print(f"live calls from the baseline on: {min(live, default=0)}-{max(live, default=0)} (server), "
          f"{min((s.carrier['current'] for s in samples if base and s.t >= base.t), default=0)}-"
          f"{max((s.carrier['current'] for s in samples), default=0)} (carrier)")
    growth = (end.rss - base.rss) / base.rss * 100 if base else float("nan")
    if base:
        span = end.t - base.t
        cpu = (end.cpu - base.cpu) / span * 100 if span > 0 else float("nan")
        loop = (end.loop_cpu - base.loop_cpu) / span * 100 if span > 0 else float("nan")
        print(f"RSS: baseline {base.rss:.1f} MB at {base.t:.0f} s, end of traffic {end.rss:.1f} MB at {end.t:.0f} s "
              f"(growth {growth:+.2f} %), after the drain {drained.rss:.1f} MB")
        mid = traffic.middle
        if mid is not None and end.t > mid.t:
            print(f"RSS in the second half: {mid.rss:.1f} MB at {mid.t:.0f} s -> {end.rss:.1f} MB at {end.t:.0f} s "
                  f"({(end.rss - mid.rss) / mid.rss * 100:+.2f} %, {(end.rss - mid.rss) / (end.t - mid.t) * 60:+.2f} "
                  f"MB/min)")
        print(f"server CPU from the baseline to the end: {cpu:.0f} % of one core (event-loop thread {loop:.0f} %); "
              f"{drained.cpu:.0f} CPU s in all")
        if end.rtp_back is not None and base.rtp_back is not None:
            print(f"RTP datagrams relayed back to the carrier: >= {end.rtp_back - base.rtp_back} from the baseline "
                  f"to the end ({(end.rtp_back - base.rtp_back) / span:.0f}/s), >= {end.rtp_back} in all "
                  f"(/metrics has no media packet counter)")
    print(f"live SIP transactions: {fmt(end.transactions)} at the end of traffic, {fmt(drained.transactions)} "
          f"after the drain")
    if register_errors:
        print(f"re-registration errors: {register_errors}")
    if not alive:
        print("the server is no longer running")
    memtrace.report(trace_dir, "baseline", "middle")
    memtrace.report(trace_dir, "middle", "end")
    ok = failed == 0 and growth < args.max_growth
    print(f"{'PASS' if ok else 'FAIL'}: failed calls {failed} (must be 0), RSS growth {growth:+.2f} % "
          f"(must be < {args.max_growth:g} %)")
    return 0 if ok else 1


def port_range(text: str) -> tuple[int, int]:
    """``LOW-HIGH`` as two ports (argparse type)."""
    low, _, high = text.partition("-")
    if not (low.isdigit() and high.isdigit() and 1024 <= int(low) < int(high) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port range like 40000-49999")
    return int(low), int(high)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "tests" / "bench" / "load" / "load.yaml")
    parser.add_argument("--dialled", default="200", help="number the carrier dials (must queue at once)")
    parser.add_argument("--agents", default="3001-3260", help="agent ids (more than --calls)")
    parser.add_argument("--password", default="load{id}", help="SIP password format, {id} = agent id")
    parser.add_argument("--calls", type=int, default=200, help="concurrent calls to keep up")
    parser.add_argument("--rate", type=float, default=10.0, help="new calls per second at most")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of calls")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="RSS baseline taken after this")
    parser.add_argument("--sample-s", type=float, default=60.0, help="seconds between lines")
    parser.add_argument("--reregister-s", type=float, default=REGISTRATION_S * 0.75,
                        help="refresh the agents' registrations this often")
    parser.add_argument("--max-growth", type=float, default=5.0, help="RSS growth limit in %%")
    parser.add_argument("--rtp-ports", type=port_range, default=(40000, 49999),
                        help="the node's media port range, LOW-HIGH (default 40000-49999: outside the ranges "
                             "of the test configs that may run at the same time)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, SIPp files)")
    args = parser.parse_args()
    if args.calls < 1 or args.rate <= 0 or args.duration <= args.warmup_s or args.sample_s <= 0:
        parser.error("need --calls >= 1, --rate > 0, --sample-s > 0 and --duration > --warmup-s")
    if len(parse_agents(args.agents)) < args.calls:
        parser.error("--agents must name at least --calls agents")
    if not sipp_ready():
        print("sipp (Debian sip-tester) is not installed", file=sys.stderr)
        return 2
    os.chdir(ROOT)
    work = Path(tempfile.mkdtemp(prefix="bench_soak_"))
    try:
        return soak(args, work)
    finally:
        if args.keep:
            print(f"logs: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
