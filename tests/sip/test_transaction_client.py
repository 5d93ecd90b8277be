"""Client transactions (RFC 3261 §17.1.1 Figure 5, §17.1.2 Figure 6): every (state × event) pair."""

from __future__ import annotations

import pytest

from sip.errors import LocalSipError
from sip.events import ResponseReceived, TransactionTerminated, TransactionTimedOut
from sip.message import Request
from sip.timers import T1, T2, T4, TimerId
from sip.transaction import TransactionLayer, TransactionState
from tests.sip.pair import TCP_TO_UAS, UDP_TO_UAS, answer, drain, make_request, roundtrip

S = TransactionState


def start(method: str, dest=UDP_TO_UAS, **kwargs: object):
    layer = TransactionLayer()
    request = make_request(method, transport=dest.transport, **kwargs)  # type: ignore[arg-type]
    tx = layer.send_request(request, dest, 0.0)
    ((sent, to),) = layer.messages_to_send()
    assert to == dest and sent.method == method
    return layer, sent, tx


def reply(layer: TransactionLayer, request: Request, status: int, now: float, dest=UDP_TO_UAS):
    response = roundtrip(answer(request, status))
    layer.receive_message(response, dest, now)
    return response


def retransmission_times(layer: TransactionLayer, until: float) -> list[float]:
    times = []
    while (deadline := layer.get_timer()) is not None and deadline < until:
        layer.handle_timer(deadline)
        if layer.messages_to_send():
            times.append(deadline)
    return times


# ------------------------------------------------------------------ INVITE client
def test_invite_timer_a_doubles_without_cap_and_timer_b_times_out() -> None:
    layer, invite, tx = start("INVITE")
    assert layer.state_of(tx) is S.CALLING
    times = retransmission_times(layer, 64 * T1)
    assert times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # intervals 0.5, 1, 2, 4, 8, 16
    layer.handle_timer(64 * T1)
    assert drain(layer) == [
        TransactionTimedOut(transaction=tx, request=invite, timer=TimerId.B),
        TransactionTerminated(transaction=tx),
    ]
    assert len(layer) == 0


def test_invite_over_tcp_has_no_timer_a() -> None:
    layer, _, _ = start("INVITE", TCP_TO_UAS)
    assert layer.get_timer() == pytest.approx(64 * T1)


def test_invite_request_gets_a_branch_and_max_forwards() -> None:
    layer, invite, _ = start("INVITE", branch="")
    assert invite.top_via.branch is not None and invite.top_via.branch.startswith("z9hG4bK")
    assert invite.headers.get("Max-Forwards") == "70"


def test_provisional_moves_to_proceeding_stops_a_and_b_passes_up() -> None:
    layer, invite, tx = start("INVITE")
    ringing = reply(layer, invite, 180, 0.2)
    assert layer.state_of(tx) is S.PROCEEDING
    assert drain(layer) == [ResponseReceived(response=ringing, transaction=tx)]
    assert layer.get_timer() is None
    again = reply(layer, invite, 183, 0.3)
    assert drain(layer) == [ResponseReceived(response=again, transaction=tx)]


@pytest.mark.parametrize("first", [None, 180])
def test_2xx_passes_up_and_terminates_then_retransmissions_come_without_transaction(first: int | None) -> None:
    layer, invite, tx = start("INVITE")
    if first:
        reply(layer, invite, first, 0.1)
        drain(layer)
    ok = reply(layer, invite, 200, 0.5)
    assert drain(layer) == [ResponseReceived(response=ok, transaction=tx), TransactionTerminated(transaction=tx)]
    assert layer.messages_to_send() == []  # the ACK for a 2xx is the TU's
    again = reply(layer, invite, 200, 1.0)
    assert drain(layer) == [ResponseReceived(response=again, transaction=None)]
    assert len(layer) == 0


