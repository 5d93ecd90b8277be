"""baresip 1.0 (Debian) on calls through the UNCHANGED demo config (issue 16 §1): audio both ways,
hold, RFC 4733 DTMF through the IVR, and a BYE from either side.

* A SIPp carrier calls 100 and presses 1 (sales); agent 1001 is a baresip (registered, logged in
  through the admin API, ``answermode=auto``). The carrier plays a 1000 Hz tone, baresip's
  microphone is a 440 Hz tone. baresip puts the call on hold and takes it back (re-INVITEs the node
  answers), then hangs up: the node ends the carrier's leg with a BYE.
* A baresip *caller* calls 100 from the trunk address, presses 2 (support) as an RFC 4733 event
  (``sndcode``), and reaches agent 1003, another baresip. The caller hangs up: the agent's phone
  gets the node's BYE.

Audio is checked at both ends and in the middle: each phone's sndfile recording of what it heard
holds the other side's tone, and the node's stereo recording (caller left, agent right) holds
1000/440 Hz. The detector is a Goertzel filter over 20 ms frames (tests/support/tone.py).
About 25 s for the two tests.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.baresip import Baresip, baresip_ready, run_baresip
from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import OPERATOR_TOKEN, SippRunner, agent_login_ready, dtmf_pcap, sipp_ready
from tests.support.tone import read_wav, tone_share, write_tone_pcap

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not baresip_ready(), reason="baresip with ctrl_tcp, ausine, sndfile is not installed"),
    pytest.mark.skipif(not sipp_ready(), reason="SIPp (Debian sip-tester) is not installed"),
]
HOST = "127.0.0.1"
CALLER_HZ, AGENT_HZ = 1000, 440
SHARE = 0.5  # a tone holds at least half of a 20 ms frame's energy (a pure one: ~1; another sound: ~0)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(tmp_path) as server:
        yield server


def _api(server: ServerProcess, path: str) -> dict[str, Any]:
    request = urllib.request.Request(f"http://{HOST}:{server.http_port}{path}",
                                     headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def _registered(server: ServerProcess, agent: str, phone: Baresip) -> None:
    assert phone.registration() == "OK", phone.log()
    deadline = time.monotonic() + 5
    while not _api(server, f"/api/v1/agents/{agent}")["registered"]:
        assert time.monotonic() < deadline, f"agent {agent} not registered on the node"
        time.sleep(0.1)
    agent_login_ready(server.http_port, agent)


def _node_recording(server: ServerProcess, timeout: float = 10.0) -> Path:
    """The WAV of the node's one recorded call, once the call's record is closed."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(server.data_dir / "cti.sqlite3") as db:
            rows = db.execute("SELECT path FROM recordings").fetchall()
            ended = db.execute("SELECT count(*) FROM calls WHERE t_ended IS NOT NULL").fetchone()[0]
        if rows and ended and Path(rows[0][0]).exists():
            return Path(rows[0][0])
        assert time.monotonic() < deadline, f"no finished recording in {timeout} s"
        time.sleep(0.2)


def _shares(path: Path, freq: int) -> list[float]:
    rate, channels = read_wav(path)
    return [tone_share(samples, rate, freq) for samples in channels]


def _check_audio(server: ServerProcess, caller_heard: Path | None, agent: Baresip) -> str:
    """Both tones where they belong; a summary for the failure message."""
    node = _node_recording(server)
    caller_side, agent_side = _shares(node, CALLER_HZ)[0], _shares(node, AGENT_HZ)[1]
    agent_heard = agent.recordings()["dec"]
    heard_by_agent = _shares(agent_heard, CALLER_HZ)[0]
    summary = (f"node recording: caller {CALLER_HZ} Hz share {caller_side:.2f}, agent {AGENT_HZ} Hz share "
               f"{agent_side:.2f}; agent phone heard {CALLER_HZ} Hz share {heard_by_agent:.2f}")
    if caller_heard is not None:
        summary += f"; caller phone heard {AGENT_HZ} Hz share {_shares(caller_heard, AGENT_HZ)[0]:.2f}"
    assert caller_side > SHARE and agent_side > SHARE and heard_by_agent > SHARE, summary
    # and not the other way round (a crossed bridge would put each tone on the wrong side)
    assert _shares(node, AGENT_HZ)[0] < SHARE and _shares(node, CALLER_HZ)[1] < SHARE, summary
    if caller_heard is not None:
        assert _shares(caller_heard, AGENT_HZ)[0] > SHARE, summary
    return summary


