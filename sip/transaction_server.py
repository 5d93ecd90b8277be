"""Server transactions: RFC 3261 §17.2.1 (INVITE, Figure 7, with RFC 6026's Accepted state) and
§17.2.2 (non-INVITE, Figure 8).

Decisions (see docs/sip-transactions.md):

* The INVITE server transaction sends 100 Trying once the TU has seen the request without answering it
  (the layer calls ``send_trying`` at its next send), so that an INVITE refused at once gets only its
  refusal and can be refused statelessly (RFC 3261 §8.2.7; docs/sip-transactions.md, "Stateless refusals").
* RFC 6026 Accepted state: after a 2xx the transaction lives on for Timer L (64*T1), absorbing
  INVITE retransmissions. Over UDP it also retransmits the 2xx on the Timer G schedule until the
  ACK arrives (the §13.3.1.4 duty of the UAS core, hosted here); if no ACK arrives before Timer L
  it reports ``TransactionTimedOut(timer=L)`` so the TU can send BYE.
* The TU guard (``TimerId.TU``, not in the RFC): a server transaction still without a final
  response 64*T1 after its request — the TU's handler failed or forgot it — does not live forever.
  By then the client's Timer F (non-INVITE) has fired, so a non-INVITE transaction just ends,
  reporting ``TransactionTimedOut(timer=TU)`` (RFC 4320 §4.1: no 408 for a non-INVITE). An INVITE
  transaction the TU has not touched (nothing sent but our 100 Trying) is answered 500 with
  Retry-After and goes on as any final response (Completed, Timers G/H). Once the TU has sent a
  provisional response the INVITE is its own: a queued call may ring for minutes (§13.3.1.1).
"""

from __future__ import annotations

from sip.errors import LocalSipError
from sip.events import Destination, ServerTransactionId, TransactionTimedOut
from sip.message import Request, Response, SentResponse, response_to
from sip.timers import TimerConfig, TimerId
from sip.transaction_base import Outbox, Transaction, TransactionState
from sip.transaction_routing import ServerKey, response_destination

S = TransactionState
UNANSWERED_INVITE_STATUS = 500
RETRY_AFTER = "5"  # seconds, on the guard's 500 (RFC 3261 §20.33)


class ServerTransaction(Transaction):
    """Common part: the response destination and the last response sent."""

    def __init__(
        self, *, id: ServerTransactionId, request: Request, source: Destination, config: TimerConfig,
        outbox: Outbox, state: TransactionState, now: float,
    ) -> None:
        super().__init__(
            id=id, request=request, destination=response_destination(request.top_via, source), config=config,
            outbox=outbox, state=state,
        )
        self.server_id = id
        self.source = source
        # The layer's matching keys (request and response), set by the layer when it files the transaction.
        self.key: ServerKey = ()
        self.rkey: ServerKey = ()
        # The last response sent; a final one as its bytes (SentResponse): from then on the transaction only
        # resends it, and under a flood of requests what it keeps is most of the node's live memory.
        self.last_response: Response | SentResponse | None = None
        self._start(TimerId.TU, config.timeout, now)

    def _unanswered(self) -> None:
        """The TU guard fired: count it and tell the TU (see the module docstring)."""
        self._outbox.unanswered += 1
        self._emit(TransactionTimedOut(transaction=self.id, request=self.request, timer=TimerId.TU))

    def receive_request(self, request: Request, now: float) -> None:
        """A retransmission of the request that created the transaction."""
        raise NotImplementedError

    def send_response(self, response: Response, now: float) -> None:
        """Raises: LocalSipError if the state machine does not allow this response now."""
        raise NotImplementedError

    def end_now(self) -> None:
        """The TU answered as a stateless UAS: the transaction ends with the answer it just sent."""
        raise NotImplementedError

    def _refuse(self, response: Response) -> LocalSipError:
        return LocalSipError(
            f"cannot send {response.status} in state {self.state.name} of {self.kind} transaction {self.id}"
        )

    def _transmit(self, response: Response) -> None:
        sent = response if response.status < 200 else SentResponse.of(response)
        self.last_response = sent
        self._send(sent)

    def response_to_tag(self) -> str | None:
        """The To tag of the last response sent (RFC 2543 ACK matching, §17.2.3)."""
        sent = self.last_response
        if sent is None:
            return None
        return sent.to_tag() if isinstance(sent, SentResponse) else sent.to.tag