@pytest.mark.parametrize("status", [300, 404, 486, 500, 603])
def test_non_2xx_final_sends_ack_inside_transaction(status: int) -> None:
    route = "<sip:proxy.example.com;lr>"
    layer, invite, tx = start("INVITE", routes=(route,), extra=(("Contact", "<sip:alice@192.0.2.1>"),))
    final = reply(layer, invite, status, 0.2)
    ((ack, dest),) = layer.messages_to_send()
    assert dest == UDP_TO_UAS
    assert ack.method == "ACK" and ack.uri == invite.uri
    assert ack.headers.get_all("Via") == [invite.headers.get_all("Via")[0]]
    assert ack.cseq.seq == invite.cseq.seq and ack.cseq.method == "ACK"
    assert ack.call_id == invite.call_id and ack.from_ == invite.from_
    assert ack.to == final.to and ack.to.tag == "totag"
    assert ack.headers.get_all("Route") == [route]
    assert drain(layer) == [ResponseReceived(response=final, transaction=tx)]
    assert layer.state_of(tx) is S.COMPLETED
    assert layer.get_timer() == pytest.approx(0.2 + 32.0)  # Timer D over UDP
    # Completed: final retransmissions re-send the ACK, not passed up.
    reply(layer, invite, status, 1.0)
    assert layer.messages_to_send() == [(ack, UDP_TO_UAS)]
    assert drain(layer) == []
    reply(layer, invite, 180, 1.1)  # a late provisional: ignored
    assert drain(layer) == [] and layer.messages_to_send() == []
    layer.handle_timer(32.2)
    assert drain(layer) == [TransactionTerminated(transaction=tx)]
    assert len(layer) == 0


def test_non_2xx_over_tcp_timer_d_zero() -> None:
    layer, invite, tx = start("INVITE", TCP_TO_UAS)
    reply(layer, invite, 404, 0.1, TCP_TO_UAS)
    assert [m.method for m, _ in layer.messages_to_send()] == ["ACK"]
    assert len(layer) == 0


def test_ack_is_not_a_client_transaction() -> None:
    layer = TransactionLayer()
    with pytest.raises(LocalSipError):
        layer.send_request(make_request("ACK"), UDP_TO_UAS, 0.0)


@pytest.mark.parametrize(
    "broken",
    [
        make_request("OPTIONS", branch="1234"),  # no magic cookie
        make_request("OPTIONS", from_tag=None),  # §8.1.1.3: From MUST contain a tag
        make_request("OPTIONS", from_tag=""),  # an unparsable From
        Request(method="BYE", headers=make_request("INFO").headers),  # CSeq method differs
        Request(method="OPTIONS"),  # no headers at all
    ],
)
def test_unsendable_requests_raise_local_error(broken: Request) -> None:
    with pytest.raises(LocalSipError):
        TransactionLayer().send_request(broken, UDP_TO_UAS, 0.0)


def test_same_branch_twice_is_refused() -> None:
    layer = TransactionLayer()
    request = make_request("OPTIONS")
    layer.send_request(request, UDP_TO_UAS, 0.0)
    with pytest.raises(LocalSipError):
        layer.send_request(request, UDP_TO_UAS, 0.0)


# -------------------------------------------------------------- non-INVITE client
def test_non_invite_timer_e_caps_at_t2_and_timer_f_times_out() -> None:
    layer, request, tx = start("REGISTER")
    assert layer.state_of(tx) is S.TRYING
    times = retransmission_times(layer, 64 * T1)
    intervals = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert intervals[:5] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert max(intervals) == T2
    layer.handle_timer(64 * T1)
    assert drain(layer) == [
        TransactionTimedOut(transaction=tx, request=request, timer=TimerId.F),
        TransactionTerminated(transaction=tx),
    ]


def test_non_invite_proceeding_retransmits_every_t2() -> None:
    layer, request, tx = start("OPTIONS")
    trying = reply(layer, request, 100, 0.1)
    assert drain(layer) == [ResponseReceived(response=trying, transaction=tx)]
    assert layer.state_of(tx) is S.PROCEEDING
    layer.handle_timer(0.5)  # E in Proceeding: resend, then every T2
    assert len(layer.messages_to_send()) == 1
    assert layer.get_timer() == pytest.approx(0.5 + T2)
    reply(layer, request, 180, 0.6)
    assert layer.state_of(tx) is S.PROCEEDING


