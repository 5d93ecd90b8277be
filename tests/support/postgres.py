"""A PostgreSQL server for the store tests: the one named by ``CTI_TEST_PG_DSN``, or a throwaway cluster.

The throwaway cluster is made with the machine's own binaries (``initdb``, ``pg_ctl`` from
``/usr/lib/postgresql/<version>/bin`` or the ``PATH``) in a fresh temporary folder, listens on
``127.0.0.1`` at a free port (password authentication, SCRAM, so the tests see real
credentials in the URL) and on a Unix socket in that folder (trusted), and is stopped and
deleted by :meth:`ThrowawayCluster.stop`. PostgreSQL refuses to run as root, so
when the tests run as root every server command runs as the ``postgres`` system user
(``runuser -u postgres --``) and the folder is handed to that user.

Skipping: without binaries (and without ``CTI_TEST_PG_DSN``) the PostgreSQL tests are skipped,
unless ``CTI_REQUIRE_POSTGRES=1`` (CI), where the missing server is a failure instead.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import free_port

DSN_ENV = "CTI_TEST_PG_DSN"
REQUIRE_ENV = "CTI_REQUIRE_POSTGRES"
SERVER_USER = "postgres"  # the system user the server runs as when the tests run as root
_TOOLS = ("initdb", "pg_ctl")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be had on this machine (the message says why)."""


def required() -> bool:
    """Whether a missing PostgreSQL is a failure rather than a skip (``CTI_REQUIRE_POSTGRES=1``)."""
    return os.environ.get(REQUIRE_ENV, "") == "1"


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: the ``PATH`` first, then the newest Debian install."""
    on_path = shutil.which("pg_ctl")
    if on_path is not None and (Path(on_path).parent / "initdb").is_file():
        return Path(on_path).parent
    candidates = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        if all((bindir / tool).is_file() for tool in _TOOLS) and re.fullmatch(r"[0-9.]+", bindir.parent.name):
            candidates.append((tuple(int(p) for p in bindir.parent.name.split(".")), bindir))
    return max(candidates)[1] if candidates else None


@dataclass
class ThrowawayCluster:
    """A PostgreSQL cluster in a temporary folder, for one test session."""

    bindir: Path
    root: Path
    port: int
    run_as: str | None  # a system user to run the server commands as (when we are root), else None
    password: str  # of the superuser ``postgres``

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def dsn(self) -> str:
        """The superuser's URL over TCP."""
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls, bindir: Path) -> ThrowawayCluster:
        """initdb and start a cluster; on any failure nothing is left running or on disk.

        Raises:
            PostgresUnavailable: running as root without a ``postgres`` user, or initdb/pg_ctl failed.
        """
        run_as = None
        root = Path(tempfile.mkdtemp(prefix="cti-pg-"))
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(SERVER_USER)
            except KeyError as exc:
                shutil.rmtree(root, ignore_errors=True)
                raise PostgresUnavailable(f"running as root and there is no {SERVER_USER!r} user to run the "
                                          "server as") from exc  # fmt: skip
            os.chown(root, user.pw_uid, user.pw_gid)
            run_as = SERVER_USER
        cluster = cls(bindir=bindir, root=root, port=free_port("tcp"), run_as=run_as,
                      password=secrets.token_urlsafe(12))  # fmt: skip
        pwfile = root / "pwfile"
        try:
            pwfile.write_text(cluster.password + "\n")
            pwfile.chmod(0o644)
            cluster._run("initdb", "-D", str(cluster.data), "-U", "postgres", "--auth-local=trust",
                         "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C",
                         "--no-instructions", "--no-sync")  # fmt: skip
            pwfile.unlink()
            options = f"-h 127.0.0.1 -p {cluster.port} -k {root} -c max_connections=200"
            cluster._run("pg_ctl", "-D", str(cluster.data), "-l", str(root / "server.log"), "-w", "-t", "60",
                         "-o", options, "start")  # fmt: skip
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def stop(self) -> None:
        """Stop the server (fast shutdown, immediate if that fails) and delete the folder. Idempotent."""
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
            except PostgresUnavailable:
                with contextlib.suppress(PostgresUnavailable):
                    self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log, for failure messages."""
        try:
            return "\n".join((self.root / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.root, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailable(f"{tool} could not run: {exc}") from exc
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"{tool} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}\n{self.log_tail()}"
            )


def with_search_path(dsn: str, schema: str) -> str:
    """``dsn`` with ``search_path=<schema>`` added to its query (asyncpg passes it to the server)."""
    return f"{dsn}{'&' if '?' in dsn else '?'}search_path={schema}"