class NonInviteServerTransaction(ServerTransaction):
    """Figure 8: Trying → Proceeding → Completed → Terminated."""

    kind = "nist"

    def __init__(
        self, *, id: ServerTransactionId, request: Request, source: Destination, config: TimerConfig, outbox: Outbox,
        now: float,
    ) -> None:
        super().__init__(id=id, request=request, source=source, config=config, outbox=outbox, state=S.TRYING, now=now)

    def receive_request(self, request: Request, now: float) -> None:
        # §17.2.2: "Once in the "Trying" state, any further request retransmissions are discarded."
        # In Proceeding and Completed, the last response "MUST be passed to the transport layer".
        self._received_again()
        if self.state in (S.PROCEEDING, S.COMPLETED) and self.last_response is not None:
            self._resend(self.last_response)

    def send_response(self, response: Response, now: float) -> None:
        if self.state not in (S.TRYING, S.PROCEEDING):
            # §17.2.2: "Any other final responses passed by the TU to the server transaction MUST be
            # discarded while in the "Completed" state." We refuse them loudly instead.
            raise self._refuse(response)
        self._transmit(response)
        if response.status < 200:
            self._set_state(S.PROCEEDING)
        else:
            self._stop(TimerId.TU)
            # Completed only absorbs retransmissions (Timer J: 32 s on UDP) and reports nothing to the TU
            # with the request but a transport failure: keep only what matching and the log line read.
            # Under a flood of requests these transactions are most of the live memory, and what a
            # burst leaves behind is bounded by its peak (docs/sip-transactions.md, "Memory after a burst").
            self.request = self.request.skeleton()
            self._linger(TimerId.J, self.config.timer_j(self.reliable), S.COMPLETED, now)

    def end_now(self) -> None:
        """The TU answered as a stateless UAS (:meth:`TransactionLayer.send_response`): end now, not by Timer J."""
        self._set_state(S.TERMINATED)

    def _on_timer(self, timer: TimerId, now: float) -> None:
        if timer is TimerId.J:
            self._set_state(S.TERMINATED)
        elif timer is TimerId.TU and self.state in (S.TRYING, S.PROCEEDING):
            self._unanswered()
            self._set_state(S.TERMINATED)