@pytest.mark.parametrize("status", [200, 202, 401, 404, 503])
def test_non_invite_final_completes_with_timer_k_and_absorbs_retransmissions(status: int) -> None:
    layer, request, tx = start("OPTIONS")
    final = reply(layer, request, status, 1.0)
    assert drain(layer) == [ResponseReceived(response=final, transaction=tx)]
    assert layer.state_of(tx) is S.COMPLETED
    assert layer.get_timer() == pytest.approx(1.0 + T4)
    reply(layer, request, status, 2.0)
    reply(layer, request, 100, 2.0)
    assert drain(layer) == [] and layer.messages_to_send() == []
    layer.handle_timer(1.0 + T4)
    assert drain(layer) == [TransactionTerminated(transaction=tx)]
    assert len(layer) == 0


def test_non_invite_over_tcp_no_timer_e_and_k_zero() -> None:
    layer, request, tx = start("OPTIONS", TCP_TO_UAS)
    assert layer.get_timer() == pytest.approx(64 * T1)
    reply(layer, request, 200, 0.1, TCP_TO_UAS)
    assert len(layer) == 0


def test_unmatched_non_2xx_response_is_dropped() -> None:
    layer = TransactionLayer()
    stray = roundtrip(answer(make_request("INVITE"), 486))
    layer.receive_message(stray, UDP_TO_UAS, 0.0)
    assert drain(layer) == [] and layer.messages_to_send() == []


def test_response_to_other_method_with_same_branch_does_not_match() -> None:
    layer, request, tx = start("OPTIONS")
    other = make_request("INFO", branch=request.top_via.branch)
    reply(layer, other, 200, 0.1)
    assert drain(layer) == []
    assert layer.state_of(tx) is S.TRYING


def test_completed_invite_passes_a_forked_2xx_up_without_transaction() -> None:
    layer, invite, tx = start("INVITE")
    reply(layer, invite, 486, 0.1)
    drain(layer)
    layer.messages_to_send()
    ok = reply(layer, invite, 200, 0.2)
    assert drain(layer) == [ResponseReceived(response=ok, transaction=None)]
    assert layer.messages_to_send() == []  # no ACK from the transaction for a 2xx
    assert layer.state_of(tx) is S.COMPLETED


def test_state_changes_are_logged_once_each() -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        layer, request, tx = start("OPTIONS", TCP_TO_UAS)
        reply(layer, request, 200, 0.1, TCP_TO_UAS)
    changes = [(e["old"], e["new"]) for e in logs if e["event"] == "sip.transaction.state_changed"]
    assert changes == [("TRYING", "COMPLETED"), ("COMPLETED", "TERMINATED")]
    assert all(e["transaction"] == tx and e["kind"] == "nict" for e in logs if e["event"].startswith("sip.trans"))


def test_custom_timer_config_scales_every_timer() -> None:
    from sip.timers import TimerConfig

    config = TimerConfig(0.1, 1.0, 2.0)
    assert (config.timeout, config.timer_d(False), config.timer_k(False), config.timer_k(True)) == (6.4, 32.0, 2.0, 0)
    layer = TransactionLayer(timers=config)
    layer.send_request(make_request("OPTIONS"), UDP_TO_UAS, 0.0)
    assert layer.get_timer() == pytest.approx(0.1)
    with pytest.raises(ValueError):
        TimerConfig(t1=5.0, t2=4.0)


# ------------------------------------------------------------------ retransmission counters
def test_retransmissions_are_counted_both_ways() -> None:
    layer, invite, _ = start("INVITE")
    assert (layer.resent, layer.received_again) == (0, 0)
    assert retransmission_times(layer, 2.0) == [0.5, 1.5]  # Timer A twice
    assert (layer.resent, layer.received_again) == (2, 0)
    reply(layer, invite, 486, 2.0)  # a final: the ACK is sent inside the transaction (a first send)
    layer.messages_to_send()
    assert layer.resent == 2
    reply(layer, invite, 486, 2.5)  # the 486 again: absorbed, ACK resent
    assert [m.method for m, _ in layer.messages_to_send()] == ["ACK"]
    assert (layer.resent, layer.received_again) == (3, 1)
