"""pyVoIP 1.6.8 (PyPI, pure Python) against the UNCHANGED demo config (issue 16 §1), next to
baresip, linphonec and SIPp. Both tests share the module's demo node (conftest ``demo_server``)
and tell their calls apart by the caller's number.

* It registers as agent 1001 with the default challenge (MD5; pyVoIP answers without ``qop``,
  RFC 2069 style) and the node sees the binding.
* It calls in: 100 answers (the IVR), pyVoIP hears the greeting, and the call ends with pyVoIP's
  BYE (``caller-hangup`` in the CDR).
* It is called: 1001 is logged in ready through the admin API, a SIPp carrier calls 100 and
  presses 1 (sales, which only 1001 serves here); pyVoIP answers in its callback. The carrier
  plays 1000 Hz, pyVoIP writes 600 Hz through ``write_audio``; both tones are checked in the
  node's stereo recording and the caller's tone in what pyVoIP's ``read_audio`` returned. The
  carrier hangs up and the node's BYE ends pyVoIP's call.

What pyVoIP 1.6.8 cannot do, so it is not tested (docs/softphones.md):
* send DTMF: it has no API for it (it only receives RFC 4733 events), so it cannot pick an IVR
  branch as a caller;
* hold: it has no API to send a re-INVITE;
* PCMA out: ``RTPClient.encode_packet`` encodes with the μ-law encoder when it chose PCMA, so
  its audio would be garbled on a PCMA-first offer. It takes the first codec of the offer, and
  the node offers PCMU first; the test asserts pyVoIP chose PCMU so a change of that order
  shows up here, not as a mysterious tone failure.

About 15 s.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from pyVoIP.RTP import PayloadType
from pyVoIP.VoIP import CallState

from tests.support.procs import ServerProcess, run_server
from tests.support.pyvoip import (
    SILENCE_FRAME,
    read_while_answered,
    run_pyvoip,
    tone_u8,
    u8_samples,
    wait_state,
)
from tests.support.sipp import SippRunner, agent_login_ready, dtmf_pcap, sipp_ready
from tests.support.tone import read_wav, tone_share, write_tone_pcap

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not sipp_ready(), reason="SIPp (Debian sip-tester) is not installed"),
]
HOST = "127.0.0.1"
CALLER_HZ, AGENT_HZ = 1000, 600


def _log_events(server: ServerProcess, name: str) -> list[dict[str, Any]]:
    found = []
    for line in server.log_text().splitlines():
        if line.startswith("{") and f'"event": "{name}"' in line:
            found.append(json.loads(line))
    return found


def _ended_call(server: ServerProcess, caller: str, *, recording: bool) -> tuple[sqlite3.Row, Path | None]:
    """The one CDR row of ``caller``'s call once it has ended (and its recording file, when asked)."""
    deadline = time.monotonic() + 10
    while True:
        with sqlite3.connect(server.data_dir / "cti.sqlite3") as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM calls WHERE caller_number = ?", (caller,)).fetchall()
            paths = [Path(r[0]) for r in db.execute(
                "SELECT path FROM recordings JOIN calls ON calls.call_id = recordings.call_id "
                "WHERE calls.caller_number = ?", (caller,)).fetchall()]
        done = len(rows) == 1 and rows[0]["t_ended"] is not None
        if done and (not recording or (paths and paths[0].exists())):
            return rows[0], paths[0] if paths else None
        assert time.monotonic() < deadline, ([dict(r) for r in rows], paths)
        time.sleep(0.1)


def test_pyvoip_registers_as_agent_1001_and_calls_in(demo_server: ServerProcess) -> None:
    with run_pyvoip(demo_server, "1001", "demo1001") as agent:
        call = agent.phone.call("100")
        assert wait_state(call, CallState.ANSWERED, 10), f"the IVR did not answer: {call.state}"
        heard = bytearray()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            heard += call.read_audio(160, blocking=False)
            time.sleep(0.02)
        call.hangup()  # pyVoIP's BYE
        row, _ = _ended_call(demo_server, "1001", recording=False)
    frames = [heard[i:i + 160] for i in range(0, len(heard) - 159, 160)]
    sound = [f for f in frames if f != SILENCE_FRAME and max(f) - min(f) > 8]
    assert len(sound) >= 25, f"pyVoIP heard {len(sound)} frames of sound in 2 s of the greeting"
    assert (row["dialled_number"], row["trunk"], row["caller_number"]) == ("100", "demo", "1001"), dict(row)
    assert row["t_ivr_answered"] is not None and row["final_agent"] is None, dict(row)
    assert (row["hangup_by"], row["end_reason"]) == ("caller", "caller-hangup"), dict(row)
    arrived = [e for e in _log_events(demo_server, "call.arrived") if e["call_id"] == row["call_id"]]
    assert [(e["dialled"], e["flow"]) for e in arrived] == [("100", "main")], arrived
    dialog = [e for e in _log_events(demo_server, "sip.message.received") + _log_events(demo_server, "sip.message.sent")
              if e.get("call_id") == row["sip_call_id"] and e.get("cseq", "").endswith(" BYE")]
    byes = sorted((e["event"], str(e.get("method") or e.get("status"))) for e in dialog)
    # pyVoIP's BYE, answered 200; the node sent no BYE of its own
    assert byes == [("sip.message.received", "BYE"), ("sip.message.sent", "200")], byes
    assert '"level": "error"' not in demo_server.log_text(), demo_server.log_text()[-3000:]


