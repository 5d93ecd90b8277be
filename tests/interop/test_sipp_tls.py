"""SIPp's TLS transport (``-t l1``) against the node's SIP/TLS listener (issue 16 §3).

Debian 12's SIPp has no TLS; ``.ci/sipp-tls`` provides one with it (Debian 13's build, docs/testing.md) at
``$CTI_SIPP_TLS`` or ``/opt/cti-ci/sipp-tls/sipp``. In CI (``CI`` set) a missing binary fails these tests with the
command that installs it; elsewhere they are skipped with the same hint.

The node runs the demo config with ``tls`` added to ``sip.transports`` on a free ``sip.tls_port``; its certificate is
the self-signed pair it writes into its data dir. SIPp needs a certificate of its own to start TLS (a client one it
presents if asked): one is made here with the same helper.

* A SIPp caller over TLS dials the demo's IVR number 100, presses 1 during the greeting (RFC 4733, plain RTP:
  SIPp offers no SRTP key; the IVR keeps the key for its menu) and hangs up: 200, ACK and BYE over TLS, the
  node's Contact in its 200 names its TLS listener (``;transport=tls``), the record shows the IVR took the "1".
* A SIPp agent 1001 registers over TLS; a SIPp carrier on UDP calls 100 and presses 1 (sales); the node INVITEs the
  agent over TLS (Via ``SIP/2.0/TLS`` with the TLS port, to the Contact registered with ``transport=TLS``; its own
  Contact on the TLS listener), the agent answers, the carrier hangs up and the agent answers the node's BYE: both
  SIPps end cleanly, the record names the agent.

SIPp here is Debian 13's wolfSSL build with the fix of ``.ci/sipp-tls-fd.c`` preloaded (without it SIPp completes the
handshake and then sends nothing). About 10 s for the two tests (one node start).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cti.tlsfiles import self_signed
from tests.support.procs import ServerProcess, free_port, run_server
from tests.support.sipp import HOST, SippRunner, agent_login_ready, dtmf_pcap

pytestmark = pytest.mark.interop
REPO = Path(__file__).resolve().parents[2]
KNOWN_PATH = Path("/opt/cti-ci/sipp-tls/sipp")


def _tls_sipp() -> str | None:
    """The SIPp with TLS: ``$CTI_SIPP_TLS``, else the path .ci/sipp-tls installs to; None when absent or without TLS."""
    candidate = os.environ.get("CTI_SIPP_TLS") or str(KNOWN_PATH)
    if not (shutil.which(candidate) or Path(candidate).is_file()):
        return None
    done = subprocess.run([candidate, "-v"], capture_output=True, text=True, timeout=10)
    return candidate if "-TLS" in done.stdout + done.stderr else None


@pytest.fixture(scope="module")
def tls_sipp() -> str:
    binary = _tls_sipp()
    if binary is None:
        hint = ("no SIPp with TLS: run `bash .ci/sipp-tls` (installs /opt/cti-ci/sipp-tls/sipp) "
                "or point CTI_SIPP_TLS at a sipp whose `-v` shows -TLS")
        if os.environ.get("CI"):
            pytest.fail(hint)
        pytest.skip(hint)
    return binary


class TlsNode:
    def __init__(self, server: ServerProcess, tls_port: int, client_files: tuple[Path, Path]) -> None:
        self.server, self.tls_port = server, tls_port
        self.client_cert, self.client_key = client_files

    @property
    def tls_args(self) -> tuple[str, ...]:
        return ("-t", "l1", "-tls_cert", str(self.client_cert), "-tls_key", str(self.client_key))

    def ended_call(self, caller: str, timeout: float = 10.0) -> dict[str, object]:
        """The record of the call from ``caller``, once it has its end (written as the call ends)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.closing(sqlite3.connect(self.server.data_dir / "cti.sqlite3")) as db:
                db.row_factory = sqlite3.Row
                rows = [dict(row) for row in db.execute("SELECT * FROM calls WHERE caller_number = ?", (caller,))]
            if (len(rows) == 1 and rows[0]["end_reason"]) or time.monotonic() > deadline:
                assert len(rows) == 1, rows
                return rows[0]
            time.sleep(0.1)

    def contact_is_tls(self, message: str) -> bool:
        """The node's Contact in ``message`` (a SIPp trace of one message) names its TLS listener."""
        contact = next(line for line in message.splitlines() if line.startswith("Contact:"))
        return f"127.0.0.1:{self.tls_port};transport=tls>" in contact


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsNode]:
    tmp_path = tmp_path_factory.mktemp("tls-node")
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["flows_dir"] = str(REPO / "config" / "flows")
    config["prompts_dir"] = str(REPO / "config" / "prompts")
    tls_port = free_port("tcp")
    config["sip"].update(transports=["udp", "tcp", "tls"], tls_port=tls_port)
    path = tmp_path / "cti.yaml"
    path.write_text(yaml.safe_dump(config))
    client = self_signed(tmp_path / "sipp-cert", HOST)
    with run_server(tmp_path, config=path) as server:
        yield TlsNode(server, tls_port, (client.cert_file, client.key_file))


