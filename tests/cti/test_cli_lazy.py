"""The ``cti`` command line loads a command group's module only when that group is asked for."""

from __future__ import annotations

import subprocess
import sys

import click

from cti.cli import LAZY_COMMANDS, main


def test_every_lazy_command_is_found_under_its_name() -> None:
    ctx = click.Context(main)
    for name in LAZY_COMMANDS:
        command = main.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name
    assert set(LAZY_COMMANDS) <= set(main.list_commands(ctx))


def test_the_command_line_starts_without_the_store_qa_reports_or_config_loader() -> None:
    heavy = ("cti.store", "cti.qa", "cti.reports", "cti.staffing", "config.loader", "cti.app")
    probe = f"import sys, cti.cli; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_an_unknown_command_is_still_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "cti", "no-such-command"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "No such command" in result.stderr
