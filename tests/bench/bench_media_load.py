"""Media load benchmark: concurrent calls whose audio crosses the node both ways, loss and round trip counted.

Run: ``python tests/bench/bench_media_load.py`` (not collected by pytest; about 8 minutes with the
defaults: the ladder 250, 500, 750, 1000 calls without recording, again with recording, then the
direct reference). ``--levels 100,200 --step-s 10 --modes relay`` for a short run.

* The node is ``cti serve --config tests/bench/load/load.yaml`` (number 200 queues at once to queue
  ``load``; 1000 agents) with its media ports moved to ``--rtp-ports`` and, in the ``recorded`` mode,
  ``media.record_calls`` and the queue's ``record`` on.
* The agents (as many as the highest level) are registered at ONE SIPp UAS (``load_agent_uas.xml
  -rtp_echo``, tests/support/loadagents.py) and made ready: it answers every offer (SDP PCMA, PCMU,
  telephone-event) and echoes the RTP the node relays to it.
* The carrier is tests/bench/media_carrier.py, in this process (uvloop when installed): per call an
  INVITE offering A-law only (``--law``; the agent UAS prefers A-law too, so both legs speak the same
  law), then one RTP packet every ``--ptime`` (20 ms: 50 packets/s each way per leg) until the
  BYE. Each packet carries its index; the echo comes back through the node.
* Per level: calls are added at ``--rate`` a second until the level is up, ``--settle-s`` later the
  measuring step starts and lasts ``--step-s``. Figures per step: loss at the caller by packet index
  (a packet not echoed within a second of the step's end counts as lost) and by RTP sequence number
  (over the whole run), echo round trip p50/p99/max, the node's CPU (whole process and event
  loop thread, % of one core, and per call), RSS, the carrier's own CPU, datagrams dropped by the
  kernel at the node's, the echo's and the carrier's sockets (``drops`` in /proc/net/udp), setup time
  of the level's new calls. After the ladder the calls are hung up and the node's relay counters
  (``cti_media_relay_packets_total`` on /metrics, added as each relay stops) are read.
* ``--reference``: the same ladder with the carrier calling the SIPp UAS directly (no node): what
  the load generator and the echo lose and add on their own, in the same session.

The level a node carries is the highest whose loss is below 0.1 % (``--max-loss``).
Exit status: 0 when every level of every mode stayed below ``--max-loss``, 1 otherwise, 2 when the
run could not be made (SIPp missing, agents not registered).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_callpath import agent_uas, cpu_seconds, parse_agents, read_metrics  # noqa: E402
from tests.bench.bench_soak import port_range  # noqa: E402
from tests.bench.media_carrier import Call, Carrier, Results, StepStats  # noqa: E402
from tests.support.loadagents import register_agents  # noqa: E402
from tests.support.memtrace import rss_mb  # noqa: E402
from tests.support.procs import run_server  # noqa: E402
from tests.support.sipp import HOST, Sipp, SippRunner, sipp_ready  # noqa: E402


def udp_drops(low: int, high: int, pid: int | None = None) -> int:
    """Datagrams the kernel dropped (receive buffer full) at 127.0.0.1 UDP sockets bound in [low, high]
    (and, with ``pid``, held by that process: other benchmarks on the host may use the same ports)."""
    inodes: set[str] | None = None
    if pid is not None:
        inodes = set()
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in fd_dir.iterdir() if fd_dir.exists() else ():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    total = 0
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return 0
    for line in lines:
        fields = line.split()
        addr, _, port = fields[1].partition(":")
        if addr == "0100007F" and low <= int(port, 16) <= high and (inodes is None or fields[9] in inodes):
            total += int(fields[-1])
    return total


@dataclass
class Mark:
    """Readings at one instant."""

    t: float
    cpu: float
    loop_cpu: float
    rss: float
    own_cpu: float
    node_drops: int
    echo_drops: int
    carrier_drops: int


@dataclass
class Level:
    """One measured step."""

    calls: int
    live: int
    step: int
    start: Mark
    end: Mark
    setup: list[float] = field(default_factory=list)


@dataclass
class Run:
    """One ladder: a mode's levels and what followed them."""

    mode: str
    levels: list[Level]
    carrier: Carrier
    rss_before: float | None
    rss_after: float | None
    relay_metrics: dict[str, float]
    results: Results


