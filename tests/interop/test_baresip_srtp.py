"""baresip 1.0 (Debian) over SIP/TLS with SRTP (SDES, RFC 4568) through the demo config with TLS on (issue 16 §3).

* Agent 1001 is a baresip registered over TLS (trusting the node's self-signed certificate) with
  ``;mediaenc=srtp-mand``. A SIPp carrier (plain UDP and RTP) calls 100, presses 1 and plays a
  1000 Hz tone; baresip's microphone is 440 Hz. The agent has ``srtp: mandatory`` (a phone set to
  SRTP only refuses the best-effort RTP/AVP offer of ``optional``), so the node offers RTP/SAVP
  with an ``a=crypto`` key; baresip answers with its key and the relay unprotects/protects every
  packet of that leg; baresip puts the call on hold and takes it back (re-INVITEs keeping the
  keys, answered 200). Checked: audio both ways (the node's recording, which sees plaintext, and
  what baresip heard); the node unprotected every packet it got from the phone but baresip's plain
  RTCP (its "PING" pin-hole packet, its closing BYE with its SDES), seen in clear on the wire; on the wire
  (a raw capture of loopback) every audio packet of the agent leg is 10 bytes longer than plain
  G.711 (the HMAC-SHA1-80 tag) and holds no tone when read as G.711, while the carrier leg's
  plaintext in the same capture holds its tones (the same detector, so the check can fail).
* Callers over TLS: a baresip with ``srtp-mand`` offers RTP/SAVP; the node answers with SRTP, the
  IVR plays over it and hears the caller's RFC 4733 digit through it; a baresip without media
  encryption is answered with plain RTP (allowed on TLS with ``optional``).

The SIP/TLS calls here are made by baresip (SRTP); SIPp over TLS (no SRTP) is tests/interop/test_sipp_tls.py.
About 20 s for the two tests.
"""

from __future__ import annotations

import array
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sip.rtp import Codec
from sip.rtp.g711 import decode
from tests.interop.test_baresip_calls import (
    AGENT_HZ,
    CALLER_HZ,
    SHARE,
    _check_audio,
    _registered,
    _reinvite_answers,
)
from tests.support.baresip import Baresip, baresip_ready, run_baresip
from tests.support.loopcap import LoopbackCapture, capture_ready
from tests.support.procs import ServerProcess, free_port, run_server
from tests.support.sipp import SippRunner, dtmf_pcap, sipp_ready
from tests.support.tone import tone_share, write_tone_pcap

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not baresip_ready() or not Path("/usr/lib/baresip/modules/srtp.so").exists(),
                       reason="baresip with ctrl_tcp, ausine, sndfile and srtp is not installed"),
]
HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
TAG_BYTES = 10  # AES_CM_128_HMAC_SHA1_80: an 80-bit authentication tag after each SRTP payload


class TlsNode:
    def __init__(self, server: ServerProcess, tls_port: int) -> None:
        self.server, self.tls_port = server, tls_port
        self.cafile = server.data_dir / "tls" / "cert.pem"  # the self-signed pair the node made


@pytest.fixture
def node(tmp_path: Path) -> Iterator[TlsNode]:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["flows_dir"] = str(REPO / "config" / "flows")
    config["prompts_dir"] = str(REPO / "config" / "prompts")
    tls_port = free_port("tcp")
    config["sip"].update(transports=["udp", "tcp", "tls"], tls_port=tls_port)
    for agent in config["agents"]:
        if agent["id"] == "1001":  # its baresip has srtp-mand: it refuses an RTP/AVP offer ("no common codecs")
            agent["srtp"] = "mandatory"
    path = tmp_path / "cti.yaml"
    path.write_text(yaml.safe_dump(config))
    with run_server(tmp_path, config=path) as server:
        yield TlsNode(server, tls_port)


def _log_entries(server: ServerProcess, event: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in server.log_text().splitlines()
            if f'"event": "{event}"' in line and line.startswith("{")]


def _srtp_ports(server: ServerProcess) -> list[int]:
    return [int(str(e["port"])) for e in _log_entries(server, "rtp.srtp.started")]


def _plain_rtcp(data: bytes) -> bool:
    """Whether a datagram is a plain RTCP compound: its packets' length fields add up to its size exactly
    (an SRTCP packet has 4 bytes of index and a 10-byte tag after them)."""
    offset = 0
    while offset + 4 <= len(data):
        if data[offset] >> 6 != 2 or not 200 <= data[offset + 1] <= 204:
            return False
        offset += 4 + 4 * int.from_bytes(data[offset + 2:offset + 4], "big")
    return offset == len(data) > 0


