"""INVITE server transaction (RFC 3261 §17.2.1, Figure 7, with RFC 6026 Accepted): every (state × event) pair."""

from __future__ import annotations

import pytest

from sip.errors import LocalSipError
from sip.events import RequestReceived, TransactionTerminated, TransactionTimedOut
from sip.ids import new_branch
from sip.message import Request, SentResponse
from sip.timers import T1, T2, T4, TimerId
from sip.transaction import TransactionLayer, TransactionState
from sip.transaction_server import ServerTransaction
from tests.sip.pair import TCP_FROM_UAC, UDP_FROM_UAC, answer, drain, make_request, roundtrip, wire

S = TransactionState


def start(source=UDP_FROM_UAC):
    layer = TransactionLayer()
    invite = make_request("INVITE", transport=source.transport)
    layer.receive_message(roundtrip(invite), source, 0.0)
    (event,) = drain(layer)
    assert isinstance(event, RequestReceived)
    return layer, invite, event


def ack_for(invite: Request, to_tag: str = "totag", *, branch: str | None = None) -> Request:
    """ACK for a non-2xx (same branch) or, with a new ``branch``, for a 2xx."""
    via_branch = branch or invite.top_via.branch
    return make_request("ACK", branch=via_branch, to_tag=to_tag, seq=invite.cseq.seq)


def test_invite_sends_100_trying_at_once_and_enters_proceeding() -> None:
    layer, invite, event = start()
    ((trying, dest),) = layer.messages_to_send()
    assert trying.status == 100 and dest == UDP_FROM_UAC
    assert trying.to.tag is None  # a 100 carries no To tag
    assert layer.state_of(event.transaction) is S.PROCEEDING
    assert layer.get_timer() == 64 * T1  # only the TU guard runs (TimerId.TU: the TU has not answered)


def test_proceeding_retransmission_resends_latest_provisional() -> None:
    layer, invite, event = start()
    assert [m.status for m, _ in layer.messages_to_send()] == [100]
    layer.receive_message(roundtrip(invite), UDP_FROM_UAC, 0.5)
    assert [m.status for m, _ in layer.messages_to_send()] == [100]
    ringing = answer(event.request, 180)
    layer.send_response(ringing, 1.0)
    layer.messages_to_send()
    layer.receive_message(roundtrip(invite), UDP_FROM_UAC, 1.5)
    assert wire(layer.messages_to_send()) == [(bytes(ringing), UDP_FROM_UAC)]
    assert drain(layer) == []  # absorbed
    assert layer.state_of(event.transaction) is S.PROCEEDING


def test_non_2xx_final_timer_g_doubles_to_t2_then_timer_h_times_out() -> None:
    layer, invite, event = start()
    layer.messages_to_send()
    busy = answer(event.request, 486)
    layer.send_response(busy, 0.0)
    assert wire(layer.messages_to_send()) == [(bytes(busy), UDP_FROM_UAC)]
    assert layer.state_of(event.transaction) is S.COMPLETED
    now, interval, fired = 0.0, T1, []
    while True:
        deadline = layer.get_timer()
        assert deadline is not None
        if deadline >= 64 * T1:
            break
        assert deadline == pytest.approx(now + interval)
        now = deadline
        layer.handle_timer(now)
        assert wire(layer.messages_to_send()) == [(bytes(busy), UDP_FROM_UAC)]
        fired.append(interval)
        interval = min(2 * interval, T2)
    assert fired[:5] == [0.5, 1.0, 2.0, 4.0, 4.0]
    layer.handle_timer(64 * T1)  # Timer H
    events = drain(layer)
    # Completed keeps only the request's Via, From, To, Call-ID and CSeq: Timer H reports that skeleton.
    assert events[0] == TransactionTimedOut(transaction=event.transaction, request=event.request.skeleton(),
                                            timer=TimerId.H)
    assert events[1] == TransactionTerminated(transaction=event.transaction)
    assert len(layer) == 0


def test_completed_retransmission_resends_final_and_ack_confirms_with_timer_i() -> None:
    layer, invite, event = start()
    final = answer(event.request, 603)
    layer.send_response(final, 0.0)
    layer.messages_to_send()
    layer.receive_message(roundtrip(invite), UDP_FROM_UAC, 0.2)
    assert wire(layer.messages_to_send()) == [(bytes(final), UDP_FROM_UAC)]
    layer.receive_message(roundtrip(ack_for(invite)), UDP_FROM_UAC, 0.3)
    assert drain(layer) == []  # the ACK for a non-2xx stays in the transaction
    assert layer.state_of(event.transaction) is S.CONFIRMED
    assert layer.get_timer() == pytest.approx(0.3 + T4)  # Timer I; G and H stopped
    # Confirmed: ACK retransmissions and INVITE retransmissions are absorbed.
    layer.receive_message(roundtrip(ack_for(invite)), UDP_FROM_UAC, 1.0)
    layer.receive_message(roundtrip(invite), UDP_FROM_UAC, 1.0)
    assert layer.messages_to_send() == [] and drain(layer) == []
    assert (layer.resent, layer.received_again) == (1, 3)  # the 603 once; INVITE, ACK, INVITE again
    layer.handle_timer(0.3 + T4)
    assert drain(layer) == [TransactionTerminated(transaction=event.transaction)]
    assert len(layer) == 0


