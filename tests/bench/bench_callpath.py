"""Call-path load benchmark: SIPp carrier -> `cti serve` -> SIPp agents, against SIPp -> SIPp directly.

Run: ``python tests/bench/bench_callpath.py --config LOAD.yaml --dialled 200 --agents 1001-1200``
(not collected by pytest; prints a table; bounded by ``--budget-s``, 280 s by default).

* The server is started with ``--config`` (``--demo`` without one) on free ports. The config must
  route ``--dialled`` straight to a queue (no IVR input) and define the ``--agents`` with SIP
  passwords ``--password`` (a format string, ``demo{id}`` by default) and enough of them for the
  load: a call holds an agent for about ``--hold-ms``, so rate R needs about R x hold agents.
* All agents are served by ONE SIPp UAS (``load_agent_uas.xml``, unlimited calls): each agent is
  registered with ``agent_register.xml`` with its Contact pointing at that UAS's port, then logged
  in and made ready through the admin API (tests/support/sipp.agent_login_ready).
* The carrier (``load_carrier.xml``) calls at a fixed rate for ``--step-s`` seconds
  (``-r RATE -m RATE*STEP``), each call held ``--hold-ms``. Rates step up through ``--rates`` and
  stop at the first step with a failed call or fewer agent legs than answered calls. Call-setup
  time (INVITE -> 200, SIPp's rtd "setup", ms resolution) comes from ``-trace_rtt``; counts come
  from ``-trace_stat``.
* Per step the server's CPU time (user + system, /proc) divided by the calls offered gives
  "cpu ms/call" (the cost figure to compare between versions; it falls as the rate rises, since
  more work is done per wake-up), "loop ms/call" the same for the event-loop thread alone (the
  one that limits the rate; the rest is the store's driver thread), and ``cti_calls_active``
  polled from /metrics gives the peak of live calls (each with its media relayed). "resent" and
  "rx again" are the server's SIP retransmissions over the step (``cti_sip_retransmissions_total``):
  messages it sent again (its timers fired before the peer's answer was read, or it answered a
  peer's repeat) and repeats it received. Both are 0 on a node that keeps up.
* The same ladder is run SIPp -> SIPp directly (``load_carrier`` against ``load_agent_uas``, no
  server) in the same run, and the ratio of the highest clean rates is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.procs import ServerProcess, run_server  # noqa: E402
from tests.support.sipp import HOST, Sipp, SippRunner, agent_login_ready, read_stats, sipp_ready  # noqa: E402


@dataclass
class Step:
    target: str
    rate: int
    offered: int
    successful: int
    failed: int
    agent_legs: int
    p50: float | None
    p99: float | None
    worst: float | None
    seconds: float
    cpu_ms_per_call: float | None = None
    loop_ms_per_call: float | None = None
    peak_active: int | None = None
    resent: int | None = None
    received_again: int | None = None

    @property
    def clean(self) -> bool:
        return self.failed == 0 and self.successful == self.offered and self.agent_legs >= self.successful


def parse_agents(text: str) -> list[str]:
    agents: list[str] = []
    for part in text.split(","):
        if "-" in part:
            first, last = part.split("-", 1)
            agents += [str(n) for n in range(int(first), int(last) + 1)]
        elif part:
            agents.append(part)
    return agents


def step_cost(args: argparse.Namespace) -> float:
    return float(args.step_s + args.hold_ms / 1000 + 4)


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time so far of a process, or of one of its threads (Linux /proc)."""
    path = Path(f"/proc/{pid}/task/{thread}/stat") if thread else Path(f"/proc/{pid}/stat")
    fields = path.read_text().rsplit(")", 1)[1].split()
    return float(int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_metrics(http_port: int) -> dict[str, float]:
    """The server's /metrics samples by name with labels (empty if it cannot be read)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    return {name: float(value) for name, value in re.findall(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


def active_calls(http_port: int) -> int | None:
    """``cti_calls_active`` from the server's /metrics (None if it cannot be read)."""
    value = read_metrics(http_port).get("cti_calls_active")
    return None if value is None else int(value)


class Watch:
    """While a step runs, polls the server's live-call gauge twice a second; keeps the peak."""

    def __init__(self, server: ServerProcess | None) -> None:
        self.server = server
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu0 = cpu_seconds(server.proc.pid) if server else 0.0
        self._loop0 = cpu_seconds(server.proc.pid, server.proc.pid) if server else 0.0
        self._metrics0 = read_metrics(server.http_port) if server else {}
        self.retransmissions: tuple[int, int] | None = None

    def _run(self) -> None:
        assert self.server is not None
        while not self._stop.wait(0.5):
            now = active_calls(self.server.http_port)
            if now is not None:
                self.peak = max(self.peak or 0, now)

    def __enter__(self) -> Watch:
        if self.server is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.server is not None:
            self._thread.join()
            end = read_metrics(self.server.http_port)
            keys = ('cti_sip_retransmissions_total{direction="sent"}',
                    'cti_sip_retransmissions_total{direction="received"}')
            if all(k in end and k in self._metrics0 for k in keys):
                sent, received = (int(end[k] - self._metrics0[k]) for k in keys)
                self.retransmissions = sent, received

    def cpu_used(self) -> tuple[float, float] | None:
        """CPU seconds of (the whole server, its event-loop thread) since the step began."""
        if self.server is None:
            return None
        pid = self.server.proc.pid
        return cpu_seconds(pid) - self._cpu0, cpu_seconds(pid, pid) - self._loop0


def run_ladder(name: str, runner: SippRunner, uas: Sipp, remote: str, args: argparse.Namespace,
               deadline: float, server: ServerProcess | None = None) -> list[Step]:
    steps: list[Step] = []
    legs_before = 0
    for rate in args.rates:
        if time.monotonic() + step_cost(args) > deadline:
            print(f"  {name}: time budget reached before {rate}/s", flush=True)
            break
        total = rate * args.step_s
        started = time.monotonic()
        run_timeout = args.step_s + args.hold_ms / 1000 + 30
        watch = Watch(server).__enter__()
        carrier = runner.start(f"{name}-carrier-{rate}", "load_carrier.xml", "-s", args.dialled, "-d",
                               str(args.hold_ms), "-r", str(rate), "-trace_stat", "-fd", "1", "-trace_rtt",
                               "-rtt_freq", "1", "-trace_screen", remote=remote, calls=total, timeout=run_timeout,
                               trace_msg=False, quiet=True)
        carrier.wait(run_timeout + 10)
        time.sleep(1.2)  # the UAS writes its -trace_stat line once a second
        watch.__exit__()
        cpu = watch.cpu_used()
        stats = read_stats(carrier.workdir)
        legs = read_stats(uas.workdir).incoming
        settle = time.monotonic() + 5
        while legs - legs_before < stats.successful and time.monotonic() < settle:
            time.sleep(0.5)  # the UAS's stat line lags by up to a second (more when SIPp is busy)
            legs = read_stats(uas.workdir).incoming
        step = Step(name, rate, total, stats.successful, stats.failed, legs - legs_before, stats.percentile(50),
                    stats.percentile(99), max(stats.setup_ms) if stats.setup_ms else None,
                    time.monotonic() - started, cpu[0] * 1000 / total if cpu else None,
                    cpu[1] * 1000 / total if cpu else None, watch.peak,
                    *(watch.retransmissions or (None, None)))
        legs_before = legs
        steps.append(step)
        print(f"  {name}: {rate}/s -> {step.successful}/{total} ok, {step.failed} failed, "
              f"{step.agent_legs} agent legs", flush=True)
        if not step.clean and not args.limit_rate:
            break
    return steps


@contextlib.contextmanager
def agent_uas(runner: SippRunner, name: str, args: argparse.Namespace) -> Iterator[Sipp]:
    extra = ["-rtp_echo"] if args.media else []
    uas = runner.start(name, "load_agent_uas.xml", "-trace_stat", "-fd", "1", *extra, calls=None,
                       timeout=args.budget_s + 30, trace_msg=False, quiet=True)
    try:
        time.sleep(0.3)
        yield uas
    finally:
        uas.stop()


def limited_config(config: Path | None, rate: float, workdir: Path) -> Path:
    """``config`` (the demo's by default) with ``limits.max_calls_per_second = rate``, written to ``workdir``."""
    import yaml

    source = config or ROOT / "config" / "demo.yaml"
    data = yaml.safe_load(source.read_text())
    for key in ("flows_dir", "prompts_dir"):  # relative to the config file: make them absolute
        if key in data:
            data[key] = str((source.parent / data[key]).resolve())
    data.setdefault("limits", {})["max_calls_per_second"] = rate
    path = workdir / "limited.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def fmt2(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def best(steps: list[Step]) -> int:
    return max((s.rate for s in steps if s.clean), default=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="server config (default: --demo)")
    parser.add_argument("--dialled", default="200", help="number the carrier dials (must queue at once)")
    parser.add_argument("--agents", default="1001-1004", help="agent ids, e.g. 1001-1200 or 1001,1002")
    parser.add_argument("--password", default="demo{id}", help="SIP password format, {id} = agent id")
    parser.add_argument("--rates", default="5,10,20,50,100", help="calls/s ladder")
    parser.add_argument("--step-s", type=int, default=8, help="seconds of calling per step")
    parser.add_argument("--hold-ms", type=int, default=2000, help="call length after the answer")
    parser.add_argument("--budget-s", type=float, default=280.0, help="stop starting steps after this")
    parser.add_argument("--media", action="store_true", help="agents echo RTP (-rtp_echo)")
    parser.add_argument("--direct-only", action="store_true", help="only the SIPp -> SIPp reference")
    parser.add_argument("--keep", action="store_true", help="keep the SIPp/server work directory")
    parser.add_argument("--limit-rate", type=float, default=0.0,
                        help="run the server with limits.max_calls_per_second = N (calls past it get 503, "
                             "counted as failed; every step runs)")
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",") if r]
    if not sipp_ready():
        print("sipp (Debian sip-tester) is not installed", file=sys.stderr)
        return 2
    os.chdir(ROOT)
    deadline = time.monotonic() + args.budget_s
    work = Path(tempfile.mkdtemp(prefix="bench_callpath_"))
    runner = SippRunner(work / "sipp")
    results: list[Step] = []
    try:
        # the server first (the expensive target), then the direct reference with what is left
        if not args.direct_only:
            server_dir = work / "server"
            server_dir.mkdir()
            config = limited_config(args.config, args.limit_rate, server_dir) if args.limit_rate else args.config
            with run_server(server_dir, config=config) as server, agent_uas(runner, "server-uas", args) as uas:
                agents = parse_agents(args.agents)

                def register(agent: str) -> int:
                    for _ in range(3):  # SIPp may pick a media port that is taken meanwhile: try again
                        rc = runner.register_at(f"{HOST}:{server.sip_port}", agent, uas.port,
                                                password=args.password.format(id=agent))
                        if rc == 0:
                            break
                    return rc

                with ThreadPoolExecutor(max_workers=8) as pool:  # one SIPp per agent, 8 at a time
                    codes = dict(zip(agents, pool.map(register, agents), strict=True))
                for agent, rc in codes.items():
                    if rc != 0:
                        print(f"agent {agent}: REGISTER failed (rc {rc}); see {work}", file=sys.stderr)
                        return 1
                    agent_login_ready(server.http_port, agent)
                print(f"server: {len(agents)} agents registered at one UAS (port {uas.port})", flush=True)
                reserve = len(args.rates) * step_cost(args)  # keep time for the direct reference
                results += run_ladder("server", runner, uas, f"{HOST}:{server.sip_port}", args, deadline - reserve,
                                      server)
        with agent_uas(runner, "direct-uas", args) as uas:
            results += run_ladder("direct", runner, uas, f"{HOST}:{uas.port}", args, deadline)
    finally:
        runner.stop_all()

    print()
    print(f"{'target':<8} {'rate/s':>7} {'offered':>8} {'ok':>6} {'failed':>7} {'agent legs':>11} "
          f"{'setup p50':>10} {'p99':>5} {'max ms':>7} {'wall s':>7} {'cpu ms/call':>12} {'loop ms/call':>13} "
          f"{'peak calls':>11} {'resent':>7} {'rx again':>9}")
    for s in results:
        print(f"{s.target:<8} {s.rate:>7} {s.offered:>8} {s.successful:>6} {s.failed:>7} {s.agent_legs:>11} "
              f"{fmt(s.p50):>10} {fmt(s.p99):>5} {fmt(s.worst):>7} {s.seconds:>7.1f} "
              f"{fmt2(s.cpu_ms_per_call):>12} {fmt2(s.loop_ms_per_call):>13} {fmt(s.peak_active):>11} "
              f"{fmt(s.resent):>7} {fmt(s.received_again):>9}")
    direct = best([s for s in results if s.target == "direct"])
    print()
    if not args.direct_only:
        served = best([s for s in results if s.target == "server"])
        ratio = f"{served / direct:.2f}" if direct else "-"
        print(f"highest rate with 0 failed calls: server {served}/s, SIPp->SIPp {direct}/s (ratio {ratio}); "
              f"the direct figure is a lower bound when its top step was clean")
    else:
        print(f"highest rate with 0 failed calls SIPp->SIPp: {direct}/s")
    if args.keep:
        print(f"logs: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
