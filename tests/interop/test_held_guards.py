"""What an outside probe found holding on a demo node, kept under test (issue 16 §4).

* Accounts cannot be told apart: an existing and an unknown user get the same answers, whatever
  the method (what SIPVicious ``svwar`` looks for), from a trunk source and from a stranger.
* Password guessing (``svcrack``) from one source locks that source out, while the real phone
  from another address keeps registering.
* No INVITE leaves the node for an external number, from any source, registered phone included.
* The WebSocket gateway closes a frame over 64 KiB (1009) and refuses forged, tampered and
  expired tokens with 401 before the upgrade.
* Nothing the demo opens, SIP, HTTP or a call's RTP, listens on 0.0.0.0 or ::.

One demo node for the file; each source address (127.0.0.x) plays one party. About 6 s.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest

from sip.message import Response
from tests.interop.test_sip_server import UdpClient, register
from tests.support.procs import ServerProcess, run_server

pytestmark = pytest.mark.interop
HOST = "127.0.0.1"
REAL_PHONE, ATTACKER, PROBE = "127.0.0.1", "127.0.0.2", "127.0.0.3"


class SourceClient(UdpClient):
    """UdpClient sending from a chosen loopback address."""

    def __init__(self, server: ServerProcess, source: str) -> None:
        super().__init__(server)
        self.sock.close()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.source = source
        self.port = self.sock.getsockname()[1]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with run_server(tmp_path_factory.mktemp("held")) as server:
        yield server


def _request(client: SourceClient, method: str, user: str, call_id: str) -> bytes:
    port = client.target[1]
    uri = f"sip:{HOST}:{port}" if method == "REGISTER" else f"sip:{user}@{HOST}:{port}"
    lines = [f"{method} {uri} SIP/2.0",
             f"Via: SIP/2.0/UDP {client.source}:{client.port};branch=z9hG4bK{call_id};rport",
             "Max-Forwards: 70", f"From: <sip:{user}@{HOST}>;tag=f{call_id}", f"To: <sip:{user}@{HOST}>",
             f"Call-ID: {call_id}", f"CSeq: 1 {method}", f"Contact: <sip:{user}@{client.source}:{client.port}>"]
    if method == "SUBSCRIBE":
        lines.append("Event: presence")
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def _shape(response: Response | None) -> tuple[object, ...]:
    """A response without what differs by design between two requests (tags, nonces, Call-ID)."""
    if response is None:
        return (None,)
    names = sorted(name for name, _ in response.headers
                   if name not in ("Via", "From", "To", "Call-ID", "CSeq", "Content-Length"))
    challenge = [re.sub(r'nonce="[^"]*"', "nonce", v) for v in response.headers.get_all("WWW-Authenticate")]
    return response.status, response.reason, names, challenge, response.headers.get("Warning")


def test_existing_and_unknown_users_get_the_same_answers(node: ServerProcess) -> None:
    for source in (REAL_PHONE, PROBE):  # a trunk source (127.0.0.1/32) and a stranger
        client = SourceClient(node, source)
        try:
            for method in ("REGISTER", "OPTIONS", "INVITE", "SUBSCRIBE", "MESSAGE", "BYE"):
                shapes = []
                for user in ("1001", "9999"):
                    client.send(_request(client, method, user, f"enum-{source}-{method}-{user}"))
                    shapes.append(_shape(client.recv()))
                assert shapes[0] == shapes[1], (source, method, shapes)
        finally:
            client.close()
    # A wrong password: the same 403 for an agent and for nobody (one failure each, from PROBE).
    client = SourceClient(node, PROBE)
    try:
        answers = [_shape(register(client, user, "guess", f"enum-pw-{user}")) for user in ("1002", "9998")]
        assert answers[0] == answers[1] and answers[0][0] == 403, answers
    finally:
        client.close()


def test_password_guessing_locks_its_source_out_while_the_real_phone_registers(node: ServerProcess) -> None:
    attacker = SourceClient(node, ATTACKER)
    phone = SourceClient(node, REAL_PHONE)
    try:
        statuses = [register(attacker, "1001", f"guess{i}", f"crack-{i}").status for i in range(8)]
        assert statuses == [403] * 8, statuses
        assert register(attacker, "1001", "demo1001", "crack-right").status == 403  # locked, even when right
        ok = register(phone, "1001", "demo1001", "real-phone")
        assert ok.status == 200, ok
        assert register(phone, "1001", "demo1001", "real-phone-off", expires=0).status == 200
    finally:
        attacker.close()
        phone.close()
    assert '"event": "sip.account.locked_out"' in node.log_text()


def _invite(client: SourceClient, number: str, call_id: str) -> bytes:
    sdp = (f"v=0\r\no=- 1 1 IN IP4 {client.source}\r\ns=-\r\nc=IN IP4 {client.source}\r\nt=0 0\r\n"
           "m=audio 40000 RTP/AVP 0\r\n").encode()
    port = client.target[1]
    head = [f"INVITE sip:{number}@{HOST}:{port} SIP/2.0",
            f"Via: SIP/2.0/UDP {client.source}:{client.port};branch=z9hG4bK{call_id};rport", "Max-Forwards: 70",
            f"From: <sip:1001@{HOST}>;tag=f{call_id}", f"To: <sip:{number}@{HOST}>", f"Call-ID: {call_id}",
            "CSeq: 1 INVITE", f"Contact: <sip:1001@{client.source}:{client.port}>",
            "Content-Type: application/sdp", f"Content-Length: {len(sdp)}", "", ""]
    return "\r\n".join(head).encode() + sdp


def test_no_invite_leaves_the_node_for_an_external_number(node: ServerProcess) -> None:
    externals = ("+441632960123", "00441632960123", "011441632960123", "9011441632960123", "18005550199",
                 "sip:+441632960123", "1001*00441632960123", "#0044")
    phone = SourceClient(node, REAL_PHONE)
    stranger = SourceClient(node, "127.0.0.4")
    try:
        assert register(phone, "1001", "demo1001", "toll-phone").status == 200  # the registered agent dials out
        for n, number in enumerate(externals):
            for client, want in ((phone, 404), (stranger, 403)):
                client.send(_invite(client, number.replace("sip:", ""), f"toll-{n}-{client.source}"))
                answer = client.recv()
                assert answer is not None and answer.status == want, (number, client.source, answer)
                client.send(_request(client, "ACK", number, f"toll-{n}-{client.source}"))
        time.sleep(0.3)
        register(phone, "1001", "demo1001", "toll-phone-off", expires=0)
    finally:
        phone.close()
        stranger.close()
    sent_invites = [line for line in node.log_text().splitlines()
                    if '"sip.message.sent"' in line and '"method": "INVITE"' in line]
    assert not sent_invites, sent_invites[:3]
    assert '"event": "call.arrived"' not in node.log_text()


def _token(node: ServerProcess) -> str:
    body = json.dumps({"role": "agent", "id": "1003", "password": "demo1003"}).encode()
    request = urllib.request.Request(f"http://{HOST}:{node.http_port}/auth/login", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return str(json.loads(answer.read())["token"])


def _forgeries(token: str) -> list[str]:
    claims_b64, _, signature = token.partition(".")
    claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=" * (-len(claims_b64) % 4)))
    def encode(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    expired = {**claims, **{k: 1 for k in claims if k in ("exp", "expires_at")}}
    promoted = {**claims, **{k: "supervisor" for k in claims if k == "role"}}
    return [
        f"{encode(promoted)}.{signature}",  # tampered claims, the old signature
        f"{encode(expired)}.{signature}",  # expired claims (the signature no longer matches either)
        f"{claims_b64}.{base64.urlsafe_b64encode(os.urandom(32)).rstrip(b'=').decode()}",  # forged signature
        f"{claims_b64}.",  # no signature
        "not-a-token",
    ]


def test_websocket_frame_cap_and_forged_tokens_on_a_real_node(node: ServerProcess) -> None:
    token = _token(node)

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            for bad in _forgeries(token):
                with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                    await session.ws_connect(f"http://{HOST}:{node.http_port}/ws", params={"token": bad})
                assert caught.value.status == 401, bad
            async with session.ws_connect(f"http://{HOST}:{node.http_port}/ws", params={"token": token}) as ws:
                hello = await ws.receive_json(timeout=5)
                assert hello["type"] == "hello"
                await ws.send_str(json.dumps({"type": "command", "id": "x", "command": "ping", "pad": "y" * 60_000}))
                answer = await ws.receive_json(timeout=5)  # under the cap: answered (an unknown command)
                assert answer["type"] == "reply" and answer["ok"] is False, answer
                await ws.send_str("z" * (64 * 1024 + 1))
                closing = await ws.receive(timeout=5)
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
                assert ws.close_code == 1009 or closing.data == 1009, (closing, ws.close_code)

    asyncio.run(run())


def _listening(pid: int) -> list[tuple[str, str]]:
    """(protocol, local address) of every inet socket the process holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    found = []
    for proto in ("tcp", "udp", "tcp6", "udp6"):
        with open(f"/proc/net/{proto}") as table:
            for row in table.read().splitlines()[1:]:
                fields = row.split()
                if fields[9] in inodes:
                    found.append((proto, fields[1]))
    return found


