"""Whole-stack exchanges between two transaction layers over a lossy, reordering, duplicating link
(serialised with bytes() and parsed with parse_message on the way)."""

from __future__ import annotations

import random

import pytest

from sip.dialog import Dialog, DialogState
from sip.events import (
    RequestReceived,
    ResponseReceived,
    SipEvent,
    TransactionTerminated,
    TransactionTimedOut,
)
from sip.headers import NameAddr
from sip.message import Request, Response, response_to
from tests.sip.pair import UDP_TO_UAS, FakeLink, UacUasPair, make_request

BOB = NameAddr.parse("<sip:bob@192.0.2.2:5060>")


class Uas:
    """A tiny UAS TU: rings then answers INVITEs, answers BYE and OPTIONS."""

    def __init__(self, pair: UacUasPair) -> None:
        self.pair = pair
        self.dialog: Dialog | None = None
        self.seen = 0
        self.methods: list[str] = []

    def react(self) -> None:
        layer = self.pair.uas
        for event in self.pair.uas_events[self.seen :]:
            self.seen += 1
            if not isinstance(event, RequestReceived):
                continue
            request = event.request
            self.methods.append(request.method)
            if event.transaction is None:
                continue  # the ACK for our 2xx
            if request.method == "INVITE":
                self.dialog = Dialog.uas_from_invite(request, "uastag", BOB)
                for status in (180, 200):
                    response = self.dialog.create_response(request, status)
                    layer.send_response(response, self.pair.now)
                    self.dialog.response_sent(request, response)
            else:
                if request.method == "BYE" and self.dialog is not None:
                    self.dialog.receive_request(request)
                layer.send_response(
                    self.dialog.create_response(request, 200) if self.dialog else _ok(request), self.pair.now
                )


def _ok(request: Request) -> Response:
    return response_to(request, 200, to_tag="uastag")


class Uac:
    """A tiny UAC TU: INVITE, ACK each 2xx (again for retransmissions), then BYE."""

    def __init__(self, pair: UacUasPair) -> None:
        self.pair = pair
        self.invite: Request | None = None
        self.dialog: Dialog | None = None
        self.finals: dict[str, int] = {}
        self.timeouts: list[TransactionTimedOut] = []
        self.seen = 0
        self.acks = 0
        self.bye: Request | None = None

    def call(self) -> None:
        request = make_request("INVITE", extra=(("Contact", "<sip:alice@192.0.2.1:5060>"),))
        tx = self.pair.uac.send_request(request, UDP_TO_UAS, self.pair.now)
        sent = self.pair.uac.transaction(tx)
        assert sent is not None
        self.invite = sent.request  # as sent: with its branch

    def react(self) -> None:
        layer = self.pair.uac
        for event in self.pair.uac_events[self.seen :]:
            self.seen += 1
            if isinstance(event, TransactionTimedOut):
                self.timeouts.append(event)
            if not isinstance(event, ResponseReceived) or event.response.status < 200:
                continue
            response = event.response
            method = response.cseq.method
            self.finals.setdefault(method, response.status)
            if method == "INVITE" and response.status < 300:
                assert self.invite is not None
                if self.dialog is None:
                    self.dialog = Dialog.uac_from_response(self.invite, response)
                layer.send_stateless(self.dialog.create_ack(self.invite), UDP_TO_UAS)
                self.acks += 1
            if method == "BYE" and self.dialog is not None and self.bye is not None:
                self.dialog.receive_response(self.bye, response)

    def hang_up(self) -> None:
        assert self.dialog is not None
        self.bye = self.dialog.create_request("BYE")
        self.pair.uac.send_request(self.bye, UDP_TO_UAS, self.pair.now)


def run(pair: UacUasPair, uac: Uac, uas: Uas, until: float = 200.0) -> None:
    """Alternate transfers, TU reactions and timer jumps until both sides are quiet."""
    while pair.now < until:
        pair.transfer()
        before = (uac.seen, uas.seen)
        uac.react()
        uas.react()
        if pair.transfer() or (uac.seen, uas.seen) != before:
            continue
        if uac.dialog is not None and uac.dialog.state is DialogState.CONFIRMED and "BYE" not in uac.finals:
            if uac.finals.get("INVITE") == 200 and uac.bye is None:
                uac.hang_up()
                continue
        if not pair.advance():
            return


def _terminated(events: list[SipEvent]) -> int:
    return sum(isinstance(e, TransactionTerminated) for e in events)


@pytest.mark.parametrize("seed", range(12))
def test_invite_bye_completes_under_30_percent_loss(seed: int) -> None:
    link = FakeLink(random.Random(seed), loss=0.3, duplicate=0.1, reorder=True)
    pair = UacUasPair(link)
    uac, uas = Uac(pair), Uas(pair)
    uac.call()
    run(pair, uac, uas)
    assert link.dropped > 0  # the link really lost packets
    assert uac.finals == {"INVITE": 200, "BYE": 200}
    assert uac.dialog is not None and uac.dialog.state is DialogState.TERMINATED
    assert uas.dialog is not None and uas.dialog.state is DialogState.TERMINATED
    assert "ACK" in uas.methods
    assert not any(t.timer.value in ("B", "F", "H", "L") for t in uac.timeouts)
    # No leak: every transaction of both sides has terminated and been removed.
    assert len(pair.uac) == 0 and len(pair.uas) == 0
    assert pair.uac.get_timer() is None and pair.uas.get_timer() is None
    assert _terminated(pair.uac_events) == 2 and _terminated(pair.uas_events) == 2


def test_lossless_exchange_sends_no_retransmission() -> None:
    pair = UacUasPair(FakeLink(random.Random(0)))
    uac, uas = Uac(pair), Uas(pair)
    uac.call()
    run(pair, uac, uas)
    assert uac.finals == {"INVITE": 200, "BYE": 200}
    assert uac.acks == 1
    assert uas.methods == ["INVITE", "ACK", "BYE"]
    assert len(pair.uac) == 0 and len(pair.uas) == 0


@pytest.mark.parametrize("seed", range(12))
def test_options_completes_under_30_percent_loss(seed: int) -> None:
    link = FakeLink(random.Random(100 + seed), loss=0.3, duplicate=0.2, reorder=True)
    pair = UacUasPair(link)
    uac, uas = Uac(pair), Uas(pair)
    tx = pair.uac.send_request(make_request("OPTIONS"), UDP_TO_UAS, 0.0)
    run(pair, uac, uas)
    answers = [e for e in pair.uac_events if isinstance(e, ResponseReceived) and e.transaction == tx]
    assert [e.response.status for e in answers] == [200]  # exactly once, despite duplicates
    assert uas.methods == ["OPTIONS"]  # retransmissions absorbed
    assert link.delivered > 0
    assert len(pair.uac) == 0 and len(pair.uas) == 0


def test_total_loss_times_out_with_timer_b() -> None:
    pair = UacUasPair(FakeLink(random.Random(1), loss=1.0))
    uac, uas = Uac(pair), Uas(pair)
    uac.call()
    run(pair, uac, uas)
    assert [t.timer.value for t in uac.timeouts] == ["B"]
    assert pair.now == pytest.approx(32.0)
    assert len(pair.uac) == 0
