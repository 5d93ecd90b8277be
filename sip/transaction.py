"""The SIP transaction layer, sans-I/O: RFC 3261 §17 (with §8.1.3, §8.2, §9 CANCEL, §18.2 response
routing) and RFC 3581 (rport), RFC 6026 (Accepted state of the INVITE server transaction).

Shape (aioquic): feed messages with :meth:`TransactionLayer.receive_message` and time with
:meth:`~TransactionLayer.handle_timer`; take outputs with :meth:`~TransactionLayer.messages_to_send`
and :meth:`~TransactionLayer.next_event`; ask :meth:`~TransactionLayer.get_timer` when to call back.
The state machines live in :mod:`sip.transaction_client` and :mod:`sip.transaction_server`.

Bounded (docs/sip-transactions.md, "Caps and load shedding"): every server transaction ends
within the RFC timers or the TU guard (64*T1 without a final response), and at most
``max_server_transactions`` live at once, at most ``max_server_transactions_per_source`` of them
for requests from one IP address. A new request past either cap gets a stateless 503 with
Retry-After and no transaction (counted in :attr:`TransactionLayer.shed`). A request with the same
Via, Call-ID and CSeq as a live transaction it does not match (§8.2.2.2, a merged request) is
refused 482, so the TU's answer always reaches the transaction it is for.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import secrets

import structlog

from sip.errors import LocalSipError, RemoteSipError
from sip.events import (
    ClientTransactionId,
    Destination,
    RequestReceived,
    ResponseReceived,
    ServerTransactionId,
    SipEvent,
    TransactionId,
    TransactionTerminated,
)
from sip.ids import is_rfc3261_branch, new_branch
from sip.message import Outgoing, Request, Response, response_to
from sip.timers import TimerConfig
from sip.transaction_base import Outbox, Transaction, TransactionState
from sip.transaction_client import (
    ClientTransaction,
    InviteClientTransaction,
    NonInviteClientTransaction,
    build_cancel,
)
from sip.transaction_routing import (
    ServerKey,
    annotate_via,
    replace_top_via,
    response_destination,
    response_key,
    server_key,
    server_key_for,
)
from sip.transaction_server import InviteServerTransaction, NonInviteServerTransaction, ServerTransaction

__all__ = ["TransactionLayer", "TransactionState"]

logger = structlog.get_logger("sip.transaction")
S = TransactionState

# Caps (constructor arguments). A server transaction holds its request and last response: 4.5 KB
# measured for fuzzed messages (tracemalloc), about 9 KB of the server's RSS with what the TU keeps
# beside it; most live 32 s after their answer (Timers J, H, L over UDP). A carrier sending 300
# calls/s (one node's limit, docs/performance.md) from one address keeps about 300 x 2 x 32 =
# 19,200 (INVITE and BYE) alive: the per-source cap is just above that, and the total cap leaves
# other peers 10,000 more while bounding the memory at about 30,000 x 9 KB = 270 MB.
MAX_SERVER_TRANSACTIONS = 30_000
MAX_SERVER_TRANSACTIONS_PER_SOURCE = 20_000
SHED_RETRY_AFTER = "5"  # seconds, on the 503 of a request past a cap (RFC 3261 §21.5.4)
SHED_LOG_EVERY = 1000  # one info line per this many shed requests (the first is logged too)


class TransactionLayer:
    """All client and server transactions of one SIP endpoint."""

    def __init__(self, *, timers: TimerConfig = TimerConfig(),  # noqa: B008 - frozen, immutable
                 max_server_transactions: int = MAX_SERVER_TRANSACTIONS,
                 max_server_transactions_per_source: int = MAX_SERVER_TRANSACTIONS_PER_SOURCE) -> None:
        if max_server_transactions < 1 or max_server_transactions_per_source < 1:
            raise ValueError("transaction caps must be at least 1")
        self.config = timers
        self.max_server_transactions = max_server_transactions
        self.max_server_transactions_per_source = max_server_transactions_per_source
        self.shed = 0  # requests answered 503 past a cap, without a transaction
        self.merged = 0  # requests refused 482 (same Via, Call-ID and CSeq as another live transaction)
        self._per_source: dict[str, int] = {}  # live server transactions by source IP
        self._outbox = Outbox()
        self._ids = itertools.count(1)
        self._servers: dict[ServerTransactionId, ServerTransaction] = {}
        self._clients: dict[ClientTransactionId, ClientTransaction] = {}
        self._server_keys: dict[ServerKey, ServerTransactionId] = {}
        self._response_keys: dict[ServerKey, ServerTransactionId] = {}
        self._client_keys: dict[tuple[str, str], ClientTransactionId] = {}
        self._awaiting_ack: dict[tuple[str, int], ServerTransactionId] = {}
        # New INVITE server transactions whose 100 Trying waits for the TU (see next_event): not yet
        # handed to the TU, then handed and due at the next messages_to_send().
        self._trying_held: dict[ServerTransactionId, InviteServerTransaction] = {}
        self._trying_due: list[InviteServerTransaction] = []
        self._tag_key = secrets.token_bytes(16)  # keys the To tags of stateless answers (stateless_tag)
        self._pending_cancels: dict[ClientTransactionId, ClientTransactionId] = {}  # held until a 1xx
        self._cancels: dict[ClientTransactionId, ClientTransactionId] = {}  # INVITE → its CANCEL
        self._heap: list[tuple[float, int]] = []
        self._scheduled: dict[int, float] = {}

    # ----------------------------------------------------------------- inputs
    def receive_message(self, message: Request | Response, source: Destination, now: float) -> None:
        """Feed one parsed message received from ``source``.

        Raises:
            RemoteSipError: the message lacks a header the layer needs (parse_message checks them).
        """
        if isinstance(message, Request):
            self._receive_request(message, source, now)
        else:
            self._receive_response(message, now)

    def send_request(self, request: Request, destination: Destination, now: float) -> ClientTransactionId:
        """Start a client transaction for ``request`` (not ACK: use :meth:`send_stateless`).

        A top Via without ``branch`` gets a fresh one (the request is copied, not changed).

        Raises:
            LocalSipError: ACK, a malformed or incomplete request, or a branch already in use.
        """
        if request.method == "ACK":
            raise LocalSipError("an ACK has no client transaction: use send_stateless")
        request = self._complete(request)
        branch = request.top_via.branch or ""
        key = (branch, request.method)
        if key in self._client_keys:
            raise LocalSipError(f"branch {branch} already used by a {request.method} client transaction")
        tx_id = ClientTransactionId(next(self._ids))
        self._start_client(tx_id, request, destination, now)
        return tx_id

    def send_response(self, response: Response, now: float, *, stateless: bool = False) -> None:
        """Send a response through its server transaction, or statelessly if none matches.

        ``stateless``: the TU answers as a stateless UAS (RFC 3261 §8.2.7) with a final answer it would give
        again to the same request and that changed nothing: a final non-2xx (a challenge, a 481, a 405, an
        INVITE to an unknown number), or the 200 to an OPTIONS (§11.2's answer is the same each time; a 2xx to
        any other method may have changed state, and a retransmission must not reach the TU again). The
        transaction ends as soon as the answer is sent instead of waiting in Completed for Timer J or H
        (32 s over UDP), and a retransmission of the request reaches the TU again, which answers it again.
        §8.2.7 gives the reason: "If unauthenticated requests were handled statefully, then malicious floods
        of unauthenticated requests could create massive amounts of transaction state".

        An INVITE can be answered so only while its transaction has sent nothing: a stateless UAS "MUST NOT
        send provisional (1xx) responses", since a client that has seen one stops retransmitting its INVITE
        and would never learn a lost final answer. The 100 Trying waits for the TU's first look (see
        :meth:`next_event`), so an INVITE refused at once qualifies; one already answered 100 or 1xx is
        answered through its transaction as usual (Completed, Timers G and H), whatever ``stateless`` says.

        Raises:
            LocalSipError: the transaction's state forbids this response (e.g. a second final),
                the response lacks Via/Call-ID/CSeq, or ``stateless`` with a 1xx, or a 2xx to anything
                but OPTIONS.
        """
        try:
            key = response_key(response)
            via = response.top_via
        except RemoteSipError as exc:
            raise LocalSipError(f"cannot route response: {exc}") from exc
        tx_id = self._response_keys.get(key)
        tx = self._servers.get(tx_id) if tx_id is not None else None
        if tx is None:
            self._outbox.messages.append((response, response_destination(via, None)))
            return
        if stateless and not (response.status >= 300 or (
                response.status >= 200 and tx.request.method == "OPTIONS")):
            raise LocalSipError("only a final non-2xx answer, or the 2xx to an OPTIONS, can be stateless")
        # An INVITE's transaction can end with its answer only if that answer is the first thing it sends.
        ends = stateless and (isinstance(tx, NonInviteServerTransaction) or tx.last_response is None)
        tx.send_response(response, now)
        if ends:
            tx.end_now()
        if isinstance(tx, InviteServerTransaction) and tx.state is S.ACCEPTED:
            self._awaiting_ack[(tx.request.call_id, tx.request.cseq.seq)] = tx.server_id
        self._after(tx)

    def stateless_tag(self, request: Request) -> str:
        """The To tag for a stateless answer to ``request``: the same for the request and its retransmissions,
        as §8.2.7 requires ("the same tag for the same request consistently"), unguessable from outside (keyed
        per layer)."""
        # The From header as received, not its parsed tag: a request whose From does not parse gets one too.
        identity = "\n".join((request.call_id, request.headers.get("From") or "", request.headers.get("CSeq") or "",
                               request.top_via.branch or ""))
        return hashlib.blake2s(identity.encode(), key=self._tag_key, digest_size=8).hexdigest()

    def send_stateless(self, message: Request | Response, destination: Destination) -> None:
        """Hand a message to the transport outside any transaction (an ACK for a 2xx, a proxied message)."""
        self._outbox.messages.append((message, destination))

    def cancel(self, transaction: ClientTransactionId, now: float) -> ClientTransactionId | None:
        """Cancel an INVITE client transaction (§9.1); returns the CANCEL's client transaction id.

        Before any provisional response the CANCEL is held and sent when the first one arrives
        ("If no provisional response has been received, the CANCEL request MUST NOT be sent; rather,
        the client MUST wait for the arrival of a provisional response before sending the request.").
        If a final response comes instead, the held CANCEL is dropped and a TransactionTerminated is
        reported for its id. Returns None when the INVITE already has a final response.

        Raises:
            LocalSipError: ``transaction`` is unknown or not an INVITE client transaction.
        """
        tx = self._clients.get(transaction)
        if not isinstance(tx, InviteClientTransaction):
            raise LocalSipError(f"no INVITE client transaction {transaction} to cancel")
        if transaction in self._cancels:
            return self._cancels[transaction]
        cancel_id = ClientTransactionId(next(self._ids))
        if tx.state is S.CALLING:
            self._pending_cancels[transaction] = cancel_id
        elif tx.state is S.PROCEEDING:
            self._send_cancel(tx, cancel_id, now)
        else:
            return None  # "If the original request has generated a final response, the CANCEL SHOULD NOT be sent"
        self._cancels[transaction] = cancel_id
        return cancel_id

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        while self._heap and self._heap[0][0] <= now:
            deadline, tx_id = heapq.heappop(self._heap)
            if self._scheduled.get(tx_id) != deadline:
                continue  # stale heap entry
            del self._scheduled[tx_id]
            tx = self._find(tx_id)
            if tx is not None:
                tx.handle_timer(now)
                self._after(tx)

    def transport_failed(self, destination: Destination, now: float) -> None:
        """The adapter could not reach ``destination`` (connection refused or closed, ICMP error):
        every live transaction sending there reports :class:`~sip.events.TransportFailed` and ends."""
        for tx in [*self._servers.values(), *self._clients.values()]:
            if tx.destination == destination:
                tx.transport_failed()
                self._after(tx)

    # ---------------------------------------------------------------- outputs
    def next_event(self) -> SipEvent | None:
        """The next event for the TU, or None.

        A new INVITE's 100 Trying is held until the TU has taken its ``RequestReceived`` here and is then sent
        by the next :meth:`messages_to_send` unless the TU has answered meanwhile: §17.2.1 lets the transaction
        skip the 100 when "it knows that the TU will generate a provisional or final response within 200 ms",
        and a TU that answers while handling the event does. A refusal given at once is then the only answer,
        and can be stateless (:meth:`send_response`)."""
        if not self._outbox.events:
            return None
        event = self._outbox.events.popleft()
        if self._trying_held and type(event) is RequestReceived and event.transaction is not None:
            held = self._trying_held.pop(ServerTransactionId(event.transaction), None)
            if held is not None:
                self._trying_due.append(held)
        return event

    def messages_to_send(self) -> list[tuple[Outgoing, Destination]]:
        if self._trying_due:
            for tx in self._trying_due:
                tx.send_trying()
            self._trying_due.clear()
        out, self._outbox.messages = self._outbox.messages, []
        return out

    def get_timer(self) -> float | None:
        while self._heap and self._scheduled.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    # -------------------------------------------------------------- inspection
    def state_of(self, transaction: TransactionId) -> TransactionState | None:
        """The state of a live transaction; None once it has terminated and been removed."""
        tx = self._find(transaction)
        return tx.state if tx is not None else None

    def transaction(self, transaction: TransactionId) -> Transaction | None:
        return self._find(transaction)

    def __len__(self) -> int:
        """Number of live transactions (0 once everything has terminated: no leak)."""
        return len(self._servers) + len(self._clients)

    @property
    def resent(self) -> int:
        """Messages sent again since start: timer retransmissions, answers to a peer's retransmission."""
        return self._outbox.resent

    @property
    def received_again(self) -> int:
        """Retransmissions received from peers since start (absorbed, or answered again)."""
        return self._outbox.received_again

    @property
    def unanswered(self) -> int:
        """Server transactions the TU left without a final response (ended by the guard) since start."""
        return self._outbox.unanswered

    @property
    def server_count(self) -> int:
        return len(self._servers)

    @property
    def client_count(self) -> int:
        return len(self._clients)

    # --------------------------------------------------------------- requests
    def _receive_request(self, request: Request, source: Destination, now: float) -> None:
        annotate_via(request, source)
        key = server_key(request)
        tx = self._match_server(key, request)
        if request.method == "ACK":
            self._receive_ack(request, source, tx, now)
            return
        if tx is not None:
            tx.receive_request(request, now)  # a retransmission: absorbed, last response resent
            self._after(tx)
            return
        rkey = response_key(request)
        if rkey in self._response_keys:
            # §8.2.2.2: "If the From tag, Call-ID, and CSeq exactly match those associated with an
            # ongoing transaction, but the request does not match that transaction (based on the
            # matching rules in Section 17.2.3), the UAS core SHOULD generate a 482 (Loop Detected)".
            # Also when the To tag differs: the TU's answer could not be told apart from the other's.
            self.merged += 1
            raise RemoteSipError("request merged with a live transaction", status_hint=482)
        host = source.addr[0]
        if (len(self._servers) >= self.max_server_transactions
                or self._per_source.get(host, 0) >= self.max_server_transactions_per_source):
            self._shed(request, source)
            return
        tx_id = ServerTransactionId(next(self._ids))
        new: ServerTransaction
        if request.method == "INVITE":
            new = InviteServerTransaction(
                id=tx_id, request=request, source=source, config=self.config, outbox=self._outbox, now=now
            )
        else:
            new = NonInviteServerTransaction(
                id=tx_id, request=request, source=source, config=self.config, outbox=self._outbox, now=now
            )
        self._servers[tx_id] = new
        if isinstance(new, InviteServerTransaction):
            self._trying_held[tx_id] = new
        self._per_source[host] = self._per_source.get(host, 0) + 1
        self._server_keys[key] = tx_id
        self._response_keys[rkey] = tx_id
        new.key, new.rkey = key, rkey
        cancels: ServerTransactionId | None = None
        if request.method == "CANCEL":
            # §9.2: "the TU determines the transaction to be cancelled by taking the CANCEL request, and
            # then assuming that the request method is anything but CANCEL or ACK and applying the
            # transaction matching procedures of Section 17.2.3." Only INVITEs can be cancelled here.
            target = self._match_server(server_key_for(request, "INVITE"), request)
            cancels = target.server_id if target is not None else None
        self._outbox.events.append(
            RequestReceived(request=request, source=source, transaction=tx_id, cancels=cancels)
        )
        self._after(new)

    def _shed(self, request: Request, source: Destination) -> None:
        """Past a cap: answer 503 statelessly (§21.5.4 "MAY indicate when the client should retry")."""
        self.shed += 1
        if self.shed % SHED_LOG_EVERY == 1:
            logger.info("sip.request.shed", reason="transaction cap", shed=self.shed, live=len(self._servers),
                        source=source.addr[0], from_source=self._per_source.get(source.addr[0], 0),
                        method=request.method)
        response = response_to(request, 503, headers=[("Retry-After", SHED_RETRY_AFTER)])
        self._outbox.messages.append((response, response_destination(request.top_via, source)))

    def _receive_ack(
        self, request: Request, source: Destination, tx: ServerTransaction | None, now: float
    ) -> None:
        if isinstance(tx, InviteServerTransaction):
            pass_up = tx.receive_ack(now)
            self._after(tx)
            if not pass_up:
                return  # the ACK for our non-2xx final: it belongs to the transaction (§17.2.1)
        else:
            waiting = self._awaiting_ack.get((request.call_id, request.cseq.seq))
            target = self._servers.get(waiting) if waiting is not None else None
            if isinstance(target, InviteServerTransaction):
                target.ack_for_2xx()
                self._after(target)
        # §17.2.3: the ACK for a 2xx does not match the INVITE server transaction: it goes to the TU.
        self._outbox.events.append(RequestReceived(request=request, source=source, transaction=None))

    def _match_server(self, key: ServerKey, request: Request) -> ServerTransaction | None:
        tx_id = self._server_keys.get(key)
        tx = self._servers.get(tx_id) if tx_id is not None else None
        if tx is None or key[0] == "3261":
            return tx
        # RFC 2543 fallback: the To tag must match the request's (INVITE, CANCEL), or for an ACK the
        # To tag of the response the transaction sent.
        if request.method == "ACK":
            wanted = tx.response_to_tag()
        else:
            wanted = tx.request.to.tag
        return tx if request.to.tag == wanted else None

    # -------------------------------------------------------------- responses
    def _receive_response(self, response: Response, now: float) -> None:
        via = response.top_via
        cseq = response.cseq
        # §17.1.3: "If the response has the same value of the branch parameter in the top Via header
        # field as the branch parameter in the top Via header field of the request that created the
        # transaction" and "the method parameter in the CSeq header field matches the method of the
        # request that created the transaction".
        tx_id = self._client_keys.get((via.branch or "", cseq.method))
        tx = self._clients.get(tx_id) if tx_id is not None else None
        if tx is not None:
            tx.receive_response(response, now)
            if isinstance(tx, InviteClientTransaction):
                self._resolve_pending_cancel(tx, now)
            self._after(tx)
        elif cseq.method == "INVITE" and 200 <= response.status < 300:
            self._outbox.received_again += 1  # a 2xx retransmission (or a fork's): the TU ACKs it again
            self._outbox.events.append(ResponseReceived(response=response, transaction=None))
        else:
            logger.info(
                "sip.response.dropped", reason="no matching client transaction", status=response.status,
                branch=via.branch, method=cseq.method,
            )

    # ------------------------------------------------------------ client side
    def _complete(self, request: Request) -> Request:
        try:
            via = request.top_via
            cseq = request.cseq
            from_tag = request.from_.tag
            request.to  # noqa: B018 - must parse
            request.call_id  # noqa: B018
        except RemoteSipError as exc:
            raise LocalSipError(f"request is not sendable: {exc}") from exc
        if cseq.method != request.method:
            raise LocalSipError(f"CSeq method {cseq.method} does not match {request.method}")
        if from_tag is None:
            raise LocalSipError("§8.1.1.3: the From header field MUST contain a tag")
        request = Request(method=request.method, uri=request.uri, headers=request.headers.copy(), body=request.body)
        if via.branch is None:
            replace_top_via(request, via.with_param("branch", new_branch()))
        elif not is_rfc3261_branch(via.branch):
            raise LocalSipError(f"branch {via.branch!r} lacks the z9hG4bK magic cookie (§8.1.1.7)")
        if request.headers.get("Max-Forwards") is None:
            request.headers.add("Max-Forwards", "70")
        return request

    def _start_client(
        self, tx_id: ClientTransactionId, request: Request, destination: Destination, now: float
    ) -> ClientTransaction:
        tx: ClientTransaction
        if request.method == "INVITE":
            tx = InviteClientTransaction(
                id=tx_id, request=request, destination=destination, config=self.config, outbox=self._outbox, now=now
            )
        else:
            tx = NonInviteClientTransaction(
                id=tx_id, request=request, destination=destination, config=self.config, outbox=self._outbox, now=now
            )
        self._clients[tx_id] = tx
        self._client_keys[(tx.branch, request.method)] = tx_id
        self._after(tx)
        return tx

    def _send_cancel(self, invite: InviteClientTransaction, cancel_id: ClientTransactionId, now: float) -> None:
        self._start_client(cancel_id, build_cancel(invite.request), invite.destination, now)
        invite.cancel_sent(now)
        self._after(invite)

    def _resolve_pending_cancel(self, tx: InviteClientTransaction, now: float) -> None:
        cancel_id = self._pending_cancels.get(tx.client_id)
        if cancel_id is None or tx.state is S.CALLING:
            return
        del self._pending_cancels[tx.client_id]
        if tx.state is S.PROCEEDING:
            self._send_cancel(tx, cancel_id, now)
        else:
            self._outbox.events.append(TransactionTerminated(transaction=cancel_id))

    # ------------------------------------------------------------- bookkeeping
    def _find(self, tx_id: int) -> Transaction | None:
        return self._servers.get(ServerTransactionId(tx_id)) or self._clients.get(ClientTransactionId(tx_id))

    def _after(self, tx: Transaction) -> None:
        """Reschedule ``tx`` on the timer heap, or forget it once terminated."""
        if tx.terminated:
            self._forget(tx)
            return
        deadline = tx.get_timer()
        if deadline is None:
            self._scheduled.pop(tx.id, None)
        elif self._scheduled.get(tx.id) != deadline:
            self._scheduled[tx.id] = deadline
            heapq.heappush(self._heap, (deadline, tx.id))

    def _forget(self, tx: Transaction) -> None:
        self._scheduled.pop(tx.id, None)
        if isinstance(tx, ServerTransaction):
            if self._servers.pop(tx.server_id, None) is None:
                return
            self._trying_held.pop(tx.server_id, None)
            host = tx.source.addr[0]
            left = self._per_source.get(host, 1) - 1
            if left > 0:
                self._per_source[host] = left
            else:
                self._per_source.pop(host, None)
            key, rkey = tx.key, tx.rkey
            if self._server_keys.get(key) == tx.server_id:
                del self._server_keys[key]
            if self._response_keys.get(rkey) == tx.server_id:
                del self._response_keys[rkey]
            ack_key = (tx.request.call_id, tx.request.cseq.seq)
            if self._awaiting_ack.get(ack_key) == tx.server_id:
                del self._awaiting_ack[ack_key]
        elif isinstance(tx, ClientTransaction):
            self._clients.pop(tx.client_id, None)
            self._client_keys.pop((tx.branch, tx.request.method), None)
            self._cancels.pop(tx.client_id, None)
            cancel_id = self._pending_cancels.pop(tx.client_id, None)
            if cancel_id is not None:
                self._outbox.events.append(TransactionTerminated(transaction=cancel_id))


