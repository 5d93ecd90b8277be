"""What the SIP endpoint needs from a transport, and what a transport hands back.

A transport owns exactly one listening socket (UDP) or one listening server (TCP) and moves
bytes; it knows nothing of SIP beyond framing. Received bytes go to a :class:`DatagramSink`
together with the :class:`~sip.events.Destination` a response should go back to.
"""

from __future__ import annotations

from typing import Protocol

from sip.events import Address, Destination


class DatagramSink(Protocol):
    """Receives whole SIP messages (still as bytes) from any transport."""

    def message_received(self, data: bytes, source: Destination) -> None: ...


class Transport(Protocol):
    """A started transport: send bytes to a destination, report where it listens, close."""

    name: str

    @property
    def local_address(self) -> Address: ...

    def send(self, data: bytes, destination: Destination) -> None: ...

    def read_pending(self, limit: int) -> int:
        """Hand up to ``limit`` messages already waiting in the kernel to the sink now, before the
        loop would; return how many. A stream transport returns 0 (its reader is always current)."""
        ...

    async def close(self) -> None: ...