class Probe:
    """Reads the node (if any), the carrier's RTP worker and the sockets around them."""

    def __init__(self, pid: int | None, rtp_ports: tuple[int, int], echo_ports: list[int]) -> None:
        self.pid = pid
        self.rtp_ports = rtp_ports
        self.echo_ports = echo_ports
        self.worker = 0

    def mark(self) -> Mark:
        pid = self.pid
        return Mark(time.monotonic(), cpu_seconds(pid) if pid else 0.0, cpu_seconds(pid, pid) if pid else 0.0,
                    rss_mb(pid) if pid else 0.0, time.process_time() + _cpu(self.worker),
                    udp_drops(*self.rtp_ports, pid) if pid else 0,
                    sum(udp_drops(port, port) for port in self.echo_ports), udp_drops(1024, 65535, self.worker))


def _cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid) if pid else 0.0
    except OSError:
        return 0.0


async def ladder(args: argparse.Namespace, target: list[tuple[str, int]], probe: Probe, mode: str
                 ) -> tuple[list[Level], Carrier, Results]:
    carrier = Carrier(target, args.dialled, law=8 if args.law == "pcma" else 0, ptime=args.ptime / 1000)
    await carrier.start()
    probe.worker = carrier.worker_pid
    levels: list[Level] = []
    placing: set[asyncio.Task[Call]] = set()
    loop = asyncio.get_running_loop()
    for level in args.levels:
        first_setup = len(carrier.setup_times)
        while len(carrier.live) + len(placing) < level:
            task = asyncio.create_task(carrier.place_call(), name="carrier-call")
            placing.add(task)
            task.add_done_callback(placing.discard)
            await asyncio.sleep(1 / args.rate)
        if placing:
            await asyncio.wait(set(placing), timeout=90)
        await asyncio.sleep(args.settle_s)
        step = carrier.measure()
        start = await loop.run_in_executor(None, probe.mark)
        await asyncio.sleep(args.step_s)
        carrier.unmeasured()
        end = await loop.run_in_executor(None, probe.mark)
        levels.append(Level(level, len(carrier.live), step, start, end, carrier.setup_times[first_setup:]))
        await asyncio.sleep(1.0)  # echoes of the step's last packets; later than that counts as lost
        carrier.settle(step)
        print(f"  [{mode}] {level} calls ({len(carrier.live)} up) measured", flush=True)
    carrier.pause()
    await asyncio.sleep(1.0)  # the last echoes come back
    hangups = []
    for call in list(carrier.live):
        hangups.append(asyncio.create_task(carrier.hang_up(call), name="carrier-bye"))
        await asyncio.sleep(1 / max(args.rate, 100))
    await asyncio.gather(*hangups)
    results = await carrier.finish()
    for level in levels:
        print(f"  [{mode}] {level.calls} calls: " + level_text(level, results.steps[level.step]), flush=True)
    return levels, carrier, results


def loss_pct(stats: StepStats) -> float:
    return 100.0 * stats.lost / stats.sent if stats.sent else float("nan")


def level_text(level: Level, stats: StepStats) -> str:
    s, e = level.start, level.end
    span = e.t - s.t
    cpu = (e.cpu - s.cpu) / span * 100
    loop = (e.loop_cpu - s.loop_cpu) / span * 100
    setup = sorted(level.setup)
    return (f"sent {stats.sent} (skipped {stats.skipped}), lost {stats.lost} ({loss_pct(stats):.3f} %), RTT p50 "
            f"{fmt(stats.percentile(0.5))} p99 {fmt(stats.percentile(0.99))} max {fmt(stats.highest())} ms, node CPU "
            f"{cpu:.0f} % (loop {loop:.0f} %, {cpu / max(level.live, 1):.3f} % per call), RSS {e.rss:.0f} MB, "
            f"carrier CPU {(e.own_cpu - s.own_cpu) / span * 100:.0f} %, drops node {e.node_drops - s.node_drops} "
            f"echo {e.echo_drops - s.echo_drops} carrier {e.carrier_drops - s.carrier_drops}, setup p99 "
            f"{fmt(setup[min(len(setup) - 1, int(0.99 * len(setup)))] * 1000 if setup else None)} ms")


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def node_config(source: Path, rtp_ports: tuple[int, int], record: bool, workdir: Path,
                max_loop_lag_ms: float | None = None) -> Path:
    """``source`` with the media port range and recording set for this run (and the overload bound,
    ``limits.max_loop_lag_ms``, when given), written to ``workdir``."""
    import yaml

    data = yaml.safe_load(source.read_text())
    for key in ("flows_dir", "prompts_dir"):  # relative to the config file: make them absolute
        if key in data:
            data[key] = str((source.parent / data[key]).resolve())
    data.setdefault("media", {}).update(rtp_port_min=rtp_ports[0], rtp_port_max=rtp_ports[1], record_calls=record)
    for queue in data.get("queues", []):
        queue["record"] = record
    if max_loop_lag_ms is not None:
        data.setdefault("limits", {})["max_loop_lag_ms"] = max_loop_lag_ms
    path = workdir / "media_load.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_uvloop(coro_factory):  # type: ignore[no-untyped-def]
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro_factory())
    return uvloop.run(coro_factory())