@pytest.fixture
def tls_sipps(tmp_path: Path, tls_sipp: str) -> Iterator[SippRunner]:
    runner = SippRunner(tmp_path / "sipp-tls", binary=tls_sipp)
    try:
        yield runner
    finally:
        runner.stop_all()


def test_a_sipp_caller_over_tls_goes_through_the_ivr(node: TlsNode, tls_sipps: SippRunner) -> None:
    caller = tls_sipps.start(
        "caller-tls", "carrier_call_dtmf.xml", *node.tls_args, "-s", "100", "-key", "caller", "5551234",
        "-key", "dtmf_pcap", dtmf_pcap("1"), "-set", "greeting_ms", "300", "-set", "talk_ms", "2700",
        remote=f"{HOST}:{node.tls_port}", timeout=20)
    assert caller.wait(30) == 0, caller.report()
    messages = caller.messages()
    for step in ("SIP/2.0 200 OK", "ACK sip:", "BYE sip:"):
        assert step in messages, f"{step!r} missing from the TLS caller's trace\n{caller.report()}"
    assert "Via: SIP/2.0/TLS" in messages
    ok = messages[messages.index("SIP/2.0 200 OK"):]
    assert node.contact_is_tls(ok.split("\n\n", 1)[0]), ok[:1500]  # in-dialog requests come back over TLS
    row = node.ended_call("5551234")
    assert row["final_queue"] == "sales", row  # the IVR heard the caller's "1" over the TLS call (typed ahead)
    inputs = json.loads(str(row["ivr_inputs"]))["inputs"]
    assert [(i["node"], i["digits"], i["result"]) for i in inputs] == [("menu", "1", "accepted")], inputs
    assert row["end_reason"] == "caller-hangup", row


def test_an_agent_registered_over_tls_is_reached_on_its_connection(node: TlsNode, tls_sipps: SippRunner,
                                                                   tmp_path: Path) -> None:
    server = node.server
    agent = tls_sipps.agent(f"{HOST}:{node.tls_port}", "1001", "agent_answer.xml", *node.tls_args, timeout=25)
    assert agent.wait_for_message("SIP/2.0 200 OK", 10), agent.report()  # registered over TLS
    agent_login_ready(server.http_port, "1001")
    carrier_runner = SippRunner(tmp_path / "sipp-udp")
    try:
        carrier = carrier_runner.carrier(f"{HOST}:{server.sip_port}", digit="1", caller="5559876", greeting_ms=1000,
                                         talk_ms=3000, timeout=20)  # the "1" is typed ahead of the menu
        assert carrier.wait(30) == 0, carrier.report()
    finally:
        carrier_runner.stop_all()
    assert agent.wait(15) == 0, agent.report()
    messages = agent.messages()
    invite = messages[messages.index("INVITE sip:"):]
    head = invite.split("\n\n", 1)[0]
    assert f"Via: SIP/2.0/TLS 127.0.0.1:{node.tls_port};" in head, invite[:1500]  # the node's INVITE, over TLS
    assert node.contact_is_tls(head), invite[:1500]  # the phone's BYE would come back over TLS too
    assert "BYE sip:" in invite
    row = node.ended_call("5559876")
    assert (row["final_queue"], row["final_agent"], row["end_reason"]) == ("sales", "1001", "caller-hangup"), row
