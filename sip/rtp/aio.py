"""The asyncio edge of an RTP stream: sockets, ``loop.time()`` and one ``call_at`` timer.

:class:`RtpEndpoint` binds an RTP socket (and an RTCP socket on ``port + 1``), feeds every
datagram to its :class:`~sip.rtp.session.RtpSession` with ``loop.time()``, sends what the
session produces, and keeps exactly one ``call_at`` handle on ``session.get_timer()``.
Session events are typed dataclasses delivered to one injected ``on_event`` callable or, without
one, to ``endpoint.events`` (an :class:`asyncio.Queue`, made only then: an endpoint with a
callable, as every call's, carries no queue).

**Relay mode.** :meth:`RtpEndpoint.divert` hands every datagram of the RTP socket, raw and
with its source address, to another receiver (a relay: ``sip.media.EndpointRelay``) instead
of the session, until ``divert(None)``; :meth:`RtpEndpoint.sendto` sends on the RTP socket.
The session keeps its RTCP socket, its RTCP reports and its timer meanwhile.

**SRTP.** After :meth:`RtpEndpoint.secure` (keys from SDES, RFC 4568) every datagram of both
sockets is unprotected (:class:`~sip.rtp.srtp.SrtpTransform`) before the session or the relay sees
it, and every datagram sent is protected; a packet that fails authentication is dropped and
counted (``srtp.refused``). Without keys nothing on the path changes: the relay gets the loop's
own ``sendto`` and datagrams straight from the loop.

Ports come from a :class:`~sip.rtp.ports.PortAllocator`; a port the OS refuses is skipped
and the next one tried; the pair goes back to the allocator on :meth:`RtpEndpoint.close`.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any

import structlog

from sip.rtp.errors import PortsExhaustedError
from sip.rtp.packet import is_rtcp
from sip.rtp.ports import PortAllocator
from sip.rtp.session import Addr, RtpEvent, RtpSession, SessionConfig
from sip.rtp.srtp import SrtpError, SrtpTransform
from sip.sdes import SrtpKeys

__all__ = ["DatagramReceiver", "RtpEndpoint"]

DatagramReceiver = Callable[[bytes, Any], None]
"""Takes one raw datagram and its source address (as the loop gives it: ``(host, port, ...)``)."""

log = structlog.get_logger(__name__)
_BIND_ATTEMPTS = 16


def _bound_socket(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``host`` (a numeric IPv4 or IPv6 address) and ``port``.

    Raises:
        OSError: the address is taken or not local (the socket is closed).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: RtpEndpoint) -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.endpoint._datagram_received(data, (str(addr[0]), int(addr[1])))

    def divert(self, receiver: DatagramReceiver | None) -> None:
        """Relay mode: the loop calls ``receiver`` itself for each datagram (an instance attribute
        shadowing the method above: no extra Python frame per packet); None restores the method."""
        if receiver is None:
            vars(self).pop("datagram_received", None)
        else:
            vars(self)["datagram_received"] = receiver

    @property
    def diverted(self) -> bool:
        return "datagram_received" in vars(self)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that is not listening (yet): not fatal for RTP.
        log.debug("rtp.socket.error_received", error=str(exc))


def _refused(srtp: SrtpTransform, port: int, data: bytes, exc: SrtpError) -> None:
    """Log a packet SRTP refused: the first of an endpoint at info (with its first two bytes and size,
    which tell e.g. a phone's plain RTCP keep-alive from an attack), the rest at debug."""
    emit = log.info if srtp.refused == 1 else log.debug
    emit("rtp.srtp.refused", port=port, error=str(exc), head=data[:2].hex(), size=len(data))


def _unprotecting(srtp: SrtpTransform, receiver: DatagramReceiver, port: int) -> DatagramReceiver:
    """``receiver`` behind SRTP: each datagram unprotected first, refused ones dropped (counted)."""
    unprotect = srtp.unprotect

    def receive(data: bytes, addr: Any) -> None:
        try:
            plain = unprotect(data)
        except SrtpError as exc:
            _refused(srtp, port, data, exc)
            return
        receiver(plain, addr)

    return receive


def _protecting(srtp: SrtpTransform, sendto: Callable[[bytes | bytearray, Any], None]
                ) -> Callable[[bytes | bytearray, Any], None]:
    protect = srtp.protect

    def send(data: bytes | bytearray, addr: Any) -> None:
        try:
            sendto(protect(data), addr)
        except SrtpError as exc:  # libsrtp refused (e.g. a packet too large): dropped, never sent in clear
            log.debug("rtp.srtp.protect_failed", error=str(exc))

    return send


class RtpEndpoint:
    """One RTP/RTCP socket pair bound to a local address, driving one :class:`RtpSession`."""

    def __init__(self, session: RtpSession, *, on_event: Callable[[RtpEvent], None] | None = None) -> None:
        self.session = session
        self._events: asyncio.Queue[RtpEvent] | None = None if on_event is not None else asyncio.Queue()
        self._on_event = on_event
        self._loop = asyncio.get_running_loop()
        self._rtp: asyncio.DatagramTransport | None = None
        self._rtp_protocol: _Protocol | None = None
        self._on_divert_close: Callable[[], None] | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._allocator: PortAllocator | None = None
        self.srtp: SrtpTransform | None = None
        self.local_port = 0
        self.closed = False

    @property
    def events(self) -> asyncio.Queue[RtpEvent]:
        """The session's events when no ``on_event`` was given.

        Raises:
            RuntimeError: the endpoint delivers to its ``on_event`` callable.
        """
        if self._events is None:
            raise RuntimeError("this endpoint delivers its events to on_event")
        return self._events

    @classmethod
    async def open(
        cls,
        config: SessionConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allocator: PortAllocator | None = None,
        remote: Addr | None = None,
        rtcp: bool = True,
        on_event: Callable[[RtpEvent], None] | None = None,
    ) -> RtpEndpoint:
        """Bind and start. With ``allocator``, take an even port from it (RTCP on port + 1);
        else bind ``port`` (0 = any; then RTCP is off unless ``rtcp`` and port > 0).

        Raises:
            PortsExhaustedError: the allocator has no pair the OS lets us bind.
            OSError: binding ``port`` failed (no allocator).
        """
        loop = asyncio.get_running_loop()
        offset = time.time() - loop.time()
        session = RtpSession(replace(config, wallclock_offset=offset), now=loop.time(), remote=remote)
        self = cls(session, on_event=on_event)
        if allocator is None:
            await self._bind(host, port, rtcp and port > 0)
        else:
            self._allocator = allocator
            for _ in range(_BIND_ATTEMPTS):
                candidate = allocator.allocate()
                try:
                    await self._bind(host, candidate, rtcp)
                    break
                except OSError as exc:
                    allocator.release(candidate)
                    allocator.jump()
                    log.info("rtp.port.skipped", port=candidate, error=str(exc))
            else:
                raise PortsExhaustedError(f"no bindable media port after {_BIND_ATTEMPTS} attempts")
        log.info("rtp.endpoint.opened", host=host, port=self.local_port, remote=remote)
        self._pump()
        return self

    async def _bind(self, host: str, port: int, rtcp: bool) -> None:
        # The sockets are bound here and handed to the loop: create_datagram_endpoint with a
        # local_addr would resolve the address again for every socket (half the cost of a call's
        # media set-up under load). A numeric host is all a media address can be.
        rtp_sock = _bound_socket(host, port)
        try:
            self.local_port = int(rtp_sock.getsockname()[1])
            rtcp_sock = _bound_socket(host, self.local_port + 1) if rtcp else None
        except OSError:
            rtp_sock.close()
            raise
        self._rtp, self._rtp_protocol = await self._loop.create_datagram_endpoint(lambda: _Protocol(self),
                                                                                  sock=rtp_sock)
        if rtcp_sock is not None:
            self._rtcp, _ = await self._loop.create_datagram_endpoint(lambda: _Protocol(self), sock=rtcp_sock)

    @property
    def local_address(self) -> Addr:
        assert self._rtp is not None, "endpoint not bound"
        host, port = self._rtp.get_extra_info("sockname")[:2]
        return (str(host), int(port))

    def _datagram_received(self, data: bytes, addr: Addr) -> None:
        if self.closed:
            return
        if self.srtp is not None:
            try:
                data = self.srtp.unprotect(data)
            except SrtpError as exc:
                _refused(self.srtp, self.local_port, data, exc)
                return
        self.session.receive_datagram(data, addr, self._loop.time())
        self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        if not self.closed:
            self.session.handle_timer(self._loop.time())
            self._pump()

    def _pump(self) -> None:
        """Send what is due, deliver events, re-arm the single timer."""
        for data, addr in self.session.datagrams_to_send(self._loop.time()):
            transport = self._rtcp if is_rtcp(data) and self._rtcp is not None else self._rtp
            if transport is not None and not transport.is_closing():
                if self.srtp is not None:
                    try:
                        data = self.srtp.protect(data)
                    except SrtpError as exc:  # dropped, never sent in clear
                        log.debug("rtp.srtp.protect_failed", port=self.local_port, error=str(exc))
                        continue
                transport.sendto(data, addr)
        while (event := self.session.next_event()) is not None:
            if self._on_event is not None:
                self._on_event(event)
            elif self._events is not None:
                self._events.put_nowait(event)  # (a closed endpoint with a callable delivers nothing)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.session.get_timer()
        if when is not None and not self.closed:
            self._timer = self._loop.call_at(when, self._on_timer)

    def divert(self, receiver: DatagramReceiver | None, *, on_close: Callable[[], None] | None = None) -> None:
        """Hand the RTP socket's datagrams to ``receiver`` (relay mode), or back to the session (None).

        ``on_close`` is called when this endpoint closes while diverted (the relay stops first).
        """
        if self._rtp_protocol is not None and not self.closed:
            srtp = self.srtp
            if receiver is not None and srtp is not None:
                receiver = _unprotecting(srtp, receiver, self.local_port)
            self._rtp_protocol.divert(receiver)
            self._on_divert_close = on_close if receiver is not None else None

    @property
    def diverted(self) -> bool:
        """Whether the RTP socket's datagrams go to a relay."""
        return self._rtp_protocol is not None and self._rtp_protocol.diverted

    def secure(self, keys: SrtpKeys | None) -> None:
        """Use SRTP with ``keys`` from now on (new keys on a secure leg: rekeyed in place).

        A leg's security is settled by its first offer/answer: ``None`` on a secure leg, or keys on
        a plain one that is relaying, is refused (the caller answers such a re-INVITE 488).

        Raises:
            SrtpError: a plain/secure change while relaying, or keys libsrtp refuses.
        """
        if keys is None:
            if self.srtp is not None:
                raise SrtpError("an SRTP leg cannot fall back to plain RTP")
            return
        if self.srtp is not None:
            self.srtp.rekey(keys)
            return
        if self.diverted:
            raise SrtpError("a relaying plain RTP leg cannot switch to SRTP")
        self.srtp = SrtpTransform(keys)
        log.info("rtp.srtp.started", port=self.local_port)

    def sendto(self, data: bytes | bytearray, addr: Any) -> None:
        """Send one raw datagram on the RTP socket (dropped once closed; protected on an SRTP leg)."""
        transport = self._rtp
        if transport is not None:
            if self.srtp is None:
                transport.sendto(data, addr)
            else:
                _protecting(self.srtp, transport.sendto)(data, addr)

    def raw_sender(self) -> Callable[[bytes | bytearray, Any], None]:
        """The RTP transport's own ``sendto`` (a relay's hot path; valid until :meth:`close`); on an
        SRTP leg, one that protects each packet first.

        Raises:
            RuntimeError: the endpoint is closed.
        """
        if self._rtp is None:
            raise RuntimeError("RTP endpoint closed")
        if self.srtp is not None:
            return _protecting(self.srtp, self._rtp.sendto)
        return self._rtp.sendto

    def send_pcm(self, pcm: bytes) -> None:
        """Encode and send one frame of 16-bit linear PCM now.

        Raises:
            CodecError: ``pcm`` has an odd length.
        """
        self.session.send_pcm(pcm, self._loop.time())
        self._pump()

    def send_audio(self, payload: bytes) -> None:
        """Send one already-encoded frame now."""
        self.session.send_audio(payload, self._loop.time())
        self._pump()

    def send_dtmf(self, digit: str, *, duration: float = 0.1) -> None:
        """Start sending an RFC 4733 event; the packets are paced by the timer.

        Raises:
            DtmfError: telephone-event not negotiated, or not a digit.
        """
        self.session.send_dtmf(digit, self._loop.time(), duration=duration)
        self._pump()

    def close(self) -> None:
        """Send RTCP BYE, close the sockets, cancel the timer, give the ports back. Idempotent."""
        if self.closed:
            return
        if self._on_divert_close is not None:
            stop, self._on_divert_close = self._on_divert_close, None
            stop()  # the relay gives the stream back before the sockets go
        self.session.bye(self._loop.time())
        self._pump()
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for transport in (self._rtp, self._rtcp):
            if transport is not None:
                transport.close()
        if self._rtp_protocol is not None:
            self._rtp_protocol.divert(None)
        self._rtp = self._rtcp = None  # each transport's protocol points back here: no cycle left
        self._rtp_protocol = None
        self._on_event = None
        if self._allocator is not None:
            self._allocator.release(self.local_port)
        if self.srtp is None:
            log.info("rtp.endpoint.closed", port=self.local_port)
        else:
            log.info("rtp.endpoint.closed", port=self.local_port, srtp_unprotected=self.srtp.unprotected,
                     srtp_refused=self.srtp.refused)

    async def __aenter__(self) -> RtpEndpoint:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
