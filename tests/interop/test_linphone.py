"""linphonec (Debian ``linphone-cli``, liblinphone 5.1): a second independent SIP stack against the
UNCHANGED demo config (issue 16 §1), next to baresip, SIPp and pyVoIP.

* It registers as agent 1002 with the default challenge (MD5) and is logged in.
* It calls in: 100 answers (the IVR) and the call ends with linphonec's BYE.
* It is called: a SIPp carrier calls 100 and presses 2 (support); 1002 is the only support agent
  logged in, linphonec answers by itself (``-a``). The carrier plays 1000 Hz, linphonec plays a
  600 Hz WAV (file mode); both tones are checked in the node's stereo recording and the caller's
  tone in what linphonec recorded. The carrier hangs up.

About 20 s.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.linphone import Linphone, linphonec_ready, run_linphonec
from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import OPERATOR_TOKEN, SippRunner, agent_login_ready, dtmf_pcap, sipp_ready
from tests.support.tone import read_wav, tone_share, write_tone_pcap, write_tone_wav

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not linphonec_ready(), reason="linphonec (Debian linphone-cli) is not installed"),
    pytest.mark.skipif(not sipp_ready(), reason="SIPp (Debian sip-tester) is not installed"),
]
HOST = "127.0.0.1"
CALLER_HZ, AGENT_HZ = 1000, 600


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(tmp_path) as server:
        yield server


def _registered(server: ServerProcess, agent: str) -> bool:
    request = urllib.request.Request(f"http://{HOST}:{server.http_port}/api/v1/agents/{agent}",
                                     headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return bool(json.loads(response.read())["registered"])


def _register(phone: Linphone, server: ServerProcess) -> None:
    phone.send("soundcard use files")
    phone.send(f"register sip:1002@{HOST}:{server.sip_port} sip:{HOST}:{server.sip_port} demo1002")
    deadline = time.monotonic() + 10
    while not _registered(server, "1002"):
        assert time.monotonic() < deadline, f"1002 not registered on the node\n{phone.output()[-2000:]}"
        time.sleep(0.1)
    phone.send("status register")
    phone.wait_for(rf"registered, identity=sip:1002@{HOST}:{server.sip_port}", 5)


def test_linphonec_registers_as_agent_1002_and_calls_in(demo: ServerProcess, tmp_path: Path) -> None:
    with run_linphonec(tmp_path / "linphone") as phone:
        _register(phone, demo)
        phone.send(f"call sip:100@{HOST}:{demo.sip_port}")
        phone.wait_for(r"Call \d+ with sip:100@[^ ]+ connected", 10)  # the IVR answered
        time.sleep(1.0)
        phone.send("terminate")
        phone.wait_for(r"Call \d+ with sip:100@[^ ]+ ended", 10)
    log = demo.log_text()
    assert '"by": "caller", "reason": "caller-hangup"' in log or '"reason": "caller-hangup"' in log, log[-2000:]
    assert '"level": "error"' not in log, log[-3000:]


def test_linphonec_is_called_as_agent_1002_with_audio_both_ways(
        demo: ServerProcess, tmp_path: Path, sipps: SippRunner) -> None:
    caller_tone = write_tone_pcap(tmp_path / "caller.pcap", CALLER_HZ, 5.0)
    agent_tone = write_tone_wav(tmp_path / "agent.wav", AGENT_HZ, 10.0)
    heard = tmp_path / "heard.wav"
    with run_linphonec(tmp_path / "linphone") as phone:
        _register(phone, demo)
        phone.send(f"play {agent_tone}")
        phone.send(f"record {heard}")
        agent_login_ready(demo.http_port, "1002")
        carrier = sipps.start("carrier", "carrier_tone.xml", "-s", "100", "-key", "caller", "5551234",
                              "-key", "dtmf_pcap", dtmf_pcap("2"), "-key", "audio_pcap", str(caller_tone),
                              "-set", "greeting_ms", "3000", "-set", "talk_ms", "4500",
                              remote=f"{HOST}:{demo.sip_port}", timeout=40)
        phone.wait_for(r"Call \d+ with .*5551234.* connected", 25)  # answered by itself (-a)
        assert carrier.wait(30) == 0, carrier.report()
        phone.wait_for(r"Call \d+ with .*5551234.* ended", 10)  # the node's BYE after the carrier's
    deadline = time.monotonic() + 10
    while True:
        with sqlite3.connect(demo.data_dir / "cti.sqlite3") as db:
            row = db.execute("SELECT final_queue, final_agent, hangup_by, t_ended FROM calls").fetchone()
            paths = db.execute("SELECT path FROM recordings").fetchall()
        if row and row[3] and paths and Path(paths[0][0]).exists():
            break
        assert time.monotonic() < deadline, (row, paths)
        time.sleep(0.2)
    assert row[:3] == ("support", "1002", "caller"), row
    rate, (left, right) = read_wav(Path(paths[0][0]))
    shares = (tone_share(left, rate, CALLER_HZ), tone_share(right, rate, AGENT_HZ))
    heard_rate, heard_channels = read_wav(heard)
    heard_share = tone_share(heard_channels[0], heard_rate, CALLER_HZ)
    summary = f"node recording: caller {shares[0]:.2f}, agent {shares[1]:.2f}; linphonec heard {heard_share:.2f}"
    assert shares[0] > 0.5 and shares[1] > 0.5 and heard_share > 0.5, summary
    assert tone_share(left, rate, AGENT_HZ) < 0.5 and tone_share(right, rate, CALLER_HZ) < 0.5, summary
    print(summary)
