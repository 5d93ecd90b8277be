"""SIP over TCP (RFC 3261 §18.3): one listening server, framed by Content-Length.

Memory per connection is bounded: reads are at most ``READ_CHUNK`` bytes, the framer refuses a
header section or body past its limits (the connection is then answered 513 when possible and
closed), and a peer that does not read its responses (write buffer past ``MAX_WRITE_BUFFER``)
is disconnected. CRLF CRLF keep-alives are answered with CRLF (RFC 5626 §3.5.1). Idle
connections are closed after ``idle_timeout`` seconds. TLS reuses this class with an SSL
context (``ssl=`` on start), named "TLS".
"""

from __future__ import annotations

import asyncio
import itertools
import ssl as ssl_module

import structlog

from sip.errors import MessageTooLargeError, RemoteSipError
from sip.events import Address, Destination
from sip.message import KeepAlivePing, StreamFramer
from sip.transport.base import DatagramSink

log = structlog.get_logger(__name__)

READ_CHUNK = 16 * 1024
MAX_WRITE_BUFFER = 1024 * 1024
CONNECT_TIMEOUT = 5.0


class _Connection:
    __slots__ = ("id", "peer", "reader", "writer", "framer")

    def __init__(self, ident: int, peer: Address, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.id = ident
        self.peer = peer
        self.reader = reader
        self.writer = writer
        self.framer = StreamFramer()


class TcpTransport:
    """Accepts SIP connections and keeps a registry of them for responses and outbound requests."""

    def __init__(self, sink: DatagramSink, *, idle_timeout: float = 600.0, name: str = "TCP",
                 ssl: ssl_module.SSLContext | None = None) -> None:
        self.name = name
        self._sink = sink
        self._idle_timeout = idle_timeout
        self._ssl = ssl
        self._server: asyncio.Server | None = None
        self._ids = itertools.count(1)
        self._by_id: dict[int, _Connection] = {}
        self._by_peer: dict[Address, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._local: Address = ("0.0.0.0", 0)

    @classmethod
    async def start(cls, host: str, port: int, sink: DatagramSink, *, idle_timeout: float = 600.0,
                    ssl: ssl_module.SSLContext | None = None) -> TcpTransport:
        """Listen. Raises: OSError when the address cannot be bound."""
        self = cls(sink, idle_timeout=idle_timeout, name="TLS" if ssl else "TCP", ssl=ssl)
        self._server = await asyncio.start_server(self._accepted, host, port, ssl=ssl, limit=READ_CHUNK)
        sockname = self._server.sockets[0].getsockname()
        self._local = (str(sockname[0]), int(sockname[1]))
        log.info("sip.transport.started", transport=self.name, address=f"{self._local[0]}:{self._local[1]}")
        return self

    @property
    def local_address(self) -> Address:
        return self._local

    @property
    def connection_count(self) -> int:
        return len(self._by_id)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        await self._serve(self._register(reader, writer, (str(peer[0]), int(peer[1]))))

    def _register(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Address) -> _Connection:
        conn = _Connection(next(self._ids), peer, reader, writer)
        self._by_id[conn.id] = conn
        self._by_peer[peer] = conn.id
        log.debug("sip.connection.opened", transport=self.name, peer=f"{peer[0]}:{peer[1]}", connection=conn.id)
        return conn

    async def _serve(self, conn: _Connection) -> None:
        source = Destination(transport=self.name, addr=conn.peer, connection_id=conn.id)
        try:
            while True:
                async with asyncio.timeout(self._idle_timeout):
                    data = await conn.reader.read(READ_CHUNK)
                if not data:
                    break
                conn.framer.feed(data)
                while (frame := conn.framer.next_frame()) is not None:
                    if isinstance(frame, KeepAlivePing):
                        conn.writer.write(b"\r\n")
                    else:
                        self._sink.message_received(frame, source)
        except TimeoutError:
            log.info("sip.connection.idle_closed", transport=self.name, connection=conn.id)
        except MessageTooLargeError as exc:
            log.warning("sip.message.rejected", transport=self.name, connection=conn.id, reason=str(exc), status=513)
        except RemoteSipError as exc:
            log.warning("sip.message.rejected", transport=self.name, connection=conn.id, reason=str(exc), status=400)
        except (ConnectionError, OSError) as exc:
            log.info("sip.connection.failed", transport=self.name, connection=conn.id, error=str(exc))
        finally:
            self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        self._by_id.pop(conn.id, None)
        if self._by_peer.get(conn.peer) == conn.id:
            del self._by_peer[conn.peer]
        conn.writer.close()
        log.debug("sip.connection.closed", transport=self.name, connection=conn.id)

    def send(self, data: bytes, destination: Destination) -> None:
        """Send on the given connection, else on one to the address, else open one (in a task)."""
        ident = destination.connection_id
        conn = self._by_id.get(ident) if ident is not None else None
        if conn is None:
            peer_id = self._by_peer.get(destination.addr)
            conn = self._by_id.get(peer_id) if peer_id is not None else None
        if conn is not None:
            self._write(conn, data)
            return
        task = asyncio.get_running_loop().create_task(
            self._connect_and_send(destination.addr, data), name=f"sip-{self.name.lower()}-connect"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _write(self, conn: _Connection, data: bytes) -> None:
        transport = conn.writer.transport
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("sip.connection.overrun", transport=self.name, connection=conn.id)
            transport.abort()
            return
        conn.writer.write(data)

    async def _connect_and_send(self, addr: Address, data: bytes) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                reader, writer = await asyncio.open_connection(addr[0], addr[1], ssl=self._ssl, limit=READ_CHUNK)
        except (OSError, TimeoutError) as exc:
            log.warning("sip.connection.failed", transport=self.name, peer=f"{addr[0]}:{addr[1]}", error=str(exc))
            return
        conn = self._register(reader, writer, addr)
        self._write(conn, data)
        await self._serve(conn)

    def read_pending(self, limit: int) -> int:
        return 0  # each connection's reader hands frames up as they arrive

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._by_id.values()):
            conn.writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
