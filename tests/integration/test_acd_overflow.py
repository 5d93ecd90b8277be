"""Queue overflow into an IVR flow and ``max_no_answer``, through the real server with SIPp peers.

One SIPp carrier calls a number whose flow queues the call in ``sales``; the only agent (a SIPp UAS
that rings and never answers) lets two offers time out (``ring_timeout_s: 1``); with
``no_answer_reason: null`` it is ready again after the first, and ``max_no_answer: 2`` puts it not ready
("break") after the second. At ``after_s: 3.5`` the overflow rule takes the call out of the queue into
flow ``closed``, which plays a prompt and hangs up: the caller hears the flow and gets the server's
BYE; the CDR ends ``ivr-hangup`` (not ``flowout:overflow_exit``, which is what a hang-up would say)
and the queue leg is a flow-out ``overflow_exit``. About 8 s.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.procs import run_server
from tests.support.sipp import HOST, OPERATOR_TOKEN, PCAPS, SippRunner, agent_login_ready, dtmf_pcap, sipp_ready

pytestmark = [pytest.mark.interop, pytest.mark.skipif(not sipp_ready(), reason="sipp (sip-tester) not installed")]

ROOT = Path(__file__).resolve().parents[2]
FLOWS = """\
flows:
  main:
    start: wait
    nodes:
      wait: {type: queue, queue: sales}
  closed:
    start: sorry
    nodes:
      sorry: {type: play, prompts: [goodbye], next: bye}
      bye: {type: hangup}
"""


def _config(tmp: Path) -> Path:
    flows = tmp / "flows"
    flows.mkdir()
    (flows / "flows.yaml").write_text(FLOWS)
    config = tmp / "overflow.yaml"
    config.write_text(textwrap.dedent(f"""\
        flows_dir: {flows}
        prompts_dir: {ROOT / "config" / "prompts"}
        operator_token: {OPERATOR_TOKEN}
        trunks:
          - {{name: carrier, allow: [127.0.0.1], numbers: {{"100": main}}}}
        agents:
          - {{id: "1001", password: demo1001, skills: {{sales: 5}}, max_no_answer: 2, max_no_answer_reason: break}}
        queues:
          - name: sales
            skills: {{sales: 1}}
            ring_timeout_s: 1
            no_answer_reason: null
            overflow:
              - {{after_s: 3.5, action: to_flow, flow: closed}}
        """))
    return config


def _agent(http_port: int, agent_id: str) -> dict[str, object]:
    request = urllib.request.Request(f"http://{HOST}:{http_port}/api/v1/agents/{agent_id}",
                                     headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        data: dict[str, object] = json.loads(response.read())
        return data


def _post(http_port: int, path: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(f"http://{HOST}:{http_port}{path}", data=json.dumps(body).encode(),
                                     method="POST", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}",
                                                             "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        data: dict[str, object] = json.loads(response.read())
        return data


def test_an_overflow_plays_its_flow_and_max_no_answer_puts_the_agent_on_break(tmp_path: Path) -> None:
    runner = SippRunner(tmp_path / "sipp")
    try:
        with run_server(tmp_path, config=_config(tmp_path)) as server:
            target = f"{HOST}:{server.sip_port}"
            phone = runner.start("agent1001", "agent_answer_noanswer.xml", calls=2, timeout=30)
            assert runner.register_at(target, "1001", phone.port, password="demo1001") == 0
            agent_login_ready(server.http_port, "1001")
            carrier = runner.start("carrier", "carrier_tone.xml", "-s", "100", "-key", "caller", "5551234",
                                   "-key", "dtmf_pcap", dtmf_pcap("1"), "-key", "audio_pcap",
                                   str(PCAPS / "g711a.pcap"), "-set", "greeting_ms", "200", "-set", "talk_ms",
                                   "20000", remote=target, timeout=40)
            assert carrier.wait(35) == 0, carrier.report()
            assert phone.wait(10) == 0, phone.report()  # two offers, each CANCELled at the ring timeout
            agent = _agent(server.http_port, "1001")
            assert (agent["state"], agent["reason"]) == ("paused", "break")
            # every desk.pause_reasons code is one the ACD takes ("admin" is only the desk's default)
            assert _post(server.http_port, "/api/v1/agents/1001/not-ready", {"reason": "admin"})["reason"] == "admin"
            deadline = time.monotonic() + 10
            while True:
                with contextlib.closing(sqlite3.connect(server.data_dir / "cti.sqlite3")) as db:
                    calls = db.execute("SELECT end_reason, hangup_by FROM calls").fetchall()
                    legs = db.execute("SELECT outcome, flowout_reason, offers FROM queue_legs").fetchall()
                    states = db.execute("SELECT state, reason FROM agent_state_history WHERE agent_id = '1001' "
                                        "ORDER BY row_id").fetchall()
                if (calls and calls[0][0]) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        log = server.log_text()
    finally:
        runner.stop_all()
    assert calls == [("ivr-hangup", "system")]  # the flow ended the call, not the overflow
    assert legs == [("flowout", "overflow_exit", 2)]
    assert "call.overflow.flow_started" in log and '"flow": "closed"' in log
    assert "BYE sip:" in carrier.messages()
    assert ("paused", "break") in states
    assert ("paused", "no answer") not in states  # ready again after the first no-answer
