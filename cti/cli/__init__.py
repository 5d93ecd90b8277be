"""The ``cti`` command line: ``cti serve``, ``cti config check`` and the operator commands.

Exit codes: 0 success, 1 a failure at run time (server unreachable, command refused),
2 bad usage or a refused configuration.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from config.errors import ConfigFileError

# The command groups imported only when one of them runs (or ``cti --help`` lists them): name -> module
# holding a click command of that name. ``cti status`` and the other everyday commands (cti/cli/ops.py)
# then load neither the store nor the QA, reports or staffing modules: an answer in about a third of
# the time (0.95 -> 0.3 s to start the interpreter and the command on the development host).
LAZY_COMMANDS = {
    "adherence": "cti.cli.adherence",
    "events": "cti.cli.events",
    "kpi": "cti.cli.reports",
    "qa": "cti.cli.qa",
    "report": "cti.cli.reports",
    "schedules": "cti.cli.adherence",
    "staffing": "cti.cli.staffing",
    "voicemail": "cti.cli.voicemail",
    "webhooks": "cti.cli.webhooks",
}


class _Commands(click.Group):
    """The top-level group: the commands of LAZY_COMMANDS are imported when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in LAZY_COMMANDS:
            command = getattr(importlib.import_module(LAZY_COMMANDS[cmd_name]), cmd_name)
            if not isinstance(command, click.Command) or command.name != cmd_name:
                raise RuntimeError(f"{LAZY_COMMANDS[cmd_name]}.{cmd_name} is not the command {cmd_name!r}")
            self.add_command(command)
        return command


@click.group(cls=_Commands)
@click.version_option(package_name="cti-server")
def main() -> None:
    """Contact-center CTI server and its operator tools."""


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="configuration file")
@click.option("--demo", is_flag=True, help="run the built-in demo configuration (see README)")
@click.option("--sip-port", type=click.IntRange(0, 65535), help="SIP port for UDP and TCP (default 5060)")
@click.option("--http-port", type=click.IntRange(0, 65535), help="HTTP and WebSocket port (default 8080)")
@click.option("--bind", help="address to listen on (default 127.0.0.1)")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="database and recordings")
@click.option("--log-format", type=click.Choice(["console", "json"]), help="log renderer")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="log level")
@click.option("--loop", type=click.Choice(["auto", "asyncio", "uvloop"]), default="auto", show_default=True,
              help="event loop: uvloop when installed (pip install 'cti-server[fast]'), else asyncio")
def serve(config_file: Path | None, demo: bool, sip_port: int | None, http_port: int | None, bind: str | None,
          data_dir: Path | None, log_format: str | None, log_level: str | None, loop: str) -> None:
    """Start the server (SIP, media, HTTP/WebSocket) and run until SIGINT or SIGTERM."""
    if demo == (config_file is not None):
        raise click.UsageError("give exactly one of --config FILE or --demo")
    from config.loader import demo_config_path, load_config
    from cti.store import StoreError
    path = demo_config_path() if demo else config_file
    assert path is not None
    try:
        loaded = load_config(path)
    except ConfigFileError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(2)
    from cti.app import EXIT_FATAL, Overrides, StoreUnavailableError, exit_now, run_server
    from cti.tlsfiles import TlsFilesError

    overrides = Overrides(sip_port=sip_port, http_port=http_port, bind=bind,
                          data_dir=str(data_dir) if data_dir else None, log_format=log_format, log_level=log_level,
                          welcome=demo)
    code = 0
    try:
        try:
            _run(run_server(loaded, overrides), loop)
        except KeyboardInterrupt:
            pass
    except* OSError as group:  # a port taken, or an address that is not ours
        for failure in group.exceptions:
            click.echo(f"cti: cannot start: {failure}", err=True)
        code = 1
    except* StoreUnavailableError as lost:  # the store failed under a running node: fatal, restart it
        for gone in lost.exceptions:
            click.echo(f"cti: node failed: {gone}", err=True)
        code = EXIT_FATAL
    except* StoreError as store_group:  # the database cannot be opened, reached or migrated
        for store_failure in store_group.exceptions:
            click.echo(f"cti: cannot start: store: {store_failure}", err=True)
        code = 1
    except* TlsFilesError as bad_tls:  # a configured certificate or key that cannot be used: fix the config
        for unusable in bad_tls.exceptions:
            click.echo(f"cti: cannot start: {unusable}", err=True)
        code = 2
    except* ConfigFileError as group:  # the flows the config names are invalid
        for refused in group.exceptions:
            assert isinstance(refused, ConfigFileError)
            for problem in refused.problems:
                click.echo(str(problem), err=True)
        code = 2
    except* Exception as failed:  # fatal: logged with its traceback by run_server (server.node.failed)
        for fatal in failed.exceptions:
            click.echo(f"cti: node failed: {fatal!r}", err=True)
        code = EXIT_FATAL
    # Crash-only: leave now. A thread blocked in a database driver must not keep a stopped node
    # alive (the interpreter's shutdown would wait for it, and a service manager would see no exit).
    exit_now(code)


def _run(main_coro: Coroutine[Any, Any, None], loop: str) -> None:
    """Run the server on uvloop when asked or available ("auto"), else on the standard asyncio loop."""
    if loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                main_coro.close()
                raise click.UsageError("uvloop is not installed: pip install 'cti-server[fast]'") from None
        else:
            uvloop.run(main_coro)
            return
    asyncio.run(main_coro)


@main.group("config")
def config_group() -> None:
    """Configuration files."""


@config_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def config_check(file: Path) -> None:
    """Validate a configuration file (and the flows it names); print file:line: reason per error."""
    from config.loader import check_config, load_config
    from cti.app import check_everything

    problems = check_config(file)
    if not problems:
        problems = check_everything(load_config(file))
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        sys.exit(2)
    click.echo(f"{file}: OK")


def _register_operator_commands() -> None:
    from cti.cli.ops import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register_operator_commands()
