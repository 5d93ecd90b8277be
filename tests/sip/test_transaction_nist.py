"""Non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8): every (state × event) pair."""

from __future__ import annotations

import pytest

from sip.errors import LocalSipError
from sip.events import RequestReceived, ServerTransactionId, TransactionTerminated
from sip.message import SentResponse
from sip.timers import T1, T2, TimerId
from sip.transaction import TransactionLayer, TransactionState
from sip.transaction_server import ServerTransaction
from tests.sip.pair import TCP_FROM_UAC, UDP_FROM_UAC, answer, drain, make_request, roundtrip, wire

S = TransactionState


def start(source=UDP_FROM_UAC, method="OPTIONS"):
    layer = TransactionLayer()
    request = make_request(method, transport=source.transport)
    layer.receive_message(roundtrip(request), source, 0.0)
    (event,) = drain(layer)
    assert isinstance(event, RequestReceived)
    assert event.transaction is not None
    assert layer.messages_to_send() == []  # no 100 Trying for non-INVITE
    return layer, request, event


def test_new_request_creates_trying_transaction_and_passes_it_up() -> None:
    layer, _, event = start()
    assert event.request.method == "OPTIONS"
    assert event.cancels is None
    assert layer.state_of(event.transaction) is S.TRYING
    assert layer.get_timer() == 64 * T1  # no RFC timer in Trying: only the TU guard (TimerId.TU)


def test_trying_absorbs_retransmissions_without_answer() -> None:
    layer, request, event = start()
    layer.receive_message(roundtrip(request), UDP_FROM_UAC, 0.5)
    assert drain(layer) == []
    assert layer.messages_to_send() == []
    assert layer.state_of(event.transaction) is S.TRYING


def test_trying_provisional_goes_to_proceeding_and_is_resent_on_retransmission() -> None:
    layer, request, event = start()
    trying = answer(event.request, 100)
    layer.send_response(trying, 0.1)
    assert wire(layer.messages_to_send()) == [(bytes(trying), UDP_FROM_UAC)]
    assert layer.state_of(event.transaction) is S.PROCEEDING
    ringing = answer(event.request, 183)
    layer.send_response(ringing, 0.2)
    layer.messages_to_send()
    layer.receive_message(roundtrip(request), UDP_FROM_UAC, 0.5)
    assert wire(layer.messages_to_send()) == [(bytes(ringing), UDP_FROM_UAC)]  # the most recent provisional
    assert drain(layer) == []


@pytest.mark.parametrize("status", [200, 202, 302, 404, 500, 603])
@pytest.mark.parametrize("via_proceeding", [False, True])
def test_final_response_completes_with_timer_j_over_udp(status: int, via_proceeding: bool) -> None:
    layer, request, event = start()
    if via_proceeding:
        layer.send_response(answer(event.request, 100), 0.0)
    final = answer(event.request, status)
    layer.send_response(final, 1.0)
    assert wire(layer.messages_to_send())[-1] == (bytes(final), UDP_FROM_UAC)
    assert layer.state_of(event.transaction) is S.COMPLETED
    assert layer.get_timer() == pytest.approx(1.0 + 64 * T1)  # Timer J
    # Completed: retransmissions get the final response again, never the TU.
    layer.receive_message(roundtrip(request), UDP_FROM_UAC, 2.0)
    assert wire(layer.messages_to_send()) == [(bytes(final), UDP_FROM_UAC)]
    assert drain(layer) == []
    layer.handle_timer(1.0 + 64 * T1 - 0.001)
    assert layer.state_of(event.transaction) is S.COMPLETED
    layer.handle_timer(1.0 + 64 * T1)
    assert layer.state_of(event.transaction) is None
    assert drain(layer) == [TransactionTerminated(transaction=event.transaction)]
    assert len(layer) == 0 and layer.get_timer() is None


