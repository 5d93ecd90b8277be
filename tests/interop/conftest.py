"""Fixtures for interop tests: a running `cti serve --demo` on free ports, a SIPp runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import SippRunner


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("server")
    with run_server(tmp) as server:
        yield server


@pytest.fixture
def sipps(tmp_path: Path) -> Iterator[SippRunner]:
    """Every SIPp started through this runner is stopped at teardown; logs stay under tmp_path/sipp."""
    runner = SippRunner(tmp_path / "sipp")
    try:
        yield runner
    finally:
        runner.stop_all()
