"""Call path acceptance, second part: priority, skills, trunk protection, malformed INVITEs.

Real peers on loopback: SIPp as the carrier and the agents' phones, raw UDP sockets for exact
control of hostile INVITEs, against `cti serve --demo`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import ServerProcess, options_request, run_server
from tests.support.sipp import SippRunner, agent_login_ready, dtmf_pcap, sipp_ready
from tests.support.tone import write_tone_pcap

pytestmark = [pytest.mark.interop, pytest.mark.skipif(not sipp_ready(), reason="sipp is not installed")]
HOST = "127.0.0.1"
VIP = "+15550100"  # in the demo VIP list: priority 10


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    workdir = tmp_path / "server"
    workdir.mkdir()
    with run_server(workdir) as srv:
        yield srv



def target(server: ServerProcess) -> str:
    return f"{HOST}:{server.sip_port}"


def queued_calls(server: ServerProcess, queue: str) -> int:
    count = 0
    for line in server.log_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        count += entry.get("event") == "acd.call.queued" and entry.get("queue") == queue
    return count


def wait_until(check: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_vip_caller_arriving_second_is_answered_first(server: ServerProcess, sipps: SippRunner) -> None:
    first = sipps.agent(target(server), "1003", "agent_answer.xml", timeout=60)
    second = sipps.agent(target(server), "1002", "agent_answer.xml", timeout=60)
    assert first.wait_for_message("SIP/2.0 200", 10) and second.wait_for_message("SIP/2.0 200", 10)
    normal = sipps.carrier(target(server), digit="2", caller="5551234", talk_ms=12000, timeout=50, name="normal")
    assert wait_until(lambda: queued_calls(server, "support") >= 1, 15), "the normal call was not queued"
    vip = sipps.carrier(target(server), digit="2", caller=VIP, talk_ms=8000, timeout=50, name="vip")
    assert wait_until(lambda: queued_calls(server, "support") >= 2, 15), "the VIP call was not queued"
    agent_login_ready(server.http_port, "1003")  # one agent ready: it must get the VIP, who came second
    assert first.wait_for_message("INVITE sip:", 10), first.report()
    invite = first.messages()[first.messages().index("INVITE sip:"):]
    assert VIP.lstrip("+") in invite.split("\n\n")[0] or VIP in invite.split("\n\n")[0], invite[:600]
    agent_login_ready(server.http_port, "1002")
    assert second.wait_for_message("INVITE sip:", 10), second.report()
    second_invite = second.messages()[second.messages().index("INVITE sip:"):]
    assert "5551234" in second_invite.split("\n\n")[0]
    assert vip.wait(40) == 0, vip.report()
    assert normal.wait(40) == 0, normal.report()


def test_sales_call_never_rings_a_support_only_agent(server: ServerProcess, sipps: SippRunner) -> None:
    support_only = sipps.agent(target(server), "1003", "agent_answer.xml", timeout=40)
    sales = sipps.agent(target(server), "1001", "agent_answer.xml", timeout=40)
    assert support_only.wait_for_message("SIP/2.0 200", 10) and sales.wait_for_message("SIP/2.0 200", 10)
    agent_login_ready(server.http_port, "1003")
    caller = sipps.carrier(target(server), digit="1", talk_ms=8000, timeout=40)
    assert wait_until(lambda: queued_calls(server, "sales") >= 1, 15), "the sales call was not queued"
    time.sleep(2.0)  # the support-only agent is ready the whole time: it must not ring
    assert "INVITE sip:" not in support_only.messages()
    agent_login_ready(server.http_port, "1001")
    assert sales.wait_for_message("INVITE sip:", 10), sales.report()
    assert caller.wait(40) == 0, caller.report()
    assert "INVITE sip:" not in support_only.messages()


def _invite(port: int, local_port: int, tag: str, *, body: bytes | None = None, broken: bool = False) -> bytes:
    sdp = body if body is not None else (
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
    head = [
        f"INVITE sip:100@127.0.0.1:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{tag};rport",
        "Max-Forwards: 70",
        f"From: <sip:5550000@127.0.0.1>;tag={tag}",
        f"To: <sip:100@127.0.0.1:{port}>",
        f"Call-ID: {tag}@test",
        "CSeq: 1 INVITE" if not broken else "CSeq: 1 BYE",
        f"Contact: <sip:5550000@127.0.0.1:{local_port}>",
        "Content-Type: application/sdp",
    ]
    return ("\r\n".join(head) + f"\r\nContent-Length: {len(sdp)}\r\n\r\n").encode() + sdp


def _final_status(sock: socket.socket, timeout: float = 3.0) -> int | None:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65535)
        except TimeoutError:
            return None
        status = int(data.split(b" ", 2)[1])
        if status >= 200:
            return status
    return None


def test_invite_from_an_unknown_source_gets_403_and_is_counted(server: ServerProcess) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))  # loopback, but not in the demo trunk's allow list
        sock.sendto(_invite(server.sip_port, sock.getsockname()[1], "stranger"), (HOST, server.sip_port))
        assert _final_status(sock) == 403
    assert '"event": "call.trunk.refused"' in server.log_text()


def test_malformed_invite_gets_400_and_calls_keep_working(server: ServerProcess, sipps: SippRunner) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
        sock.sendto(_invite(server.sip_port, port, "broken-cseq", broken=True), (HOST, server.sip_port))
        assert _final_status(sock) == 400
        sock.sendto(_invite(server.sip_port, port, "bad-sdp", body=b"this is not SDP"), (HOST, server.sip_port))
        assert _final_status(sock) in (400, 488)
        sock.sendto(options_request(HOST, server.sip_port, port, "after-bad").encode(), (HOST, server.sip_port))
        assert _final_status(sock) == 200
    agent = sipps.agent(target(server), "1003", "agent_answer.xml", timeout=40)
    assert agent.wait_for_message("SIP/2.0 200", 10)
    agent_login_ready(server.http_port, "1003")
    caller = sipps.carrier(target(server), digit="2", talk_ms=2000, timeout=40)
    assert caller.wait(40) == 0, caller.report()
    assert agent.wait(15) == 0, agent.report()


def test_blind_transfer_by_refer_from_the_agents_phone(server: ServerProcess, sipps: SippRunner) -> None:
    first = sipps.agent(target(server), "1003", "agent_answer_refer.xml", "-key", "refer_to", "sales",
                        "-set", "talk_ms", "1500", timeout=40)
    second = sipps.agent(target(server), "1001", "agent_answer.xml", timeout=40)
    assert first.wait_for_message("SIP/2.0 200", 10) and second.wait_for_message("SIP/2.0 200", 10)
    agent_login_ready(server.http_port, "1003")
    agent_login_ready(server.http_port, "1001")
    caller = sipps.carrier(target(server), digit="2", talk_ms=9000, timeout=40)
    assert first.wait(30) == 0, first.report()  # REFER → 202 → NOTIFY → released with BYE
    assert second.wait_for_message("INVITE sip:", 10), second.report()
    assert caller.wait(40) == 0, caller.report()
    assert second.wait(15) == 0, second.report()
    assert "NOTIFY sip:" in first.messages() and "message/sipfrag" in first.messages()
    assert queued_calls(server, "sales") == 1 and queued_calls(server, "support") == 1
    assert wait_until(lambda: len(_legs(server)) == 2, 5), _legs(server)  # one queue leg per queue visit
    legs = sorted(_legs(server), key=lambda leg: leg[1])
    assert [(queue, outcome, agent) for queue, _, outcome, agent in legs] == [
        ("support", "answered", "1003"), ("sales", "answered", "1001")]

def test_blind_transfer_by_refer_to_an_agent_waits_for_that_agent(server: ServerProcess, sipps: SippRunner) -> None:
    first = sipps.agent(target(server), "1003", "agent_answer_refer.xml", "-key", "refer_to", "1002",
                        "-set", "talk_ms", "3000", timeout=40)
    longest_idle = sipps.agent(target(server), "1004", "agent_answer.xml", timeout=40)
    wanted = sipps.agent(target(server), "1002", "agent_answer.xml", timeout=40)
    for phone in (first, longest_idle, wanted):
        assert phone.wait_for_message("SIP/2.0 200", 10), phone.report()
    agent_login_ready(server.http_port, "1003")
    caller = sipps.carrier(target(server), digit="2", talk_ms=10000, timeout=40)
    assert first.wait_for_message("ACK sip:", 15), first.report()  # 1003 has the support call
    # Both others serve support; 1004 has waited longest, so a transfer to the queue would ring it.
    agent_login_ready(server.http_port, "1004")
    time.sleep(0.3)
    agent_login_ready(server.http_port, "1002")
    assert first.wait(30) == 0, first.report()  # REFER sip:1002@ → 202 → NOTIFY → released with BYE
    assert wanted.wait_for_message("INVITE sip:", 10), wanted.report()
    assert caller.wait(40) == 0, caller.report()
    assert wanted.wait(15) == 0, wanted.report()
    assert "INVITE sip:" not in longest_idle.messages()
    assert wait_until(lambda: len(_legs(server)) == 2, 5), _legs(server)
    legs = sorted(_legs(server), key=lambda leg: leg[1])
    assert [(queue, outcome, agent) for queue, _, outcome, agent in legs] == [
        ("support", "answered", "1003"), ("support", "answered", "1002")]


def _legs(server: ServerProcess) -> list[tuple[str, float, str, str]]:
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(server.data_dir / "cti.sqlite3")) as db:
        return db.execute("SELECT queue_id, t_enter_queue, outcome, agent_id FROM queue_legs").fetchall()


def test_graceful_shutdown_refuses_new_calls_and_lets_live_ones_finish(
    server: ServerProcess, sipps: SippRunner
) -> None:
    agent = sipps.agent(target(server), "1003", "agent_answer.xml", timeout=40)
    assert agent.wait_for_message("SIP/2.0 200", 10)
    agent_login_ready(server.http_port, "1003")
    caller = sipps.carrier(target(server), digit="2", talk_ms=5000, timeout=40)
    assert agent.wait_for_message("ACK sip:", 15), agent.report()  # the call is up
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.sendto(_invite(server.sip_port, sock.getsockname()[1], "late-call"), (HOST, server.sip_port))
        assert _final_status(sock) == 503
    assert caller.wait(30) == 0, caller.report()  # the live call ran to its end
    assert agent.wait(15) == 0, agent.report()
    assert server.proc.wait(15) == 0
    assert '"event": "server.node.stopped"' in server.log_text()


def _trunk_config(tmp: Path, **trunk: object) -> Path:
    import yaml

    repo = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((repo / "config" / "demo.yaml").read_text())
    config["flows_dir"] = str(repo / "config" / "flows")
    config["prompts_dir"] = str(repo / "config" / "prompts")
    config["trunks"].append({"name": "carrier2", "numbers": {"100": "main"}, **trunk})
    path = tmp / "cti.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_carrier_with_credentials_is_challenged_then_accepted(tmp_path: Path) -> None:
    from sip.auth import answer_challenge, parse_challenge
    from sip.message import parse_message

    config = _trunk_config(tmp_path, username="carrier2", password="trunk-secret-2")
    with run_server(tmp_path, config=config) as srv, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))  # not in any allow list: only the credentials can let it in
        port = sock.getsockname()[1]
        sock.sendto(_invite(srv.sip_port, port, "auth-1"), (HOST, srv.sip_port))
        sock.settimeout(3)
        challenge = parse_message(sock.recv(65535))
        while getattr(challenge, "status", 0) < 200:
            challenge = parse_message(sock.recv(65535))
        assert challenge.status == 401  # type: ignore[union-attr]
        digest = parse_challenge(challenge.headers.get_all("WWW-Authenticate")[0])
        creds = answer_challenge(digest, username="carrier2", password="trunk-secret-2", method="INVITE",
                                 uri=f"sip:100@127.0.0.1:{srv.sip_port}", cnonce="c1", nc=1)
        second = _invite(srv.sip_port, port, "auth-2").replace(
            b"Content-Type:", f"Authorization: {creds.header_value()}\r\nContent-Type:".encode(), 1)
        sock.sendto(second, (HOST, srv.sip_port))
        assert _final_status(sock) == 200
        wrong = answer_challenge(digest, username="carrier2", password="not-it", method="INVITE",
                                 uri=f"sip:100@127.0.0.1:{srv.sip_port}", cnonce="c2", nc=1)
        third = _invite(srv.sip_port, port, "auth-3").replace(
            b"Content-Type:", f"Authorization: {wrong.header_value()}\r\nContent-Type:".encode(), 1)
        sock.sendto(third, (HOST, srv.sip_port))
        assert _final_status(sock) in (401, 403)


def test_early_media_trunk_plays_the_ivr_in_a_183(tmp_path: Path) -> None:
    from sip.message import parse_message

    config = _trunk_config(tmp_path, allow=["127.0.0.2/32"], early_media=True)
    with run_server(tmp_path, config=config) as srv, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))
        sock.settimeout(10)  # a fresh server's first call (flows, prompts) on a busy CI machine
        sock.sendto(_invite(srv.sip_port, sock.getsockname()[1], "early-1"), (HOST, srv.sip_port))
        statuses = []
        body = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and 183 not in statuses:
            response = parse_message(sock.recv(65535))
            statuses.append(response.status)  # type: ignore[union-attr]
            body = response.body
        assert 183 in statuses and 200 not in statuses, statuses
        assert b"m=audio" in body  # the early-media answer
        assert _final_status(sock, 1.5) is None  # not answered: no agent has taken the call
        invite = _invite(srv.sip_port, sock.getsockname()[1], "early-1")
        head = invite.split(b"\r\n\r\n")[0].decode().split("\r\n")
        keep = [line for line in head[1:] if line.split(":")[0] in ("Via", "Max-Forwards", "From", "To", "Call-ID")]
        cancel = "\r\n".join([head[0].replace("INVITE", "CANCEL", 1), *keep, "CSeq: 1 CANCEL",
                               "Content-Length: 0", "", ""]).encode()
        sock.sendto(cancel, (HOST, srv.sip_port))
        finals = [_final_status(sock, 2.0), _final_status(sock, 2.0)]
        assert sorted(f for f in finals if f) == [200, 487], finals  # 200 to the CANCEL, 487 to the INVITE


def _limits_config(tmp: Path, limits: dict[str, object], **trunk: object) -> Path:
    import yaml

    path = _trunk_config(tmp, allow=["127.0.0.2/32"], **trunk)
    config = yaml.safe_load(path.read_text())
    config["limits"] = limits
    path.write_text(yaml.safe_dump(config))
    return path


def _finals(sock: socket.socket, call_ids: set[str], timeout: float = 5.0) -> dict[str, Any]:
    """The final response to each INVITE of ``call_ids`` (parsed), read off ``sock``."""
    from sip.message import parse_message

    finals: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while set(finals) != call_ids and (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            response = parse_message(sock.recv(65535))
        except TimeoutError:
            break
        if (getattr(response, "status", 0) >= 200 and response.cseq.method == "INVITE"
                and response.call_id in call_ids):  # not the retransmitted finals of earlier calls
            finals[response.call_id] = response
    return finals


def _refused(srv: ServerProcess) -> dict[str, int]:
    import re
    import urllib.request

    with urllib.request.urlopen(f"http://{HOST}:{srv.http_port}/metrics", timeout=3) as reply:
        text = reply.read().decode()
    return {r: int(float(n)) for r, n in re.findall(r'^cti_calls_refused_total\{reason="(\w+)"\} (\S+)$', text, re.M)}


def test_a_trunk_past_its_channels_gets_busy_until_a_call_ends(tmp_path: Path) -> None:
    config = _limits_config(tmp_path, {}, max_calls=2)
    with run_server(tmp_path, config=config) as srv, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))
        port = sock.getsockname()[1]
        for tag in ("ch-1", "ch-2", "ch-3"):
            sock.sendto(_invite(srv.sip_port, port, tag), (HOST, srv.sip_port))
            time.sleep(0.1)
        finals = _finals(sock, {"ch-1@test", "ch-2@test", "ch-3@test"})
        assert {cid: r.status for cid, r in finals.items()} == {"ch-1@test": 200, "ch-2@test": 200,
                                                                "ch-3@test": 486}
        # The first call ends (ACK, then BYE): its channel is free again.
        to = finals["ch-1@test"].headers.get("To")
        common = [f"Via: SIP/2.0/UDP 127.0.0.2:{port};branch=z9hG4bK{{}};rport", "Max-Forwards: 70",
                  "From: <sip:5550000@127.0.0.1>;tag=ch-1", f"To: {to}", "Call-ID: ch-1@test"]
        for method, seq in (("ACK", 1), ("BYE", 2)):
            lines = [f"{method} sip:100@127.0.0.1:{srv.sip_port} SIP/2.0",
                     common[0].format(f"ch1{method.lower()}"), *common[1:], f"CSeq: {seq} {method}",
                     "Content-Length: 0", "", ""]
            sock.sendto("\r\n".join(lines).encode(), (HOST, srv.sip_port))
        time.sleep(0.5)
        sock.sendto(_invite(srv.sip_port, port, "ch-4"), (HOST, srv.sip_port))
        assert {cid: r.status for cid, r in _finals(sock, {"ch-4@test"}).items()} == {"ch-4@test": 200}
        assert _refused(srv).get("trunk_full") == 1
    assert '"reason": "trunk_full"' in srv.log_text()


def test_new_calls_past_the_nodes_rate_get_503(tmp_path: Path) -> None:
    config = _limits_config(tmp_path, {"max_calls_per_second": 2})
    with run_server(tmp_path, config=config) as srv, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))
        port = sock.getsockname()[1]
        tags = [f"rate-{i}" for i in range(5)]
        for tag in tags:  # a burst of 5, well within one second
            sock.sendto(_invite(srv.sip_port, port, tag), (HOST, srv.sip_port))
        finals = _finals(sock, {f"{t}@test" for t in tags})
        statuses = sorted(r.status for r in finals.values())
        assert statuses == [200, 200, 503, 503, 503], statuses
        assert not any(r.headers.get("Retry-After") for r in finals.values())  # this call only: try elsewhere
        assert _refused(srv).get("rate") == 3
        time.sleep(1.1)  # the bucket refills
        sock.sendto(_invite(srv.sip_port, port, "rate-later"), (HOST, srv.sip_port))
        assert [r.status for r in _finals(sock, {"rate-later@test"}).values()] == [200]


class Starver:
    """Starves a process of CPU as a crowded host does: stopped (SIGSTOP) 200 ms, then running 30 ms, over and
    over, so every tick of its event loop runs late, until stopped."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid, self.done = pid, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.is_set():
            os.kill(self.pid, signal.SIGSTOP)
            time.sleep(0.2)
            os.kill(self.pid, signal.SIGCONT)
            time.sleep(0.03)

    def __enter__(self) -> Starver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        os.kill(self.pid, signal.SIGCONT)


