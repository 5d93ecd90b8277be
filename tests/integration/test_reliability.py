"""Never stop, never lose (docs/reliability.md): a real `cti serve` against hostile callers and failures.

* Quick hang-ups: callers who CANCEL or BYE at any instant of the call's set-up (a random offset of
  0-200 ms, or exactly when the 100, 180/183 or 200 arrives), on the IVR flow (number 100) and on a
  number whose flow queues at once (number 200, no agent logged in). The node keeps answering,
  every call has exactly one CDR whose times are in order, and no call's handling failed.
* Fault injection: ``CTI_TEST_FAULT_EVERY=N`` makes every Nth call raise inside its handling once
  queued; those calls end alone (BYE, an ``error`` CDR, ``call.failed`` logged with its traceback),
  the others finish normally.
* The zombie: the store's file removed under a running node makes it exit non-zero within 10 s;
  SIGTERM with calls up exits within the drain deadline; a second SIGTERM exits at once.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import websockets.exceptions
import websockets.sync.client
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.app import EXIT_FATAL
from tests.support.procs import ServerProcess, run_server
from tests.support.rawsip import CallOutcome, RawCaller

REPO = Path(__file__).resolve().parents[2]
IVR_NUMBER, QUEUE_NUMBER = "100", "200"
MOMENTS = ("on_100", "on_180", "on_200")  # hang up exactly when that response arrives
TIMES = ("t_arrived", "t_ivr_answered", "t_ivr_left", "t_queued", "t_answered", "t_ended")
# Log events that mean a call's handling (or the node) failed.
FAILURE_EVENTS = {"call.failed", "call.task.failed", "call.teardown.failed", "call.record.failed",
                  "server.node.failed", "server.node.stopping", "records.write.failed"}


def _config(tmp: Path, *, drain_s: float = 10.0, fatal_after_s: float = 2.0) -> Path:
    """The demo config, plus number 200 whose flow queues at once (nobody logged in: it waits)."""
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    flows = tmp / "flows"
    flows.mkdir(exist_ok=True)
    (flows / "main.yaml").write_text((REPO / "config" / "flows" / "main.yaml").read_text())
    (flows / "direct.yaml").write_text(yaml.safe_dump(
        {"flows": {"direct": {"start": "queue", "nodes": {"queue": {"type": "queue", "queue": "sales"}}}}}))
    config["flows_dir"] = str(flows)
    config["prompts_dir"] = str(REPO / "config" / "prompts")
    config["trunks"][0]["numbers"][QUEUE_NUMBER] = "direct"
    config["node"]["drain_s"] = drain_s
    config.setdefault("storage", {})["fatal_after_s"] = fatal_after_s
    config["logging"] = {"level": "info", "format": "json"}
    path = tmp / "cti.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _log_events(server: ServerProcess) -> list[dict[str, object]]:
    events = []
    for line in server.log_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def _failures(server: ServerProcess) -> list[str]:
    return [f"{e.get('event')}: {e.get('error', '')}" for e in _log_events(server) if e.get("event") in FAILURE_EVENTS]


def _cdrs(server: ServerProcess, sip_call_ids: set[str]) -> dict[str, list[sqlite3.Row]]:
    """The CDRs of these calls, by SIP Call-ID, once every one of them is ended (waits up to 10 s)."""
    deadline = time.monotonic() + 10.0
    while True:
        db = sqlite3.connect(f"file:{server.data_dir / 'cti.sqlite3'}?mode=ro", uri=True, timeout=5)
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute("SELECT * FROM calls").fetchall()
        finally:
            db.close()
        found: dict[str, list[sqlite3.Row]] = {}
        for row in rows:
            if row["sip_call_id"] in sip_call_ids:
                found.setdefault(row["sip_call_id"], []).append(row)
        done = len(found) == len(sip_call_ids) and all(r["t_ended"] is not None for rs in found.values() for r in rs)
        if done or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _still_serves(server: ServerProcess) -> None:
    with RawCaller(server.sip_port, IVR_NUMBER) as caller:
        outcome = caller.call_with_hold(0.3)
    assert outcome.statuses and outcome.statuses[-1] == 200, outcome
    assert outcome.bye_status == 200, outcome


@pytest.fixture(scope="module")
def quick_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("quick")
    with run_server(tmp, config=_config(tmp)) as server:
        yield server


hang_ups = st.one_of(st.sampled_from(MOMENTS), st.floats(min_value=0.0, max_value=0.2).map(lambda s: round(s, 4)))


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.sampled_from((IVR_NUMBER, QUEUE_NUMBER)), hang_ups), min_size=100, max_size=100))
def test_callers_hanging_up_at_any_instant_never_stop_the_node(quick_server: ServerProcess,
                                                              plan: list[tuple[str, str | float]]) -> None:
    """100 calls per example, two examples: 200 quick hang-ups in all, 8 at a time."""
    def place(number_and_moment: tuple[str, str | float]) -> CallOutcome:
        number, moment = number_and_moment
        with RawCaller(quick_server.sip_port, number) as caller:
            return caller.call(moment)

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(place, plan))

    refused = [o for o in outcomes if any(s >= 500 for s in o.statuses)]
    assert not refused, f"{len(refused)} calls refused with 5xx: {refused[:3]}"
    for outcome in outcomes:
        assert outcome.statuses, f"no answer to {outcome.call_id}"
        if outcome.hung_up_with == "BYE":
            assert outcome.bye_status == 200, outcome
    _still_serves(quick_server)
    assert quick_server.proc.poll() is None, "the node stopped"
    assert not _failures(quick_server), _failures(quick_server)

    cdrs = _cdrs(quick_server, {o.call_id for o in outcomes})
    missing = [o.call_id for o in outcomes if o.call_id not in cdrs]
    assert not missing, f"{len(missing)} calls without a CDR"
    for call_id, rows in cdrs.items():
        assert len(rows) == 1, f"{call_id}: {len(rows)} CDRs"
        row = rows[0]
        times = [row[t] for t in TIMES if row[t] is not None]
        assert times == sorted(times), f"{call_id}: times out of order {dict(zip(TIMES, times, strict=False))}"
        assert row["t_ended"] is not None and row["problems"] is None, dict(row)
        assert row["end_reason"] != "error", dict(row)


def test_a_fault_in_one_call_ends_that_call_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    every, calls = 5, 20
    monkeypatch.setenv("CTI_TEST_FAULT_EVERY", str(every))
    with run_server(tmp_path, config=_config(tmp_path)) as server:
        with ThreadPoolExecutor(calls) as pool:
            outcomes = list(pool.map(lambda _: _hold_call(server.sip_port, 1.5), range(calls)))
        assert server.proc.poll() is None, "the node stopped"
        _still_serves(server)
        torn_down = [o for o in outcomes if o.hung_up_with == "server"]
        finished = [o for o in outcomes if o.hung_up_with == "BYE"]
        # The OPTIONS readiness probe is not a call; the node counts calls from 1: calls 5, 10, 15, 20 fault.
        assert len(torn_down) == calls // every, outcomes
        assert len(finished) == calls - calls // every
        assert all(o.bye_status == 200 for o in finished), finished
        cdrs = _cdrs(server, {o.call_id for o in outcomes})
        for outcome in outcomes:
            (row,) = cdrs[outcome.call_id]
            expected = "error" if outcome.hung_up_with == "server" else "caller-hangup"
            assert (row["end_reason"], row["t_ended"] is not None) == (expected, True), dict(row)
        failed = [e for e in _log_events(server) if e.get("event") == "call.failed"]
        assert len(failed) == calls // every
        assert all("InjectedFault" in str(e.get("exception", "")) for e in failed), failed[0]


def _hold_call(port: int, hold_s: float) -> CallOutcome:
    with RawCaller(port, QUEUE_NUMBER) as caller:
        return caller.call_with_hold(hold_s)


def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int | None, float]:
    started = time.monotonic()
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    return code, time.monotonic() - started


def test_a_store_gone_ends_the_node_with_a_failure_status(tmp_path: Path) -> None:
    with run_server(tmp_path, config=_config(tmp_path, fatal_after_s=2.0)) as server:
        _still_serves(server)
        for suffix in ("", "-wal", "-shm"):
            (server.data_dir / f"cti.sqlite3{suffix}").unlink(missing_ok=True)
        code, took = _wait_exit(server.proc, 10.0)
        assert code is not None, f"still running {took:.1f} s after its database was removed"
        assert code == EXIT_FATAL, code
        print(f"database removed: exited {code} after {took:.1f} s (storage.fatal_after_s 2)")
        assert took < 10.0
        assert any(e.get("event") == "server.node.failed" for e in _log_events(server)), server.log_text()[-2000:]


def test_sigterm_with_calls_up_drains_then_exits(tmp_path: Path) -> None:
    drain_s = 2.0
    with run_server(tmp_path, config=_config(tmp_path, drain_s=drain_s)) as server:
        held: list[CallOutcome] = []
        callers = [threading.Thread(target=lambda: held.append(_hold_call(server.sip_port, 30.0))) for _ in range(3)]
        for thread in callers:
            thread.start()
        time.sleep(1.0)  # the calls are answered and queued
        server.proc.send_signal(signal.SIGTERM)
        code, took = _wait_exit(server.proc, drain_s + 8.0)
        assert code is not None, "still running past the drain deadline"
        print(f"SIGTERM with 3 calls up: exited {code} after {took:.1f} s (node.drain_s {drain_s})")
        assert took <= drain_s + 5.0, took
        for thread in callers:
            thread.join(10)
        # The node hung the calls up on its way out (BYE), and their CDRs were written.
        assert [o.hung_up_with for o in held] == ["server"] * 3, held
        ended = Counter(row["end_reason"] for rows in _cdrs(server, {o.call_id for o in held}).values() for row in rows)
        assert sum(ended.values()) == 3, ended


def test_a_second_sigterm_exits_at_once(tmp_path: Path) -> None:
    with run_server(tmp_path, config=_config(tmp_path, drain_s=60.0)) as server:
        caller = threading.Thread(target=_hold_call, args=(server.sip_port, 20.0), daemon=True)
        caller.start()
        time.sleep(1.0)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        code, took = _wait_exit(server.proc, 5.0)
        assert code == 143, (code, took)
        print(f"second SIGTERM: exited {code} {took:.2f} s after it")


def test_sigterm_with_desktops_connected_closes_them_going_away_and_exits_at_once(tmp_path: Path) -> None:
    """Connected WebSocket clients (a supervisor's console, an agent's desktop) never hold a stop up: each is closed
    with 1001 and the node exits 0 at once, not when the stop's deadline forces it (it took 20 s, exit 1)."""
    drain_s = 10.0
    with run_server(tmp_path, config=_config(tmp_path, drain_s=drain_s)) as server, contextlib.ExitStack() as stack:
        closes: list[tuple[int | None, str | None]] = []

        def desktop(role: str, ident: str, password: str) -> websockets.sync.client.ClientConnection:
            login = urllib.request.Request(f"http://127.0.0.1:{server.http_port}/auth/login", method="POST",
                                           data=json.dumps({"role": role, "id": ident, "password": password}).encode(),
                                           headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(login, timeout=5) as answer:
                token = json.load(answer)["token"]
            ws = stack.enter_context(websockets.sync.client.connect(
                f"ws://127.0.0.1:{server.http_port}/ws?token={token}", open_timeout=5))
            assert json.loads(ws.recv(timeout=5))["type"] == "hello"
            return ws

        clients = [desktop("supervisor", "sup1", "demosup1"), desktop("agent", "1001", "demo1001")]
        server.proc.send_signal(signal.SIGTERM)
        for ws in clients:
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                while True:
                    ws.recv(timeout=5)
            closes.append((ws.close_code, ws.close_reason))
        code, took = _wait_exit(server.proc, drain_s + 8.0)
        print(f"SIGTERM with two desktops connected: exited {code} after {took:.1f} s, closes {closes}")
        assert code == 0 and took < 5.0, (code, took)
        assert closes == [(1001, "node_stopping")] * 2
