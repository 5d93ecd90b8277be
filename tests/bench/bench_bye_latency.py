"""What answering a BYE only after the call's record is committed costs the caller (docs/reliability.md).

Run: ``python tests/bench/bench_bye_latency.py [--calls 200] [--concurrency 1]``. Not collected by pytest.

A real ``cti serve`` (the demo config plus number 200, whose flow queues at once) on free ports and a
temporary data directory; each call is answered, held ``--hold-s`` and hung up by the caller. Printed:
the BYE -> 200 round trip (p50/p95/p99/max, ms), which includes waiting for the store's group commit
(``cti/node/records.py`` WRITE_LINGER_S) of the final CDR and its ``call.ended``. Run the same script on a
checkout that answers the BYE at once for the reference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.procs import run_server  # noqa: E402
from tests.support.rawsip import CallOutcome, RawCaller  # noqa: E402


def _config(tmp: Path) -> Path:
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    flows = tmp / "flows"
    flows.mkdir()
    (flows / "direct.yaml").write_text(yaml.safe_dump(
        {"flows": {"direct": {"start": "queue", "nodes": {"queue": {"type": "queue", "queue": "sales"}}}}}))
    (flows / "main.yaml").write_text((ROOT / "config" / "flows" / "main.yaml").read_text())
    config.update(flows_dir=str(flows), prompts_dir=str(ROOT / "config" / "prompts"),
                  logging={"level": "warning", "format": "json"})
    config["trunks"][0]["numbers"]["200"] = "direct"
    path = tmp / "cti.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--hold-s", type=float, default=0.1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        with run_server(tmp, config=_config(tmp)) as server:
            def one(_: int) -> CallOutcome:
                with RawCaller(server.sip_port, "200") as caller:
                    return caller.call_with_hold(args.hold_s)

            with ThreadPoolExecutor(args.concurrency) as pool:
                outcomes = list(pool.map(one, range(args.calls)))
    rtts = sorted(o.bye_rtt_s * 1000 for o in outcomes if o.bye_rtt_s is not None and o.bye_status == 200)
    failed = args.calls - len(rtts)
    if not rtts:
        print(f"no BYE answered 200 ({failed} failed)")
        return 1
    q = statistics.quantiles(rtts, n=100) if len(rtts) > 1 else rtts * 99
    print(f"calls {args.calls}, concurrency {args.concurrency}, BYE answered 200: {len(rtts)}, failed {failed}")
    print(f"BYE -> 200 ms: p50 {q[49]:.1f}  p95 {q[94]:.1f}  p99 {q[98]:.1f}  max {rtts[-1]:.1f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
