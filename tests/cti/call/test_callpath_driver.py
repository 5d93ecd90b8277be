"""The SIP call-path driver of the instruction benchmark (tests/bench/callpath_sip.py) runs whole calls.

``bench_instructions.py``'s ``sip_call`` case counts the instructions of one queued call through the
node's endpoint, transaction layer, legs and dialogs; these checks make sure that what it counts is a
call that really happened: every message answered as the node answers it, nothing refused or failed,
and every transaction gone once the RFC timers have run.
"""

from __future__ import annotations

from sip.message import parse_message
from tests.bench.callpath_sip import AGENT, CARRIER, CallNode


def test_the_driver_runs_whole_calls_and_leaves_nothing_behind() -> None:
    node = CallNode()
    sent: list[tuple[bytes, object]] = []
    send = node.wire.send

    def keep(data: bytes, destination: object) -> None:
        sent.append((data, destination))
        send(data, destination)  # type: ignore[arg-type]

    node.wire.send = keep  # type: ignore[method-assign]
    for n in range(3):
        sent.clear()
        assert node.call(n) == 6
        first_lines = [(data.split(b"\r\n", 1)[0].decode(), destination) for data, destination in sent]
        assert [line.split(" sip:")[0] if not line.startswith("SIP/") else line for line, _ in first_lines] == [
            "SIP/2.0 180 Ringing", "INVITE", "ACK", "SIP/2.0 200 OK", "SIP/2.0 200 OK", "BYE"]  # 180 at once: no 100
        assert [d for _, d in first_lines] == [CARRIER, AGENT, AGENT, CARRIER, CARRIER, AGENT]
        answer = parse_message(sent[3][0])
        assert answer.body.startswith(b"v=0") and answer.to.tag is not None
    assert not node.endpoint.failed and not node.endpoint.rejected and len(node.legs) == 0
    node.now += 64.0  # past every timer (J, K, L, D: at most 64*T1)
    node.endpoint.layer.handle_timer(node.now)
    assert len(node.endpoint.layer) == 0
