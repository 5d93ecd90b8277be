"""Settings for the whole test suite.

Hypothesis: no per-example deadline. The properties here check behaviour, not speed (speed is checked by the
benchmarks in tests/bench/); on a loaded two-core host an example that normally takes 10 ms can take 400 ms,
and a deadline would turn that into a spurious failure. With ``CI`` set, Hypothesis' own ``ci`` profile
(derandomised, no example database) applies as well.

A watchdog behind pytest-timeout: pytest-timeout interrupts a test by a signal, which cannot end a test whose
main thread waits on a lock or a thread join that never comes (an event loop's executor shut down behind a hung
worker, say), and a test stuck that way would hold the whole run until CI's own limit. So every test also arms
``faulthandler`` at its own timeout plus :data:`WATCHDOG_GRACE_S`: if it still runs by then, the stacks of all
threads go to the real stderr (the main thread's names the test) and the run exits at once (status 1).
The same watch covers the interpreter's exit: a thread left running (an unclosed database connection's worker,
say) that keeps the process alive :data:`EXIT_GRACE_S` after the session is dumped the same way.

Bytecode: the suite starts the node (``python -m cti serve``) and the ``cti`` command in some 200 processes, each of
which imports the project from this tree. Where the environment forbids writing bytecode (``PYTHONDONTWRITEBYTECODE``,
as CI machines and containers often set), each of them compiled every module it imported again: about 0.4 s of a
node's 1.7 s start on the 2-core reference host. The session compiles the project's packages once at its start
(:func:`pytest_sessionstart`, ``compileall``: 1 s, 0.1 s when nothing changed), so every process reads ``.pyc`` files
(``__pycache__`` is ignored by git).
"""

from __future__ import annotations

import compileall
import faulthandler
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from hypothesis import settings

settings.register_profile("cti", deadline=None)
settings.register_profile("cti-ci", parent=settings.get_profile("ci"), deadline=None)
settings.load_profile("cti-ci" if os.environ.get("CI") else "cti")


ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("acd", "config", "cti", "ivr", "sip", "tests")  # what the node's and the tests' processes import
WATCHDOG_GRACE_S = 90.0
EXIT_GRACE_S = 60.0
_stderr: IO[str] | None = None  # the real stderr, for the watchdog's dumps


def pytest_configure(config: pytest.Config) -> None:
    global _stderr
    # Capturing is suspended while plugins configure: descriptor 2 is still the real stderr here.
    _stderr = os.fdopen(os.dup(2), "w")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the project's modules once (see the module docstring: "Bytecode")."""
    for package in PACKAGES:
        compileall.compile_dir(ROOT / package, quiet=2)


def _timeout_s(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    try:
        return float(item.config.getini("timeout") or 0)
    except ValueError:  # pytest-timeout not loaded: no bound to watch
        return 0.0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    timeout = _timeout_s(item)
    if timeout > 0 and _stderr is not None:  # the main thread's stack in the dump names the test
        faulthandler.dump_traceback_later(timeout + WATCHDOG_GRACE_S, exit=True, file=_stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _stderr is not None:
        faulthandler.dump_traceback_later(EXIT_GRACE_S, exit=True, file=_stderr)
