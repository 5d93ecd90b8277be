"""Matching and routing: §17.2.3 (incl. the RFC 2543 fallback), §9 CANCEL, §18.2.1/§18.2.2, RFC 3581."""

from __future__ import annotations

import pytest

from sip.errors import LocalSipError
from sip.events import Destination, RequestReceived, ResponseReceived, TransactionTerminated
from sip.headers import Via
from sip.transaction import TransactionLayer, TransactionState
from sip.transaction_routing import response_destination
from tests.sip.pair import UDP_FROM_UAC, UDP_TO_UAS, answer, drain, make_request, roundtrip

S = TransactionState
NAT = Destination(transport="UDP", addr=("203.0.113.9", 40000))


# ------------------------------------------------------------------ Via annotation
def test_rport_filled_and_received_added_even_when_ip_matches() -> None:
    layer = TransactionLayer()
    request = roundtrip(make_request(via_host="192.0.2.1", via_params=";rport"))
    layer.receive_message(request, UDP_FROM_UAC, 0.0)
    (event,) = drain(layer)
    via = event.request.top_via
    assert (via.rport, via.received) == ("5060", "192.0.2.1")


def test_received_added_when_source_ip_differs_and_response_goes_to_rport() -> None:
    layer = TransactionLayer()
    layer.receive_message(roundtrip(make_request(via_params=";rport")), NAT, 0.0)
    (event,) = drain(layer)
    via = event.request.top_via
    assert (via.received, via.rport) == ("203.0.113.9", "40000")
    layer.send_response(answer(event.request, 200), 0.0)
    ((_, dest),) = layer.messages_to_send()
    assert dest.addr == ("203.0.113.9", 40000)


def test_without_rport_response_goes_to_received_ip_and_sent_by_port() -> None:
    layer = TransactionLayer()
    layer.receive_message(roundtrip(make_request()), NAT, 0.0)
    (event,) = drain(layer)
    assert event.request.top_via.received == "203.0.113.9"
    assert event.request.top_via.rport is None
    layer.send_response(answer(event.request, 200), 0.0)
    ((_, dest),) = layer.messages_to_send()
    assert dest.addr == ("203.0.113.9", 5060)


def test_no_received_when_sent_by_matches_source() -> None:
    layer = TransactionLayer()
    layer.receive_message(roundtrip(make_request()), UDP_FROM_UAC, 0.0)
    (event,) = drain(layer)
    assert event.request.top_via.received is None


def test_domain_sent_by_always_gets_received() -> None:
    layer = TransactionLayer()
    layer.receive_message(roundtrip(make_request(via_host="pc33.example.com")), UDP_FROM_UAC, 0.0)
    (event,) = drain(layer)
    assert event.request.top_via.received == "192.0.2.1"


def test_only_the_top_via_is_annotated() -> None:
    layer = TransactionLayer()
    request = make_request(via_params=";rport", extra=(("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKlower"),))
    layer.receive_message(roundtrip(request), NAT, 0.0)
    (event,) = drain(layer)
    vias = event.request.vias
    assert len(vias) == 2 and vias[1].received is None and vias[1].branch == "z9hG4bKlower"


@pytest.mark.parametrize(
    ("via", "addr"),
    [
        ("SIP/2.0/UDP 192.0.2.1", ("192.0.2.1", 5060)),
        ("SIP/2.0/UDP 192.0.2.1:5070", ("192.0.2.1", 5070)),
        ("SIP/2.0/TLS example.com", ("example.com", 5061)),
        ("SIP/2.0/UDP [2001:db8::1]:5080;received=2001:db8::9", ("2001:db8::9", 5080)),
        ("SIP/2.0/UDP 10.0.0.1:5070;received=203.0.113.9;rport=40000", ("203.0.113.9", 40000)),
        ("SIP/2.0/UDP 10.0.0.1:5070;rport", ("10.0.0.1", 5070)),
    ],
)
def test_stateless_response_destination(via: str, addr: tuple[str, int]) -> None:
    assert response_destination(Via.parse(via), None).addr == addr


def test_reliable_response_goes_back_on_the_connection() -> None:
    tcp = Destination(transport="TCP", addr=("203.0.113.9", 40000), connection_id=42)
    assert response_destination(Via.parse("SIP/2.0/TCP 10.0.0.1"), tcp) == tcp