def test_nothing_listens_on_a_wildcard_address_even_during_a_call(node: ServerProcess) -> None:
    client = SourceClient(node, REAL_PHONE)
    try:
        client.send(_invite(client, "100", "wildcard-call"))
        answer = client.recv(timeout=5)
        assert answer is not None and answer.status == 200, answer
        sockets = _listening(node.proc.pid)
        to_tag = answer.headers.get("To") or ""
        for method, seq in (("ACK", 1), ("BYE", 2)):
            head = [f"{method} sip:100@{HOST}:{node.sip_port} SIP/2.0",
                    f"Via: SIP/2.0/UDP {REAL_PHONE}:{client.port};branch=z9hG4bKwc{method};rport", "Max-Forwards: 70",
                    f"From: <sip:1001@{HOST}>;tag=fwildcard-call", f"To: {to_tag}", "Call-ID: wildcard-call",
                    f"CSeq: {seq} {method}", "Content-Length: 0", "", ""]
            client.send("\r\n".join(head).encode())
        assert (bye := client.recv(timeout=5)) is not None and bye.status == 200
    finally:
        client.close()
    assert len(sockets) >= 4, sockets  # SIP UDP + TCP, HTTP, and the call's RTP
    wildcard = [(proto, addr) for proto, addr in sockets
                if addr.startswith("00000000:") or addr.startswith("00000000000000000000000000000000:")]
    assert not wildcard, wildcard
    loopback = "0100007F"
    assert all(addr.startswith(loopback) or proto.endswith("6") for proto, addr in sockets), sockets


def test_login_failures_from_a_source_are_throttled_on_a_real_node(node: ServerProcess) -> None:
    statuses = []
    for i in range(7):
        body = json.dumps({"role": "agent", "id": "1004", "password": f"wrong{i}"}).encode()
        request = urllib.request.Request(f"http://{HOST}:{node.http_port}/auth/login", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=5)
            statuses.append(200)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses
