"""200 calls through the real server leave no cyclic garbage of the project's objects.

The node runs with the test hook ``CTI_TEST_GC_REPORT`` (cti/gcaudit.py): automatic cyclic
collection off, and on SIGUSR1 a collection with ``gc.DEBUG_SAVEALL`` whose findings are written
to a file. A first report, once the agents are registered and ready, clears what start-up left;
then a SIPp carrier makes 200 calls (the load flow: queued at once, answered by one SIPp UAS for
ten agents, held 200 ms, recorded) and the second report must list no object of the project's
packages: a finished call (its core, shell, legs, media, IVR runner, recording) is freed by
reference counting alone; and once no call is live, none of them is still held by anything.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.support.gcreport import gc_report
from tests.support.loadagents import register_agents
from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import HOST, Sipp, SippRunner, read_stats, sipp_ready

pytestmark = [pytest.mark.interop, pytest.mark.skipif(not sipp_ready(), reason="sipp (sip-tester) not installed")]

ROOT = Path(__file__).resolve().parents[2]
LOAD = ROOT / "tests" / "bench" / "load" / "load.yaml"
AGENTS = [str(n) for n in range(3001, 3011)]
CALLS = 200


def _config(tmp: Path) -> Path:
    data = yaml.safe_load(LOAD.read_text())
    for key in ("flows_dir", "prompts_dir"):
        data[key] = str((LOAD.parent / data[key]).resolve())
    data["media"]["record_calls"] = True
    path = tmp / "cycles.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _live_calls(http_port: int) -> float:
    from tests.support.sipfuzz import metrics

    return metrics(http_port).get("cti_calls_active", 0.0)


def _assert_no_cycles_after(carrier: Sipp, calls: int, server: ServerProcess, report: Path) -> None:
    """Once the carrier's ``calls`` all succeeded and the node has no live call left, a cyclic collection finds
    none of the project's objects."""
    carrier.wait(70)
    stats = read_stats(carrier.workdir)
    assert stats.successful == calls, (stats.successful, stats.failed)
    deadline = time.monotonic() + 15
    while _live_calls(server.http_port) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # recordings closed, CDRs committed
    found = gc_report(server.proc.pid, report)
    assert found["ours"] == {}, found
    # Nor does anything hold a finished call: an agent's last call was kept whole (legs, media) until its next
    # wrap-up with a disposition, about 35 KiB for every agent who ever answered one.
    live = found["live_ours"]
    assert not {name: n for name, n in live.items() if name.endswith((".Call", ".CallMedia", ".MediaLeg"))}, live


def test_200_calls_leave_no_reference_cycles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "gc.json"
    monkeypatch.setenv("CTI_TEST_GC_REPORT", str(report))
    runner = SippRunner(tmp_path / "sipp")
    try:
        with run_server(tmp_path, config=_config(tmp_path)) as server:
            uas = runner.start("uas", "load_agent_uas.xml", "-trace_stat", "-fd", "1", calls=None, timeout=120,
                               trace_msg=False, quiet=True)
            time.sleep(0.3)
            register_agents(runner, server.sip_port, AGENTS, uas.port, password="load{id}",
                            http_port=server.http_port)
            gc_report(server.proc.pid, report)  # clears what start-up and registration left
            carrier = runner.start("carrier", "load_carrier.xml", "-s", "200", "-d", "200", "-r", "40",
                                   "-trace_stat", "-fd", "1", remote=f"{HOST}:{server.sip_port}", calls=CALLS,
                                   timeout=60, trace_msg=False, quiet=True)
            _assert_no_cycles_after(carrier, CALLS, server, report)
    finally:
        runner.stop_all()


IVR_CALLS = 40


def test_callers_hanging_up_during_the_ivr_leave_no_reference_cycles(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """An IVR abandon: the caller hangs up while the greeting plays, so the call cancels its IVR runner's task
    while the runner waits inside its task group. On CPython 3.11-3.13 cancelling a task that waits in an
    ``asyncio.TaskGroup`` leaves a reference cycle (``TaskGroup.__aexit__`` re-raises the CancelledError from a
    frame that holds it), and every object the cancelled frames refer to, the whole call, stayed with it until
    a full collection, which the node runs only every few minutes under load: a flood of such calls grew the
    node by ~35 KB a call (tests/bench/bench_sip_fuzz.py, docs/reliability.md, "Seventh session")."""
    from tests.support.sipp import dtmf_pcap

    report = tmp_path / "gc.json"
    monkeypatch.setenv("CTI_TEST_GC_REPORT", str(report))
    runner = SippRunner(tmp_path / "sipp")
    try:
        with run_server(tmp_path) as server:
            gc_report(server.proc.pid, report)  # clears what start-up left
            carrier = runner.start("abandon", "carrier_call_hangup_early.xml", "-s", "100", "-key", "caller",
                                   "5550100", "-key", "dtmf_pcap", dtmf_pcap("9"), "-set", "greeting_ms", "300",
                                   "-set", "hangup_ms", "200", "-r", "10", "-trace_stat", "-fd", "1",
                                   remote=f"{HOST}:{server.sip_port}", calls=IVR_CALLS, timeout=60,
                                   trace_msg=False, quiet=True)
            _assert_no_cycles_after(carrier, IVR_CALLS, server, report)
    finally:
        runner.stop_all()
