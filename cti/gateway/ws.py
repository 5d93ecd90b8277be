"""The asyncio side of the WebSocket gateway: one :class:`Session` per connection, driven by three named tasks.

Per connection, in one :class:`asyncio.TaskGroup`: ``reader`` (client frames → :meth:`Session.receive`), ``pump``
(bus subscription → :meth:`Session.deliver`), ``writer`` (the bounded send queue → the socket), and ``expiry``
(closes the connection when the token expires). Slow consumers: the bus subscription is bounded and drops the
oldest events (the bus does it); the send queue is bounded too, and a client whose send queue stays full for
``slow_consumer_timeout_s`` is disconnected with close code 4008. aiohttp pings every ``heartbeat_s`` seconds.

Close codes: 1000 normal, 4001 token expired, 4008 slow consumer. Logs: ``ws.client.connected``,
``ws.client.disconnected`` (with ``reason``).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import structlog
from aiohttp import WSMsgType, web

from cti.bus import Bus, Subscription
from cti.control import Control
from cti.gateway.frames import EncodedCache, Encoding, OutFrame
from cti.gateway.session import Session
from cti.tokens import Principal, Role

__all__ = ["PROTOCOLS", "Gateway", "GatewaySettings", "GatewayStats", "Session"]

_log = structlog.get_logger(__name__)

PROTOCOLS: Final = (Encoding.JSON.value, Encoding.MSGPACK.value)
_AGENT_PATTERNS: Final = ("agent.*", "call.*", "notice.*")


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings:
    """Tunables of the gateway."""

    heartbeat_s: float = 20.0
    send_queue_size: int = 256
    subscription_size: int = 1000
    slow_consumer_timeout_s: float = 10.0
    close_timeout_s: float = 2.0
    max_frame_bytes: int = 64 * 1024
    login_failures: int = 5
    login_window_s: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayStats:
    """Gateway counters for ``/metrics``."""

    connections: dict[str, int]
    accepted: int
    slow_disconnects: int
    frames_sent: int
    events_dropped: int


class _Ended(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Gateway:
    """Shared state of the gateway on one node: the bus, the encoding cache and the counters."""

    def __init__(self, *, control: Control, bus: Bus, node: str, settings: GatewaySettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.control = control
        self.node = node
        self.settings = settings or GatewaySettings()
        self._bus = bus
        self._clock = clock
        self._cache = EncodedCache()
        self._ids = itertools.count(1)
        self._live: Counter[str] = Counter({role.value: 0 for role in Role})
        self._accepted = 0
        self._slow = 0
        self._sent = 0
        self._dropped = 0

    def stats(self) -> GatewayStats:
        return GatewayStats(connections=dict(self._live), accepted=self._accepted, slow_disconnects=self._slow,
                            frames_sent=self._sent, events_dropped=self._dropped)

    def open_session(self, principal: Principal, protocol: str | None) -> Session:
        """A session for ``principal`` speaking the negotiated ``protocol``.

        Raises:
            ControlError: the principal's agent or supervisor is unknown to the node.
        """
        return Session(principal, control=self.control, node=self.node, encoding=Encoding.from_protocol(protocol),
                       cache=self._cache)

    def response(self) -> web.WebSocketResponse:
        """A not yet prepared WebSocket response with the gateway's subprotocols and heartbeat."""
        return web.WebSocketResponse(protocols=PROTOCOLS, heartbeat=self.settings.heartbeat_s,
                                     max_msg_size=self.settings.max_frame_bytes)

    async def serve(self, request: web.Request, ws: web.WebSocketResponse, session: Session) -> None:
        """Run a prepared connection until the client leaves, lags too far, or its token expires."""
        role, subject = session.principal.role.value, session.principal.subject
        conn_id = next(self._ids)
        outbox: asyncio.Queue[OutFrame] = asyncio.Queue(maxsize=self.settings.send_queue_size)
        patterns = _AGENT_PATTERNS if session.principal.role is Role.AGENT else ("*",)
        subscription = self._bus.subscribe(patterns, maxsize=self.settings.subscription_size,
                                           name=f"ws-{conn_id}-{role}-{subject}")
        self._accepted += 1
        self._live[role] += 1
        _log.info("ws.client.connected", conn=conn_id, role=role, subject=subject, protocol=ws.ws_protocol,
                  remote=request.remote)
        code, reason = 1000, "client_closed"
        try:
            await self._put(outbox, session.hello(self._clock()))
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._read(ws, session, outbox), name=f"ws-{conn_id}-reader")
                tg.create_task(self._pump(subscription, session, outbox), name=f"ws-{conn_id}-pump")
                tg.create_task(self._write(ws, outbox), name=f"ws-{conn_id}-writer")
                tg.create_task(self._expire(session.principal), name=f"ws-{conn_id}-expiry")
        except* _Ended as group:
            ended = group.exceptions[0]
            assert isinstance(ended, _Ended)
            code, reason = ended.code, ended.reason
        finally:
            subscription.close()
            self._dropped += subscription.dropped
            self._live[role] -= 1
            if reason == "slow_consumer":
                self._slow += 1
            await self._close(request, ws, code, reason)
            _log.info("ws.client.disconnected", conn=conn_id, role=role, subject=subject, reason=reason,
                      code=code, dropped=subscription.dropped)

    async def _put(self, outbox: asyncio.Queue[OutFrame], frame: OutFrame) -> None:
        if not outbox.full():
            outbox.put_nowait(frame)
            return
        try:
            async with asyncio.timeout(self.settings.slow_consumer_timeout_s):
                await outbox.put(frame)
        except TimeoutError:
            raise _Ended(4008, "slow_consumer") from None

    async def _read(self, ws: web.WebSocketResponse, session: Session, outbox: asyncio.Queue[OutFrame]) -> None:
        async for message in ws:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                for frame in session.receive(message.data, self._clock()):
                    await self._put(outbox, frame)
            elif message.type is WSMsgType.ERROR:
                raise _Ended(1011, "protocol_error")
        raise _Ended(1000, "client_closed")

    async def _pump(self, subscription: Subscription, session: Session, outbox: asyncio.Queue[OutFrame]) -> None:
        async for envelope in subscription:
            frame = session.deliver(envelope)
            if frame is not None:
                await self._put(outbox, frame)

    async def _write(self, ws: web.WebSocketResponse, outbox: asyncio.Queue[OutFrame]) -> None:
        while True:
            frame = await outbox.get()
            try:
                if isinstance(frame, str):
                    await ws.send_str(frame)
                else:
                    await ws.send_bytes(frame)
            except ConnectionError:
                raise _Ended(1006, "connection_lost") from None
            self._sent += 1

    async def _expire(self, principal: Principal) -> None:
        await asyncio.sleep(max(0.0, principal.expires_at - self._clock()))
        raise _Ended(4001, "token_expired")

    async def _close(self, request: web.Request, ws: web.WebSocketResponse, code: int, reason: str) -> None:
        if ws.closed:
            return
        try:
            async with asyncio.timeout(self.settings.close_timeout_s):
                await ws.close(code=code, message=reason.encode())
        except (TimeoutError, ConnectionError):
            if request.transport is not None:
                request.transport.abort()  # the peer does not read: drop the socket
