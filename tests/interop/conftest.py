"""Fixtures for interop tests: a running `cti serve --demo` on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.procs import ServerProcess, run_server


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("server")
    with run_server(tmp) as server:
        yield server
