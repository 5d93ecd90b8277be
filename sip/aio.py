"""The asyncio adapter of the SIP stack: sockets in, transaction layer in the middle, events out.

It owns the transports (one UDP socket, one TCP server), ``loop.time()`` and ONE ``call_at``
timer for the whole :class:`~sip.transaction.TransactionLayer`. Bytes are parsed here; a
message the parser refuses is answered statelessly with the error's ``status_hint`` when it is
an answerable request (RFC 3261 §8.2.6 — Via, From, To, Call-ID, CSeq could be read), and
dropped otherwise (responses, garbage). Nothing a peer sends can stop the endpoint.

Events from the layer go to one handler (the server's SIP core) through :meth:`on_sip_event`,
in order, never re-entrantly.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import structlog

from sip.errors import LocalSipError, RemoteSipError
from sip.events import ClientTransactionId, Destination, RequestReceived, SipEvent
from sip.message import Outgoing, Request, Response, SentResponse, clear_parse_caches, parse_message, response_to
from sip.transaction import TransactionLayer, TransactionState
from sip.transaction_server import ServerTransaction
from sip.transport.base import Transport
from sip.transport.tcp import TcpTransport
from sip.transport.udp import UdpTransport

log = structlog.get_logger(__name__)

# Messages read from a socket, at most, before due timers are handled. Large on purpose: the
# backlog of a node past its capacity is thousands of datagrams, and every answer left unread
# lets a timer send again (a 256 cap brought back 5.7 retransmissions per call at 350/s, 2048
# kept it under 0.1). Other sockets wait for the read-ahead, as they would for the same
# messages read one by one by the loop.
READ_BEFORE_TIMERS = 2048

# Giving memory back after a burst. The transactions of a burst (a flood of hostile SIP, a surge
# of calls) are freed when they end, but the C allocator keeps the freed pages: RSS stays at the
# burst's peak. Once a burst reached TRIM_PEAK live transactions, the endpoint asks glibc to return
# its free pages (malloc_trim) twice: when the live transactions fall to an eighth of the peak, and
# again when they are all but gone (TRIM_DRAINED or fewer), at most once per TRIM_INTERVAL seconds
# (a release that falls due sooner is deferred, not dropped). It costs a few milliseconds. Python's
# own small-object arenas (1 MiB) are returned only when entirely empty, so the parser caches are
# emptied first: their entries made during the burst are scattered over its arenas and would keep
# them. The final release (drained) runs a full cyclic collection first: automatic full collections
# are off (cti.app.tune_gc), so the burst's reference cycles would otherwise wait for the next
# periodic one (10 minutes) and keep their arenas; with at most TRIM_DRAINED live transactions
# the pause is short. docs/sip-transactions.md and docs/reliability.md have the figures.
TRIM_PEAK = 200  # about 70 calls' transactions: a flood's refusals hold none (stateless), its calls do
TRIM_DRAINED = 8
TRIM_INTERVAL = 30.0


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def release_memory() -> bool:
    """Return the C heap's free pages to the OS (glibc ``malloc_trim(0)``); False when unavailable."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


class SipEventHandler(Protocol):
    def on_sip_event(self, event: SipEvent) -> None: ...


def _summary(message: Outgoing) -> dict[str, object]:
    """The loggable part of a message: never its body or Authorization headers."""
    if isinstance(message, SentResponse):
        return {"call_id": message.call_id, "cseq": message.cseq, "status": message.status}
    out: dict[str, object] = {"call_id": message.headers.get("Call-ID"), "cseq": message.headers.get("CSeq")}
    if isinstance(message, Request):
        out["method"] = message.method
    else:
        out["status"] = message.status
    return out