class InviteServerTransaction(ServerTransaction):
    """Figure 7 with RFC 6026: Proceeding → Completed → Confirmed, or Proceeding → Accepted."""

    kind = "ist"

    def __init__(
        self, *, id: ServerTransactionId, request: Request, source: Destination, config: TimerConfig, outbox: Outbox,
        now: float,
    ) -> None:
        super().__init__(id=id, request=request, source=source, config=config, outbox=outbox, state=S.PROCEEDING,
                         now=now)
        self.acked = False
        # §17.2.1: "the server transaction MUST generate a 100 (Trying) response unless it knows that
        # the TU will generate a provisional or final response within 200 ms". The layer sends it once
        # the TU has seen the request and not answered it (TransactionLayer.next_event): send_trying.

    def send_trying(self) -> None:
        """Send the 100 Trying, unless the transaction has already sent something or ended."""
        if self.state is S.PROCEEDING and self.last_response is None:
            self._transmit(response_to(self.request, 100))

    def receive_request(self, request: Request, now: float) -> None:
        # §17.2.1: in Proceeding "the most recent provisional response ... MUST be passed to the
        # transport layer for retransmission"; in Completed the final response likewise.
        # RFC 6026 §7.1: in Accepted, INVITE retransmissions are absorbed.
        self._received_again()
        if self.state is S.PROCEEDING and self.last_response is None:
            self.send_trying()  # a retransmission before the TU said anything: the 100 is due now
        elif self.state in (S.PROCEEDING, S.COMPLETED) and self.last_response is not None:
            self._resend(self.last_response)

    def receive_ack(self, now: float) -> bool:
        """An ACK matching this transaction; True when it must be passed up to the TU."""
        if self.state is S.COMPLETED:
            self._stop(TimerId.G, TimerId.H)
            # §17.2.1: Timer I "T4 for unreliable transports ... zero seconds for reliable transports".
            self._linger(TimerId.I, self.config.timer_i(self.reliable), S.CONFIRMED, now)
            return False
        if self.state is S.ACCEPTED:
            self.ack_for_2xx()
            return True  # RFC 6026 §8.7: an ACK in Accepted is passed to the TU
        if self.state is S.CONFIRMED:
            self._received_again()  # the ACK for our non-2xx final, again: absorbed
        return False  # Confirmed: absorbed; Proceeding: an ACK before any final makes no sense

    def ack_for_2xx(self) -> None:
        """The dialog's ACK for our 2xx arrived: stop retransmitting the 2xx."""
        if self.acked:
            self._received_again()  # a repeated ACK (the peer saw our 2xx again)
        self.acked = True
        self._stop(TimerId.G)

    def send_response(self, response: Response, now: float) -> None:
        if self.state is S.ACCEPTED and 200 <= response.status < 300:
            self._transmit(response)  # the TU resending its 2xx (or a second one): pass it through
            return
        if self.state is not S.PROCEEDING:
            raise self._refuse(response)
        self._transmit(response)
        self._stop(TimerId.TU)  # the TU has answered: from a provisional on, the INVITE is its own
        if response.status < 200:
            return
        self._start_retransmit(TimerId.G, now)
        if response.status < 300:
            # RFC 6026 §8.5: "If, while in the "Proceeding" state, the TU passes a 2xx response ... the
            # server transaction MUST pass this response to the transport layer for transmission ... and
            # the state machine MUST enter the "Accepted" state" with Timer L = 64*T1.
            self._set_state(S.ACCEPTED)
            self._start(TimerId.L, self.config.timeout, now)
        else:
            # §17.2.1: "the state machine MUST enter the "Completed" state" with Timer H = 64*T1. Completed
            # resends the final and absorbs the ACK: like a non-INVITE's, the request shrinks to what
            # matching, Timer H's report and the log line read (a refused INVITE's SDP is not among them).
            self.request = self.request.skeleton()
            self._set_state(S.COMPLETED)
            self._start(TimerId.H, self.config.timeout, now)

    def end_now(self) -> None:
        """The TU refused the INVITE as a stateless UAS before anything else was sent
        (:meth:`TransactionLayer.send_response`): end now, not after Timer H."""
        self._set_state(S.TERMINATED)

    def _on_timer(self, timer: TimerId, now: float) -> None:
        if timer is TimerId.G and self.state in (S.COMPLETED, S.ACCEPTED) and self.last_response is not None:
            # §17.2.1: "the response is passed to the transport layer once more for retransmission, and
            # timer G is set to fire in MIN(2*T1, T2) seconds" (and so on, doubling up to T2).
            self._resend(self.last_response)
            interval = min(2 * self._interval(TimerId.G), self.config.t2)
            self._set_interval(TimerId.G, interval)
            self._start(TimerId.G, interval, now)
        elif timer is TimerId.H:
            # §17.2.1: Timer H fires in Completed: "the server transaction MUST transition to the
            # "Terminated" state, and MUST indicate to the TU that a transaction failure has occurred."
            self._emit(TransactionTimedOut(transaction=self.id, request=self.request, timer=TimerId.H))
            self._set_state(S.TERMINATED)
        elif timer is TimerId.L:
            if not self.acked:
                self._emit(TransactionTimedOut(transaction=self.id, request=self.request, timer=TimerId.L))
            self._set_state(S.TERMINATED)
        elif timer is TimerId.I:
            self._set_state(S.TERMINATED)
        elif timer is TimerId.TU and self.state is S.PROCEEDING:
            self._unanswered()
            self.send_response(response_to(self.request, UNANSWERED_INVITE_STATUS,
                                           headers=[("Retry-After", RETRY_AFTER)]), now)
