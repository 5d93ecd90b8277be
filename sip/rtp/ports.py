"""Media port allocation: RTP on an even port, RTCP on the next odd one (RFC 3550 §11).

RFC 3550 §11: "For UDP and similar protocols, RTP SHOULD use an even destination port
number and the corresponding RTCP stream SHOULD use the next higher (odd) destination
port number". :class:`PortAllocator` hands out even ports from a configured range in
round-robin order (so a just-released port is not reused at once, and late packets of
the previous call do not land in the next one) and takes them back on hang-up.
Pure bookkeeping: whether the OS lets us bind is the adapter's business; it calls
:meth:`PortAllocator.allocate` again when a bind fails.
"""

from __future__ import annotations

import secrets

from sip.rtp.errors import PortsExhaustedError

__all__ = ["PortAllocator"]


class PortAllocator:
    """Even RTP ports in ``[low, high]``; each allocation also reserves ``port + 1`` for RTCP."""

    def __init__(self, low: int = 10000, high: int = 20000) -> None:
        first = low + (low % 2)
        if not 1024 <= low <= high <= 65535 or first + 1 > high:
            raise ValueError(f"bad media port range {low}-{high}: need 1024 <= low, room for one even/odd pair")
        self.low = first
        self.high = high
        self._ports = list(range(first, high, 2))  # the last pair must fit: port + 1 <= high
        self._in_use: set[int] = set()
        self._cursor = 0

    @property
    def capacity(self) -> int:
        return len(self._ports)

    @property
    def in_use(self) -> frozenset[int]:
        return frozenset(self._in_use)

    def allocate(self) -> int:
        """Reserve and return a free even RTP port (RTCP is ``port + 1``).

        Raises:
            PortsExhaustedError: every pair in the range is taken.
        """
        for _ in range(len(self._ports)):
            port = self._ports[self._cursor]
            self._cursor = (self._cursor + 1) % len(self._ports)
            if port not in self._in_use:
                self._in_use.add(port)
                return port
        raise PortsExhaustedError(f"all {len(self._ports)} media port pairs in {self.low}-{self.high} are in use")

    def jump(self) -> None:
        """Move the cursor to a random pair: after a bind failed, the ports next to it are often held by
        another process as a block (another server given the same range), so walking on pair by pair
        would fail again and again."""
        self._cursor = secrets.randbelow(len(self._ports))

    def release(self, port: int) -> None:
        """Give ``port`` back (idempotent: releasing a free port does nothing)."""
        self._in_use.discard(port)
