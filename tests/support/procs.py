"""Helpers for tests that run real processes: free ports, the server, SIPp."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parent.parent / "interop" / "scenarios"


def free_port(kind: str = "both", host: str = "127.0.0.1") -> int:
    """A port free for UDP and TCP at once (the server binds both on the same number)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            if kind == "tcp":
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def wait_for_options(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    """Block until the server answers an OPTIONS over UDP (readiness probe)."""
    deadline = time.monotonic() + timeout
    n = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        sock.settimeout(0.05)  # a node still starting answers nothing: probe again soon (a late answer still counts)
        local = sock.getsockname()[1]
        while time.monotonic() < deadline:
            n += 1
            sock.sendto(options_request(host, port, local, f"probe-{n}").encode(), (host, port))
            try:
                data = sock.recv(65535)
            except TimeoutError:
                continue
            if data.startswith(b"SIP/2.0 200"):
                return
    raise TimeoutError(f"server on port {port} did not answer OPTIONS")


def wait_for_http(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    """Block until the server accepts a TCP connection on its HTTP port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"server's HTTP port {port} did not accept a connection") from None
            time.sleep(0.05)


def options_request(host: str, port: int, local_port: int, call_id: str, cseq: int = 1) -> str:
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{local_port};branch=z9hG4bK{call_id}{cseq};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:probe@{host}>;tag=p{cseq}\r\nTo: <sip:{host}:{port}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    sip_port: int
    http_port: int
    log_path: Path
    data_dir: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


EVENT_CONTRACT_ENV = "CTI_VALIDATE_EVENTS"
"""Set to ``1`` for every server these helpers start: the node checks each event it publishes against its schema."""


class EventContractError(AssertionError):
    """The server published an event that breaks its schema (docs/events.md)."""


def event_contract_violations(log_text: str) -> list[str]:
    """The ``bus.event.invalid`` lines of a server log (JSON or console format)."""
    return [line for line in log_text.splitlines() if "bus.event.invalid" in line]


def check_event_contract(log_path: Path) -> None:
    """Fail when the server whose log is ``log_path`` published an event that breaks its schema.

    Raises:
        EventContractError: the log has ``bus.event.invalid`` lines (at most five are quoted).
    """
    bad = event_contract_violations(log_path.read_text(errors="replace"))
    if bad:
        raise EventContractError(f"{len(bad)} event(s) broke their schema (docs/events.md); "
                                 f"first ones in {log_path}:\n" + "\n".join(bad[:5]))


@contextlib.contextmanager
def run_server(tmp: Path, *extra: str, config: Path | None = None, data_dir: Path | None = None,
               log_name: str = "server.log", start_timeout: float = 15.0) -> Iterator[ServerProcess]:
    """Run `cti serve` as a subprocess on free ports; stop it (SIGTERM) after, unless the test already did.

    ``data_dir`` (default ``tmp/var``) may be shared by successive servers (restart tests). Every event the server
    publishes is checked against its schema (``CTI_VALIDATE_EVENTS=1``); a test that passed fails at the end when
    one did not fit (:func:`check_event_contract`). ``start_timeout``: seconds for SIP, then HTTP, to answer.
    """
    sip_port, http_port = free_port(), free_port("tcp")
    log_path = tmp / log_name
    data_dir = data_dir or tmp / "var"
    # CTI_SERVER_PROFILE=FILE runs the server under cProfile (stats written to FILE when it stops).
    profile = os.environ.get("CTI_SERVER_PROFILE")
    prefix = ["-m", "cProfile", "-o", profile] if profile else []
    args = [sys.executable, *prefix, "-m", "cti", "serve", *(["--config", str(config)] if config else ["--demo"]),
            "--sip-port", str(sip_port), "--http-port", str(http_port), "--data-dir", str(data_dir),
            "--log-format", "json", *extra]
    with open(log_path, "wb") as log:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", EVENT_CONTRACT_ENV: "1"}
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = ServerProcess(proc, sip_port, http_port, log_path, data_dir)
    try:
        wait_for_options(sip_port, start_timeout)
        wait_for_http(http_port, start_timeout)  # the node binds HTTP after SIP: a test may use either at once
        yield server
    finally:
        stop(proc)
    check_event_contract(log_path)  # reached only when the test itself passed


TEARDOWN_DRAIN_S = 2.0  # a test that left calls up does not wait for them: node.drain_s is 10 s


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a server after its test: SIGTERM (the graceful stop); when calls the test left up are still draining
    after :data:`TEARDOWN_DRAIN_S`, a second SIGTERM (the node's documented stop at once); SIGKILL past 10 s.
    The tests of the drain itself signal the node on their own and wait for its exit."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    for signal_next in (signal.SIGTERM, signal.SIGKILL):
        try:
            proc.wait(TEARDOWN_DRAIN_S if signal_next is signal.SIGTERM else 10)
            return
        except subprocess.TimeoutExpired:
            proc.send_signal(signal_next)
    proc.wait()


def sipp_available() -> bool:
    return shutil.which("sipp") is not None


def run_sipp(
    scenario: str, target: str, *args: str, tmp: Path, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run one SIPp scenario to completion (always bounded by -timeout and a process time limit)."""
    port = free_port()
    cmd = ["sipp", "-sf", str(SCENARIOS / scenario), target, "-i", "127.0.0.1", "-p", str(port),
           "-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_err", "-trace_msg", "-nostdin", *args]
    return subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout + 15)
