"""The 49 RFC 4475 torture messages sent to a real ``cti serve --demo`` node (issue 16 §4).

Each message goes as it is (tests/sip/rfc4475/), over the transport its top Via names, with only
the top Via's sent-by pointed at the test's socket (tests/support/torture.py). The table below is
the answer the RFC's section asks for; where the RFC leaves a choice, the comment says which one
the node takes. Their Request-URIs name users at example.com, which no demo trunk number maps:
an INVITE is then answered 404 (RFC 3261 §8.2.2.1 comes before the body checks of §8.2.3).
``invut``, ``sdp01`` and ``inv2543`` are sent a second time to the demo number 100, where the
offer is looked at: 415, 406, and a call answered and hung up.

Afterwards the node must still answer OPTIONS and have logged no error. About 4 s.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from sip.message import Response, parse_message
from tests.support import torture
from tests.support.procs import ServerProcess, run_server, wait_for_options

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"

# name -> the node's final answer (None: nothing is sent back).
ANSWER: dict[str, int | None] = {
    # §3.1.1 valid messages: handled as any other
    "wsinv": 481,  # an INVITE with a To tag, no such dialog (§12.2.2)
    "intmeth": 501,  # unknown method, escaped control characters in a quoted string are legal
    "esc01": 404, "escnull": 401, "esc02": 501, "lwsdisp": 200, "longreq": 404,
    "dblreq": 401,  # the first REGISTER only
    "semiuri": 200, "transports": 200,
    "mpart01": 405,  # MESSAGE: known, not served here
    "unreason": None, "noreason": None,  # responses to nothing we sent: dropped
    # §3.1.2 invalid messages: 400 (or the section's answer), or dropped where allowed
    "badinv01": 400, "clerr": 400, "ncl": 400, "scalar02": 400, "quotbal": 400, "ltgtruri": 400,
    "lwsruri": 400, "lwsstart": 400, "trws": 400, "escruri": 400, "regbadct": 400, "baddn": 400,
    "badvers": 505, "mismatch01": 400, "mismatch02": 400,
    "scalarlg": None, "bigcode": None,  # responses
    "baddate": 404,  # §3.1.2.13: the Date is not used, so it is ignored (a liberal reading)
    "badaspec": 200,  # §3.1.2.15: accepted ignoring the spaces; the response keeps them
    # §3.2 transaction layer
    "badbranch": 200,  # RFC 2543 matching for a bare "z9hG4bK"
    # §3.3 application layer
    "insuf": 400, "unkscm": 416, "novelsc": 416,
    "unksm2": 400,  # a REGISTER's To must be a SIP or SIPS URI
    "bext01": 420, "regaut01": 401,  # an unknown Authorization scheme is ignored: challenged
    "multi01": 400, "mcl01": 400, "bcast": None, "zeromf": 200,  # OPTIONS answered locally at Max-Forwards 0
    "cparam01": 401, "cparam02": 401, "regescrt": 401,
    "invut": 404, "sdp01": 404,  # see ROUTED
    # §3.4 backward compatibility
    "inv2543": 404,  # accepted as an RFC 2543 INVITE (no branch, From tag, Contact or Max-Forwards)
}
ROUTED = {"invut": 415, "sdp01": 406, "inv2543": 200}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with run_server(tmp_path_factory.mktemp("rfc4475")) as server:
        yield server


def test_every_torture_message_gets_the_rfc_answer(node: ServerProcess) -> None:
    assert sorted(ANSWER) == torture.names()
    wrong = []
    for name in torture.names():
        answer = torture.send(name, node.sip_port, wait=0.5 if ANSWER[name] is None else 3.0)
        if answer.final != ANSWER[name] or (ANSWER[name] is None and answer.responses):
            wrong.append(f"{name} ({answer.transport}): got {answer.statuses}, want {ANSWER[name]}")
    assert not wrong, "\n".join(wrong)
    wait_for_options(node.sip_port, timeout=5)
    log = node.log_text()
    assert '"level": "error"' not in log and "Traceback" not in log, log[-3000:]


def test_answers_keep_what_the_rfc_says_they_keep(node: ServerProcess) -> None:
    # §3.1.2.15 'badaspec': "when forming responses, they must not ignore the spaces".
    badaspec = torture.send("badaspec", node.sip_port, wait=3.0).responses[-1]
    # §8.2.6.2: the UAS adds a To tag to a final response; the rest of To is as it came.
    assert b'\r\nTo: "Watson, Thomas" < sip:t.watson@example.org >;tag=' in badaspec, badaspec
    # 'badvers': 505 Version Not Supported.
    assert torture.send("badvers", node.sip_port).responses[-1].startswith(b"SIP/2.0 505 ")
    # 'regaut01': a normal Digest challenge.
    regaut = torture.send("regaut01", node.sip_port).responses[-1]
    assert b"\r\nWWW-Authenticate: Digest realm=\"cti.demo\"" in regaut, regaut
    # 'intmeth': the odd To and Call-ID come back byte for byte.
    intmeth = torture.send("intmeth", node.sip_port).responses[-1]
    assert b'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)' in intmeth
    assert b"Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n" in intmeth
    # 'dblreq': one answer, to the first request of the datagram.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.sendto(torture.readdress(torture.load("dblreq"), sock.getsockname()[1]), (HOST, node.sip_port))
        sock.settimeout(3.0)
        first = parse_message(sock.recv(65535))
        assert isinstance(first, Response) and first.status == 401 and first.cseq.method == "REGISTER"
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(65535)


def _call_to_100(node: ServerProcess, name: str) -> tuple[list[int], int | None]:
    """``name`` sent to the demo number 100 over UDP; when answered, ACK and BYE it (RFC 2543 style
    for 'inv2543': no branch, no From tag). The INVITE's statuses and the BYE's final status."""
    data = torture.readdress_uri(torture.load(name), f"sip:100@{HOST}:{node.sip_port}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        local = sock.getsockname()[1]
        sock.sendto(torture.readdress(data, local), (HOST, node.sip_port))
        statuses: list[int] = []
        final: Response | None = None
        deadline = time.monotonic() + 5.0
        while final is None and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            message = parse_message(sock.recv(65535))
            if isinstance(message, Response) and message.cseq.method == "INVITE":
                statuses.append(message.status)
                final = message if message.status >= 200 else None
        if final is None or final.status >= 300:
            return statuses, None
        head = data.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
        keep = {k: v for k, v in (line.split(":", 1) for line in head[1:] if ":" in line)}
        cseq = int(final.cseq.seq)
        bye_status = None
        for method, seq in (("ACK", cseq), ("BYE", cseq + 1)):
            lines = [f"{method} {final.contacts[0].address.uri if final.contacts and final.contacts[0].address else ''}"
                     f" SIP/2.0", f"Via: SIP/2.0/UDP {HOST}:{local};rport", f"From:{keep['From']}",
                     f"To: {final.headers.get('To')}", f"Call-ID: {final.call_id}", f"CSeq: {seq} {method}",
                     "Content-Length: 0", "", ""]
            sock.sendto("\r\n".join(lines).encode(), (HOST, node.sip_port))
        deadline = time.monotonic() + 5.0
        while bye_status is None and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            message = parse_message(sock.recv(65535))
            if isinstance(message, Response) and message.cseq.method == "BYE":
                bye_status = message.status
        return statuses, bye_status


def test_invut_sdp01_and_inv2543_sent_to_a_number_the_node_serves(node: ServerProcess) -> None:
    """RFC 4475 §3.3.7 'invut': 415 (an unknown body type, never an answered call); §3.3.15 'sdp01':
    406 (Accept names no type the answer could have); §3.4.1 'inv2543': accepted and answered."""
    for name in ("invut", "sdp01"):
        statuses, _ = _call_to_100(node, name)
        assert statuses[-1:] == [ROUTED[name]] and not any(100 < s < 200 for s in statuses), (name, statuses)
    statuses, bye = _call_to_100(node, "inv2543")
    assert statuses[-1:] == [200], statuses
    assert bye == 200  # the BYE without a From tag found its dialog (§12.1.1: a null tag)
    log = node.log_text()
    assert '"event": "call.arrived"' in log and '"level": "error"' not in log, log[-3000:]
