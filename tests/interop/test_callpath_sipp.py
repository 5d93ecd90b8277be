"""Call path acceptance tests with SIPp as the carrier and as the agents' softphones.

Two groups:

* ``test_standin_*`` check the SIPp scenarios themselves, SIPp against SIPp on loopback (the
  ``*_standin_*.xml`` scenarios play the server's part; a UDP socket in the test receives the RTP
  the scenarios play). They need only SIPp and run whenever it is installed.
* ``test_callpath_*`` are the acceptance tests of the call path against ``cti serve --demo``.

What the server-facing tests assume (see also tests/support/sipp.py and
tests/interop/scenarios/README.md): the demo config (trunk ``demo`` accepts INVITEs from
127.0.0.1 without auth; 100 -> IVR ``main``: 2 -> queue ``support``; agents 1001-1004 with
passwords demo1001...); agents are logged in and made ready with
``POST /api/v1/agents/<id>/login {"ready": true}`` (:func:`agent_login_ready`); the ring timeout
of the demo queues is at most ``CTI_DEMO_RING_TIMEOUT_S`` (default 15 s); an agent that answered
486 or did not answer is not offered the same call again at once.
"""

from __future__ import annotations

import audioop
import contextlib
import os
import socket
import sqlite3
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import HOST, Sipp, SippRunner, agent_login_ready, read_stats, sipp_ready

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not sipp_ready(), reason="sipp (Debian sip-tester) or its pcaps are not installed"),
]

RING_TIMEOUT_S = float(os.environ.get("CTI_DEMO_RING_TIMEOUT_S", "15"))
# The ring-timeout test's queues ring an agent this long (the demo's 15 s would be 10 s more of waiting).
SHORT_RING_S = 5.0
REPO = Path(__file__).resolve().parents[2]
DTMF_PT, PCMA_PT = 101, 8


