"""SIPp as an external peer for call-path tests and the call-path benchmark.

Every SIPp process is started through a :class:`SippRunner`, which remembers it and stops it in
:meth:`SippRunner.stop_all` (call that from fixture teardown / a ``finally``). Each process runs in
its own directory under the runner's work directory, so its ``-trace_err`` / ``-trace_msg`` /
``-trace_stat`` files and its stdout are kept as artifacts (pytest's ``tmp_path``).

How agents are run (see tests/interop/scenarios/README.md): ONE SIPp process per agent,
``agent_register_answer.xml`` as the main scenario (REGISTER with digest auth, Contact = its own
port) and one of the ``agent_answer*.xml`` scenarios as the out-of-call scenario (``-oocsf``),
which SIPp runs for the server's INVITE (a new Call-ID). The load benchmark instead runs one UAS
(``load_agent_uas.xml``) and registers several agents at its port with ``agent_register.xml``.

The admin-API assumptions of the server-facing tests live in :func:`agent_login_ready` only.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.procs import SCENARIOS, free_port

PCAPS = Path("/usr/share/sip-tester")
HOST = "127.0.0.1"
TIMED_OUT = -1000  # Sipp.wait: still running after the given time (then stopped)

# --- server admin API (assumptions; adjust here) -------------------------------------------------
OPERATOR_TOKEN = "demo-operator-token-0001"
DEMO_PASSWORDS = {agent: f"demo{agent}" for agent in ("1001", "1002", "1003", "1004")}


def agent_login_ready(http_port: int, agent_id: str, *, ready: bool = True, timeout: float = 5.0) -> None:
    """Log an agent in (and make it ready) through the admin HTTP API.

    Assumed: ``POST /api/v1/agents/<id>/login`` with JSON ``{"ready": true}`` and the demo operator
    token as a Bearer token; any 2xx is success. Raises on anything else.
    """
    request = urllib.request.Request(
        f"http://{HOST}:{http_port}/api/v1/agents/{agent_id}/login",
        data=json.dumps({"ready": ready}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if not 200 <= response.status < 300:
            raise RuntimeError(f"login of agent {agent_id}: HTTP {response.status}")


# --- SIPp -----------------------------------------------------------------------------------------
def sipp_ready() -> bool:
    """SIPp and its pcaps are installed (Debian sip-tester)."""
    return shutil.which("sipp") is not None and (PCAPS / "g711a.pcap").exists()


def dtmf_pcap(digit: str) -> str:
    """SIPp's RFC 4733 pcap for one key: 0-9, * or #."""
    name = {"*": "star", "#": "pound"}.get(digit, digit)
    path = PCAPS / f"dtmf_2833_{name}.pcap"
    if not path.exists():
        raise ValueError(f"no SIPp DTMF pcap for {digit!r}")
    return str(path)


@dataclass
class Sipp:
    """One running SIPp process and where its files are."""

    name: str
    cmd: list[str]
    workdir: Path
    port: int
    media_port: int
    proc: subprocess.Popen[bytes]
    timed_out: bool = False

    def wait(self, timeout: float) -> int:
        """Exit code, or :data:`TIMED_OUT` (after stopping it) if it has not ended within ``timeout`` s.

        SIPp exits 0 on SIGTERM, so a process this helper had to stop never counts as a success.
        """
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            self.timed_out = True
            return TIMED_OUT

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _read(self, pattern: str) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob(pattern)))

    def messages(self) -> str:
        """Everything in the -trace_msg log so far (SIPp flushes it per message)."""
        return self._read("*_messages.log")

    def errors(self) -> str:
        return self._read("*_errors.log")

    def wait_for_message(self, text: str, timeout: float) -> bool:
        """Poll the messages log until ``text`` appears (e.g. ``"INVITE sip:"``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.messages():
                return True
            if self.proc.poll() is not None:
                return text in self.messages()
            time.sleep(0.05)
        return False

    def report(self) -> str:
        """A short failure report: the command, the error log and the end of the message log."""
        stopped = ", stopped by the test" if self.timed_out else ""
        return (
            f"SIPp {self.name} (rc={self.proc.returncode}{stopped}) in {self.workdir}\n  {' '.join(self.cmd)}\n"
            f"--- errors ---\n{self.errors()[-3000:]}\n--- last messages ---\n{self.messages()[-3000:]}"
        )


# SIPp binds its audio RTP port P and P+1, video P+2 and P+3. A port merely free when chosen from
# the kernel's ephemeral range (32768-60999 here) can be taken by any socket before SIPp binds it,
# so media ports come from 10000-19999: below the servers' RTP ranges (20000 up), outside the
# ephemeral range, never handed out twice by this process.
_MEDIA_PORTS = range(10000, 19996, 4)
_media_handed_out: set[int] = set()
_media_lock = threading.Lock()


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def free_media_port() -> int:
    """A port P for SIPp's ``-mp`` with P..P+3 free for UDP (see above)."""
    with _media_lock:
        if len(_media_handed_out) > len(_MEDIA_PORTS) // 2:  # a long run: the early SIPps are gone
            _media_handed_out.clear()
        for _ in range(500):
            port = random.choice(_MEDIA_PORTS)
            if port not in _media_handed_out and all(_udp_free(p) for p in range(port, port + 4)):
                _media_handed_out.add(port)
                return port
    raise RuntimeError("no free media port range for SIPp")