def _gauge(srv: ServerProcess, name: str) -> float:
    import re
    import urllib.request

    with urllib.request.urlopen(f"http://{HOST}:{srv.http_port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, name
    return float(found.group(1))


def test_an_overloaded_node_refuses_new_calls_until_its_loop_catches_up(tmp_path: Path) -> None:
    """limits.max_loop_lag_ms: while the loop runs late (the process starved of CPU), a new call gets 503 without
    Retry-After (reason overloaded) and the node says so once; when the loop is on time again, calls are taken."""
    config = _limits_config(tmp_path, {"max_loop_lag_ms": 50})
    with run_server(tmp_path, config=config) as srv, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))
        port = sock.getsockname()[1]
        assert _gauge(srv, "cti_node_overloaded") == 0
        with Starver(srv.proc.pid):
            deadline = time.monotonic() + 10
            while _gauge(srv, "cti_node_overloaded") == 0:  # five late ticks in a row: about half a second
                assert time.monotonic() < deadline, "never overloaded"
            sock.sendto(_invite(srv.sip_port, port, "busy-1"), (HOST, srv.sip_port))
            (final,) = _finals(sock, {"busy-1@test"}, timeout=10).values()
            assert final.status == 503 and final.headers.get("Retry-After") is None
        deadline = time.monotonic() + 10
        while _gauge(srv, "cti_node_overloaded") == 1:  # five ticks on time
            assert time.monotonic() < deadline, "never recovered"
            time.sleep(0.1)
        sock.sendto(_invite(srv.sip_port, port, "calm-1"), (HOST, srv.sip_port))
        assert [r.status for r in _finals(sock, {"calm-1@test"}).values()] == [200]
        assert _refused(srv).get("overloaded") == 1
    log = srv.log_text()
    assert log.count('"event": "server.node.overloaded"') == 1 and '"event": "server.node.recovered"' in log


