"""SIP over TCP when the peer is already gone: sending never raises into the caller (RFC 3261 §18.3).

Found by a TCP fuzz run on uvloop: a call's reject was written to a connection the peer had reset
a moment before, uvloop raised RuntimeError ("the handler is closed") and the error escaped into the
call path. A peer that resets before the listener accepts gives a connection without a peer
address (``peername`` None on uvloop): that must not raise TypeError either.

Each test runs on asyncio's own loop and on uvloop (explicit runners, no pytest-asyncio policy).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from sip.events import Destination
from sip.transport.tcp import TcpTransport
from sip.transport.udp import UdpTransport
from tests.sip.pair import make_request

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def run(loop_name: str, coro: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        runner.run(asyncio.wait_for(coro, 10))


class Sink:
    def __init__(self) -> None:
        self.sources: list[Destination] = []
        self.arrived = asyncio.Event()

    def message_received(self, data: bytes, source: Destination) -> None:
        self.sources.append(source)
        self.arrived.set()


def reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a peer that vanishes does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_sending_on_a_closed_connection_never_raises(loop_name: str) -> None:
    """The server side of the connection is closed (handle gone) while still registered."""

    async def scenario() -> None:
        sink = Sink()
        tcp = await TcpTransport.start("127.0.0.1", 0, sink)
        peer = socket.create_connection(tcp.local_address)
        try:
            peer.sendall(bytes(make_request("OPTIONS", transport="TCP")))
            await sink.arrived.wait()
            source = sink.sources[0]
            loop = asyncio.get_running_loop()
            errors: list[BaseException] = []
            closed = asyncio.Event()

            def close_then_send() -> None:
                _server_writer(tcp, source).transport.abort()
                loop.call_soon(send_twice)

            def send_twice() -> None:
                try:
                    tcp.send(b"SIP/2.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", source)
                    loop.call_soon(send_after_handle_closed)
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                    closed.set()

            def send_after_handle_closed() -> None:
                try:
                    tcp.send(b"SIP/2.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", source)
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                closed.set()

            loop.call_soon(close_then_send)
            await closed.wait()
            await asyncio.sleep(0.05)
            assert errors == []
        finally:
            peer.close()
            await tcp.close()

    run(loop_name, scenario())


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_a_peer_that_resets_before_accept_does_not_break_the_listener(loop_name: str) -> None:
    async def scenario() -> None:
        sink = Sink()
        tcp = await TcpTransport.start("127.0.0.1", 0, sink)
        handler_errors: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: handler_errors.append(context))
        try:
            # The loop is not running while these connect and reset: they wait in the accept queue.
            for _ in range(5):
                sock = socket.create_connection(tcp.local_address)
                reset(sock)
            await asyncio.sleep(0.2)
            # The listener still serves a well-behaved peer afterwards.
            reader, writer = await asyncio.open_connection(*tcp.local_address)
            writer.write(bytes(make_request("OPTIONS", transport="TCP")))
            await sink.arrived.wait()
            writer.close()
            assert [c.get("exception") for c in handler_errors] == []
            assert tcp.connection_count <= 1
        finally:
            await tcp.close()

    run(loop_name, scenario())


def _server_writer(tcp: TcpTransport, source: Destination) -> asyncio.StreamWriter:
    assert source.connection_id is not None
    return tcp.writer_of(source.connection_id)


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_sending_on_a_closed_udp_socket_never_raises(loop_name: str) -> None:
    async def scenario() -> None:
        udp = await UdpTransport.start("127.0.0.1", 0, Sink())
        await udp.close()
        await asyncio.sleep(0.01)  # uvloop closes the handle on the next turn
        udp.send(b"OPTIONS sip:x SIP/2.0\r\n\r\n", Destination(transport="UDP", addr=("127.0.0.1", 9)))
        assert udp.send_dropped <= 1

    run(loop_name, scenario())


def test_a_connection_its_peer_resets_leaves_no_reference_cycle() -> None:
    """The stream keeps the error that ended it, and its traceback the frames that read from the stream: a cycle
    through the connection's transport that only the cyclic collector would free. The node runs with automatic
    collection off (cti.app.tune_gc), so the transport lets the error's traceback go when it drops the connection.
    On uvloop (the node's loop) nothing of the connection is left for the collector."""

    async def scenario() -> None:
        sink = Sink()
        tcp = await TcpTransport.start("127.0.0.1", 0, sink)
        host, port = tcp.local_address
        gc.collect()
        gc.disable()
        try:
            for _ in range(5):
                sock = socket.create_connection((host, port))
                sock.sendall(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1\r\n")  # half a message
                for _ in range(100):
                    await asyncio.sleep(0.005)
                    if tcp.connection_count:
                        break
                reset(sock)
                for _ in range(100):
                    await asyncio.sleep(0.005)
                    if not tcp.connection_count:
                        break
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            left = [type(o).__name__ for o in gc.garbage
                    if isinstance(o, (asyncio.StreamReader, asyncio.StreamWriter, BaseException))]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
            await tcp.close()
        assert left == []

    run("uvloop", scenario())
