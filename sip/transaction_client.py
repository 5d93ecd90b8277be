"""Client transactions: RFC 3261 §17.1.1 (INVITE, Figure 5) and §17.1.2 (non-INVITE, Figure 6),
with the ACK for non-2xx finals (§17.1.1.3) and CANCEL construction (§9.1).

The INVITE client transaction follows RFC 3261, not RFC 6026: a 2xx ends it at once and later
2xx retransmissions reach the TU with ``transaction=None`` (the TU ACKs them, §13.2.2.4).
"""

from __future__ import annotations

from sip.events import ClientTransactionId, Destination, ResponseReceived, TransactionTimedOut
from sip.message import Headers, Request, Response
from sip.timers import TimerConfig, TimerId
from sip.transaction_base import Outbox, Transaction, TransactionState

S = TransactionState


def _copy_headers(original: Request, names: tuple[str, ...]) -> Headers:
    out = Headers()
    vias = original.headers.get_all("Via")
    out.add("Via", vias[0])
    for name in names:
        for value in original.headers.get_all(name) if name == "Route" else [original.headers.get(name) or ""]:
            out.add(name, value)
    return out


def build_ack(invite: Request, response: Response) -> Request:
    """§17.1.1.3: the ACK for a non-2xx final response, built from the original INVITE."""
    # "The ACK request constructed by the client transaction MUST contain values for the Call-ID,
    # From, and Request-URI that are equal to the values of those header fields in the request
    # passed to the transport by the client transaction ... The To header field in the ACK MUST
    # equal the To header field in the response being acknowledged ... The ACK MUST contain a single
    # Via header field, and this MUST be equal to the top Via header field of the original request.
    # The CSeq header field in the ACK MUST contain the same value for the sequence number as was
    # present in the original request, but the method parameter MUST be equal to "ACK"."
    # "If the INVITE request whose response is being acknowledged had Route header fields, those
    # header fields MUST appear in the ACK."
    headers = _copy_headers(invite, ("From", "Call-ID"))
    headers.add("To", response.headers.get("To") or "")
    headers.add("CSeq", f"{invite.cseq.seq} ACK")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    return Request(method="ACK", uri=invite.uri, headers=headers)


def build_cancel(invite: Request) -> Request:
    """§9.1: a CANCEL for ``invite``."""
    # "The Request-URI, Call-ID, To, the numeric part of CSeq, and From header fields in the CANCEL
    # request MUST be identical to those in the request being cancelled, including tags. A CANCEL
    # constructed by a client MUST have only a single Via header field value matching the top Via
    # value in the request being cancelled." "If the request being cancelled contains a Route header
    # field, the CANCEL request MUST include that Route header field's values."
    headers = _copy_headers(invite, ("From", "To", "Call-ID"))
    headers.add("CSeq", f"{invite.cseq.seq} CANCEL")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    return Request(method="CANCEL", uri=invite.uri, headers=headers)


class ClientTransaction(Transaction):
    def __init__(
        self, *, id: ClientTransactionId, request: Request, destination: Destination, config: TimerConfig,
        outbox: Outbox, state: TransactionState,
    ) -> None:
        super().__init__(id=id, request=request, destination=destination, config=config, outbox=outbox, state=state)
        self.client_id = id

    def receive_response(self, response: Response, now: float) -> None:
        raise NotImplementedError

    def _pass_up(self, response: Response) -> None:
        self._emit(ResponseReceived(response=response, transaction=self.client_id))

    def _time_out(self, timer: TimerId) -> None:
        self._emit(TransactionTimedOut(transaction=self.client_id, request=self.request, timer=timer))
        self._set_state(S.TERMINATED)

    def _retransmit(self, timer: TimerId, interval: float, now: float) -> None:
        self._resend(self.request)
        self._set_interval(timer, interval)
        self._start(timer, interval, now)