def test_baresip_agent_answers_a_sipp_carrier_holds_resumes_and_hangs_up(
        demo: ServerProcess, tmp_path: Path, sipps: SippRunner) -> None:
    tone = write_tone_pcap(tmp_path / "caller-tone.pcap", CALLER_HZ, 6.0)
    with run_baresip(tmp_path / "agent", demo.sip_port, "1001", "demo1001", tone_hz=AGENT_HZ) as phone:
        _registered(demo, "1001", phone)
        carrier = sipps.start("carrier", "carrier_tone.xml", "-s", "100", "-key", "caller", "5551234",
                              "-key", "dtmf_pcap", dtmf_pcap("1"), "-key", "audio_pcap", str(tone),
                              "-set", "greeting_ms", "3000", "-set", "talk_ms", "15000",
                              remote=f"{HOST}:{demo.sip_port}", timeout=40)
        established = phone.wait_event("CALL_ESTABLISHED", 20)  # auto-answered
        assert established["direction"] == "incoming" and "5551234" in established["peeruri"], established
        phone.wait_event("CALL_RTPESTAB", 5)
        time.sleep(2.0)  # talk
        mark = len(phone.events)
        phone.key("x")  # hold: a re-INVITE with a=sendonly
        time.sleep(1.0)
        phone.key("X")  # resume: a=sendrecv
        time.sleep(1.5)
        assert phone.command("hangup").get("ok") is not False  # the agent hangs up first
        phone.wait_event("CALL_CLOSED", 10, after=mark)
        assert carrier.wait(25) == 0, carrier.report()
        messages = carrier.messages()
        assert "BYE sip:" in messages and messages.index("BYE sip:") > messages.index("SIP/2.0 200 OK"), \
            "the carrier did not receive the node's BYE"
        assert "call: hold sip:" in phone.log(), phone.log()
        summary = _check_audio(demo, None, phone)
    log = demo.log_text()
    assert '"level": "error"' not in log, log[-3000:]
    reinvites = _reinvite_answers(log, established["id"])
    assert reinvites == [200, 200], f"hold and resume re-INVITEs answered {reinvites}"
    assert _api(demo, "/api/v1/agents/1001")["state"] == "wrap_up"
    with sqlite3.connect(demo.data_dir / "cti.sqlite3") as db:
        row = db.execute("SELECT final_queue, final_agent, hangup_by FROM calls").fetchone()
    assert row == ("sales", "1001", "agent"), row
    print(summary)


def _reinvite_answers(log: str, call_id: str) -> list[int]:
    """Final statuses the node sent to the phone's re-INVITEs (CSeq other than the node's 1 INVITE)."""
    received, answers = set(), []
    for line in log.splitlines():
        if f'"call_id": "{call_id}"' not in line or " INVITE\"" not in line:
            continue
        entry = json.loads(line)
        if entry["cseq"] == "1 INVITE":
            continue
        if entry["event"] == "sip.message.received" and "method" in entry:
            received.add(entry["cseq"])
        elif entry["event"] == "sip.message.sent" and entry.get("status", 0) >= 200 and entry["cseq"] in received:
            answers.append(entry["status"])
    return answers


def test_baresip_caller_presses_1_in_the_ivr_and_hangs_up_on_a_baresip_agent(
        demo: ServerProcess, tmp_path: Path) -> None:
    """Only the digit can bring this call to 1001: with no input the IVR sends it to support,
    which 1001 (sales only) does not serve."""
    with (run_baresip(tmp_path / "agent", demo.sip_port, "1001", "demo1001", tone_hz=AGENT_HZ) as agent,
          run_baresip(tmp_path / "caller", demo.sip_port, "5550123", tone_hz=CALLER_HZ, register=False) as caller):
        _registered(demo, "1001", agent)
        assert caller.command("dial", f"sip:100@{HOST}:{demo.sip_port}").get("ok") is not False
        caller.wait_event("CALL_ESTABLISHED", 10)  # the IVR answers
        time.sleep(2.8)  # the greeting (2.4 s): a digit during it is not heard
        assert caller.command("sndcode", "1").get("ok") is not False  # RFC 4733 telephone-event
        established = agent.wait_event("CALL_ESTABLISHED", 20)  # queue sales -> 1001, auto-answered
        assert "5550123" in established["peeruri"], established
        agent.wait_event("CALL_RTPESTAB", 5)
        time.sleep(3.0)  # talk
        mark = len(agent.events)
        assert caller.command("hangup").get("ok") is not False  # the caller hangs up first
        caller.wait_event("CALL_CLOSED", 10)
        agent.wait_event("CALL_CLOSED", 10, after=mark)  # the node's BYE reached the agent's phone
        caller_heard = [p for p in sorted(caller.snd_path.glob("dump-*-dec.wav"))][-1]
        summary = _check_audio(demo, caller_heard, agent)
    log = demo.log_text()
    assert '"level": "error"' not in log, log[-3000:]
    with sqlite3.connect(demo.data_dir / "cti.sqlite3") as db:
        row = db.execute("SELECT final_queue, final_agent, ivr_inputs, hangup_by FROM calls").fetchone()
    assert row[:2] == ("sales", "1001") and "1" in row[2] and row[3] == "caller", row
    print(summary)