def test_pyvoip_is_called_as_agent_1001_with_audio_both_ways(
        demo_server: ServerProcess, tmp_path: Path, sipps: SippRunner) -> None:
    caller_tone = write_tone_pcap(tmp_path / "caller.pcap", CALLER_HZ, 5.0)
    with run_pyvoip(demo_server, "1001", "demo1001") as agent:
        agent_login_ready(demo_server.http_port, "1001")
        carrier = sipps.start("carrier", "carrier_tone.xml", "-s", "100", "-key", "caller", "5551234",
                              "-key", "dtmf_pcap", dtmf_pcap("1"), "-key", "audio_pcap", str(caller_tone),
                              "-set", "greeting_ms", "3000", "-set", "talk_ms", "4500",
                              remote=f"{HOST}:{demo_server.sip_port}", timeout=40)
        call = agent.next_answered(25)  # the carrier's call, via the IVR and queue sales
        codecs = [client.preference for client in call.RTPClients]
        assert codecs == [PayloadType.PCMU], f"pyVoIP sends PCMA as μ-law (see the docstring): {codecs}"
        call.write_audio(tone_u8(AGENT_HZ, 8.0))
        heard = read_while_answered(call, 20)  # until the node's BYE (after the carrier's)
        assert call.state is CallState.ENDED, f"pyVoIP's call still {call.state}"
        assert carrier.wait(20) == 0, carrier.report()
        row, recording = _ended_call(demo_server, "5551234", recording=True)
    assert (row["final_queue"], row["final_agent"], row["hangup_by"]) == ("sales", "1001", "caller"), dict(row)
    assert recording is not None
    rate, (left, right) = read_wav(recording)
    shares = (tone_share(left, rate, CALLER_HZ), tone_share(right, rate, AGENT_HZ))
    heard_share = tone_share(u8_samples(heard), 8000, CALLER_HZ)
    summary = f"node recording: caller {shares[0]:.2f}, agent {shares[1]:.2f}; pyVoIP heard {heard_share:.2f}"
    assert shares[0] > 0.5 and shares[1] > 0.5 and heard_share > 0.5, summary
    assert tone_share(left, rate, AGENT_HZ) < 0.5 and tone_share(right, rate, CALLER_HZ) < 0.5, summary
    assert '"level": "error"' not in demo_server.log_text(), demo_server.log_text()[-3000:]
    print(summary)


def test_pyvoip_registers_when_sha256_is_offered_too(tmp_path: Path) -> None:
    """``digest_algorithms: [MD5, SHA-256]`` (the order baresip 1.0 gives up on): pyVoIP reads the
    last challenge (SHA-256) and answers it with MD5, which works because both share one nonce."""
    repo = Path(__file__).resolve().parents[2]
    demo_text = (repo / "config" / "demo.yaml").read_text()
    assert "  realm: cti.demo\n" in demo_text
    config = tmp_path / "sha.yaml"
    offered = "  realm: cti.demo\n  digest_algorithms: [MD5, SHA-256]\n"
    config.write_text(demo_text.replace("  realm: cti.demo\n", offered))
    for name in ("flows", "prompts"):
        (tmp_path / name).symlink_to(repo / "config" / name)
    with run_server(tmp_path, config=config) as server, run_pyvoip(server, "1001", "demo1001"):
        challenges = [e for e in _log_events(server, "sip.message.sent") if e.get("status") == 401]
        assert challenges, "pyVoIP registered without a challenge"
    assert '"level": "error"' not in server.log_text(), server.log_text()[-3000:]