def _srtp_unprotected(server: ServerProcess, port: int, wire: list[tuple[int, int, bytes]]) -> int:
    """How many packets the node's SRTP endpoint on ``port`` unprotected (its close log line), once sure
    that the packets it refused can only be the phone's plain RTCP seen on the wire to that endpoint's
    RTP and RTCP ports: baresip 1.0 sends an RTCP APP "PING" in clear as its stream starts (to open NAT
    pin-holes), and may send its RTCP BYE in clear as the call closes; SRTP rightly drops both."""
    for entry in _log_entries(server, "rtp.endpoint.closed"):
        if entry["port"] == port and "srtp_unprotected" in entry:
            refused = int(str(entry["srtp_refused"]))
            plain = [d for _, dst, d in wire if dst in (port, port + 1) and _plain_rtcp(d)]
            # Some of them reach the endpoint before its keys are set or after it closed: at most as many.
            assert refused <= len(plain), (refused, [d[:2].hex() for d in plain])
            first = [(e["head"], e["size"]) for e in _log_entries(server, "rtp.srtp.refused") if e["port"] == port]
            assert set(first) <= {(d[:2].hex(), len(d)) for d in plain}, (first, [d[:2].hex() for d in plain])
            return int(str(entry["srtp_unprotected"]))
    raise AssertionError(f"no SRTP endpoint closed on port {port}")


def _share(payloads: list[bytes], freq: int) -> float:
    """The best share of ``freq`` in the payloads read as PCMU or as PCMA (the better of the two)."""
    joined = b"".join(payloads)
    best = 0.0
    for codec in (Codec.PCMU, Codec.PCMA):
        samples = array.array("h", decode(codec, joined)).tolist()
        best = max(best, tone_share(samples, 8000, freq))
    return best


def _is_rtp(data: bytes) -> bool:
    return len(data) >= 12 and data[0] >> 6 == 2 and not 200 <= data[1] <= 204


@pytest.mark.skipif(not sipp_ready(), reason="SIPp (Debian sip-tester) is not installed")
@pytest.mark.skipif(not capture_ready(), reason="a raw socket on loopback needs CAP_NET_RAW (CI runs as root)")
def test_srtp_agent_over_tls_audio_both_ways_and_no_plaintext_on_the_wire(
        node: TlsNode, tmp_path: Path, sipps: SippRunner) -> None:
    demo = node.server
    tone = write_tone_pcap(tmp_path / "caller-tone.pcap", CALLER_HZ, 5.0)
    with run_baresip(tmp_path / "agent", node.tls_port, "1001", "demo1001", tone_hz=AGENT_HZ,
                     tls_cafile=node.cafile, mediaenc="srtp-mand") as phone:
        _registered(demo, "1001", phone)
        capture = LoopbackCapture().start()
        try:
            carrier = sipps.start("carrier", "carrier_tone.xml", "-s", "100", "-key", "caller", "5551234",
                                  "-key", "dtmf_pcap", dtmf_pcap("1"), "-key", "audio_pcap", str(tone),
                                  "-set", "greeting_ms", "3000", "-set", "talk_ms", "4000",
                                  remote=f"{HOST}:{demo.sip_port}", timeout=30)
            established = phone.wait_event("CALL_ESTABLISHED", 20)
            assert "5551234" in established["peeruri"], established
            phone.wait_event("CALL_RTPESTAB", 5)
            time.sleep(1.0)
            phone.key("x")  # hold: a re-INVITE with its a=crypto line, answered with ours
            time.sleep(0.8)
            phone.key("X")  # resume
            assert carrier.wait(30) == 0, carrier.report()
            phone.wait_event("CALL_CLOSED", 10)  # the node's BYE after the carrier's
            time.sleep(0.2)  # the phone's last RTCP
        finally:
            wire = capture.stop()
        summary = _check_audio(demo, None, phone)
        assert "SRTP is Enabled" in phone.log_path.read_text(), phone.log()
        assert "call: hold sip:" in phone.log_path.read_text(), phone.log()
    reinvites = _reinvite_answers(demo.log_text(), established["id"])
    assert reinvites == [200, 200], f"hold and resume re-INVITEs on the SRTP leg answered {reinvites}"
    ports = _srtp_ports(demo)
    assert len(ports) == 1, f"one SRTP leg expected (the agent's), the node started {ports}"
    agent_port = ports[0]
    unprotected = _srtp_unprotected(demo, agent_port, wire)
    assert unprotected > 100, unprotected

    agent_leg = [d for s, d_port, d in wire if agent_port in (s, d_port) and _is_rtp(d)]
    from_node = [d for s, _, d in wire if s == agent_port and _is_rtp(d)]
    carrier_leg = [(s, d) for s, d_port, d in wire if carrier.media_port in (s, d_port) and _is_rtp(d)
                   for d in [d] if len(d) == 172]  # plain PCMA/PCMU, 20 ms
    to_carrier = [d[12:] for s, d in carrier_leg if s != carrier.media_port]
    from_carrier = [d[12:] for s, d in carrier_leg if s == carrier.media_port]
    assert len(from_node) > 100 and len(agent_leg) - len(from_node) > 100, (len(from_node), len(agent_leg))
    lengths = {len(d) for d in agent_leg if d[1] & 0x7F in (0, 8)}
    assert lengths == {12 + 160 + TAG_BYTES}, f"agent-leg audio packet sizes {lengths}: not all SRTP"
    # The detector finds the tones in the plaintext carrier leg of the same capture ...
    heard = (_share(from_carrier, CALLER_HZ), _share(to_carrier, AGENT_HZ))
    assert min(heard) > SHARE, f"carrier leg: {heard}; {summary}"
    # ... and neither tone in what travelled on the agent leg.
    wire_agent = [d[12:-TAG_BYTES] for d in agent_leg]
    secret = (_share(wire_agent, CALLER_HZ), _share(wire_agent, AGENT_HZ))
    assert max(secret) < 0.2, f"plaintext tone on the SRTP leg: {secret}"
    print(summary, f"; wire: carrier leg tones {heard}, agent leg {secret}; node unprotected {unprotected}")


