"""Fixtures for the IVR tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ivr.helpers import write_prompt

PROMPTS = ("hello", "menu", "invalid", "silence", "enter", "bye", "beep")


@pytest.fixture
def prompt_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "prompts"
    for name in PROMPTS:
        write_prompt(folder, name)
    return folder
