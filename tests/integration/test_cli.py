"""The real ``cti`` operator commands against a real ``cti serve --demo`` (subprocesses both)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.procs import ServerProcess, free_port, run_server

TOKEN = "demo-operator-token-0001"  # the demo operator token (README)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with run_server(tmp_path_factory.mktemp("cli")) as proc:
        deadline = time.monotonic() + 15
        while True:  # SIP answers first; the HTTP listener comes up right after
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{proc.http_port}/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield proc


def run_cti(server: ServerProcess | None, *args: str, token: str | None = TOKEN,
        url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CTI_URL", "CTI_TOKEN")}
    if server is not None:
        env["CTI_URL"] = url or f"http://127.0.0.1:{server.http_port}"
    elif url is not None:
        env["CTI_URL"] = url
    if token is not None:
        env["CTI_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "cti", *args], capture_output=True, text=True, env=env, timeout=30)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result))


def test_status(server: ServerProcess) -> None:
    out = ok(run_cti(server, "status"))
    assert "node" in out and "demo" in out
    assert any(line.split()[:1] == ["sales"] for line in out.splitlines())
    assert "refused" in out and "transactions" in out
    data = as_json(run_cti(server, "status", "--json"))
    assert data["node"] == "demo" and set(data["agents"]) >= {"logged_out", "available"}
    assert data["calls"]["refused"] == {} and data["sip"]["resent"] == 0
    assert [q["queue"] for q in data["queues"]] == ["sales", "support"]


def test_agents_list_table_and_json(server: ServerProcess) -> None:
    lines = ok(run_cti(server, "agents", "list")).splitlines()
    assert lines[0].split()[:3] == ["AGENT_ID", "NAME", "STATE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"1001", "1002", "1003", "1004"}
    assert "Alice Sales" in rows["1001"] and "sales:5" in rows["1001"]
    agents = as_json(run_cti(server, "agents", "list", "--json"))["agents"]
    assert {a["agent_id"]: a["skills"] for a in agents}["1002"] == {"sales": 3, "support": 5}


def test_state_round_trip_seen_in_show(server: ServerProcess) -> None:
    def state() -> tuple[str, str | None]:
        agent = as_json(run_cti(server, "agents", "show", "1003", "--json"))
        return agent["state"], agent["reason"]

    assert state() == ("logged_out", None)
    assert ok(run_cti(server, "agents", "login", "1003")).startswith("1003: paused")
    assert ok(run_cti(server, "agents", "ready", "1003")).strip() == "1003: available"
    assert state() == ("available", None)
    ok(run_cti(server, "agents", "not-ready", "1003", "--reason", "lunch"))
    assert state() == ("paused", "lunch")
    shown = ok(run_cti(server, "agents", "show", "1003"))
    assert any(line.split() == ["reason", "lunch"] for line in shown.splitlines())
    ok(run_cti(server, "agents", "logout", "1003"))
    assert state() == ("logged_out", None)
    ok(run_cti(server, "agents", "login", "1003", "--ready"))
    assert state() == ("available", None)
    refused = run_cti(server, "agents", "login", "1003")
    assert refused.returncode == 1 and refused.stderr.startswith("cti: acd.")
    ok(run_cti(server, "agents", "logout", "1003"))


def test_queue_stats(server: ServerProcess) -> None:
    stats = as_json(run_cti(server, "queues", "stats", "sales", "--json"))
    assert stats["queue"] == "sales" and stats["waiting"] == 0
    out = ok(run_cti(server, "queues", "stats", "support"))
    assert any(line.split() == ["queue", "support"] for line in out.splitlines())
    missing = run_cti(server, "queues", "stats", "nope")
    assert missing.returncode == 1 and "unknown_queue" in missing.stderr


def test_unknown_agent_is_a_clear_error(server: ServerProcess) -> None:
    result = run_cti(server, "agents", "show", "9999")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("cti: unknown_agent:") and len(result.stderr.strip().splitlines()) == 1


def test_unreachable_server_exits_1_with_a_clear_message() -> None:
    port = free_port("tcp")  # nothing listens there
    result = run_cti(None, "agents", "list", url=f"http://127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr.strip() == f"cti: cannot reach the server at http://127.0.0.1:{port}: connection refused"
    assert "Traceback" not in result.stderr


def test_wrong_token_exits_1_unauthorized(server: ServerProcess) -> None:
    result = run_cti(server, "status", "--token", "not-the-token")
    assert result.returncode == 1 and result.stderr.startswith("cti: unauthorized:")
    result = run_cti(server, "status", token=None)
    assert result.returncode == 1 and "unauthorized" in result.stderr and "CTI_TOKEN" in result.stderr


def test_bad_usage_exits_2(server: ServerProcess) -> None:
    assert run_cti(server, "agents", "not-ready", "1001").returncode == 2  # --reason is required
    assert run_cti(server, "agents", "set-skills", "1001", "--skill", "sales").returncode == 2
    assert run_cti(server, "status", "--url", "ftp://x").returncode == 2


def test_runtime_agent_add_set_skills_remove(server: ServerProcess) -> None:
    added = as_json(run_cti(server, "agents", "add", "2001", "--name", "Eve", "--password", "secret1",
                        "--skill", "sales=4", "--json"))
    assert (added["agent_id"], added["skills"], added["queues"]) == ("2001", {"sales": 4}, ["sales"])
    changed = as_json(run_cti(server, "agents", "set-skills", "2001", "--skill", "support=5", "--json"))
    assert changed["skills"] == {"support": 5}
    assert ok(run_cti(server, "agents", "remove", "2001")).strip() == "2001: removed"
    assert run_cti(server, "agents", "show", "2001").returncode == 1
