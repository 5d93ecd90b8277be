"""`cti serve` and `cti config check` refuse what cannot work, clearly, and never hang."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def cti(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cti", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


def demo_with(tmp: Path, **changes: object) -> Path:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["flows_dir"] = str(REPO / "config" / "flows")
    config["prompts_dir"] = str(REPO / "config" / "prompts")
    config.update(changes)
    path = tmp / "cti.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_config_check_accepts_the_demo_and_refuses_a_bad_file(tmp_path: Path) -> None:
    good = cti("config", "check", str(REPO / "config" / "demo.yaml"))
    assert good.returncode == 0 and "OK" in good.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("sip:\n  port: 99999\nqueues:\n  - {name: q1, wrap_up_s: -1}\n")
    result = cti("config", "check", str(bad))
    assert result.returncode == 2
    assert f"{bad}:2: sip.port" in result.stderr and f"{bad}:4: queues.0.wrap_up_s" in result.stderr


def test_config_check_finds_errors_in_the_flows_the_config_names(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text("flows:\n  main:\n    start: a\n    nodes:\n      a: {type: play, prompts: [nope],"
                                     " next: b}\n")
    path = demo_with(tmp_path, flows_dir=str(flows))
    result = cti("config", "check", str(path))
    assert result.returncode == 2 and f"{flows / 'main.yaml'}:" in result.stderr, result.stderr


def test_serve_refuses_a_bad_config_before_binding_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents:\n  - {id: '1001', password: ab}\n")
    result = cti("serve", "--config", str(bad), "--sip-port", "0", "--http-port", "0")
    assert result.returncode == 2 and f"{bad}:2: agents.0.password" in result.stderr


def test_serve_on_a_taken_port_says_so_and_exits(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = cti("serve", "--demo", "--sip-port", str(port), "--http-port", "0",
                     "--data-dir", str(tmp_path / "var"))
    assert result.returncode == 1
    assert "cti: cannot start:" in result.stderr and str(port) in result.stderr


def test_serve_with_an_unusable_database_says_so_and_exits(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    (data / "cti.sqlite3").write_bytes(b"this is not an SQLite database" * 100)
    result = cti("serve", "--demo", "--sip-port", "0", "--http-port", "0", "--data-dir", str(data))
    assert result.returncode == 1
    assert "cti: cannot start: store:" in result.stderr and "Traceback" not in result.stderr


def test_the_demo_says_where_to_go_next_and_the_pages_answer(tmp_path: Path) -> None:
    from tests.support.procs import run_server

    with run_server(tmp_path) as server:
        deadline = time.monotonic() + 10
        while "Next steps" not in server.log_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        text = server.log_text()
        for page in ("agent", "supervisor", "wallboard"):
            url = f"http://127.0.0.1:{server.http_port}/{page}"
            assert url in text, text[-1500:]
            with urllib.request.urlopen(url, timeout=5) as answer:
                assert answer.status == 200 and "text/html" in answer.headers["Content-Type"]
