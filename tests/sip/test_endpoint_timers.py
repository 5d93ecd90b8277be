"""The asyncio SIP endpoint's timer: input already in the socket is read before due timers fire.

A node that runs late (a burst, a pause) finds the answers its retransmission timers wait for
already queued in the socket buffer. If the timer fired first, the node would send the request
again and the peer would answer it again: load the node cannot afford exactly then.
"""

from __future__ import annotations

import asyncio
import socket
import time

from sip.aio import SipEndpoint
from sip.events import Destination, SipEvent
from sip.message import parse_message
from sip.timers import T1
from sip.transaction import TransactionLayer
from tests.sip.pair import answer, make_request


class Recorder:
    def __init__(self) -> None:
        self.events: list[SipEvent] = []

    def on_sip_event(self, event: SipEvent) -> None:
        self.events.append(event)


async def test_an_answer_waiting_in_the_socket_stops_the_retransmission_timer() -> None:
    recorder = Recorder()
    endpoint = SipEndpoint(TransactionLayer(), recorder)
    await endpoint.start("127.0.0.1", 0, transports=("udp",))
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2)
    try:
        host, port = endpoint.local_address()
        invite = make_request("INVITE", via_host=host, uri=f"sip:agent@127.0.0.1:{peer.getsockname()[1]}")
        endpoint.send_request(invite, Destination(transport="UDP", addr=peer.getsockname()))
        sent = parse_message(peer.recv(65535))
        assert sent.method == "INVITE"  # type: ignore[union-attr]
        # The peer answers at once, behind an unrelated message; the node is busy (the loop is
        # blocked) past Timer A, so both wait in its socket buffer when the loop wakes up.
        stray = answer(make_request("OPTIONS", call_id="other@127.0.0.1"), 200)
        peer.sendto(bytes(stray), (host, port))
        peer.sendto(bytes(answer(sent, 180)), (host, port))  # type: ignore[arg-type]
        time.sleep(T1 + 0.2)  # noqa: ASYNC251 - the point: the loop is held up
        await asyncio.sleep(0.3)
        peer.settimeout(0.2)
        again = []
        try:
            while True:
                again.append(peer.recv(65535))
        except TimeoutError:
            pass
        assert again == [], "the INVITE was sent again although its 180 was waiting to be read"
        assert endpoint.layer.resent == 0
        assert any(getattr(e, "response", None) is not None and e.response.status == 180  # type: ignore[attr-defined]
                   for e in recorder.events)
    finally:
        peer.close()
        await endpoint.close()
