"""The packages' public faces (``__all__``) and the sans-I/O rule: importing a core imports no asyncio adapter.

Runs in a subprocess so that modules other tests imported do not hide a stray import.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The asyncio adapters of the core packages: each imported explicitly by whoever runs it.
ADAPTERS = {
    "sip.aio", "sip.transport", "sip.transport.base", "sip.transport.tcp", "sip.transport.udp",
    "sip.rtp.aio", "sip.media.aio", "ivr.runner", "ivr.catalog",
}
FACES = ["sip", "sip.rtp", "sip.media", "acd", "ivr"]


def _modules(package: str) -> list[str]:
    base = ROOT / package
    names = []
    for path in sorted(base.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


CORE_MODULES = [m for p in ("sip", "acd", "ivr") for m in _modules(p) if m not in ADAPTERS]


def test_the_adapter_list_names_real_modules() -> None:
    every = {m for p in ("sip", "acd", "ivr") for m in _modules(p)}
    assert ADAPTERS <= every


def test_importing_every_core_module_loads_no_adapter() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {CORE_MODULES!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)
    loaded = set(json.loads(out.stdout))
    assert set(CORE_MODULES) <= loaded
    assert sorted(ADAPTERS & loaded) == []


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_modules_do_not_import_asyncio(module: str) -> None:
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = ROOT / module.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    found = [
        node.lineno for node in ast.walk(tree)
        if (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "asyncio" for a in node.names))
        or (isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "asyncio")
    ]
    assert found == [], f"{path.relative_to(ROOT)} imports asyncio at lines {found}"


@pytest.mark.parametrize("face", FACES)
def test_each_package_names_its_public_api(face: str) -> None:
    module = importlib.import_module(face)
    names = module.__all__
    assert names and len(names) == len(set(names))
    for name in names:
        assert getattr(module, name) is not None


def test_the_adapters_come_from_their_aio_modules_only() -> None:
    """ivr's runner names load on first use from the face; sip.media and sip.rtp give no adapter at all (import
    ``sip.media.aio`` / ``sip.rtp.aio``), and nothing imports an adapter by importing a face."""
    code = (
        "import sys\n"
        "import ivr, sip.media, sip.rtp\n"
        "assert 'ivr.runner' not in sys.modules and 'sip.media.aio' not in sys.modules\n"
        "assert 'sip.rtp.aio' not in sys.modules\n"
        "from ivr import IvrRunner, FlowCatalog\n"
        "for face, name in ((sip.media, 'PromptCache'), (sip.media, 'Recording'), (sip.rtp, 'RtpEndpoint')):\n"
        "    try:\n        getattr(face, name)\n    except AttributeError:\n        pass\n"
        "    else:\n        raise SystemExit(f'{face.__name__}.{name} still resolves')\n"
        "from sip.media.aio import PromptCache, Recording\n"
        "from sip.rtp.aio import RtpEndpoint\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