def _dial(phone: Baresip, node: TlsNode) -> None:
    # no ;transport=tls in the URI: baresip adds its account's (twice would be a 400)
    assert phone.command("dial", f"sip:100@{HOST}:{node.tls_port}").get("ok") is not False
    phone.wait_event("CALL_ESTABLISHED", 10)  # the IVR answers
    phone.wait_event("CALL_RTPESTAB", 5)


@pytest.mark.skipif(not capture_ready(), reason="a raw socket on loopback needs CAP_NET_RAW (CI runs as root)")
def test_tls_callers_srtp_answered_with_srtp_and_plain_rtp_still_allowed(node: TlsNode, tmp_path: Path) -> None:
    demo = node.server
    with run_baresip(tmp_path / "secure", node.tls_port, "5550123", tone_hz=CALLER_HZ, register=False,
                     tls_cafile=node.cafile, mediaenc="srtp-mand") as caller:
        capture = LoopbackCapture().start()
        try:
            _dial(caller, node)
            time.sleep(2.8)  # the greeting (2.4 s), over SRTP
            assert caller.command("sndcode", "1").get("ok") is not False  # RFC 4733 inside SRTP
            time.sleep(1.0)
            assert caller.command("hangup").get("ok") is not False
            caller.wait_event("CALL_CLOSED", 10)
            time.sleep(0.2)  # the phone's last RTCP
        finally:
            wire = capture.stop()
        assert "SRTP is Enabled" in caller.log_path.read_text(), caller.log()
    ports = _srtp_ports(demo)
    assert len(ports) == 1, ports
    deadline = time.monotonic() + 10
    while True:
        with sqlite3.connect(demo.data_dir / "cti.sqlite3") as db:
            rows = db.execute("SELECT ivr_inputs, final_queue FROM calls WHERE t_ended IS NOT NULL").fetchall()
        if rows:
            break
        assert time.monotonic() < deadline, "the SRTP call has no closed record"
        time.sleep(0.2)
    assert '"1"' in rows[0][0] and rows[0][1] == "sales", rows  # the digit came through SRTP
    assert _srtp_unprotected(demo, ports[0], wire) > 50

    with run_baresip(tmp_path / "plain", node.tls_port, "5550124", tone_hz=CALLER_HZ, register=False,
                     tls_cafile=node.cafile, mediaenc=None) as plain:
        _dial(plain, node)  # RTP from the IVR reached it: plain RTP on a TLS leg
        assert plain.command("hangup").get("ok") is not False
        plain.wait_event("CALL_CLOSED", 10)
        assert "SRTP is Enabled" not in plain.log_path.read_text()
    assert len(_srtp_ports(demo)) == 1, "the plain caller's leg must not be SRTP"
    log = demo.log_text()
    assert '"level": "error"' not in log, log[-3000:]
