"""SIP over UDP (RFC 3261 §18): one socket, one datagram per message."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import structlog

from sip.events import Address, Destination
from sip.transport.base import DatagramSink

log = structlog.get_logger(__name__)

MAX_DATAGRAM = 65535
# Receive buffer asked of the kernel for the SIP socket. Linux's default (208 KiB, about 200
# INVITEs) overflows in a burst or a pause of the loop, and each lost INVITE costs the caller a
# 500 ms retransmission. The kernel caps the request at net.core.rmem_max (docs/performance.md).
RECEIVE_BUFFER = 4 * 1024 * 1024


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, sink: DatagramSink) -> None:
        self._sink = sink

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        host, port = str(addr[0]), int(addr[1])
        self._sink.message_received(data, Destination(transport="UDP", addr=(host, port)))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the transaction layer's timers handle the loss.
        log.debug("sip.transport.error_received", transport="UDP", error=str(exc))


class UdpTransport:
    """A bound UDP socket for SIP; :meth:`send` never blocks (the kernel queues or drops)."""

    name = "UDP"

    def __init__(self, transport: asyncio.DatagramTransport, sock: socket.socket | None = None,
                 sink: DatagramSink | None = None) -> None:
        self._transport = transport
        self._sock = sock
        self._sink = sink
        self.send_dropped = 0  # datagrams that could not be handed to the kernel
        sockname = transport.get_extra_info("sockname")
        self._local: Address = (str(sockname[0]), int(sockname[1]))

    @classmethod
    async def start(cls, host: str, port: int, sink: DatagramSink) -> UdpTransport:
        """Bind and start receiving. Raises: OSError when the address cannot be bound."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            with contextlib.suppress(OSError):  # a smaller buffer still works
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"cannot bind UDP {host}:{port}: {exc.strerror}") from None
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(sink), sock=sock)
        self = cls(transport, sock, sink)
        log.info("sip.transport.started", transport="UDP", address=f"{self._local[0]}:{self._local[1]}",
                 receive_buffer=sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        return self

    @property
    def local_address(self) -> Address:
        return self._local

    def send(self, data: bytes, destination: Destination) -> None:
        if len(data) > MAX_DATAGRAM:
            log.warning("sip.transport.send_dropped", transport="UDP", size=len(data), reason="too large")
            return
        try:
            self._transport.sendto(data, destination.addr)
        except Exception as exc:  # closed socket (asyncio: AttributeError, uvloop: RuntimeError), bad address
            self.send_dropped += 1
            log.debug("sip.transport.send_dropped", transport="UDP", reason=str(exc))

    def read_pending(self, limit: int) -> int:
        """Read what already waits in the socket and hand it to the sink (see the endpoint's timer:
        an answer still in the buffer must stop a retransmission before the timer sends one)."""
        if self._sock is None or self._sink is None or self._transport.is_closing():
            return 0
        count = 0
        while count < limit:
            try:
                data, addr = self._sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # an ICMP error queued on the socket: as error_received
                log.debug("sip.transport.error_received", transport="UDP", error=str(exc))
                count += 1  # counted, so that a socket in error cannot hold this loop
                continue
            count += 1
            try:
                self._sink.message_received(data, Destination(transport="UDP", addr=(str(addr[0]), int(addr[1]))))
            except Exception as exc:  # one message's bug must not stop the read or the timers after it
                log.error("sip.message.failed", transport="UDP", error=repr(exc), exc_info=exc)
        return count

    async def close(self) -> None:
        self._transport.close()
