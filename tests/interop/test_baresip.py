"""baresip (the Debian package, 1.0) as an agent's softphone against the unchanged demo config.

baresip runs headless: no console module, its ``ctrl_tcp`` module on a free port speaks JSON in
netstrings (``<length>:<json>,``): events (``{"event": true, "type": "REGISTER_OK", ...}``) and
answers to commands.  Its account registers as agent 1001 (``demo1001``) and answers calls by
itself (``;answermode=auto``).  The audio source is ``ausine`` (a tone; it needs 48 kHz stereo);
there is no audio player, the call does not need one.  docs/sip-auth.md lists what is tested here.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import ServerProcess, free_port, run_server
from tests.support.sipp import OPERATOR_TOKEN, SippRunner, agent_login_ready, sipp_ready

HOST = "127.0.0.1"
MODULES = Path("/usr/lib/baresip/modules")

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("baresip") is None or not (MODULES / "ctrl_tcp.so").exists(),
                       reason="baresip with its ctrl_tcp module is not installed"),
]


def baresip_config(sip_port: int, ctrl_port: int) -> str:
    """The whole ``config`` file of a headless baresip on loopback (docs/sip-auth.md shows it)."""
    return "\n".join([
        "poll_method epoll",
        f"sip_listen {HOST}:{sip_port}",
        f"net_interface {HOST}",
        "audio_source ausine,440",
        "ausrc_srate 48000",
        "ausrc_channels 2",
        f"module_path {MODULES}",
        "module g711.so",
        "module ausine.so",
        "module ctrl_tcp.so",
        f"ctrl_tcp_listen {HOST}:{ctrl_port}",
        "module_app account.so",
        "module_app menu.so",
        "",
    ])


@dataclass
class Baresip:
    """One baresip process and its ctrl_tcp connection; events are kept in arrival order."""

    proc: subprocess.Popen[bytes]
    ctrl: socket.socket
    log_path: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    _buffer: bytes = b""

    def _read_one(self, until: float) -> dict[str, Any] | None:
        while True:
            head, colon, rest = self._buffer.partition(b":")
            if colon and head.isdigit() and len(rest) > int(head):
                size = int(head)
                if rest[size:size + 1] != b",":
                    raise AssertionError(f"bad netstring from baresip: {self._buffer[:80]!r}")
                self._buffer = rest[size + 1:]
                message: dict[str, Any] = json.loads(rest[:size])
                return message
            left = until - time.monotonic()
            if left <= 0:
                return None
            self.ctrl.settimeout(left)
            try:
                data = self.ctrl.recv(65536)
            except TimeoutError:
                return None
            if not data:
                raise AssertionError(f"baresip closed its control connection\n{self.log()}")
            self._buffer += data

    def wait_event(self, kind: str, timeout: float) -> dict[str, Any]:
        """The first event of this type (seen before or arriving within ``timeout`` seconds)."""
        until = time.monotonic() + timeout
        for event in self.events:
            if event.get("type") == kind:
                return event
        while (message := self._read_one(until)) is not None:
            if message.get("event"):
                self.events.append(message)
                if message.get("type") == kind:
                    return message
        raise AssertionError(f"no {kind} from baresip in {timeout} s; events: "
                             f"{[e.get('type') for e in self.events]}\n{self.log()}")

    def command(self, name: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Run one command (``reginfo``, ``dial``, ...); its response (``ok``, ``data``)."""
        token = f"t{len(self.events)}-{time.monotonic_ns()}"
        body = json.dumps({"command": name, "params": params, "token": token}).encode()
        self.ctrl.sendall(b"%d:%s," % (len(body), body))
        until = time.monotonic() + timeout
        while (message := self._read_one(until)) is not None:
            if message.get("event"):
                self.events.append(message)
            elif message.get("token") == token:
                return message
        raise AssertionError(f"no answer to {name} from baresip in {timeout} s\n{self.log()}")

    def registration(self, timeout: float = 10.0) -> str:
        """``OK`` or ``ERR``: the first settled state ``reginfo`` shows for the account (polled)."""
        until, data = time.monotonic() + timeout, ""
        while time.monotonic() < until:
            data = str(self.command("reginfo").get("data", ""))
            for state in ("OK", "ERR"):
                if f"m{state}\x1b" in data.replace(" ", ""):  # coloured: "\x1b[32mOK \x1b[;m", "\x1b[31mERR\x1b[;m"
                    return state
            time.sleep(0.2)
        raise AssertionError(f"baresip's registration did not settle in {timeout} s: {data!r}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@contextlib.contextmanager
def run_baresip(tmp: Path, server: ServerProcess, agent: str, password: str) -> Iterator[Baresip]:
    """baresip with ``-f tmp`` registering ``agent`` to ``server``; stopped (SIGTERM, then SIGKILL) after."""
    ctrl_port = free_port("tcp")
    (tmp / "config").write_text(baresip_config(free_port(), ctrl_port))
    (tmp / "accounts").write_text(f"<sip:{agent}@{HOST}:{server.sip_port};transport=udp>"
                                  f";auth_pass={password};answermode=auto;regint=600\n")
    log_path = tmp / "baresip.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["baresip", "-f", str(tmp), "-v"], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                ctrl = socket.create_connection((HOST, ctrl_port), timeout=0.5)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"baresip's ctrl_tcp did not open\n{log_path.read_text()}") from None
                time.sleep(0.1)
        with ctrl:
            yield Baresip(proc, ctrl, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def agent_snapshot(server: ServerProcess, agent: str) -> dict[str, Any]:
    request = urllib.request.Request(f"http://{HOST}:{server.http_port}/api/v1/agents/{agent}",
                                     headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def wait_registered(server: ServerProcess, agent: str, timeout: float = 5.0) -> bool:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if agent_snapshot(server, agent)["registered"]:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(tmp_path) as server:
        yield server


def test_baresip_registers_to_the_demo_as_agent_1001(demo: ServerProcess, tmp_path: Path) -> None:
    assert agent_snapshot(demo, "1001")["registered"] is False
    (phone_dir := tmp_path / "baresip").mkdir()
    with run_baresip(phone_dir, demo, "1001", "demo1001") as phone:
        assert phone.registration() == "OK", phone.log()
        assert wait_registered(demo, "1001"), agent_snapshot(demo, "1001")
    assert '"sip.binding.added"' in demo.log_text()


@pytest.mark.skipif(not sipp_ready(), reason="SIPp (Debian sip-tester) is not installed")
def test_baresip_answers_a_call_offered_to_its_agent(demo: ServerProcess, tmp_path: Path, sipps: SippRunner) -> None:
    (phone_dir := tmp_path / "baresip").mkdir()
    with run_baresip(phone_dir, demo, "1001", "demo1001") as phone:
        assert phone.registration() == "OK", phone.log()
        assert wait_registered(demo, "1001")
        agent_login_ready(demo.http_port, "1001")
        # The carrier dials 100 and presses 1 (sales): agent 1001 is the only sales agent ready.
        carrier = sipps.carrier(f"{HOST}:{demo.sip_port}", digit="1", talk_ms=3000, timeout=25)
        established = phone.wait_event("CALL_ESTABLISHED", 20)  # auto-answered (1.0 sends no CALL_INCOMING)
        assert established["direction"] == "incoming" and "5551234" in established["peeruri"], established
        phone.wait_event("CALL_RTPESTAB", 5)  # RTP from the server reached the phone
        assert carrier.wait(25) == 0, carrier.report()
        phone.wait_event("CALL_CLOSED", 10)  # the server hung up the agent leg after the caller's BYE
        assert agent_snapshot(demo, "1001")["state"] == "wrap_up"  # the server saw 1001 take the call


def test_baresip_1_0_gives_up_when_a_sha256_challenge_is_offered(tmp_path: Path) -> None:
    """Why the default challenge is MD5 alone: with SHA-256 offered too, baresip 1.0 cannot register."""
    config = tmp_path / "sha.yaml"
    demo_text = (Path(__file__).resolve().parents[2] / "config" / "demo.yaml").read_text()
    assert "  realm: cti.demo\n" in demo_text
    offered = "  realm: cti.demo\n  digest_algorithms: [MD5, SHA-256]\n"
    config.write_text(demo_text.replace("  realm: cti.demo\n", offered))
    for name in ("flows", "prompts"):
        (tmp_path / name).symlink_to(Path(__file__).resolve().parents[2] / "config" / name)
    with run_server(tmp_path, config=config) as server:
        (phone_dir := tmp_path / "baresip").mkdir()
        with run_baresip(phone_dir, server, "1001", "demo1001") as phone:
            assert phone.registration() == "ERR", phone.log()
            assert "Function not implemented" in phone.log()
            assert agent_snapshot(server, "1001")["registered"] is False