class InviteClientTransaction(ClientTransaction):
    """Figure 5: Calling → Proceeding → Completed → Terminated (2xx: straight to Terminated)."""

    kind = "ict"

    def __init__(
        self, *, id: ClientTransactionId, request: Request, destination: Destination, config: TimerConfig,
        outbox: Outbox, now: float,
    ) -> None:
        super().__init__(
            id=id, request=request, destination=destination, config=config, outbox=outbox, state=S.CALLING,
        )
        self.ack: Request | None = None
        self._send(request)
        # §17.1.1.2: "If an unreliable transport is being used, the client transaction MUST start timer
        # A with a value of T1 ... For any transport, the client transaction MUST start timer B with a
        # value of 64*T1 seconds".
        self._start_retransmit(TimerId.A, now)
        self._start(TimerId.B, config.timeout, now)

    def receive_response(self, response: Response, now: float) -> None:
        status = response.status
        if self.state in (S.CALLING, S.PROCEEDING):
            if status < 200:
                if self.state is S.CALLING:
                    self._stop(TimerId.A, TimerId.B)
                    self._set_state(S.PROCEEDING)
                self._pass_up(response)
            elif status < 300:
                # §17.1.1.2: "When in either the "Calling" or "Proceeding" states, reception of a 2xx
                # response MUST cause the client transaction to enter the "Terminated" state, and the
                # response MUST be passed up to the TU."
                self._pass_up(response)
                self._set_state(S.TERMINATED)
            else:
                self.ack = build_ack(self.request, response)
                self._send(self.ack)
                self._pass_up(response)
                self._stop(TimerId.A, TimerId.B)
                # Timer D: "at least 32 seconds for unreliable transports, and ... zero seconds for reliable".
                self._linger(TimerId.D, self.config.timer_d(self.reliable), S.COMPLETED, now)
        elif self.state is S.COMPLETED:
            self._received_again()
            if status >= 300 and self.ack is not None:
                # §17.1.1.2: "Any retransmissions of the final response that are received while in the
                # "Completed" state MUST cause the ACK to be re-passed to the transport layer".
                self._resend(self.ack)
            elif 200 <= status < 300:
                self._emit(ResponseReceived(response=response, transaction=None))

    def cancel_sent(self, now: float) -> None:
        """§9.1: without a final response 64*T1 after the CANCEL, the INVITE is given up (Timer B reused)."""
        if self.state is S.PROCEEDING:
            self._start(TimerId.B, self.config.timeout, now)

    def _on_timer(self, timer: TimerId, now: float) -> None:
        if timer is TimerId.A and self.state is S.CALLING:
            # §17.1.1.2: "the client transaction MUST retransmit the request ... and reset the timer
            # with a value of 2*T1" - doubling each time, with no cap.
            self._retransmit(TimerId.A, 2 * self._interval(TimerId.A), now)
        elif timer is TimerId.B and self.state in (S.CALLING, S.PROCEEDING):
            self._time_out(TimerId.B)
        elif timer is TimerId.D:
            self._set_state(S.TERMINATED)


class NonInviteClientTransaction(ClientTransaction):
    """Figure 6: Trying → Proceeding → Completed → Terminated."""

    kind = "nict"

    def __init__(
        self, *, id: ClientTransactionId, request: Request, destination: Destination, config: TimerConfig,
        outbox: Outbox, now: float,
    ) -> None:
        super().__init__(
            id=id, request=request, destination=destination, config=config, outbox=outbox, state=S.TRYING,
        )
        self._send(request)
        # §17.1.2.2: "If an unreliable transport is in use, the client transaction MUST set timer E to
        # fire in T1 seconds." "The "Trying" state is entered ... the client transaction MUST set
        # timer F to fire in 64*T1 seconds."
        self._start_retransmit(TimerId.E, now)
        self._start(TimerId.F, config.timeout, now)

    def receive_response(self, response: Response, now: float) -> None:
        if self.state not in (S.TRYING, S.PROCEEDING):
            self._received_again()
            return  # Completed: "any retransmissions of the final response ... are absorbed"
        self._pass_up(response)
        if response.status < 200:
            self._set_state(S.PROCEEDING)
            return
        self._stop(TimerId.E, TimerId.F)
        # §17.1.2.2: Timer K "T4 seconds for unreliable transports, and zero seconds for reliable".
        self._linger(TimerId.K, self.config.timer_k(self.reliable), S.COMPLETED, now)

    def _on_timer(self, timer: TimerId, now: float) -> None:
        if timer is TimerId.E:
            # §17.1.2.2: Trying: "reset with a value of MIN(2*T1, T2)" and doubling; Proceeding: "the
            # request MUST be passed to the transport layer for retransmission, and timer E MUST be
            # reset with a value of T2 seconds."
            if self.state is S.TRYING:
                self._retransmit(TimerId.E, min(2 * self._interval(TimerId.E), self.config.t2), now)
            elif self.state is S.PROCEEDING:
                self._retransmit(TimerId.E, self.config.t2, now)
        elif timer is TimerId.F:
            # "If timer F fires while in the "Trying" or "Proceeding" state, the client transaction
            # SHOULD inform the TU about the timeout, and then it SHOULD enter the "Terminated" state."
            self._time_out(TimerId.F)
        elif timer is TimerId.K:
            self._set_state(S.TERMINATED)
