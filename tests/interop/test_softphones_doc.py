"""docs/softphones.md shows the interop tests' own softphone files, byte for byte (issue 16 §1: the
baresip config in the docs must be the one the test uses). No peer runs here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FILES = ("tests/interop/baresip/config", "tests/interop/baresip/accounts", "tests/interop/baresip/config-tls",
         "tests/interop/baresip/accounts-tls", "tests/interop/linphone/linphonerc")


@pytest.mark.parametrize("name", FILES)
def test_the_doc_includes_the_test_template_verbatim(name: str) -> None:
    doc = (REPO / "docs" / "softphones.md").read_text()
    match = re.search(rf"<!-- begin {re.escape(name)} -->\n```\n(.*?)```\n<!-- end {re.escape(name)} -->", doc, re.S)
    assert match is not None, f"docs/softphones.md has no block for {name}"
    assert match.group(1) == (REPO / name).read_text(), f"docs/softphones.md is stale for {name}"
