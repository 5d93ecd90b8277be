"""asyncio wiring of the relay: two UDP legs joined by a :class:`sip.media.relay.Relay`.

:class:`UdpRelay` owns two datagram endpoints (``loop.create_datagram_endpoint``) or
adopts transports created elsewhere. Per datagram it calls ``Relay.forward`` and
``sendto`` on the other leg's transport: nothing else runs on the hot path (``now`` is
``loop.time()``; events are moved to :attr:`UdpRelay.events` only when there are some).

Remote addresses come from each leg's SDP (``c=``/``m=`` lines); with ``latch=True`` a
leg's remote address is learned from, and follows, the source of the packets it sends
(symmetric RTP, for peers behind NAT), reported as :class:`PeerLatched`.

Plugging into ``sip/rtp/aio.py`` later: the relay needs from an RTP endpoint only
(1) the raw datagrams it receives, handed to :meth:`UdpRelay.datagram_received`, and
(2) something with ``sendto(data, addr)`` (:class:`DatagramSender`) to send on. An
endpoint that switches from "terminate media" (player, IVR) to "relay" mode forwards its
raw datagrams here instead of to its session core, and back when the relay is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import structlog

from sip.media.events import LegSide, MediaEvent, PeerLatched
from sip.media.relay import Relay

log = structlog.get_logger(__name__)

Addr = tuple[str, int]


class DatagramSender(Protocol):
    """The part of ``asyncio.DatagramTransport`` the relay uses."""

    def sendto(self, data: bytes, addr: Any = None, /) -> None:
        """Send one datagram."""
        ...


class _LegProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpRelay, side: LegSide) -> None:
        self._owner = owner
        self._side = side

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self._owner.datagram_received(self._side, data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("media.relay.send_failed", side=self._side.value, error=str(exc))


class UdpRelay:
    """A :class:`Relay` between two UDP legs. Create with :meth:`open` or :meth:`adopt`."""

    def __init__(self, relay: Relay, *, latch: bool = True) -> None:
        self.relay = relay
        self._latch = latch
        self._loop = asyncio.get_running_loop()
        self._transports: dict[LegSide, DatagramSender] = {}
        self._owned: list[asyncio.DatagramTransport] = []
        self._remote: dict[LegSide, Addr | None] = {LegSide.A: None, LegSide.B: None}
        self.events: asyncio.Queue[MediaEvent] = asyncio.Queue()

    @classmethod
    async def open(
        cls,
        relay: Relay,
        *,
        local_a: Addr,
        local_b: Addr,
        remote_a: Addr | None = None,
        remote_b: Addr | None = None,
        latch: bool = True,
    ) -> UdpRelay:
        """Bind one UDP socket per leg (port 0 picks a free port) and start relaying.

        Raises:
            OSError: a socket cannot be bound.
        """
        self = cls(relay, latch=latch)
        try:
            for side, local, remote in ((LegSide.A, local_a, remote_a), (LegSide.B, local_b, remote_b)):
                transport, _protocol = await self._loop.create_datagram_endpoint(
                    lambda side=side: _LegProtocol(self, side),  # type: ignore[misc]
                    local_addr=local,
                )
                self._owned.append(transport)
                self._transports[side] = transport
                self._remote[side] = remote
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def adopt(
        cls,
        relay: Relay,
        *,
        sender_a: DatagramSender,
        sender_b: DatagramSender,
        remote_a: Addr | None = None,
        remote_b: Addr | None = None,
        latch: bool = True,
    ) -> UdpRelay:
        """Relay over transports owned elsewhere; their receive path must call :meth:`datagram_received`."""
        self = cls(relay, latch=latch)
        self._transports = {LegSide.A: sender_a, LegSide.B: sender_b}
        self._remote = {LegSide.A: remote_a, LegSide.B: remote_b}
        return self

    def local_addr(self, side: LegSide) -> Addr:
        """The bound address of an owned leg (for the SDP we send on that leg).

        Raises:
            KeyError: the leg's transport was adopted, not opened here.
        """
        index = 0 if side is LegSide.A else 1
        if index >= len(self._owned):
            raise KeyError(side)
        addr: Addr = self._owned[index].get_extra_info("sockname")[:2]
        return addr

    def remote_addr(self, side: LegSide) -> Addr | None:
        """Where packets for leg ``side`` are sent (``None`` until known)."""
        return self._remote[side]

    def datagram_received(self, side: LegSide, data: bytes, addr: Addr) -> None:
        """Hot path: one datagram received on leg ``side`` from ``addr``."""
        now = self._loop.time()
        if self._latch and self._remote[side] != addr:
            self._remote[side] = addr
            self.events.put_nowait(PeerLatched(at=now, side=side, addr=addr))
        out = self.relay.forward(side, data, now)
        if out is not None:
            other = LegSide.B if side is LegSide.A else LegSide.A
            dest = self._remote[other]
            if dest is not None:
                self._transports[other].sendto(out, dest)
        if self.relay.has_events:
            while (event := self.relay.next_event()) is not None:
                self.events.put_nowait(event)

    def close(self) -> None:
        """Close the transports this relay opened (adopted ones are left to their owner)."""
        for transport in self._owned:
            transport.close()
        self._owned.clear()
