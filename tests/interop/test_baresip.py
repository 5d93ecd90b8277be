"""baresip (the Debian package, 1.0) as an agent's softphone against the unchanged demo config.

baresip runs headless from the config in tests/interop/baresip/ (tests/support/baresip.py; the
same files are in docs/softphones.md). Its account registers as agent 1001 (``demo1001``) and
answers calls by itself (``;answermode=auto``). docs/sip-auth.md lists what is tested here; calls
with audio, hold, DTMF and hang-ups are in test_baresip_calls.py.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.baresip import baresip_ready, run_baresip
from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import OPERATOR_TOKEN, SippRunner, agent_login_ready, sipp_ready

HOST = "127.0.0.1"

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not baresip_ready(), reason="baresip with its ctrl_tcp module is not installed"),
]


def agent_snapshot(server: ServerProcess, agent: str) -> dict[str, Any]:
    request = urllib.request.Request(f"http://{HOST}:{server.http_port}/api/v1/agents/{agent}",
                                     headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def wait_registered(server: ServerProcess, agent: str, timeout: float = 5.0) -> bool:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if agent_snapshot(server, agent)["registered"]:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(tmp_path) as server:
        yield server


def test_baresip_registers_to_the_demo_as_agent_1001(demo: ServerProcess, tmp_path: Path) -> None:
    assert agent_snapshot(demo, "1001")["registered"] is False
    phone_dir = tmp_path / "baresip"
    with run_baresip(phone_dir, demo.sip_port, "1001", "demo1001") as phone:
        assert phone.registration() == "OK", phone.log()
        assert wait_registered(demo, "1001"), agent_snapshot(demo, "1001")
    assert '"sip.binding.added"' in demo.log_text()


@pytest.mark.skipif(not sipp_ready(), reason="SIPp (Debian sip-tester) is not installed")
def test_baresip_answers_a_call_offered_to_its_agent(demo: ServerProcess, tmp_path: Path, sipps: SippRunner) -> None:
    phone_dir = tmp_path / "baresip"
    with run_baresip(phone_dir, demo.sip_port, "1001", "demo1001") as phone:
        assert phone.registration() == "OK", phone.log()
        assert wait_registered(demo, "1001")
        agent_login_ready(demo.http_port, "1001")
        # The carrier dials 100 and presses 1 (sales): agent 1001 is the only sales agent ready.
        carrier = sipps.carrier(f"{HOST}:{demo.sip_port}", digit="1", talk_ms=3000, timeout=25)
        established = phone.wait_event("CALL_ESTABLISHED", 20)  # auto-answered (1.0 sends no CALL_INCOMING)
        assert established["direction"] == "incoming" and "5551234" in established["peeruri"], established
        phone.wait_event("CALL_RTPESTAB", 5)  # RTP from the server reached the phone
        assert carrier.wait(25) == 0, carrier.report()
        phone.wait_event("CALL_CLOSED", 10)  # the server hung up the agent leg after the caller's BYE
        assert agent_snapshot(demo, "1001")["state"] == "wrap_up"  # the server saw 1001 take the call


def test_baresip_1_0_gives_up_when_a_sha256_challenge_is_offered(tmp_path: Path) -> None:
    """Why the default challenge is MD5 alone: with SHA-256 offered too, baresip 1.0 cannot register."""
    config = tmp_path / "sha.yaml"
    demo_text = (Path(__file__).resolve().parents[2] / "config" / "demo.yaml").read_text()
    assert "  realm: cti.demo\n" in demo_text
    offered = "  realm: cti.demo\n  digest_algorithms: [MD5, SHA-256]\n"
    config.write_text(demo_text.replace("  realm: cti.demo\n", offered))
    for name in ("flows", "prompts"):
        (tmp_path / name).symlink_to(Path(__file__).resolve().parents[2] / "config" / name)
    with run_server(tmp_path, config=config) as server:
        phone_dir = tmp_path / "baresip"
        with run_baresip(phone_dir, server.sip_port, "1001", "demo1001") as phone:
            assert phone.registration() == "ERR", phone.log()
            assert "Function not implemented" in phone.log()
            assert agent_snapshot(server, "1001")["registered"] is False
