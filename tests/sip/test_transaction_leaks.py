"""Every server transaction ends, and the layer is bounded: what hostile SIP found (issue 13).

A fuzz run left server transactions alive long after the traffic stopped. These cases reproduce
each way a transaction could stay forever, with time stepped by hand:

* the TU never answers a request (its handler failed): the layer's guard (``TimerId.TU``, 64*T1,
  when the client's Timer B/F has fired) ends a non-INVITE and answers an INVITE 500;
* two live transactions with the same response key (the §8.2.2.2 "merged request": same From tag,
  Call-ID and CSeq, different transaction): the second is refused 482, so the TU's answer always
  reaches the transaction it is for;
* past ``max_server_transactions`` (in all, or from one source address) new requests are answered
  503 statelessly and counted, without a transaction.
"""

from __future__ import annotations

from sip.errors import RemoteSipError
from sip.events import Destination, RequestReceived, TransactionTerminated, TransactionTimedOut
from sip.message import Response
from sip.timers import T1, T4, TimerId
from sip.transaction import TransactionLayer, TransactionState
from tests.sip.pair import UDP_FROM_UAC, answer, drain, make_request, roundtrip

S = TransactionState
TIMEOUT = 64 * T1


def run_timers(layer: TransactionLayer, until: float) -> float:
    """Fire every timer due up to ``until``; returns the time reached."""
    now = 0.0
    while (when := layer.get_timer()) is not None and when <= until:
        now = when
        layer.handle_timer(now)
    return now


