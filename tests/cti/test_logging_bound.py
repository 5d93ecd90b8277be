"""A node binds the project's module-level loggers once at start-up (cti/logging.py ``bind_module_loggers``):
the bound loggers write what the lazy proxies wrote, filter the same levels, and nothing else is touched."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import ModuleType

import pytest
import structlog
from structlog.testing import LogCapture

from cti.logging import bind_module_loggers


@pytest.fixture
def captured() -> Iterator[LogCapture]:
    capture = LogCapture()
    structlog.configure(processors=[capture], wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
                        cache_logger_on_first_use=True)
    try:
        yield capture
    finally:
        structlog.reset_defaults()


def _module(name: str) -> ModuleType:
    module = ModuleType(name)
    module.log = structlog.get_logger(name)  # type: ignore[attr-defined]
    module.other = "not a logger"  # type: ignore[attr-defined]
    return module


def test_project_loggers_are_bound_and_log_as_before(captured: LogCapture) -> None:
    ours, theirs = _module("cti.node.fake"), _module("aiohttp.fake")
    proxy_type = type(ours.log)
    assert bind_module_loggers({"cti.node.fake": ours, "aiohttp.fake": theirs, "gone": None}) == 1
    assert type(ours.log) is not proxy_type and type(theirs.log) is proxy_type and ours.other == "not a logger"
    ours.log.info("fake.thing.happened", call_id="c1")
    ours.log.debug("fake.thing.filtered")
    theirs.log.warning("fake.other.happened")
    assert captured.entries == [
        {"event": "fake.thing.happened", "call_id": "c1", "log_level": "info"},
        {"event": "fake.other.happened", "log_level": "warning"},
    ]