def test_completed_keeps_the_final_as_bytes_and_a_skeleton_of_the_invite() -> None:
    """A refused INVITE waits for its ACK in Completed (Timer H, 32 s): it keeps the 4xx as sent and the
    INVITE's To, Call-ID and CSeq, not its SDP; RFC 2543 ACK matching still reads the To tag."""
    layer = TransactionLayer()
    invite = make_request("INVITE", extra=(("Content-Type", "application/sdp"),))
    invite.body = b"v=0\r\n" * 40
    layer.receive_message(roundtrip(invite), UDP_FROM_UAC, 0.0)
    (event,) = drain(layer)
    assert isinstance(event, RequestReceived) and event.transaction is not None
    final = answer(event.request, 488, to_tag="refused")
    layer.send_response(final, 0.1)
    tx = layer.transaction(event.transaction)
    assert isinstance(tx, ServerTransaction) and tx.state is S.COMPLETED
    assert [name for name, _ in tx.request.headers] == ["To", "Call-ID", "CSeq"]
    assert tx.request.body == b""
    assert tx.last_response == SentResponse.of(final) and tx.response_to_tag() == "refused"
    assert wire(layer.messages_to_send())[-1] == (bytes(final), UDP_FROM_UAC)
    layer.receive_message(roundtrip(ack_for(invite, to_tag="refused")), UDP_FROM_UAC, 0.2)
    assert layer.state_of(event.transaction) is S.CONFIRMED


def test_reliable_transport_no_timer_g_and_timer_i_zero() -> None:
    layer, invite, event = start(TCP_FROM_UAC)
    layer.send_response(answer(event.request, 480), 0.0)
    assert layer.get_timer() == pytest.approx(64 * T1)  # only H
    layer.receive_message(roundtrip(ack_for(invite)), TCP_FROM_UAC, 0.1)
    assert len(layer) == 0  # Confirmed → Terminated at once


def test_2xx_enters_accepted_retransmits_until_ack_then_timer_l() -> None:
    layer, invite, event = start()
    layer.messages_to_send()
    ok = answer(event.request, 200)
    layer.send_response(ok, 0.0)
    assert layer.state_of(event.transaction) is S.ACCEPTED
    assert wire(layer.messages_to_send()) == [(bytes(ok), UDP_FROM_UAC)]
    layer.handle_timer(T1)  # 2xx retransmission on the Timer G schedule (§13.3.1.4)
    assert wire(layer.messages_to_send()) == [(bytes(ok), UDP_FROM_UAC)]
    assert layer.get_timer() == pytest.approx(3 * T1)
    # INVITE retransmission in Accepted: absorbed (RFC 6026 §7.1), never a new transaction.
    layer.receive_message(roundtrip(invite), UDP_FROM_UAC, 0.7)
    assert layer.messages_to_send() == [] and drain(layer) == []
    # The ACK for a 2xx has a new branch: passed up without a transaction, stops the retransmissions.
    ack = ack_for(invite, branch=new_branch())
    layer.receive_message(roundtrip(ack), UDP_FROM_UAC, 1.0)
    (up,) = drain(layer)
    assert isinstance(up, RequestReceived) and up.transaction is None and up.request.method == "ACK"
    assert layer.get_timer() == pytest.approx(64 * T1)  # only Timer L left
    # The TU may resend its 2xx: passed through in Accepted.
    layer.send_response(ok, 2.0)
    assert wire(layer.messages_to_send()) == [(bytes(ok), UDP_FROM_UAC)]
    with pytest.raises(LocalSipError):
        layer.send_response(answer(event.request, 486), 2.0)
    layer.handle_timer(64 * T1)
    assert drain(layer) == [TransactionTerminated(transaction=event.transaction)]
    assert len(layer) == 0


def test_accepted_without_ack_reports_timer_l() -> None:
    layer, _, event = start(TCP_FROM_UAC)
    layer.send_response(answer(event.request, 200), 0.0)
    assert layer.get_timer() == pytest.approx(64 * T1)  # no retransmission over TCP
    layer.handle_timer(64 * T1)
    assert drain(layer) == [
        TransactionTimedOut(transaction=event.transaction, request=event.request, timer=TimerId.L),
        TransactionTerminated(transaction=event.transaction),
    ]


def test_ack_with_same_branch_in_accepted_is_passed_up() -> None:
    layer, invite, event = start()
    layer.send_response(answer(event.request, 200), 0.0)
    layer.receive_message(roundtrip(ack_for(invite)), UDP_FROM_UAC, 0.1)
    (up,) = drain(layer)
    assert isinstance(up, RequestReceived) and up.transaction is None


