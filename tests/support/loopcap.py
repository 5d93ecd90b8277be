"""Capture the UDP datagrams on the loopback interface (a raw ``AF_PACKET`` socket, as root), for tests
that must see what is on the wire, e.g. that an SRTP leg carries no plaintext RTP.

:class:`LoopbackCapture` runs a reader thread between ``start()`` and ``stop()`` and keeps every IPv4 UDP
datagram once (the kernel shows a loopback packet twice, outgoing and incoming: the outgoing copy is
skipped) as ``(src_port, dst_port, payload)``. :func:`capture_ready` says whether this process may open
such a socket (CAP_NET_RAW).
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
ETH_HEADER = 14


def capture_ready() -> bool:
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as probe:
            probe.bind(("lo", 0))
    except (OSError, AttributeError):
        return False
    return True


@dataclass
class LoopbackCapture:
    """UDP datagrams seen on ``lo`` while running (see the module docstring)."""

    datagrams: list[tuple[int, int, bytes]] = field(default_factory=list)
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> LoopbackCapture:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind(("lo", 0))
        sock.settimeout(0.2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self._sock = sock
        self._thread = threading.Thread(target=self._read, name="loopback-capture", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                frame, addr = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if addr[2] == PACKET_OUTGOING or len(frame) < ETH_HEADER + 28:
                continue
            ip = frame[ETH_HEADER:]
            if ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP:
                continue
            header = (ip[0] & 0x0F) * 4
            src, dst, length = struct.unpack_from("!HHH", ip, header)
            self.datagrams.append((src, dst, bytes(ip[header + 8: header + length])))

    def stop(self) -> list[tuple[int, int, bytes]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._sock is not None:
            self._sock.close()
        return self.datagrams
