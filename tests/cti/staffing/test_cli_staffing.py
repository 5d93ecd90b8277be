"""``cti staffing`` run as a program (a subprocess, no server): exit codes, JSON fields, tables, volume files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BASE = ["--calls", "360", "--interval-s", "1800", "--aht-s", "240", "--sl-target", "0.80", "--answer-within-s", "20"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cti", "staffing", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_json_erlang_c() -> None:
    done = _run(*BASE, "--shrinkage", "0.3", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["traffic_erlangs"] == 48.0 and out["agents"] == 54 and out["agents_scheduled"] == 78
    assert out["service_level"] == pytest.approx(0.817248, abs=1e-6)
    assert out["wait_probability"] == pytest.approx(0.301308, abs=1e-6)
    assert out["asa_s"] == pytest.approx(12.052, abs=5e-4) and out["occupancy"] == pytest.approx(0.8889, abs=5e-5)
    assert [w["agents"] for w in out["what_if"]] == list(range(51, 58))


def test_json_erlang_a() -> None:
    done = _run("--calls", "100", "--aht-s", "180", "--model", "erlang-a", "--patience-s", "120", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["model"], out["agents"]) == ("erlang-a", 12)
    assert out["abandon_probability"] == pytest.approx(0.0616, abs=5e-5)


def test_given_agents() -> None:
    done = _run(*BASE, "--agents", "52", "--what-if", "0", "--json")
    out = json.loads(done.stdout)
    assert (done.returncode, out["agents"], out["meets_target"], len(out["what_if"])) == (0, 52, False, 1)


def test_table() -> None:
    done = _run(*BASE, "--max-occupancy", "0.85")
    assert done.returncode == 0, done.stderr
    assert "48.00 Erlangs" in done.stdout and "agents needed: 57 (limited by occupancy)" in done.stdout
    assert "> 57" in done.stdout and "SCHEDULED" in done.stdout


def test_zero_volume() -> None:
    out = json.loads(_run("--calls", "0", "--aht-s", "180", "--json").stdout)
    assert (out["agents"], out["agents_scheduled"], out["service_level"]) == (0, 0, None)


@pytest.mark.parametrize(("args", "message"), [
    (["--calls", "100", "--aht-s", "0"], "aht_s: the average handle time must be > 0 s"),
    (["--calls", "100", "--aht-s", "-3"], "aht_s: the average handle time must be > 0 s"),
    (["--calls", "100", "--aht-s", "180", "--shrinkage", "1"], "shrinkage: must be >= 0 and below 1"),
    (["--calls", "100", "--aht-s", "180", "--model", "erlang-a"], "patience_s: erlang-a needs"),
    (["--calls", "100"], "give --calls and --aht-s"),
    (["--calls", "100", "--aht-s", "180", "--model", "erlang-x"], "erlang-x"),
])
def test_bad_input_exits_2(args: list[str], message: str) -> None:
    done = _run(*args, "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert message in done.stderr


def test_forecast_file(tmp_path: Path) -> None:
    volume = tmp_path / "monday.csv"
    volume.write_text("interval,calls,aht_s\n09:00,100,180\n09:30,360,240\n")
    done = _run("--forecast", str(volume), "--shrinkage", "0.3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:6] == ["INTERVAL", "CALLS", "AHT_S", "ERLANGS", "AGENTS", "SCHEDULED"]
    assert lines[1].split()[:6] == ["09:00", "100", "180", "10.00", "14", "20"]
    assert lines[2].split()[:6] == ["09:30", "360", "240", "48.00", "54", "78"]
    assert "peak: 78 scheduled at 09:30" in done.stdout
    out = json.loads(_run("--forecast", str(volume), "--json").stdout)
    assert [i["agents"] for i in out["intervals"]] == [14, 54]


def test_bad_forecast_file_prints_nothing_but_the_reasons(tmp_path: Path) -> None:
    volume = tmp_path / "bad.csv"
    volume.write_text("interval,calls,aht_s\n09:00,100,180\n09:30,lots,240\n10:00,50,0\n")
    done = _run("--forecast", str(volume))
    assert (done.returncode, done.stdout) == (2, "")
    assert f"{volume}:3: calls must be a number >= 0, got 'lots'" in done.stderr
    assert f"{volume}:4: aht_s must be a number of seconds > 0" in done.stderr
    missing = _run("--forecast", str(tmp_path / "none.csv"))
    assert missing.returncode == 2 and f"{tmp_path / 'none.csv'}:0: cannot read" in missing.stderr
    both = _run("--forecast", str(volume), "--calls", "3")
    assert both.returncode == 2 and "--forecast takes calls and AHT from the file" in both.stderr