def test_ack_in_proceeding_is_dropped() -> None:
    layer, invite, event = start()
    layer.receive_message(roundtrip(ack_for(invite)), UDP_FROM_UAC, 0.1)
    assert drain(layer) == []
    assert layer.state_of(event.transaction) is S.PROCEEDING


@pytest.mark.parametrize("final", [200, 404])
@pytest.mark.parametrize("late", [100, 180, 200, 500])
def test_responses_after_final_are_refused(final: int, late: int) -> None:
    layer, _, event = start()
    layer.send_response(answer(event.request, final), 0.0)
    if final == 200 and late == 200:
        layer.send_response(answer(event.request, late), 0.1)  # allowed: a 2xx resend
        return
    with pytest.raises(LocalSipError):
        layer.send_response(answer(event.request, late), 0.1)


def test_stray_ack_without_transaction_passes_up() -> None:
    layer = TransactionLayer()
    layer.receive_message(roundtrip(make_request("ACK", to_tag="x")), UDP_FROM_UAC, 0.0)
    (up,) = drain(layer)
    assert isinstance(up, RequestReceived) and up.transaction is None
    assert len(layer) == 0


def test_repeated_acks_for_a_2xx_are_counted_and_still_passed_up() -> None:
    layer, invite, event = start()
    layer.send_response(answer(event.request, 200), 0.0)
    layer.handle_timer(T1)  # Timer G: the 2xx again
    ack = ack_for(invite, branch=new_branch())
    layer.receive_message(roundtrip(ack), UDP_FROM_UAC, 0.6)
    layer.receive_message(roundtrip(ack), UDP_FROM_UAC, 0.7)  # the UAC answers our repeat with its ACK
    assert [e.request.method for e in drain(layer)] == ["ACK", "ACK"]  # type: ignore[attr-defined]
    assert (layer.resent, layer.received_again) == (1, 1)


def test_an_invite_refused_at_once_gets_only_its_refusal_and_holds_no_transaction() -> None:
    """RFC 3261 §8.2.7: a stateless UAS sends no 1xx. The 100 Trying waits for the TU's first look, so a
    refusal given while the TU handles the request is the only answer; the transaction ends with it (no
    Timer H), the ACK for it goes to the TU (it matches nothing), and a retransmission of the INVITE (the
    refusal was lost) reaches the TU again, which answers it again."""
    layer, invite, event = start()
    refusal = answer(event.request, 404)
    layer.send_response(refusal, 0.0, stateless=True)
    assert wire(layer.messages_to_send()) == [(bytes(refusal), UDP_FROM_UAC)]
    assert drain(layer) == [TransactionTerminated(transaction=event.transaction)]
    assert len(layer) == 0 and layer.get_timer() is None
    layer.receive_message(roundtrip(ack_for(invite)), UDP_FROM_UAC, 0.1)
    (ack,) = drain(layer)
    assert isinstance(ack, RequestReceived) and ack.request.method == "ACK" and ack.transaction is None
    assert layer.messages_to_send() == []
    layer.receive_message(roundtrip(invite), UDP_FROM_UAC, 0.5)
    (again,) = drain(layer)
    assert isinstance(again, RequestReceived) and again.transaction != event.transaction
    assert [m.status for m, _ in layer.messages_to_send()] == [100]  # not answered this time: the 100 is due


def test_a_stateless_refusal_after_the_100_goes_through_the_transaction() -> None:
    """Once the 100 Trying is out the client has stopped retransmitting: a lost refusal would never be
    learnt, so the refusal is kept and retransmitted (Completed, Timers G and H) whatever the TU asked."""
    layer, invite, event = start()
    assert [m.status for m, _ in layer.messages_to_send()] == [100]
    refusal = answer(event.request, 404)
    layer.send_response(refusal, 1.0, stateless=True)
    assert wire(layer.messages_to_send()) == [(bytes(refusal), UDP_FROM_UAC)]
    assert layer.state_of(event.transaction) is S.COMPLETED
    layer.receive_message(roundtrip(invite), UDP_FROM_UAC, 1.2)
    assert wire(layer.messages_to_send()) == [(bytes(refusal), UDP_FROM_UAC)]  # resent by the transaction


def test_a_provisional_given_at_once_replaces_the_100() -> None:
    """§17.2.1: no 100 Trying when the TU answers (here 180) before the transaction would send it."""
    layer, invite, event = start()
    ringing = answer(event.request, 180)
    layer.send_response(ringing, 0.0)
    assert wire(layer.messages_to_send()) == [(bytes(ringing), UDP_FROM_UAC)]
    assert layer.messages_to_send() == []


def test_the_100_waits_until_the_tu_has_taken_the_request() -> None:
    layer = TransactionLayer()
    layer.receive_message(roundtrip(make_request("INVITE")), UDP_FROM_UAC, 0.0)
    assert layer.messages_to_send() == []  # the TU has not seen it yet
    (event,) = drain(layer)
    assert isinstance(event, RequestReceived)
    assert [m.status for m, _ in layer.messages_to_send()] == [100]
    assert layer.messages_to_send() == []