class RtpSink:
    """A UDP socket that records (payload type, first payload byte) of every RTP packet it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.packets: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            if len(data) > 12 and data[0] >> 6 == 2:
                self.packets.append((data[1] & 0x7F, data[12]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def count(self, pt: int) -> int:
        return sum(1 for p, _ in self.packets if p == pt)

    def events(self) -> set[int]:
        """RFC 4733 event codes seen (0-9 are the digits)."""
        return {first for p, first in self.packets if p == DTMF_PT}



@pytest.fixture
def sink() -> Iterator[RtpSink]:
    rtp = RtpSink()
    try:
        yield rtp
    finally:
        rtp.close()


def ok(sipp: Sipp, timeout: float) -> None:
    assert sipp.wait(timeout) == 0, sipp.report()


# --- the scenarios against SIPp stand-ins ---------------------------------------------------------
def test_standin_carrier_call_dtmf_sends_digit_then_audio(sipps: SippRunner, sink: RtpSink) -> None:
    trunk = sipps.start("trunk", "carrier_standin_trunk.xml", "-key", "rtp_ip", HOST, "-key", "rtp_port",
                        str(sink.port), timeout=15)
    carrier = sipps.carrier(f"{HOST}:{trunk.port}", digit="2", greeting_ms=300, talk_ms=700, timeout=15)
    ok(carrier, 20)
    ok(trunk, 5)
    invite = trunk.messages()
    assert "INVITE sip:100@" in invite and '"5551234" <sip:5551234@' in invite
    assert "m=audio" in invite and "RTP/AVP 8 0 101" in invite
    assert sink.events() == {2}
    assert sink.count(DTMF_PT) == 10  # SIPp's pcap: 10 packets, the last three are the end marker
    assert sink.count(PCMA_PT) >= 15  # 700 ms of 30 ms A-law packets


def test_standin_carrier_hangs_up_early_after_the_digit(sipps: SippRunner, sink: RtpSink) -> None:
    trunk = sipps.start("trunk", "carrier_standin_trunk.xml", "-key", "rtp_ip", HOST, "-key", "rtp_port",
                        str(sink.port), timeout=15)
    carrier = sipps.carrier(f"{HOST}:{trunk.port}", digit="#", greeting_ms=200, hangup_ms=300, timeout=15)
    ok(carrier, 20)
    ok(trunk, 5)
    assert sink.events() == {11}  # '#'
    assert sink.count(PCMA_PT) == 0
    assert "BYE sip:" in carrier.messages()


@pytest.mark.parametrize(
    ("answer", "standin", "extra"),
    [
        ("agent_answer.xml", "agent_standin_invite.xml", ()),
        ("agent_answer_hangup.xml", "agent_standin_invite.xml", ("-set", "talk_ms", "500")),
        ("agent_answer_noanswer.xml", "agent_standin_cancel.xml", ("-d", "500")),
        ("agent_answer_busy.xml", "agent_standin_invite.xml", ()),
    ],
)
def test_standin_agent_registers_then_handles_the_call_in_one_process(
    sipps: SippRunner, sink: RtpSink, answer: str, standin: str, extra: tuple[str, ...]
) -> None:
    registrar = sipps.start("registrar", "agent_standin_registrar.xml", "-key", "password", "demo1003", timeout=10)
    agent_args = extra if answer == "agent_answer_hangup.xml" else ()
    agent = sipps.agent(f"{HOST}:{registrar.port}", "1003", answer, *agent_args, timeout=15)
    ok(registrar, 10)  # the digest was verified and the 200 sent
    assert f"Contact: <sip:1003@{HOST}:{agent.port};" in registrar.messages()
    server_args = () if answer == "agent_answer_hangup.xml" else extra
    caller = sipps.start("server", standin, "-s", "1003", "-key", "rtp_ip", HOST, "-key", "rtp_port",
                         str(sink.port), *server_args, remote=f"{HOST}:{agent.port}", timeout=15)
    ok(caller, 20)
    ok(agent, 10)
    seen = caller.messages()
    if answer == "agent_answer.xml":
        assert "BYE sip:agent@" in seen  # the server side hung up, to the 200's Contact
        assert sink.count(PCMA_PT) >= 30
    elif answer == "agent_answer_hangup.xml":
        assert "BYE sip:cti@" in seen  # the agent hung up, to the INVITE's Contact
        assert sink.count(PCMA_PT) >= 10
    elif answer == "agent_answer_noanswer.xml":
        assert "SIP/2.0 487 Request Terminated" in seen
    else:
        assert "SIP/2.0 486 Busy Here" in seen


def test_standin_agent_process_fails_when_no_call_comes(sipps: SippRunner) -> None:
    """The exit code of the one-process agent covers the call: no INVITE means a non-zero exit."""
    registrar = sipps.start("registrar", "agent_standin_registrar.xml", "-key", "password", "demo1003", timeout=10)
    agent = sipps.agent(f"{HOST}:{registrar.port}", "1003", "agent_answer.xml", timeout=2)
    ok(registrar, 10)
    assert agent.wait(10) != 0


def test_standin_two_process_agent_register_points_at_a_shared_uas(sipps: SippRunner, sink: RtpSink) -> None:
    uas = sipps.start("uas", "load_agent_uas.xml", calls=2, timeout=20)
    for agent_id in ("1001", "1002"):
        registrar = sipps.start(f"registrar{agent_id}", "agent_standin_registrar.xml", "-key", "password",
                                f"demo{agent_id}", timeout=10)
        assert sipps.register_at(f"{HOST}:{registrar.port}", agent_id, uas.port) == 0
        ok(registrar, 5)
        assert f"Contact: <sip:{agent_id}@{HOST}:{uas.port};" in registrar.messages()
        caller = sipps.start(f"server{agent_id}", "agent_standin_invite.xml", "-s", agent_id, "-key", "rtp_ip",
                             HOST, "-key", "rtp_port", str(sink.port), remote=f"{HOST}:{uas.port}", timeout=15)
        ok(caller, 20)
    ok(uas, 10)


def test_standin_load_pair_direct(sipps: SippRunner) -> None:
    uas = sipps.start("uas", "load_agent_uas.xml", "-trace_stat", "-fd", "1", calls=None, timeout=20,
                      trace_msg=False)
    carrier = sipps.start("carrier", "load_carrier.xml", "-s", "200", "-d", "200", "-r", "50", "-trace_stat",
                          "-fd", "1", "-trace_rtt", "-rtt_freq", "1", remote=f"{HOST}:{uas.port}", calls=20,
                          timeout=15, trace_msg=False)
    ok(carrier, 20)
    uas.stop()
    stats = read_stats(carrier.workdir)
    assert (stats.successful, stats.failed) == (20, 0)
    assert len(stats.setup_ms) == 20


# --- the call path against `cti serve --demo` -----------------------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh demo server per test: no registrations or agent states leak between tests."""
    workdir = tmp_path / "server"
    workdir.mkdir()
    with run_server(workdir) as srv:
        yield srv


@pytest.fixture
def short_ring_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """The demo configuration with every queue's ring timeout at SHORT_RING_S."""
    workdir = tmp_path / "server"
    workdir.mkdir()
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["flows_dir"] = str(REPO / "config" / "flows")
    config["prompts_dir"] = str(REPO / "config" / "prompts")
    for queue in config["queues"]:
        queue["ring_timeout_s"] = SHORT_RING_S
    path = workdir / "cti.yaml"
    path.write_text(yaml.safe_dump(config))
    with run_server(workdir, config=path) as srv:
        yield srv


def target(server: ServerProcess) -> str:
    return f"{HOST}:{server.sip_port}"


def registered(agent: Sipp) -> None:
    assert agent.wait_for_message("SIP/2.0 200", 10), f"agent not registered\n{agent.report()}"


