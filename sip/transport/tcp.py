"""SIP over TCP (RFC 3261 §18.3): one listening server, framed by Content-Length.

Memory per connection is bounded: reads are at most ``READ_CHUNK`` bytes, the framer refuses a
header section or body past its limits (the connection is then answered 513 when possible and
closed), and a peer that does not read its responses (write buffer past ``MAX_WRITE_BUFFER``)
is disconnected. CRLF CRLF keep-alives are answered with CRLF (RFC 5626 §3.5.1). Idle
connections are closed after ``idle_timeout`` seconds. TLS reuses this class with an SSL
context (``ssl=`` on start), named "TLS".

Nothing a peer does raises into the caller of :meth:`TcpTransport.send`: a write to a connection
that is closed or closing (the peer reset it, uvloop's "the handler is closed") is dropped,
counted in ``send_dropped`` and logged at debug; the transaction layer's timers deal with the loss.
A peer that resets before the listener accepts (no peer address) is closed and counted.

Caps (constructor arguments, defaults below; docs/sip-transactions.md): at most
``max_connections`` connections in all and ``max_connections_per_host`` from one IP address
(a connection past either cap is closed at once, counted in ``connections_refused``), and at most
``max_pending_connects`` outbound connection attempts at once (a send past it is dropped, counted
in ``send_dropped``). With the framer's limits this bounds the memory TCP can hold.
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
MAX_CONNECTIONS = 1024  # connections in all (accepted and opened)
MAX_CONNECTIONS_PER_HOST = 128  # connections from one IP address
MAX_PENDING_CONNECTS = 64  # outbound connection attempts under way at once


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
                 ssl: ssl_module.SSLContext | None = None, max_connections: int = MAX_CONNECTIONS,
                 max_connections_per_host: int = MAX_CONNECTIONS_PER_HOST,
                 max_pending_connects: int = MAX_PENDING_CONNECTS) -> None:
        self.name = name
        self.max_connections = max_connections
        self.max_connections_per_host = max_connections_per_host
        self.max_pending_connects = max_pending_connects
        self.send_dropped = 0  # writes dropped: connection closed or closing, or too many connects under way
        self.connect_failures = 0  # outbound connections that could not be opened
        self.connections_refused = 0  # accepted then closed at once: a cap, or the peer gone before accept
        self._per_host: dict[str, int] = {}
        self._sink = sink
        self._idle_timeout = idle_timeout
        self._ssl = ssl
        # A connection the node opens (TLS: to a peer not connected already) is a client one: the
        # listener's server context cannot make it. The default client context (made on first use, in
        # a thread: it reads the system's CA store) verifies the peer.
        self._client_ssl: ssl_module.SSLContext | None = None
        self._server: asyncio.Server | None = None
        self._ids = itertools.count(1)
        self._by_id: dict[int, _Connection] = {}
        self._by_peer: dict[Address, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._local: Address = ("0.0.0.0", 0)

    @classmethod
    async def start(cls, host: str, port: int, sink: DatagramSink, *, idle_timeout: float = 600.0,
                    ssl: ssl_module.SSLContext | None = None, max_connections: int = MAX_CONNECTIONS,
                    max_connections_per_host: int = MAX_CONNECTIONS_PER_HOST) -> TcpTransport:
        """Listen. Raises: OSError when the address cannot be bound."""
        self = cls(sink, idle_timeout=idle_timeout, name="TLS" if ssl else "TCP", ssl=ssl,
                   max_connections=max_connections, max_connections_per_host=max_connections_per_host)
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

    @property
    def connection_ids(self) -> list[int]:
        return list(self._by_id)

    def writer_of(self, connection_id: int) -> asyncio.StreamWriter:
        """The stream writer of a live connection (for tests and diagnostics).

        Raises:
            KeyError: no such connection.
        """
        return self._by_id[connection_id].writer

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not isinstance(peer, tuple) or len(peer) < 2:
            # The peer reset the connection before it was accepted (uvloop gives no peername then).
            self.connections_refused += 1
            log.debug("sip.connection.refused", transport=self.name, reason="peer gone before accept")
            writer.close()
            return
        host = str(peer[0])
        if len(self._by_id) >= self.max_connections or self._per_host.get(host, 0) >= self.max_connections_per_host:
            self.connections_refused += 1
            log.info("sip.connection.refused", transport=self.name, peer=f"{host}:{peer[1]}", reason="cap",
                     connections=len(self._by_id), from_host=self._per_host.get(host, 0))
            writer.transport.abort()
            return
        await self._serve(self._register(reader, writer, (host, int(peer[1]))))

    def _register(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Address) -> _Connection:
        conn = _Connection(next(self._ids), peer, reader, writer)
        self._by_id[conn.id] = conn
        self._by_peer[peer] = conn.id
        self._per_host[peer[0]] = self._per_host.get(peer[0], 0) + 1
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
                        self._write(conn, b"\r\n")
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
        except Exception as exc:  # a bug handling one message ends this connection, never the listener
            log.error("sip.connection.failed", transport=self.name, connection=conn.id, error=repr(exc),
                      exc_info=exc)
        finally:
            self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        if self._by_id.pop(conn.id, None) is not None:
            left = self._per_host.get(conn.peer[0], 1) - 1
            if left > 0:
                self._per_host[conn.peer[0]] = left
            else:
                self._per_host.pop(conn.peer[0], None)
        if self._by_peer.get(conn.peer) == conn.id:
            del self._by_peer[conn.peer]
        conn.writer.close()
        # The stream keeps the error that ended it, whose traceback holds the frames that read from the stream
        # (a reference cycle through the transport): let it go now, not at the next cyclic collection.
        error = conn.reader.exception()
        if error is not None:
            error.__traceback__ = None
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
        if len(self._tasks) >= self.max_pending_connects:
            self.send_dropped += 1
            log.info("sip.transport.send_dropped", transport=self.name, reason="too many connects under way",
                     peer=f"{destination.addr[0]}:{destination.addr[1]}")
            return
        task = asyncio.get_running_loop().create_task(
            self._connect_and_send(destination.addr, data), name=f"sip-{self.name.lower()}-connect"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _write(self, conn: _Connection, data: bytes) -> None:
        """Write, or drop and count: never raises (the peer may have gone at any moment)."""
        transport = conn.writer.transport
        try:
            if transport.is_closing():
                self._dropped(conn, "connection closed")
                return
            if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
                log.warning("sip.connection.overrun", transport=self.name, connection=conn.id)
                transport.abort()
                self._dropped(conn, "peer does not read")
                return
            conn.writer.write(data)
        except (RuntimeError, OSError) as exc:  # uvloop: "the handler is closed"; a socket error on write
            self._dropped(conn, str(exc))

    def _dropped(self, conn: _Connection, reason: str) -> None:
        self.send_dropped += 1
        log.debug("sip.transport.send_dropped", transport=self.name, connection=conn.id, reason=reason)

    async def _connect_and_send(self, addr: Address, data: bytes) -> None:
        if self._ssl is not None and self._client_ssl is None:
            self._client_ssl = await asyncio.to_thread(ssl_module.create_default_context)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                reader, writer = await asyncio.open_connection(addr[0], addr[1], ssl=self._client_ssl,
                                                               limit=READ_CHUNK)
        except (OSError, TimeoutError) as exc:
            self.connect_failures += 1
            log.info("sip.connection.failed", transport=self.name, peer=f"{addr[0]}:{addr[1]}", error=str(exc))
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
