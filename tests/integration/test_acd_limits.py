"""A queue's hard limits send the caller on (docs/acd.md "Limits"), through the real server with SIPp callers.

Queue ``sales`` has nobody logged in, ``max_wait_s: 2`` with ``on_max_wait: {action: voicemail, flow: messages}``
and ``max_size: 1`` with ``on_full: {action: to_flow, flow: busy}``:

* caller A queues, waits 2 s, and goes on in ``messages``: the beep, A talks and presses #, the message is kept
  (a voicemail row of mailbox ``sales``), the server hangs up; the CDR ends ``voicemail``;
* caller B arrives while A waits: the queue is full, B goes on in ``busy`` at once, hears the goodbye prompt and
  gets the server's BYE; the CDR ends ``ivr-hangup``.

Both queue legs are flow-outs with their reason (``max_wait``, ``queue_full``), and ``call.flowed_out`` (here read
from the webhook outbox) names the reason and the flow. About 7 s.
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
from tests.support.sipp import HOST, OPERATOR_TOKEN, PCAPS, SippRunner, dtmf_pcap, sipp_ready
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.interop, pytest.mark.skipif(not sipp_ready(), reason="sipp (sip-tester) not installed")]

ROOT = Path(__file__).resolve().parents[2]
SECRET = "limits-hook-secret"
FLOWS = """\
flows:
  main:
    start: wait
    nodes:
      wait: {type: queue, queue: sales}
  busy:
    start: sorry
    nodes:
      sorry: {type: play, prompts: [goodbye], next: bye}
      bye: {type: hangup}
  messages:
    start: record
    nodes:
      record: {type: voicemail, mailbox: sales, max_seconds: 10, silence_seconds: 3}
"""


def _config(tmp: Path, hook_url: str) -> Path:
    flows = tmp / "flows"
    flows.mkdir()
    (flows / "flows.yaml").write_text(FLOWS)
    config = tmp / "limits.yaml"
    config.write_text(textwrap.dedent(f"""\
        flows_dir: {flows}
        prompts_dir: {ROOT / "config" / "prompts"}
        operator_token: {OPERATOR_TOKEN}
        trunks:
          - {{name: carrier, allow: [127.0.0.1], numbers: {{"100": main}}}}
        agents:
          - {{id: "1001", password: demo1001, skills: {{sales: 5}}}}
        queues:
          - name: sales
            skills: {{sales: 1}}
            max_wait_s: 2
            on_max_wait: {{action: voicemail, flow: messages}}
            max_size: 1
            on_full: {{action: to_flow, flow: busy}}
        webhooks:
          - {{name: crm, url: "{hook_url}", secret: {SECRET}, events: [call.flowed_out]}}
        """))
    return config


def _waiting(http_port: int) -> int:
    request = urllib.request.Request(f"http://{HOST}:{http_port}/api/v1/queues/sales/stats",
                                     headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(json.loads(response.read())["waiting"])


def _rows(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return db.execute(sql).fetchall()


def test_max_wait_leaves_a_voicemail_and_a_full_queue_plays_its_flow(tmp_path: Path) -> None:
    runner = SippRunner(tmp_path / "sipp")
    try:
        with WebhookReceiver(SECRET) as receiver, \
                run_server(tmp_path, config=_config(tmp_path, receiver.url)) as server:
            target = f"{HOST}:{server.sip_port}"
            # A: in the queue 2 s, then the beep (about 0.4 s), 1.5 s of speech, then #.
            first = runner.start("waits", "carrier_voicemail.xml", "-s", "100", "-key", "caller", "5550001",
                                 "-key", "dtmf_pcap", dtmf_pcap("#"), "-set", "greeting_ms", "2800",
                                 "-set", "talk_ms", "1500", remote=target, timeout=25)
            deadline = time.monotonic() + 5
            while _waiting(server.http_port) < 1:
                assert time.monotonic() < deadline, "caller A never reached the queue"
                time.sleep(0.05)
            second = runner.start("full", "carrier_tone.xml", "-s", "100", "-key", "caller", "5550002",
                                  "-key", "dtmf_pcap", dtmf_pcap("1"), "-key", "audio_pcap",
                                  str(PCAPS / "g711a.pcap"), "-set", "greeting_ms", "200", "-set", "talk_ms",
                                  "10000", remote=target, timeout=20)
            assert second.wait(20) == 0, second.report()
            assert first.wait(25) == 0, first.report()
            db_path = server.data_dir / "cti.sqlite3"
            deadline = time.monotonic() + 10
            while True:
                calls = dict(_rows(db_path, "SELECT caller_number, end_reason FROM calls"))
                if (len(calls) == 2 and all(calls.values())) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            legs = dict(_rows(db_path, "SELECT c.caller_number, l.outcome || ':' || l.flowout_reason "
                                       "FROM queue_legs l JOIN calls c ON c.call_id = l.call_id"))
            messages = _rows(db_path, "SELECT mailbox, caller_number, duration_s FROM voicemail")
            events = [json.loads(str(p))["data"] for (p,) in
                      _rows(db_path, "SELECT payload FROM outbox WHERE event_type = 'call.flowed_out'")]
        log = server.log_text()
    finally:
        runner.stop_all()
    assert calls == {"5550001": "voicemail", "5550002": "ivr-hangup"}, calls
    assert legs == {"5550001": "flowout:max_wait", "5550002": "flowout:queue_full"}, legs
    assert len(messages) == 1 and messages[0][:2] == ("sales", "5550001"), messages
    assert float(str(messages[0][2])) > 0.5, messages  # A's speech is in it
    assert "BYE sip:" in second.messages()  # B was hung up by the server after the busy flow's prompt
    assert sorted((e["reason"], e["flow"]) for e in events) == [("max_wait", "messages"), ("queue_full", "busy")]
    assert [e["wait_seconds"] for e in events if e["reason"] == "queue_full"] == [0.0]
    assert '"reason": "flowout:max_wait"' in log and '"flow": "messages"' in log  # call.overflow.flow_started
