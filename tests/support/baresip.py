"""baresip (the Debian package, 1.0) as a headless softphone for interop tests.

baresip runs with ``-f DIR``: its ``config`` and ``accounts`` files are written from the templates
in tests/interop/baresip/ (docs/softphones.md shows the same files; a test keeps them equal). No
console module: its ``ctrl_tcp`` module on a free port speaks JSON in netstrings
(``<length>:<json>,``): events (``{"event": true, "type": "CALL_ESTABLISHED", ...}``) and answers
to commands (``{"command": "dial", "params": "...", "token": "..."}``). The microphone is an
``ausine`` tone; ``sndfile`` records what the phone sends and hears.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.procs import free_port

HOST = "127.0.0.1"
MODULES = Path("/usr/lib/baresip/modules")
TEMPLATES = Path(__file__).resolve().parent.parent / "interop" / "baresip"


def baresip_ready() -> bool:
    return all((MODULES / f"{name}.so").exists() for name in ("ctrl_tcp", "ausine", "sndfile", "g711"))


def _port_pair() -> int:
    """A port P free for UDP and TCP with P+1 free for TCP: baresip listens for SIP on P and for
    SIP over TLS on P+1 (it will not start if either is taken)."""
    for _ in range(50):
        port = free_port()
        if port < 65535 and _tcp_free(port + 1):
            return port
    raise RuntimeError("no free port pair for baresip")


def _tcp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def render(name: str, **values: object) -> str:
    """A template of tests/interop/baresip/ with its ``{placeholders}`` filled in."""
    return (TEMPLATES / name).read_text().format(**values)


@dataclass
class Baresip:
    """One baresip process and its ctrl_tcp connection; events are kept in arrival order."""

    proc: subprocess.Popen[bytes]
    ctrl: socket.socket
    log_path: Path
    snd_path: Path
    cons_port: int
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

    def wait_event(self, kind: str, timeout: float, *, after: int = 0) -> dict[str, Any]:
        """The first event of this type at index ``after`` or later (seen before or arriving within
        ``timeout`` seconds)."""
        until = time.monotonic() + timeout
        for event in self.events[after:]:
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
        """Run one command (``reginfo``, ``dial``, ``sndcode``, ...); its response (``ok``, ``data``)."""
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

    def key(self, key: str) -> None:
        """Press one menu key through the ``cons`` module (``x`` hold, ``X`` resume)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(key.encode(), (HOST, self.cons_port))

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

    def recordings(self) -> dict[str, Path]:
        """sndfile's files of the last call: ``{"enc": sent, "dec": heard}``."""
        found: dict[str, Path] = {}
        for path in sorted(self.snd_path.glob("dump-*.wav")):
            found[path.stem.rsplit("-", 1)[1]] = path
        return found

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@contextlib.contextmanager
def run_baresip(tmp: Path, server_port: int, user: str, password: str = "", *, tone_hz: int = 440,
                register: bool = True, tls_cafile: Path | None = None, mediaenc: str | None = None
                ) -> Iterator[Baresip]:
    """baresip with ``-f tmp`` whose account is ``user`` at the node on ``server_port`` (registered
    with ``password`` when ``register``, else only used to call); stopped (SIGTERM, then SIGKILL) after.

    With ``tls_cafile`` the account is SIP over TLS to ``server_port`` (the node's TLS port), trusting that
    certificate, with the ``srtp`` module loaded (tests/interop/baresip/config-tls and accounts-tls);
    ``mediaenc`` (``srtp-mand``, ``srtp``; None: plain RTP) is the account's media encryption."""
    tmp.mkdir(parents=True, exist_ok=True)
    ctrl_port, cons_port = free_port("tcp"), free_port()
    snd_path = tmp / "snd"
    snd_path.mkdir(exist_ok=True)
    config = render("config", sip_port=_port_pair(), ctrl_port=ctrl_port, tone_hz=tone_hz, snd_path=snd_path,
                    cons_port=cons_port)
    regint = 600 if register else 0
    if tls_cafile is None:
        accounts = render("accounts", agent=user, server_port=server_port, password=password, regint=regint)
    else:
        config += render("config-tls", cafile=tls_cafile)
        accounts = render("accounts-tls", agent=user, server_tls_port=server_port, password=password, regint=regint,
                          mediaenc=f";mediaenc={mediaenc}" if mediaenc else "")
    (tmp / "config").write_text(config)
    (tmp / "accounts").write_text(accounts)
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
            yield Baresip(proc, ctrl, log_path, snd_path, cons_port)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