def test_a_non_invite_the_tu_never_answers_ends_after_64_t1() -> None:
    layer = TransactionLayer()
    layer.receive_message(roundtrip(make_request("OPTIONS")), UDP_FROM_UAC, 0.0)
    (event,) = drain(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    assert layer.get_timer() == TIMEOUT
    layer.handle_timer(TIMEOUT - 0.001)
    assert layer.state_of(event.transaction) is S.TRYING
    layer.handle_timer(TIMEOUT)
    events = drain(layer)
    assert [type(e) for e in events] == [TransactionTimedOut, TransactionTerminated]
    assert isinstance(events[0], TransactionTimedOut) and events[0].timer is TimerId.TU
    # RFC 4320 §4.1: no 408 for a non-INVITE (the client has given up): nothing is sent.
    assert layer.messages_to_send() == []
    assert len(layer) == 0
    assert layer.unanswered == 1


def test_a_non_invite_answered_provisionally_and_then_abandoned_also_ends() -> None:
    layer = TransactionLayer()
    request = roundtrip(make_request("INFO"))
    layer.receive_message(request, UDP_FROM_UAC, 0.0)
    drain(layer)
    layer.send_response(answer(request, 100), 1.0)  # type: ignore[arg-type]
    run_timers(layer, TIMEOUT)
    assert len(layer) == 0


def test_an_invite_the_tu_never_answers_gets_a_500_and_ends() -> None:
    layer = TransactionLayer()
    layer.receive_message(roundtrip(make_request("INVITE")), UDP_FROM_UAC, 0.0)
    (event,) = drain(layer)
    assert [m.status for m, _ in layer.messages_to_send()] == [100]  # type: ignore[union-attr]
    layer.handle_timer(TIMEOUT)
    sent = layer.messages_to_send()
    assert [m.status for m, _ in sent] == [500]  # type: ignore[union-attr]
    assert b"\r\nRetry-After: " in bytes(sent[0][0])
    assert any(isinstance(e, TransactionTimedOut) and e.timer is TimerId.TU for e in drain(layer))
    assert layer.state_of(event.transaction) is S.COMPLETED  # type: ignore[arg-type]
    run_timers(layer, 2 * TIMEOUT)  # Timer H: no ACK for the 500
    assert len(layer) == 0


def test_an_invite_the_tu_rings_is_left_to_the_tu() -> None:
    """A provisional response from the TU means it owns the call (queues may ring for minutes)."""
    layer = TransactionLayer()
    request = roundtrip(make_request("INVITE"))
    layer.receive_message(request, UDP_FROM_UAC, 0.0)
    (event,) = drain(layer)
    layer.send_response(answer(request, 180), 1.0)  # type: ignore[arg-type]
    layer.messages_to_send()
    layer.handle_timer(10 * TIMEOUT)
    assert layer.messages_to_send() == []
    assert layer.state_of(event.transaction) is S.PROCEEDING  # type: ignore[arg-type]


def test_answered_requests_do_not_trip_the_guard() -> None:
    layer = TransactionLayer()
    request = roundtrip(make_request("OPTIONS"))
    layer.receive_message(request, UDP_FROM_UAC, 0.0)
    drain(layer)
    layer.send_response(answer(request, 404), 0.1)  # type: ignore[arg-type]
    run_timers(layer, 0.1 + TIMEOUT)  # Timer J
    assert [type(e) for e in drain(layer)] == [TransactionTerminated]
    assert len(layer) == 0 and layer.unanswered == 0


def test_a_merged_request_is_refused_482_and_both_transactions_end() -> None:
    """RFC 2543 branches: two requests differing only in the Request-URI are two transactions
    (§17.2.3 fallback) with the same Via, Call-ID and CSeq, so their answers could not be told apart."""
    layer = TransactionLayer()
    first = roundtrip(make_request("OPTIONS", branch="1", uri="sip:bob@192.0.2.2"))
    second = roundtrip(make_request("OPTIONS", branch="1", uri="sip:carol@192.0.2.2"))
    layer.receive_message(first, UDP_FROM_UAC, 0.0)
    drain(layer)
    try:
        layer.receive_message(second, UDP_FROM_UAC, 0.1)
    except RemoteSipError as exc:
        assert exc.status_hint == 482
    else:
        raise AssertionError("the merged request was accepted")
    assert len(layer) == 1
    layer.send_response(answer(first, 200), 0.2)  # type: ignore[arg-type]
    run_timers(layer, 0.2 + TIMEOUT)
    assert len(layer) == 0


def test_a_request_matching_a_live_transaction_is_still_a_retransmission() -> None:
    layer = TransactionLayer()
    request = make_request("OPTIONS", branch="1")
    layer.receive_message(roundtrip(request), UDP_FROM_UAC, 0.0)
    layer.receive_message(roundtrip(request), UDP_FROM_UAC, 0.5)
    assert len(layer) == 1 and layer.received_again == 1


def test_past_the_cap_new_requests_are_answered_503_without_a_transaction() -> None:
    layer = TransactionLayer(max_server_transactions=3)
    for n in range(3):
        layer.receive_message(roundtrip(make_request("OPTIONS", call_id=f"c{n}")), UDP_FROM_UAC, 0.0)
    drain(layer)
    layer.receive_message(roundtrip(make_request("OPTIONS", call_id="c3")), UDP_FROM_UAC, 0.0)
    assert drain(layer) == []
    (sent,) = layer.messages_to_send()
    assert isinstance(sent[0], Response) and sent[0].status == 503
    assert sent[0].headers.get("Retry-After") is not None
    assert sent[1].addr == UDP_FROM_UAC.addr
    assert len(layer) == 3 and layer.shed == 1
    # An ACK is never answered, even past the cap.
    layer.receive_message(roundtrip(make_request("ACK", call_id="c9")), UDP_FROM_UAC, 0.0)
    assert layer.messages_to_send() == [] and layer.shed == 1


def test_one_source_cannot_take_every_transaction() -> None:
    layer = TransactionLayer(max_server_transactions=10, max_server_transactions_per_source=2)
    other = Destination(transport="UDP", addr=("192.0.2.9", 5060))
    for n in range(4):
        layer.receive_message(roundtrip(make_request("OPTIONS", call_id=f"a{n}")), UDP_FROM_UAC, 0.0)
    layer.receive_message(roundtrip(make_request("OPTIONS", call_id="b0", via_host="192.0.2.9")), other, 0.0)
    assert len(layer) == 3 and layer.shed == 2
    assert sum(1 for e in drain(layer) if isinstance(e, RequestReceived)) == 3
    # Once the source's transactions end, it may start new ones.
    for message, _ in layer.messages_to_send():
        assert isinstance(message, Response) and message.status == 503
    run_timers(layer, TIMEOUT)
    assert len(layer) == 0
    layer.receive_message(roundtrip(make_request("OPTIONS", call_id="a9")), UDP_FROM_UAC, TIMEOUT)
    assert len(layer) == 1


def test_the_layer_drains_to_zero_after_a_burst_of_mixed_outcomes() -> None:
    """Answered, refused, unanswered, INVITE accepted without ACK, INVITE refused without ACK."""
    layer = TransactionLayer()
    now = 0.0
    requests = []
    for n in range(50):
        method = ("OPTIONS", "INVITE", "BYE", "REGISTER", "INFO")[n % 5]
        request = roundtrip(make_request(method, call_id=f"m{n}"))
        layer.receive_message(request, UDP_FROM_UAC, now)
        requests.append(request)
    drain(layer)
    for n, request in enumerate(requests):
        if n % 3 == 0:
            continue  # never answered
        layer.send_response(answer(request, (200, 486, 503)[n % 3 - 1] if n % 2 else 200), now)  # type: ignore[arg-type]
    assert len(layer) == 50
    now = run_timers(layer, 2 * TIMEOUT + T4)
    assert len(layer) == 0
    assert layer.get_timer() is None
