"""REGISTER transactions per second against `cti serve --demo`, driven by SIPp.

Each SIPp "call" is one registration: REGISTER → 401 challenge → REGISTER with digest → 200,
i.e. two transactions. The rate is stepped up until SIPp reports a failed call or cannot keep the
rate; the figure is the highest rate with zero failures. Run: ``python tests/bench/bench_register.py``
(about a minute; ``--log-level info`` measures with every message logged, the default is warning).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.procs import SCENARIOS, free_port, run_server  # noqa: E402


def run_step(sip_port: int, rate: int, seconds: int, tmp: Path) -> tuple[int, float, bool]:
    total = rate * seconds
    port = free_port()
    cmd = ["sipp", "-sf", str(SCENARIOS / "register_auth.xml"), f"127.0.0.1:{sip_port}", "-i", "127.0.0.1",
           "-p", str(port), "-s", "1001", "-au", "1001", "-ap", "demo1001", "-r", str(rate), "-m", str(total),
           "-l", str(rate * 2), "-timeout", f"{seconds * 4 + 10}s", "-nostdin", "-trace_err"]
    start = time.monotonic()
    result = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=seconds * 4 + 30)
    elapsed = time.monotonic() - start
    return total, elapsed, result.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rates", default="100,200,400,800,1200,1600")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        sys.exit("sipp is not installed (Debian package sip-tester)")
    print(f"{'rate/s':>8} {'registrations':>14} {'elapsed s':>10} {'achieved/s':>11} {'transactions/s':>15} ok")
    best = 0.0
    with tempfile.TemporaryDirectory() as d, run_server(Path(d), "--log-level", args.log_level) as server:
        for rate in (int(r) for r in args.rates.split(",")):
            total, elapsed, ok = run_step(server.sip_port, rate, args.seconds, Path(d))
            achieved = total / elapsed
            verdict = "yes" if ok else "NO"
            print(f"{rate:>8} {total:>14} {elapsed:>10.2f} {achieved:>11.0f} {2 * achieved:>15.0f} {verdict}")
            if not ok:
                break
            best = max(best, achieved)
    print(f"\nhighest sustained: {best:.0f} registrations/s = {2 * best:.0f} REGISTER transactions/s "
          f"(log level {args.log_level})")


if __name__ == "__main__":
    main()