def test_the_agents_bye_is_answered_when_the_agent_hangs_up_first(
        server: ServerProcess, sipps: SippRunner, tmp_path: Path) -> None:
    """The agent's phone hangs up a connected call: its BYE gets a 200 (after the call's record is
    committed) and the carrier gets the node's BYE. Found with pyVoIP (it does not retransmit, so
    nothing showed): the held 200 was lost once the agent's leg left the call."""
    agent = sipps.agent(target(server), "1001", "agent_answer_hangup.xml", "-set", "talk_ms", "1000", timeout=30)
    assert agent.wait_for_message("SIP/2.0 200", 10), agent.report()  # registered
    agent_login_ready(server.http_port, "1001")
    tone = write_tone_pcap(tmp_path / "caller.pcap", 1000, 3.0)
    caller = sipps.start("carrier", "carrier_tone.xml", "-s", "100", "-key", "caller", "5551234",
                         "-key", "dtmf_pcap", dtmf_pcap("1"), "-key", "audio_pcap", str(tone),
                         "-set", "greeting_ms", "3000", "-set", "talk_ms", "15000", remote=target(server), timeout=30)
    assert agent.wait(20) == 0, agent.report()  # its BYE was answered 200
    assert caller.wait(10) == 0, caller.report()
    assert "BYE sip:" in caller.messages()  # the node's BYE reached the carrier