# ------------------------------------------------------------ RFC 2543 fallback
def test_rfc2543_request_without_cookie_matches_by_headers() -> None:
    layer = TransactionLayer()
    invite = make_request("INVITE", branch="", seq=5)
    layer.receive_message(roundtrip(invite), UDP_FROM_UAC, 0.0)
    (event,) = drain(layer)
    layer.messages_to_send()
    layer.receive_message(roundtrip(invite), UDP_FROM_UAC, 0.5)  # retransmission: absorbed
    assert drain(layer) == [] and [m.status for m, _ in layer.messages_to_send()] == [100]
    layer.send_response(answer(event.request, 486, to_tag="abc"), 1.0)
    assert layer.state_of(event.transaction) is S.COMPLETED
    wrong_tag = make_request("ACK", branch="", seq=5, to_tag="other")
    layer.receive_message(roundtrip(wrong_tag), UDP_FROM_UAC, 1.1)
    assert layer.state_of(event.transaction) is S.COMPLETED
    ack = make_request("ACK", branch="", seq=5, to_tag="abc")
    layer.receive_message(roundtrip(ack), UDP_FROM_UAC, 1.2)
    assert layer.state_of(event.transaction) is S.CONFIRMED


def test_rfc2543_different_cseq_is_a_new_transaction() -> None:
    layer = TransactionLayer()
    layer.receive_message(roundtrip(make_request("OPTIONS", branch="", seq=1)), UDP_FROM_UAC, 0.0)
    layer.receive_message(roundtrip(make_request("OPTIONS", branch="", seq=2)), UDP_FROM_UAC, 0.0)
    assert len([e for e in drain(layer) if isinstance(e, RequestReceived)]) == 2
    assert len(layer) == 2


def test_rfc3261_branch_match_needs_same_sent_by() -> None:
    layer = TransactionLayer()
    first = make_request("OPTIONS", branch="z9hG4bKsame")
    other_host = make_request("OPTIONS", branch="z9hG4bKsame", via_host="192.0.2.77")
    layer.receive_message(roundtrip(first), UDP_FROM_UAC, 0.0)
    layer.receive_message(roundtrip(other_host), UDP_FROM_UAC, 0.0)
    assert len(layer) == 2


# ---------------------------------------------------------------------- CANCEL
def test_server_cancel_matches_invite_transaction() -> None:
    layer = TransactionLayer()
    invite = make_request("INVITE", branch="z9hG4bKinv")
    layer.receive_message(roundtrip(invite), UDP_FROM_UAC, 0.0)
    (inv_event,) = drain(layer)
    cancel = make_request("CANCEL", branch="z9hG4bKinv")
    layer.receive_message(roundtrip(cancel), UDP_FROM_UAC, 0.1)
    (cancel_event,) = drain(layer)
    assert isinstance(cancel_event, RequestReceived)
    assert cancel_event.cancels == inv_event.transaction
    assert cancel_event.transaction not in (None, inv_event.transaction)
    # The TU answers 200 to the CANCEL and 487 to the INVITE: two separate transactions.
    layer.send_response(answer(cancel_event.request, 200), 0.2)
    layer.send_response(answer(inv_event.request, 487), 0.2)
    assert layer.state_of(inv_event.transaction) is S.COMPLETED


def test_server_cancel_without_invite_has_no_target() -> None:
    layer = TransactionLayer()
    layer.receive_message(roundtrip(make_request("CANCEL")), UDP_FROM_UAC, 0.0)
    (event,) = drain(layer)
    assert event.cancels is None and event.transaction is not None


def _client_invite(layer: TransactionLayer):
    invite_in = make_request("INVITE", routes=("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"))
    tx = layer.send_request(invite_in, UDP_TO_UAS, 0.0)
    ((invite, _),) = layer.messages_to_send()
    return invite, tx