def assert_cdr(server: ServerProcess, *, caller: str, agent: str, queue: str) -> None:
    """The call's CDR, queue leg and recording in the server's SQLite database (docs/storage.md)."""
    deadline = time.monotonic() + 5
    while True:  # the CDR is written by the server's writer task right after the call ends
        with contextlib.closing(sqlite3.connect(server.data_dir / "cti.sqlite3")) as db:
            db.row_factory = sqlite3.Row
            calls = db.execute("SELECT * FROM calls").fetchall()
            legs = db.execute("SELECT * FROM queue_legs").fetchall()
            recordings = db.execute("SELECT * FROM recordings").fetchall()
        if (calls and calls[0]["t_ended"] and recordings) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(calls) == 1, calls
    cdr = calls[0]
    assert (cdr["caller_number"], cdr["dialled_number"], cdr["trunk"]) == (caller, "100", "demo")
    assert (cdr["final_agent"], cdr["final_queue"], cdr["hangup_by"]) == (agent, queue, "caller")
    times = [cdr[k] for k in ("t_arrived", "t_ivr_answered", "t_queued", "t_answered", "t_ended")]
    assert all(t is not None for t in times) and times == sorted(times), times
    assert '"digits":"2"' in cdr["ivr_inputs"].replace(" ", "")
    assert len(legs) == 1 and legs[0]["outcome"] == "answered" and legs[0]["agent_id"] == agent
    assert legs[0]["talk_s"] > 2.0 and legs[0]["recording_serial"] == cdr["recording_serial"]
    assert len(recordings) == 1 and recordings[0]["serial"] == cdr["recording_serial"]
    with wave.open(recordings[0]["path"]) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        frames = wav.readframes(wav.getnframes())
        seconds = wav.getnframes() / 8000
    caller_side = audioop.tomono(frames, 2, 1, 0)  # left channel: what the caller said
    assert seconds > 2.0, seconds
    assert audioop.rms(caller_side, 2) > 300, "the caller's channel of the recording is silent"


def test_callpath_caller_presses_2_and_talks_to_agent_1003(server: ServerProcess, sipps: SippRunner) -> None:
    agent = sipps.agent(target(server), "1003", "agent_answer.xml", timeout=40)
    registered(agent)
    agent_login_ready(server.http_port, "1003")
    carrier = sipps.carrier(target(server), digit="2", talk_ms=4000, timeout=40)
    ok(carrier, 50)
    ok(agent, 15)
    assert "INVITE sip:" in agent.messages()
    assert "BYE sip:" in agent.messages()  # the server hung up the agent leg after the caller's BYE
    assert_cdr(server, caller="5551234", agent="1003", queue="support")


def test_callpath_ring_timeout_moves_the_call_to_the_next_agent(short_ring_server: ServerProcess,
                                                                sipps: SippRunner) -> None:
    server = short_ring_server
    budget = SHORT_RING_S + 25
    slow = sipps.agent(target(server), "1002", "agent_answer_noanswer.xml", timeout=budget)
    fast = sipps.agent(target(server), "1003", "agent_answer.xml", timeout=budget)
    registered(slow)
    registered(fast)
    agent_login_ready(server.http_port, "1002")
    carrier = sipps.carrier(target(server), digit="2", talk_ms=int((SHORT_RING_S + 8) * 1000), timeout=budget)
    assert slow.wait_for_message("INVITE sip:", 15), slow.report()
    agent_login_ready(server.http_port, "1003")  # ready only now, so 1002 is surely offered first
    ok(slow, SHORT_RING_S + 10)  # it saw the CANCEL
    ok(carrier, budget + 5)
    ok(fast, 15)
    assert "CANCEL sip:" in slow.messages()


def test_callpath_caller_hangs_up_while_the_agent_rings(server: ServerProcess, sipps: SippRunner) -> None:
    agent = sipps.agent(target(server), "1003", "agent_answer_noanswer.xml", timeout=40)
    registered(agent)
    agent_login_ready(server.http_port, "1003")
    hangup_ms = int(min(3.0, RING_TIMEOUT_S / 2) * 1000)
    carrier = sipps.carrier(target(server), digit="2", hangup_ms=hangup_ms, timeout=30)
    ok(carrier, 40)
    ok(agent, 15)  # it saw the CANCEL
    assert "CANCEL sip:" in agent.messages()


def test_callpath_busy_agent_486_moves_the_call_to_the_next_agent(server: ServerProcess, sipps: SippRunner) -> None:
    busy = sipps.agent(target(server), "1002", "agent_answer_busy.xml", timeout=40)
    free = sipps.agent(target(server), "1003", "agent_answer.xml", timeout=40)
    registered(busy)
    registered(free)
    agent_login_ready(server.http_port, "1002")
    carrier = sipps.carrier(target(server), digit="2", talk_ms=5000, timeout=40)
    assert busy.wait_for_message("INVITE sip:", 15), busy.report()
    agent_login_ready(server.http_port, "1003")
    ok(busy, 15)
    ok(carrier, 45)
    ok(free, 15)
    assert "486 Busy Here" in busy.messages()

