"""Hypothesis over every (state × event) pair of the four machines (as python-hyper/h2 does):
random event sequences never raise anything but LocalSipError for a TU misuse, and a transaction
always ends TERMINATED and removed from the layer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sip.errors import LocalSipError
from sip.events import ClientTransactionId, Destination, ServerTransactionId
from sip.ids import new_branch
from sip.message import Request
from sip.transaction import TransactionLayer, TransactionState
from tests.sip.pair import TCP_FROM_UAC, TCP_TO_UAS, UDP_FROM_UAC, UDP_TO_UAS, answer, drain, make_request, roundtrip

S = TransactionState
STATUSES = st.sampled_from([100, 180, 183, 200, 202, 302, 404, 486, 487, 500, 603])
SERVER_EVENTS = st.one_of(
    st.tuples(st.just("retransmit")),
    st.tuples(st.just("ack")),
    st.tuples(st.just("ack2xx")),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("respond"), STATUSES),
    st.tuples(st.just("wait"), st.floats(min_value=0, max_value=40)),
)
CLIENT_EVENTS = st.one_of(
    st.tuples(st.just("response"), STATUSES),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("wait"), st.floats(min_value=0, max_value=40)),
    st.tuples(st.just("stray"), STATUSES),
)


def _fire_all(layer: TransactionLayer, now: float) -> float:
    while (deadline := layer.get_timer()) is not None:
        assert deadline >= now - 1e-9
        now = max(now, deadline)
        layer.handle_timer(now)
    return now


def _check_events(layer: TransactionLayer) -> None:
    for event in drain(layer):
        assert type(event).__name__ in {
            "RequestReceived", "ResponseReceived", "TransactionTimedOut", "TransactionTerminated",
        }
    for message, dest in layer.messages_to_send():
        assert isinstance(dest, Destination)
        roundtrip(message)  # everything we send is well-formed


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["INVITE", "OPTIONS"]),
    reliable=st.booleans(),
    events=st.lists(SERVER_EVENTS, max_size=12),
)
def test_server_transactions(method: str, reliable: bool, events: list[tuple[object, ...]]) -> None:
    source = TCP_FROM_UAC if reliable else UDP_FROM_UAC
    layer = TransactionLayer()
    request = make_request(method, transport=source.transport, branch="z9hG4bKprop")
    layer.receive_message(roundtrip(request), source, 0.0)
    (event,) = drain(layer)
    tx = ServerTransactionId(event.transaction)  # type: ignore[attr-defined]
    received: Request = event.request  # type: ignore[attr-defined]
    now = 0.0
    for item in events:
        kind = item[0]
        if kind == "retransmit":
            layer.receive_message(roundtrip(request), source, now)
        elif kind == "ack":
            layer.receive_message(roundtrip(make_request("ACK", branch="z9hG4bKprop", to_tag="totag")), source, now)
        elif kind == "ack2xx":
            layer.receive_message(roundtrip(make_request("ACK", branch=new_branch(), to_tag="totag")), source, now)
        elif kind == "cancel":
            layer.receive_message(roundtrip(make_request("CANCEL", branch="z9hG4bKprop")), source, now)
        elif kind == "respond":
            try:
                layer.send_response(answer(received, int(item[1])), now)  # type: ignore[call-overload]
            except LocalSipError:
                assert layer.state_of(tx) not in (S.TRYING, S.PROCEEDING)
        else:
            now += float(item[1])  # type: ignore[arg-type]
            layer.handle_timer(now)
        _check_events(layer)
    # A well-behaved TU answers everything it was given, then time runs out.
    for leftover in list(layer._servers.values()):  # noqa: SLF001 - inspecting the table under test
        if leftover.state in (S.TRYING, S.PROCEEDING):
            layer.send_response(answer(leftover.request, 500), now)
    _fire_all(layer, now)
    _check_events(layer)
    assert layer.state_of(tx) is None
    assert len(layer) == 0 and layer.get_timer() is None


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["INVITE", "OPTIONS", "REGISTER"]),
    reliable=st.booleans(),
    events=st.lists(CLIENT_EVENTS, max_size=12),
)
def test_client_transactions(method: str, reliable: bool, events: list[tuple[object, ...]]) -> None:
    dest = TCP_TO_UAS if reliable else UDP_TO_UAS
    layer = TransactionLayer()
    tx: ClientTransactionId = layer.send_request(make_request(method, transport=dest.transport), dest, 0.0)
    sent = layer.transaction(tx)
    assert sent is not None
    request = sent.request
    now = 0.0
    for item in events:
        kind = item[0]
        if kind == "response":
            layer.receive_message(roundtrip(answer(request, int(item[1]))), dest, now)  # type: ignore[call-overload]
        elif kind == "stray":
            layer.receive_message(roundtrip(answer(make_request(method), int(item[1]))), dest, now)  # type: ignore[call-overload]
        elif kind == "cancel":
            try:
                layer.cancel(tx, now)
            except LocalSipError:
                assert method != "INVITE" or layer.state_of(tx) is None
        else:
            now += float(item[1])  # type: ignore[arg-type]
            layer.handle_timer(now)
        _check_events(layer)
    if layer.state_of(tx) is S.PROCEEDING and method == "INVITE":
        layer.cancel(tx, now)  # the TU gives up on a call that keeps ringing
    _fire_all(layer, now)
    _check_events(layer)
    assert layer.state_of(tx) is None
    assert len(layer) == 0 and layer.get_timer() is None