def test_client_cancel_after_provisional_is_built_per_9_1() -> None:
    layer = TransactionLayer()
    invite, tx = _client_invite(layer)
    layer.receive_message(roundtrip(answer(invite, 180)), UDP_TO_UAS, 0.1)
    drain(layer)
    cancel_tx = layer.cancel(tx, 0.2)
    assert cancel_tx is not None
    ((cancel, dest),) = layer.messages_to_send()
    assert dest == UDP_TO_UAS and cancel.method == "CANCEL"
    assert cancel.uri == invite.uri and cancel.call_id == invite.call_id
    assert cancel.to == invite.to and cancel.from_ == invite.from_
    assert (cancel.cseq.seq, cancel.cseq.method) == (invite.cseq.seq, "CANCEL")
    assert cancel.headers.get_all("Via") == invite.headers.get_all("Via")[:1]
    assert cancel.headers.get_all("Route") == invite.headers.get_all("Route")
    assert layer.cancel(tx, 0.3) == cancel_tx  # idempotent
    # 200 to the CANCEL, then 487 to the INVITE: both complete.
    layer.receive_message(roundtrip(answer(cancel, 200)), UDP_TO_UAS, 0.3)
    layer.receive_message(roundtrip(answer(invite, 487)), UDP_TO_UAS, 0.4)
    events = drain(layer)
    assert [e.response.status for e in events if isinstance(e, ResponseReceived)] == [200, 487]
    assert [m.method for m, _ in layer.messages_to_send()] == ["ACK"]


def test_client_cancel_before_provisional_waits_for_it() -> None:
    layer = TransactionLayer()
    invite, tx = _client_invite(layer)
    cancel_tx = layer.cancel(tx, 0.1)
    assert cancel_tx is not None
    assert layer.messages_to_send() == []  # "the CANCEL request MUST NOT be sent"
    layer.receive_message(roundtrip(answer(invite, 100)), UDP_TO_UAS, 0.3)
    assert [m.method for m, _ in layer.messages_to_send()] == ["CANCEL"]
    assert layer.state_of(cancel_tx) is S.TRYING


def test_held_cancel_is_dropped_when_a_final_arrives_first() -> None:
    layer = TransactionLayer()
    invite, tx = _client_invite(layer)
    cancel_tx = layer.cancel(tx, 0.1)
    layer.receive_message(roundtrip(answer(invite, 200)), UDP_TO_UAS, 0.3)
    assert TransactionTerminated(transaction=cancel_tx) in drain(layer)
    assert layer.messages_to_send() == [] and len(layer) == 0


def test_cancel_after_final_returns_none_and_bad_ids_raise() -> None:
    layer = TransactionLayer()
    invite, tx = _client_invite(layer)
    layer.receive_message(roundtrip(answer(invite, 486)), UDP_TO_UAS, 0.1)
    assert layer.cancel(tx, 0.2) is None
    options = layer.send_request(make_request("OPTIONS"), UDP_TO_UAS, 0.0)
    with pytest.raises(LocalSipError):
        layer.cancel(options, 0.2)
    with pytest.raises(LocalSipError):
        layer.cancel(999, 0.2)  # type: ignore[arg-type]


def test_cancelled_invite_without_final_gives_up_after_64_t1() -> None:
    layer = TransactionLayer()
    invite, tx = _client_invite(layer)
    layer.receive_message(roundtrip(answer(invite, 180)), UDP_TO_UAS, 0.1)
    layer.cancel(tx, 1.0)
    while (deadline := layer.get_timer()) is not None:
        layer.handle_timer(deadline)
    assert len(layer) == 0
    timed_out = [e for e in drain(layer) if type(e).__name__ == "TransactionTimedOut"]
    assert {e.transaction for e in timed_out} >= {tx}


# ------------------------------------------------------------- transport errors
def test_transport_failure_terminates_transactions_to_that_destination() -> None:
    from sip.events import TransportFailed

    layer = TransactionLayer()
    tx = layer.send_request(make_request("INVITE"), UDP_TO_UAS, 0.0)
    other = Destination(transport="UDP", addr=("198.51.100.1", 5060))
    survivor = layer.send_request(make_request("OPTIONS"), other, 0.0)
    layer.receive_message(roundtrip(make_request("OPTIONS")), UDP_FROM_UAC, 0.0)
    drain(layer)
    layer.transport_failed(UDP_TO_UAS, 1.0)
    events = drain(layer)
    assert [type(e) for e in events] == [TransportFailed, TransactionTerminated]
    assert events[0].transaction == tx  # type: ignore[union-attr]
    assert layer.state_of(survivor) is S.TRYING
    assert len(layer) == 2