class SipEndpoint:
    """Runs a transaction layer on real sockets."""

    def __init__(self, layer: TransactionLayer, handler: SipEventHandler,
                 *, clock: Callable[[], float] | None = None) -> None:
        self.layer = layer
        self._handler = handler
        self._clock = clock
        self._transports: dict[str, Transport] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pumping = False
        self._reading_ahead = False
        self.rejected = 0
        self.send_failed = 0  # messages a transport raised on (it should drop and count them itself)
        self.failed = 0  # received messages whose handling raised (a bug): logged, the endpoint goes on
        self.trims = 0  # times memory was given back after a burst (release_memory)
        self._peak = 0
        self._partly_released = False
        self._trimmed_at = -TRIM_INTERVAL
        self._trim_timer: asyncio.TimerHandle | None = None

    def _now(self) -> float:
        if self._clock is None:  # the loop's clock, looked up once (each look-up is a syscall on 3.11)
            self._clock = asyncio.get_running_loop().time
        return self._clock()

    async def start(self, host: str, port: int, transports: Iterable[str] = ("udp", "tcp"),
                    *, tcp_idle_timeout: float = 600.0, tls: ssl.SSLContext | None = None,
                    tls_port: int = 5061) -> None:
        """Bind the transports on ``host:port`` (port 0: UDP picks a free port, TCP uses the same one);
        "tls" listens on ``tls_port`` (0: a free port) with the server context ``tls``.

        Raises:
            OSError: an address could not be bound (everything already bound is closed again).
            ValueError: "tls" asked for without a context.
        """
        names = [t.lower() for t in transports]
        try:
            if "udp" in names:
                udp = await UdpTransport.start(host, port, self)
                self._transports["UDP"] = udp
                port = udp.local_address[1]
            if "tcp" in names:
                self._transports["TCP"] = await TcpTransport.start(host, port, self, idle_timeout=tcp_idle_timeout)
            if "tls" in names:
                if tls is None:
                    raise ValueError("SIP over TLS needs a server SSL context")
                self._transports["TLS"] = await TcpTransport.start(host, tls_port, self, idle_timeout=tcp_idle_timeout,
                                                                   ssl=tls)
        except OSError:
            await self.close()
            raise

    @property
    def transports(self) -> dict[str, Transport]:
        return dict(self._transports)

    def local_address(self, transport: str = "UDP") -> tuple[str, int]:
        return self._transports[transport.upper()].local_address

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._trim_timer is not None:
            self._trim_timer.cancel()
            self._trim_timer = None
        for transport in self._transports.values():
            await transport.close()
        self._transports.clear()

    # -- inbound ---------------------------------------------------------------------------------

    def message_received(self, data: bytes, source: Destination) -> None:
        try:
            self._receive(data, source)
        except Exception as exc:  # a bug for one message must not stop the transport reading the next
            self.failed += 1
            log.error("sip.message.failed", transport=source.transport, error=repr(exc), exc_info=exc)

    def _receive(self, data: bytes, source: Destination) -> None:
        try:
            message = parse_message(data, stream=source.reliable)
        except RemoteSipError as exc:
            self._reject(exc, source)
            return
        if log.is_enabled_for(logging.INFO):  # the summary is built only when it is logged
            log.info("sip.message.received", transport=source.transport,
                     source=f"{source.addr[0]}:{source.addr[1]}", **_summary(message))
        try:
            self.layer.receive_message(message, source, self._now())
        except RemoteSipError as exc:
            exc.partial = message.headers if isinstance(message, Request) else None
            exc.is_request = isinstance(message, Request)
            self._reject(exc, source)
            return
        self._pump()

    def _reject(self, exc: RemoteSipError, source: Destination) -> None:
        self.rejected += 1
        if exc.partial is None or not exc.is_request:
            log.info("sip.message.dropped", transport=source.transport,
                     source=f"{source.addr[0]}:{source.addr[1]}", reason=str(exc))
            return
        if (exc.partial.get("CSeq") or "").split()[-1:] == ["ACK"]:
            log.info("sip.message.dropped", reason=str(exc), method="ACK")  # ACK is never answered
            return
        response = response_to(exc.partial, exc.status_hint, headers=[("Warning", f'399 cti "{_warn(str(exc))}"')])
        log.info("sip.message.rejected", transport=source.transport, source=f"{source.addr[0]}:{source.addr[1]}",
                 status=exc.status_hint, reason=str(exc), call_id=exc.partial.get("Call-ID"))
        self._transmit(response, source)

    # -- outbound (the handler's API) ------------------------------------------------------------

    def send_request(self, request: Request, destination: Destination) -> ClientTransactionId:
        tid = self.layer.send_request(request, destination, self._now())
        self._pump()
        return tid

    def send_response(self, response: Response, *, stateless: bool = False) -> None:
        """Raises: LocalSipError (see :meth:`TransactionLayer.send_response`, ``stateless`` too)."""
        self.layer.send_response(response, self._now(), stateless=stateless)
        self._pump()

    def send_stateless(self, message: Request | Response, destination: Destination) -> None:
        self.layer.send_stateless(message, destination)
        self._pump()

    def answer_stateless(self, request: Request, status: int, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Answer ``request`` as a stateless UAS (RFC 3261 §8.2.7, :meth:`TransactionLayer.send_response`): a
        final non-2xx (or an OPTIONS' 200) the same request would get again, with the To tag it would get again.

        Raises: LocalSipError (see :meth:`TransactionLayer.send_response`)."""
        self.send_response(response_to(request, status, to_tag=self.layer.stateless_tag(request),
                                       headers=list(headers)), stateless=True)

    def cancel(self, transaction: ClientTransactionId) -> ClientTransactionId | None:
        tid = self.layer.cancel(transaction, self._now())
        self._pump()
        return tid

    # -- the pump ---------------------------------------------------------------------------------

    def _pump(self) -> None:
        if self._pumping:
            return  # the outer pump picks up whatever a handler caused
        self._pumping = True
        try:
            while True:
                outgoing = self.layer.messages_to_send()
                for message, destination in outgoing:
                    self._transmit(message, destination)
                event = self.layer.next_event()
                if event is None and not outgoing:
                    break
                if event is not None:
                    try:
                        self._handler.on_sip_event(event)
                    except Exception as exc:  # a handler bug must not stop the endpoint or lose later events
                        log.error("sip.event.failed", kind=type(event).__name__, error=repr(exc),
                                  exc_info=not isinstance(exc, LocalSipError | RemoteSipError))
                        if isinstance(event, RequestReceived):
                            self._answer_failed(event, exc)
        finally:
            self._pumping = False
        self._arm_timer()

    def _answer_failed(self, event: RequestReceived, exc: Exception) -> None:
        """The handler raised on a new request: answer it now if it is still unanswered (a
        RemoteSipError with its ``status_hint``, anything else 500), rather than leave the peer
        retransmitting until the layer's TU guard ends the transaction.

        A RemoteSipError says the request itself is malformed (a header the handler read does not parse): the
        same request would fail the same way, so it is answered as a stateless UAS (RFC 3261 §8.2.7), as the
        parser's own refusals are, and holds no transaction; a 500 (our failure) keeps its transaction."""
        if event.transaction is None:
            return  # an ACK: never answered
        tx = self.layer.transaction(event.transaction)
        if not isinstance(tx, ServerTransaction) or tx.state not in (TransactionState.TRYING,
                                                                     TransactionState.PROCEEDING):
            return
        if tx.last_response is not None and tx.last_response.status > 100:
            return  # the TU had sent a provisional: the call is its own
        hint = exc.status_hint if isinstance(exc, RemoteSipError) else 0
        malformed = hint >= 400
        status = hint if malformed else 500
        request = event.request
        try:
            to_tag = self.layer.stateless_tag(request) if malformed else None
            self.layer.send_response(response_to(request, status, to_tag=to_tag), self._now(), stateless=malformed)
        except (LocalSipError, RemoteSipError) as failed:
            log.info("sip.response.failed", status=status, error=str(failed))

    def _transmit(self, message: Outgoing, destination: Destination) -> None:
        transport = self._transports.get(destination.transport.upper())
        if transport is None:
            log.warning("sip.message.unroutable", transport=destination.transport, **_summary(message))
            return
        if log.is_enabled_for(logging.INFO):
            log.info("sip.message.sent", transport=destination.transport,
                     destination=f"{destination.addr[0]}:{destination.addr[1]}", **_summary(message))
        try:
            transport.send(bytes(message), destination)
        except Exception as exc:  # a transport must not raise into the caller; if one does, drop and count
            self.send_failed += 1
            log.info("sip.message.send_failed", transport=destination.transport, error=repr(exc),
                     **_summary(message))

    def _arm_timer(self) -> None:
        if self._reading_ahead:
            return  # _on_timer re-arms once it has fired what is due
        when = self.layer.get_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            loop = asyncio.get_running_loop()
            delay = when - self._now()
            self._timer = loop.call_at(loop.time() + max(0.0, delay), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        # Input first: when the loop runs late, the answer a retransmission timer waits for may
        # already sit in the socket buffer. Reading it now stops the timer instead of sending the
        # request or response again (and the peer answering that again): without this a node just
        # past its capacity multiplied its own load with retransmissions (docs/performance.md).
        self._reading_ahead = True  # the messages read here must not re-arm the timer firing now
        try:
            for transport in self._transports.values():
                transport.read_pending(READ_BEFORE_TIMERS)
        finally:
            self._reading_ahead = False
            now = self._now()
            self.layer.handle_timer(now)
            self._pump()
            self._look_again(self._after_burst(now))

    def _after_burst(self, now: float) -> float | None:
        """Give memory back once a burst of transactions has drained (see ``TRIM_PEAK``).

        Returns the loop time at which to look again when a due release had to wait for
        ``TRIM_INTERVAL`` (no timer of the layer may fire then: it can be empty), else None.
        """
        live = len(self.layer)
        if live > self._peak:
            self._peak, self._partly_released = live, False
            return None
        if self._peak < TRIM_PEAK:
            return None
        drained = live <= TRIM_DRAINED
        if not drained and (self._partly_released or live > self._peak // 8):
            return None
        if now - self._trimmed_at < TRIM_INTERVAL:
            return self._trimmed_at + TRIM_INTERVAL if drained else None
        clear_parse_caches()  # their entries from the burst would pin the burst's memory
        collect_ms = None
        if drained:
            started = time.perf_counter()
            gc.collect()  # the burst's reference cycles: full collections are rare (cti.app.tune_gc)
            collect_ms = round((time.perf_counter() - started) * 1000, 1)
        if release_memory():
            self.trims += 1
            log.info("sip.memory.released", peak=self._peak, live=live, collect_ms=collect_ms)
        self._trimmed_at = now
        if drained:
            self._peak, self._partly_released = live, False
        else:
            self._partly_released = True
        return None

    def _look_again(self, at: float | None) -> None:
        """Arm the one deferred release check (``_after_burst``'s answer)."""
        if at is None or self._trim_timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._trim_timer = loop.call_at(at, self._deferred_release)

    def _deferred_release(self) -> None:
        self._trim_timer = None
        self._look_again(self._after_burst(self._now()))


def _warn(text: str) -> str:
    return text.replace('"', "'").replace("\\", "/")[:120]
