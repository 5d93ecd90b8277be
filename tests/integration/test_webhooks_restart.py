"""SIGKILL mid-delivery: every event recorded in the outbox before the kill reaches the CRM after a restart.

The server (``cti serve --config``) runs as a subprocess with one webhook endpoint pointing at a receiver in this
test. The receiver first holds each request and then fails it (503), so deliveries are in flight; agents log in and
out through the admin API (``agent.state_changed`` events); the server is SIGKILLed while a request is held. The
outbox rows on disk are then the events the server accepted. After a restart on the same data directory the receiver
accepts, and must get every one of those event ids (deduplicated by id), in outbox order.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

import cti.app
from cti.events.webhooks import verify_signature
from tests.support.procs import ServerProcess, run_server

REPO = Path(__file__).resolve().parents[2]
SECRET = "restart-test-secret-0001"
TOKEN = "demo-operator-token-0001"


def _wired() -> bool:
    return hasattr(cti.app, "WEBHOOKS_WIRED")


pytestmark = pytest.mark.skipif(not _wired(), reason="the webhook dispatcher is not wired into cti/app.py yet")


class Receiver:
    """A CRM stand-in on a thread: checks signatures; ``mode`` is "hold" (wait, then 503) or "accept"."""

    def __init__(self) -> None:
        self.mode = "hold"
        self.lock = threading.Lock()
        self.seen: list[str] = []  # every request's event id
        self.accepted: list[str] = []  # first acceptance of each id, in order
        self.bad = 0
        self.holding = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                event_id = self.headers.get("X-CTI-Event-Id", "")
                status = receiver.answer(body, event_id, self.headers.get("X-CTI-Timestamp", ""),
                                         self.headers.get("X-CTI-Signature", ""))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="crm-receiver", daemon=True)

    def answer(self, body: bytes, event_id: str, timestamp: str, signature: str) -> int:
        if not verify_signature(SECRET, timestamp, body, signature, tolerance_s=60, now=time.time()) or \
                json.loads(body).get("id") != event_id:
            with self.lock:
                self.bad += 1
            return 401
        with self.lock:
            self.seen.append(event_id)
            mode = self.mode
        if mode == "hold":
            self.holding.set()
            time.sleep(0.5)  # the request is in flight while the test kills the server
            return 503
        with self.lock:
            if event_id not in self.accepted:
                self.accepted.append(event_id)
        return 200

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_config(tmp: Path, receiver_port: int) -> Path:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["flows_dir"] = str(REPO / "config" / "flows")
    config["prompts_dir"] = str(REPO / "config" / "prompts")
    config["webhooks"] = [{"name": "crm", "url": f"http://127.0.0.1:{receiver_port}/hook", "secret": SECRET,
                           "events": ["agent.*"], "max_attempts": 1000, "timeout_s": 1.0}]
    config["webhook_retry"] = {"base_delay_s": 0.1, "max_delay_s": 0.3}
    path = tmp / "cti.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def serve(tmp: Path, config: Path, data_dir: Path, log_name: str) -> contextlib.AbstractContextManager[ServerProcess]:
    """A server on ``data_dir``, which outlives it (the restart reuses it)."""
    return run_server(tmp, config=config, data_dir=data_dir, log_name=log_name)


def api(server: ServerProcess, path: str, body: dict[str, object] | None = None) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{server.http_port}{path}", method="POST",
                                     data=json.dumps(body or {}).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 200, path


def outbox_ids(data_dir: Path) -> list[str]:
    """The event ids the server accepted (committed outbox rows of ``crm``), in outbox order."""
    with contextlib.closing(sqlite3.connect(data_dir / "cti.sqlite3")) as db:
        rows = db.execute("SELECT event_id FROM outbox WHERE endpoint = ? ORDER BY entry_id", ("crm",)).fetchall()
    return [str(r[0]) for r in rows]


def wait_for(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_events_recorded_before_a_sigkill_are_all_delivered_after_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    with Receiver() as receiver:
        config = write_config(tmp_path, receiver.port)
        with serve(tmp_path, config, data_dir, "first.log") as first:
            for agent in ("1001", "1002", "1003", "1004"):
                api(first, f"/api/v1/agents/{agent}/login", {"ready": True})
                api(first, f"/api/v1/agents/{agent}/logout")
            api(first, "/api/v1/agents/1001/login", {"ready": True})
            assert receiver.holding.wait(10), first.log_text()[-3000:]
            wait_for(lambda: len(outbox_ids(data_dir)) >= 9, 10, "the outbox rows of the events caused")
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(10)
        recorded = outbox_ids(data_dir)
        with receiver.lock:
            seen_before = set(receiver.seen)
            receiver.mode = "accept"
        assert receiver.bad == 0
        assert seen_before and seen_before <= set(recorded)  # nothing was sent that was not recorded first
        assert receiver.accepted == []
        with serve(tmp_path, config, data_dir, "second.log") as second:
            wait_for(lambda: set(recorded) <= set(receiver.accepted), 20, "every recorded event after restart")
            assert second.proc.poll() is None
        assert receiver.bad == 0
        assert [i for i in receiver.accepted if i in set(recorded)] == recorded  # outbox order kept