@contextlib.contextmanager
def echoes(runner: SippRunner, count: int, name: str) -> Iterator[list[Sipp]]:
    """``count`` SIPp agent UASes with ``-rtp_echo`` (one echo thread and socket each)."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(agent_uas(runner, f"{name}{k}", argparse.Namespace(media=True, budget_s=1800)))
               for k in range(count)]


def node_run(args: argparse.Namespace, work: Path, mode: str) -> Run | None:
    runner = SippRunner(work / f"sipp-{mode}")
    server_dir = work / f"server-{mode}"
    server_dir.mkdir()
    agents = parse_agents(args.agents)[:max(args.levels)]
    try:
        config = node_config(args.config, args.rtp_ports, mode == "recorded", server_dir, args.max_loop_lag_ms)
        with run_server(server_dir, config=config) as server, echoes(runner, args.echoes, "agents") as uases:
            t0 = time.monotonic()
            try:
                for k, uas in enumerate(uases):
                    register_agents(runner, server.sip_port, agents[k::len(uases)], uas.port, password=args.password,
                                    http_port=server.http_port)
            except RuntimeError as exc:
                print(exc, file=sys.stderr)
                return None
            print(f"[{mode}] server pid {server.proc.pid}; {len(agents)} agents registered and ready at "
                  f"{len(uases)} echoing UASes in {time.monotonic() - t0:.0f} s; load average "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
            pid = server.proc.pid
            rss_before = rss_mb(pid)
            probe = Probe(pid, args.rtp_ports, [uas.media_port for uas in uases])
            levels, carrier, results = run_uvloop(lambda: ladder(args, [(HOST, server.sip_port)], probe, mode))
            time.sleep(3)  # the node ends the calls and folds their relays' counters
            metrics = read_metrics(server.http_port)
            relay = {kind: metrics.get(f'cti_media_relay_packets_total{{kind="{kind}"}}', float("nan"))
                     for kind in ("received", "forwarded", "dropped", "transcoded", "expected", "lost")}
            return Run(mode, levels, carrier, rss_before, rss_mb(pid), relay, results)
    finally:
        runner.stop_all()


def reference_run(args: argparse.Namespace, work: Path) -> Run:
    """The ladder from the carrier straight to the echoing UASes (each call to one of them, in turn)."""
    runner = SippRunner(work / "sipp-direct")
    try:
        with echoes(runner, args.echoes, "direct") as uases:
            probe = Probe(None, args.rtp_ports, [uas.media_port for uas in uases])
            targets = [(HOST, uas.port) for uas in uases]
            levels, carrier, results = run_uvloop(lambda: ladder(args, targets, probe, "direct"))
            return Run("direct", levels, carrier, None, None, {}, results)
    finally:
        runner.stop_all()


def report(runs: list[Run], args: argparse.Namespace) -> int:
    ok = True
    print()
    print(f"{'mode':>9} {'calls':>6} {'up':>5} {'sent':>9} {'skipped':>7} {'lost':>6} {'loss %':>7} {'RTT p50':>8} "
          f"{'p99':>6} {'max ms':>7} {'CPU %':>6} {'loop %':>7} {'%/call':>7} {'RSS MB':>7} {'carrier %':>9} "
          f"{'drops n/e/c':>14} {'setup p99':>9}")
    for run in runs:
        node = run.mode != "direct"
        for level in run.levels:
            s, e = level.start, level.end
            span = e.t - s.t
            stats = run.results.steps[level.step]
            loss = loss_pct(stats)
            ok = ok and loss < args.max_loss
            cpu = (e.cpu - s.cpu) / span * 100 if node else float("nan")
            loop = (e.loop_cpu - s.loop_cpu) / span * 100 if node else float("nan")
            setup = sorted(level.setup)
            p99 = setup[min(len(setup) - 1, int(0.99 * len(setup)))] * 1000 if setup else None
            drops = f"{e.node_drops - s.node_drops}/{e.echo_drops - s.echo_drops}/{e.carrier_drops - s.carrier_drops}"
            print(f"{run.mode:>9} {level.calls:>6} {level.live:>5} {stats.sent:>9} {stats.skipped:>7} {stats.lost:>6} "
                  f"{loss:>7.3f} {fmt(stats.percentile(0.5)):>8} {fmt(stats.percentile(0.99)):>6} "
                  f"{fmt(stats.highest()):>7} {cpu:>6.0f} {loop:>7.0f} {cpu / max(level.live, 1):>7.3f} "
                  f"{e.rss if node else float('nan'):>7.0f} {(e.own_cpu - s.own_cpu) / span * 100:>9.0f} "
                  f"{drops:>14} {fmt(p99, '.0f'):>9}")
    print()
    for run in runs:
        best = [lv.calls for lv in run.levels if loss_pct(run.results.steps[lv.step]) < args.max_loss]
        failed = sum(run.carrier.failed.values())
        setups = run.carrier.setup_times
        r = run.results
        print(f"{run.mode}: carries {max(best, default=0)} concurrent calls at < {args.max_loss:g} % loss; "
              f"calls placed {len(run.carrier.calls)}, failed {failed} {dict(run.carrier.failed) or ''}; "
              f"setup median {statistics.median(setups) * 1000 if setups else float('nan'):.0f} ms; RTP sent "
              f"{r.sent}, echoes received {r.received}; echoed stream by sequence number: {r.seq_lost} lost of "
              f"{r.seq_expected}")
        if run.rss_before is not None:
            print(f"  node RSS {run.rss_before:.0f} MB before the calls, {run.rss_after:.0f} MB after they ended; "
                  f"relay counters on /metrics: " + ", ".join(f"{k} {v:.0f}" for k, v in run.relay_metrics.items()))
        ok = ok and failed == 0
    print(f"load average now {os.getloadavg()[0]:.2f}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "tests" / "bench" / "load" / "load.yaml")
    parser.add_argument("--dialled", default="200", help="number the carrier dials (must queue at once)")
    parser.add_argument("--agents", default="3001-4000", help="agent ids (at least the highest level)")
    parser.add_argument("--password", default="load{id}", help="SIP password format, {id} = agent id")
    parser.add_argument("--levels", default="250,500,750,1000",
                        type=lambda text: [int(x) for x in text.split(",")], help="concurrent calls per step")
    parser.add_argument("--modes", default="relay,recorded", help="relay (no recording) and/or recorded")
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the ladder carrier -> SIPp echo directly (no node)")
    parser.add_argument("--step-s", type=float, default=20.0, help="seconds measured per level")
    parser.add_argument("--settle-s", type=float, default=3.0, help="seconds between a level's last call and "
                        "the measurement")
    parser.add_argument("--rate", type=float, default=50.0, help="new calls per second while ramping")
    parser.add_argument("--ptime", type=float, default=20.0, help="ms of audio per packet")
    parser.add_argument("--law", choices=("pcma", "pcmu"), default="pcma",
                        help="the law the carrier offers (the agent UAS prefers pcma: pcmu makes the node transcode)")
    parser.add_argument("--max-loss", type=float, default=0.1, help="loss limit in %% for a level to count")
    parser.add_argument("--echoes", type=int, default=4,
                        help="SIPp UASes the agents are spread over (one echo socket and thread each)")
    parser.add_argument("--max-loop-lag-ms", type=float, default=None,
                        help="limits.max_loop_lag_ms for the node (the load config has 0: no overload shedding); "
                             "with it, calls past what the node carries are refused 503 and counted as failed")
    parser.add_argument("--rtp-ports", type=port_range, default=(61000, 65499),
                        help="the node's media ports (default: above the kernel's ephemeral range and the ranges of "
                             "the other benchmarks and tests; 4 ports a call)")
    parser.add_argument("--server-root", type=Path, default=ROOT,
                        help="run the node from this source tree (e.g. an export of an older commit, for a "
                             "before/after comparison in the same session); the benchmark itself runs from this one")
    parser.add_argument("--only-reference", action="store_true", help="run the direct reference alone")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, SIPp files)")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not set(modes) <= {"relay", "recorded"} or not args.levels or min(args.levels) < 1:
        parser.error("--modes takes relay,recorded; --levels positive numbers")
    if len(parse_agents(args.agents)) < max(args.levels):
        parser.error("--agents must name at least as many agents as the highest level")
    if not sipp_ready():
        print("sipp (Debian sip-tester) is not installed", file=sys.stderr)
        return 2
    os.chdir(args.server_root)  # `python -m cti` imports the node from the working directory first
    work = Path(tempfile.mkdtemp(prefix="bench_media_load_"))
    print(f"levels {args.levels}, {args.step_s:g} s each, ptime {args.ptime:g} ms, {args.law}; node from "
          f"{args.server_root}; load average {os.getloadavg()[0]:.2f} (2 cores shared)", flush=True)
    runs: list[Run] = []
    try:
        for mode in [] if args.only_reference else modes:
            run = node_run(args, work, mode)
            if run is None:
                return 2
            runs.append(run)
        if args.reference:
            runs.append(reference_run(args, work))
        return report(runs, args)
    finally:
        if args.keep:
            print(f"logs: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
