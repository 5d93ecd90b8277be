"""Ask a node run with the test hook ``CTI_TEST_GC_REPORT`` (cti/gcaudit.py) what a cyclic collection finds."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path


def gc_report(pid: int, path: Path, timeout: float = 20.0) -> dict[str, object]:
    """Signal the node (SIGUSR1) and return the report it writes to ``path``: ``objects``, ``ours``, ``by_type``."""
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError:
                data = None
            if isinstance(data, dict):
                return data
        time.sleep(0.1)
    raise AssertionError("the node wrote no gc report")