@dataclass
class SippRunner:
    """Starts SIPp processes and keeps track of them so that :meth:`stop_all` ends them all."""

    workdir: Path
    started: list[Sipp] = field(default_factory=list)
    binary: str = "sipp"  # another SIPp, e.g. the one with TLS of .ci/sipp-tls (tests/interop/test_sipp_tls.py)

    def start(
        self,
        name: str,
        scenario: str,
        *args: str,
        remote: str | None = None,
        ooc: str | None = None,
        port: int | None = None,
        calls: int | None = 1,
        timeout: float = 30.0,
        trace_msg: bool = True,
        quiet: bool = False,
    ) -> Sipp:
        """Start ``sipp -sf SCENARIO [remote]`` on free ports, bounded by ``-m calls`` and ``-timeout``.

        ``calls=None`` leaves out ``-m`` (a UAS that answers until stopped). ``quiet`` sends the
        screen output to /dev/null instead of ``stdout.log`` (long load runs).
        """
        workdir = self.workdir / name
        workdir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        media_port = free_media_port()
        cmd = [self.binary, "-sf", str(SCENARIOS / scenario)]
        if ooc:
            cmd += ["-oocsf", str(SCENARIOS / ooc)]
        if remote:
            cmd.append(remote)
        cmd += ["-i", HOST, "-p", str(port), "-mi", HOST, "-mp", str(media_port)]
        if calls is not None:
            cmd += ["-m", str(calls)]
        cmd += ["-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_err", "-nostdin"]
        if trace_msg:
            cmd.append("-trace_msg")
        cmd += list(args)
        if quiet:
            proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    stdin=subprocess.DEVNULL)
        else:
            with open(workdir / "stdout.log", "wb") as out:
                proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        sipp = Sipp(name, cmd, workdir, port, media_port, proc)
        self.started.append(sipp)
        return sipp

    def carrier(
        self,
        server: str,
        *,
        digit: str = "2",
        dialled: str = "100",
        caller: str = "5551234",
        greeting_ms: int = 3000,  # the demo greeting lasts 2.4 s; a digit during it is not heard
        talk_ms: int | None = 3000,
        hangup_ms: int | None = None,
        timeout: float = 30.0,
        name: str = "carrier",
    ) -> Sipp:
        """The carrier calls ``dialled`` and presses ``digit``; talks ``talk_ms`` or, with ``hangup_ms``,
        hangs up that long after the digit (carrier_call_hangup_early.xml)."""
        common = ["-s", dialled, "-key", "caller", caller, "-key", "dtmf_pcap", dtmf_pcap(digit),
                  "-set", "greeting_ms", str(greeting_ms)]
        if hangup_ms is not None:
            return self.start(name, "carrier_call_hangup_early.xml", *common, "-set", "hangup_ms", str(hangup_ms),
                              remote=server, timeout=timeout)
        return self.start(name, "carrier_call_dtmf.xml", *common, "-set", "talk_ms", str(talk_ms or 3000),
                          remote=server, timeout=timeout)

    def agent(
        self,
        server: str,
        agent_id: str,
        answer: str = "agent_answer.xml",
        *args: str,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> Sipp:
        """One SIPp process that registers ``agent_id`` and handles one incoming call with ``answer``
        (agent_answer.xml, agent_answer_hangup.xml, agent_answer_noanswer.xml or agent_answer_busy.xml)."""
        password = password or DEMO_PASSWORDS[agent_id]
        return self.start(f"agent{agent_id}", "agent_register_answer.xml", "-s", agent_id, "-au", agent_id,
                          "-ap", password, *args, remote=server, ooc=answer, timeout=timeout)

    def register_at(self, server: str, agent_id: str, contact_port: int, *, password: str | None = None) -> int:
        """Register ``agent_id`` with its Contact at ``contact_port`` (another SIPp); the exit code."""
        password = password or DEMO_PASSWORDS.get(agent_id, "")
        sipp = self.start(f"register{agent_id}", "agent_register.xml", "-s", agent_id, "-au", agent_id,
                          "-ap", password, "-key", "contact_port", str(contact_port), remote=server, timeout=10)
        return sipp.wait(15)

    def stop_all(self) -> None:
        for sipp in self.started:
            sipp.stop()


# --- statistics -----------------------------------------------------------------------------------
@dataclass
class SippStats:
    successful: int
    failed: int
    elapsed_s: float
    setup_ms: list[float]
    incoming: int = 0  # calls created by received INVITEs (a UAS's offered calls)

    def percentile(self, p: float) -> float | None:
        if not self.setup_ms:
            return None
        ordered = sorted(self.setup_ms)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _hms(value: str) -> float:
    """SIPp's ``HH:MM:SS`` or ``HH:MM:SS:uuuuuu`` as seconds."""
    parts = value.split(":")
    seconds = int(parts[0]) * 3600 + int(parts[1]) * 60 + int(parts[2])
    return seconds + (int(parts[3]) / 1e6 if len(parts) > 3 else 0.0)


def read_stats(workdir: Path) -> SippStats:
    """Read the last line of a ``-trace_stat`` CSV and all ``-trace_rtt`` rows in ``workdir``."""
    stat_files = sorted(p for p in workdir.glob("*_.csv"))
    successful = failed = incoming = 0
    elapsed = 0.0
    if stat_files:
        with open(stat_files[-1], newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
        if len(rows) >= 2:
            last = dict(zip(rows[0], rows[-1], strict=False))
            successful = int(last.get("SuccessfulCall(C)", 0) or 0)
            failed = int(last.get("FailedCall(C)", 0) or 0)
            incoming = int(last.get("IncomingCall(C)", 0) or 0)
            elapsed = _hms(last.get("ElapsedTime(C)", "0:0:0") or "0:0:0")
    setup: list[float] = []
    for rtt in workdir.glob("*_rtt.csv"):
        with open(rtt, newline="") as f:
            for row in csv.reader(f, delimiter=";"):
                if len(row) >= 3 and row[2] == "setup":
                    setup.append(float(row[1]))
    return SippStats(successful, failed, elapsed, setup, incoming)
