"""Browser tests of the pages: a real `cti serve --demo`, SIPp peers and headless Chromium (Debian `chromium`)
driven by Playwright for Python through ``executable_path`` (no browser download).

Screenshots (1280x800) go to ``$CTI_WEB_SCREENSHOTS`` or, by default, ``<pytest basetemp>/web-screenshots``; the
folder is named in the test log's summary. docs/web.md shows the current three.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import SippRunner, sipp_ready

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CTI_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 800}


def browser_ready() -> bool:
    """The system Chromium and the Playwright package are installed (.ci/run installs both)."""
    if not Path(CHROMIUM).exists():
        return False
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


needs_browser = pytest.mark.skipif(not browser_ready(), reason=f"no Chromium at {CHROMIUM} or no playwright")
needs_sipp = pytest.mark.skipif(not sipp_ready(), reason="sipp (Debian sip-tester) is not installed")

_shots_dir: list[Path] = []


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests write their screenshots."""
    folder = Path(os.environ.get("CTI_WEB_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "web-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    _shots_dir.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for folder in _shots_dir:
        names = sorted(p.name for p in folder.glob("*.png"))
        if names:
            terminalreporter.write_line(f"web screenshots ({len(names)}): {folder}: {', '.join(names)}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one module. Playwright's sync API runs an event loop of its own while it is open, so it must
    be closed before pytest-asyncio's tests run (module scope: closed at the module's end)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def demo_config(tmp: Path, **extra: Any) -> Path:
    """The demo configuration with its own RTP port window (30000-32767: below the kernel's ephemeral ports and
    away from the default 20000 that other servers on this machine may be using at the same time), and ``extra``
    top-level sections merged in."""
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    for key, value in extra.items():
        config[key] = {**config.get(key, {}), **value}
    config["flows_dir"] = str(REPO / "config" / "flows")
    config["prompts_dir"] = str(REPO / "config" / "prompts")
    low = random.randrange(30000, 32500, 2)
    config["media"] = {**config.get("media", {}), "rtp_port_min": low, "rtp_port_max": low + 260}
    path = tmp / "demo.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


SITE_ZONE = "Asia/Kathmandu"  # UTC+5:45: no machine's zone by accident


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("web-server")
    # A site zone unlike the machine's (the pages show times in it), codes beyond the page's own: one with labels
    # per language, one plain, and a configured label replacing the page's own in one language only.
    config = demo_config(tmp, node={"timezone": SITE_ZONE},
                         desk={"pause_reasons": ["break", {"code": "lunch", "label": {"zh-CN": "午休"}},
                                                 {"code": "coaching", "label": {"en": "Coaching", "zh-CN": "辅导"}}],
                               "dispositions": ["resolved", "billing", "callback"]})
    with run_server(tmp, config=config) as server:
        yield server


@pytest.fixture(scope="module")
def sipps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SippRunner]:
    runner = SippRunner(tmp_path_factory.mktemp("web-sipp"))
    try:
        yield runner
    finally:
        runner.stop_all()
