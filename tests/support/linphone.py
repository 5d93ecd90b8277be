"""linphonec (Debian ``linphone-cli``, liblinphone 5.1) as a headless softphone for interop tests.

linphonec reads its commands on stdin (``register``, ``call``, ``terminate``, ``soundcard use
files``, ``play``, ``record``...) and prints what happens on stdout ("Registration on ...
successful.", "Call 1 with <sip:...> connected."). Its configuration is the ``linphonerc`` template
in tests/interop/linphone/ (docs/softphones.md shows it); ``HOME`` points into the test's
directory so nothing of the user's own linphone is read or written. Audio comes from and goes to
WAV files (file mode), there is no sound card.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import free_port

TEMPLATE = Path(__file__).resolve().parent.parent / "interop" / "linphone" / "linphonerc"


def linphonec_ready() -> bool:
    return shutil.which("linphonec") is not None


@dataclass
class Linphone:
    """One linphonec process: commands go to its stdin, its output is read from a log file."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    _seen: int = 0

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first match of ``pattern`` in the output after the previous match (polled)."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            text = self.output()
            match = regex.search(text, self._seen)
            if match is not None:
                self._seen = match.end()
                return match
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"linphonec: no {pattern!r} in {timeout} s\n{text[-3000:]}")
            time.sleep(0.1)


@contextlib.contextmanager
def run_linphonec(tmp: Path) -> Iterator[Linphone]:
    """linphonec with auto-answer on a free port under ``tmp``; ``quit`` (then SIGKILL) after."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
    rc = tmp / "linphonerc"
    rc.write_text(TEMPLATE.read_text().format(sip_port=free_port(), rtp_port=free_port()))
    log_path = tmp / "linphonec.log"
    env = {**os.environ, "HOME": str(tmp)}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["linphonec", "-c", str(rc), "-a", "-d", "0"], stdin=subprocess.PIPE, stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=tmp)
    phone = Linphone(proc, log_path)
    try:
        phone.wait_for(r"linphonec> ", 10)
        yield phone
    finally:
        with contextlib.suppress(OSError):
            phone.send("quit")
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
