"""The ``cti`` command line."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """Contact-center CTI server and its operator tools."""