def test_completed_keeps_only_what_matching_reads() -> None:
    """In Completed (32 s on UDP) the transaction keeps To, Call-ID and CSeq of its request, no body
    and no other header (under a flood of requests these transactions are much of the live memory); it still
    answers retransmissions and ends by Timer J."""
    layer = TransactionLayer()
    request = make_request("INFO", extra=(("Subject", "x" * 200), ("Content-Type", "text/plain")))
    request.body = b"payload"
    layer.receive_message(roundtrip(request), UDP_FROM_UAC, 0.0)
    (event,) = drain(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    assert event.request.body == b"payload"  # the TU gets the whole request
    final = answer(event.request, 415)
    layer.send_response(final, 1.0)
    layer.messages_to_send()
    tx = layer.transaction(event.transaction)
    assert tx is not None and tx.state is S.COMPLETED
    assert [name for name, _ in tx.request.headers] == ["To", "Call-ID", "CSeq"]
    assert tx.request.body == b""
    assert (tx.request.method, tx.request.call_id, tx.request.cseq) == ("INFO", request.call_id, request.cseq)
    # The final answer is kept as it went on the wire, not as parsed headers.
    assert isinstance(tx, ServerTransaction) and tx.last_response == SentResponse.of(final)
    layer.receive_message(roundtrip(request), UDP_FROM_UAC, 2.0)
    assert wire(layer.messages_to_send()) == [(bytes(final), UDP_FROM_UAC)]
    assert drain(layer) == []
    layer.handle_timer(1.0 + 64 * T1)
    assert len(layer) == 0


def test_final_over_reliable_transport_terminates_at_once_timer_j_zero() -> None:
    layer, _, event = start(TCP_FROM_UAC)
    final = answer(event.request, 200)
    layer.send_response(final, 1.0)
    # §18.2.2: over a reliable transport the response goes back on the same connection.
    assert wire(layer.messages_to_send()) == [(bytes(final), TCP_FROM_UAC)]
    assert len(layer) == 0
    assert drain(layer) == [TransactionTerminated(transaction=event.transaction)]


@pytest.mark.parametrize("status", [100, 200, 486])
def test_completed_refuses_further_responses(status: int) -> None:
    layer, _, event = start()
    layer.send_response(answer(event.request, 200), 0.0)
    with pytest.raises(LocalSipError):
        layer.send_response(answer(event.request, status), 0.1)


def test_terminated_retransmission_is_a_new_transaction() -> None:
    layer, request, event = start()
    layer.send_response(answer(event.request, 200), 0.0)
    layer.handle_timer(64 * T1)
    layer.receive_message(roundtrip(request), UDP_FROM_UAC, 40.0)
    events = drain(layer)
    assert isinstance(events[-1], RequestReceived)
    assert events[-1].transaction != event.transaction


def test_response_without_transaction_is_sent_statelessly_by_via() -> None:
    layer = TransactionLayer()
    request = roundtrip(make_request("OPTIONS", via_params=";received=198.51.100.7;rport=1234"))
    response = answer(request, 200)
    layer.send_response(response, 0.0)
    ((sent, dest),) = layer.messages_to_send()
    assert sent is response
    assert dest.addr == ("198.51.100.7", 1234)
    assert dest.transport == "UDP"


def test_timer_constants() -> None:
    assert (T1, T2) == (0.5, 4.0)
    assert TimerId.J.value == "J"
    assert ServerTransactionId(3) == 3


def test_answering_a_retransmission_is_counted() -> None:
    layer, request, event = start()
    layer.receive_message(roundtrip(request), UDP_FROM_UAC, 0.1)  # Trying: absorbed, nothing sent
    assert (layer.resent, layer.received_again) == (0, 1)
    final = answer(event.request, 200)
    layer.send_response(final, 0.2)
    layer.messages_to_send()
    layer.receive_message(roundtrip(request), UDP_FROM_UAC, 0.6)  # Completed: the 200 sent again
    assert wire(layer.messages_to_send()) == [(bytes(final), UDP_FROM_UAC)]
    assert (layer.resent, layer.received_again) == (1, 2)


def test_a_stateless_refusal_ends_the_transaction_at_once() -> None:
    """RFC 3261 §8.2.7: the TU may answer as a stateless UAS (a challenge, a 481...). No Completed state: the
    answer goes out, the transaction ends, and a retransmission of the request reaches the TU again."""
    layer, request, event = start(method="BYE")
    refusal = answer(event.request, 481)
    layer.send_response(refusal, 1.0, stateless=True)
    assert wire(layer.messages_to_send()) == [(bytes(refusal), UDP_FROM_UAC)]
    assert drain(layer) == [TransactionTerminated(transaction=event.transaction)]
    assert len(layer) == 0 and layer.get_timer() is None
    layer.receive_message(roundtrip(request), UDP_FROM_UAC, 1.5)
    (again,) = drain(layer)
    assert isinstance(again, RequestReceived) and again.transaction != event.transaction


def test_the_200_to_an_options_can_be_stateless() -> None:
    """§11.2's answer to an OPTIONS is the same each time and changes nothing: the TU may send it as a stateless
    UAS, and a retransmission reaches the TU again (it answers the same)."""
    layer, request, event = start(method="OPTIONS")
    ok = answer(event.request, 200)
    layer.send_response(ok, 1.0, stateless=True)
    assert wire(layer.messages_to_send()) == [(bytes(ok), UDP_FROM_UAC)]
    assert drain(layer) == [TransactionTerminated(transaction=event.transaction)]
    assert len(layer) == 0
    layer.receive_message(roundtrip(request), UDP_FROM_UAC, 1.5)
    (again,) = drain(layer)
    assert isinstance(again, RequestReceived) and again.transaction != event.transaction


@pytest.mark.parametrize(("method", "status"), [("INVITE", 200), ("INVITE", 180), ("REGISTER", 200), ("BYE", 200),
                                               ("OPTIONS", 180)])
def test_only_a_final_non_2xx_or_the_200_to_an_options_can_be_stateless(method: str, status: int) -> None:
    layer = TransactionLayer()
    layer.receive_message(roundtrip(make_request(method)), UDP_FROM_UAC, 0.0)
    event = next(e for e in drain(layer) if isinstance(e, RequestReceived))
    layer.messages_to_send()
    with pytest.raises(LocalSipError):
        layer.send_response(answer(event.request, status), 0.1, stateless=True)
    assert len(layer) == 1
