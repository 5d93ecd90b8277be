"""The asyncio side of the WebSocket gateway: one :class:`Session` per connection, one dispatcher per node.

The gateway holds **one** bounded bus subscription (drop-oldest, the bus does it) and a dispatcher task
(``ws-gateway-dispatch``, started and stopped with the aiohttp app) that hands each envelope only to the connections
it can concern: the agent named by ``agent_id``, every supervisor and operator, and every agent for
``notice.broadcast``. :func:`~cti.gateway.visibility.visible` still decides, inside :meth:`Session.deliver`. Cost per
event is therefore O(recipients + overseers), not O(connections) (a per-connection bus subscription made every event
cost one queue operation per connected agent; see tests/bench/bench_ws_fanout.py).

Per connection, in one :class:`asyncio.TaskGroup`: ``reader`` (client frames → :meth:`Session.receive`),
``writer`` (the :class:`Mailbox` → the socket), ``watchdog`` (a mailbox that stays full for
``slow_consumer_timeout_s`` disconnects the client with close code 4008) and ``expiry`` (close code 4001 when the
token expires). The mailbox is bounded: events drop the oldest queued event. aiohttp pings every ``heartbeat_s``.

The dispatcher also keeps the replay window (:class:`~cti.gateway.replay.ReplayLog`, ``replay_events`` /
``replay_age_s`` / ``replay_bytes``; each event kept once, as its compressed JSON frame): a client that reconnects
with ``?since=<seq>`` gets ``hello`` and then exactly the events after ``since`` that it may see, before any live
event; when the window cannot give them all, ``hello`` is followed by a ``resync`` frame instead. Each event is
encoded to JSON once, in the dispatcher, for the window and the live JSON connections alike.

Close codes: 1000 normal, 4001 token expired, 4008 slow consumer. Logs: ``ws.client.connected``,
``ws.client.disconnected`` (with ``reason``).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import structlog
from aiohttp import WSMsgType, web

from cti.adherence.board import AdherenceBoard
from cti.errors import ControlError, CtiError
from cti.events.bus import Bus
from cti.events.registry import Envelope, EnvelopeError
from cti.floor.alerts.board import AlertBoard
from cti.floor.control import Control
from cti.floor.notices import NoticeService
from cti.gateway.frames import EncodedCache, Encoding
from cti.gateway.mailbox import Mailbox
from cti.gateway.phone import PhonePort, PhoneRequest
from cti.gateway.replay import ReplayLog
from cti.gateway.session import DEFAULT_SITE, Session
from cti.tokens import Principal, Role

__all__ = ["PROTOCOLS", "Gateway", "GatewaySettings", "GatewayStats", "Session"]

_log = structlog.get_logger(__name__)

PROTOCOLS: Final = (Encoding.JSON.value, Encoding.MSGPACK.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings:
    """Tunables of the gateway."""

    heartbeat_s: float = 20.0
    send_queue_size: int = 256
    subscription_size: int = 10_000
    slow_consumer_timeout_s: float = 10.0
    close_timeout_s: float = 2.0
    max_frame_bytes: int = 64 * 1024
    login_failures: int = 5
    login_window_s: float = 60.0
    replay_events: int = 100_000
    replay_age_s: float = 600.0
    replay_bytes: int = 16 * 2**20
    phone_command_timeout_s: float = 20.0


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayStats:
    """Gateway counters for ``/metrics``."""

    connections: dict[str, int]
    accepted: int
    slow_disconnects: int
    frames_sent: int
    events_dropped: int
    resumed: int = 0
    resyncs: int = 0
    replayed: int = 0


def _for_every_agent(type_: str) -> bool:
    """Events that name no agent but go to every agent's connection (visibility still decides per connection)."""
    return type_.startswith("notice.")


class _Ended(CtiError):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Gateway:
    """Shared state of the gateway on one node: the dispatcher, the connection index, the cache and counters."""

    def __init__(self, *, control: Control, bus: Bus, node: str, settings: GatewaySettings | None = None,
                 clock: Callable[[], float] = time.time, notices: NoticeService | None = None,
                 site: Mapping[str, Any] | None = None, phones: PhonePort | None = None) -> None:
        self.control = control
        self.phones = phones
        """The node's browser phones (docs/web.md); ``None``: the ``phone_*`` commands are refused."""
        self.site: dict[str, Any] = dict(site or DEFAULT_SITE)
        """What every ``hello`` says of the site: time zone, not-ready reasons, dispositions."""
        self.notices = notices
        self.alerts = AlertBoard()
        """The node's active alerts, fed from the bus before each ``alert.*`` envelope is fanned out."""
        self.adherence = AdherenceBoard()
        """The adherence exceptions in force, fed the same way from ``adherence.*`` envelopes."""
        self.node = node
        self.settings = settings or GatewaySettings()
        self._bus = bus
        self._clock = clock
        self._cache = EncodedCache()
        self._ids = itertools.count(1)
        self._by_agent: dict[str, dict[int, tuple[Session, Mailbox]]] = {}
        self._overseers: dict[int, tuple[Session, Mailbox]] = {}
        self._stopping = asyncio.Event()  # set when the node stops: every connection closes with 1001
        self._live: Counter[str] = Counter({role.value: 0 for role in Role})
        self._accepted = 0
        self._slow = 0
        self._sent = 0
        self._dropped = 0
        self._resumed = 0
        self._resyncs = 0
        self._replayed = 0
        self.replay = self._new_replay_log()

    def _new_replay_log(self) -> ReplayLog:
        return ReplayLog(last_seq=self._bus.last_seq, max_events=self.settings.replay_events,
                         max_age_s=self.settings.replay_age_s, max_bytes=self.settings.replay_bytes)

    def stats(self) -> GatewayStats:
        return GatewayStats(connections=dict(self._live), accepted=self._accepted, slow_disconnects=self._slow,
                            frames_sent=self._sent, events_dropped=self._dropped, resumed=self._resumed,
                            resyncs=self._resyncs, replayed=self._replayed)

    async def lifespan(self, _app: web.Application) -> AsyncIterator[None]:
        """aiohttp ``cleanup_ctx``: run the dispatcher while the app runs; cancel and await it on shutdown."""
        subscription = self._bus.subscribe("*", maxsize=self.settings.subscription_size, name="ws-gateway")
        self.replay = self._new_replay_log()
        task = asyncio.get_running_loop().create_task(self._dispatch_all(subscription), name="ws-gateway-dispatch")
        try:
            yield
        finally:
            subscription.close()  # ends the dispatcher's loop once the queued envelopes are handed out
            try:
                async with asyncio.timeout(self.settings.close_timeout_s):
                    await task
            except TimeoutError:
                task.cancel()
                _log.warning("ws.dispatcher.stuck")

    async def _dispatch_all(self, subscription: AsyncIterator[Envelope]) -> None:
        async for envelope in subscription:
            self.dispatch(envelope)

    def dispatch(self, envelope: Envelope) -> None:
        """Offer ``envelope`` to every connection that may see it, and keep it in the replay window."""
        if envelope.seq is not None:
            self.replay.append(envelope, self._clock(), self._cache.json_frame(envelope))
        if envelope.type.startswith("alert."):
            self.alerts.observe(envelope)
        elif envelope.type.startswith("adherence."):
            self.adherence.observe(envelope)
        agent_id = envelope.data.get("agent_id")
        targets: list[tuple[Session, Mailbox]] = list(self._overseers.values())
        if isinstance(agent_id, str):
            targets.extend(self._by_agent.get(agent_id, {}).values())
        elif _for_every_agent(envelope.type):
            targets.extend(pair for conns in self._by_agent.values() for pair in conns.values())
        for session, mailbox in targets:
            frame = session.deliver(envelope)
            if frame is not None:
                mailbox.offer_event(frame)

    def open_session(self, principal: Principal, protocol: str | None) -> Session:
        """A session for ``principal`` speaking the negotiated ``protocol``.

        Raises:
            ControlError: the principal's agent or supervisor is unknown to the node.
        """
        return Session(principal, control=self.control, node=self.node, encoding=Encoding.from_protocol(protocol),
                       cache=self._cache, notices=self.notices, alerts=self.alerts, publish=self._publish,
                       adherence=self.adherence, site=self.site, phones=self.phones is not None)

    def _publish(self, type_: str, data: dict[str, Any], now: float) -> None:
        """Publish an event a command caused (``alert.acknowledged``) on the node's bus."""
        self._bus.publish(Envelope.new(type_, data, node=self.node, now=now))

    def response(self) -> web.WebSocketResponse:
        """A not yet prepared WebSocket response with the gateway's subprotocols and heartbeat."""
        return web.WebSocketResponse(protocols=PROTOCOLS, heartbeat=self.settings.heartbeat_s,
                                     max_msg_size=self.settings.max_frame_bytes)

    def _register(self, conn_id: int, session: Session, mailbox: Mailbox) -> None:
        if session.principal.role is Role.AGENT:
            self._by_agent.setdefault(session.principal.subject, {})[conn_id] = (session, mailbox)
        else:
            self._overseers[conn_id] = (session, mailbox)

    def _unregister(self, conn_id: int, session: Session) -> None:
        self._overseers.pop(conn_id, None)
        conns = self._by_agent.get(session.principal.subject)
        if conns is not None:
            conns.pop(conn_id, None)
            if not conns:
                del self._by_agent[session.principal.subject]

    async def serve(self, request: web.Request, ws: web.WebSocketResponse, session: Session, *,
                    since: int | None = None) -> None:
        """Run a prepared connection until the client leaves, lags too far, or its token expires.

        ``since``: the client resumes after that event sequence number (``?since=``).
        """
        role, subject = session.principal.role.value, session.principal.subject
        conn_id = next(self._ids)
        mailbox = Mailbox(self.settings.send_queue_size)
        self._accepted += 1
        self._live[role] += 1
        _log.info("ws.client.connected", conn=conn_id, role=role, subject=subject, protocol=ws.ws_protocol,
                  remote=request.remote)
        code, reason = 1000, "client_closed"
        try:
            self._register(conn_id, session, mailbox)  # before hello: an event racing it comes after, not never
            self._greet(session, mailbox, since)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._read(ws, session, mailbox, tg, conn_id), name=f"ws-{conn_id}-reader")
                tg.create_task(self._write(ws, mailbox), name=f"ws-{conn_id}-writer")
                tg.create_task(self._watch(mailbox), name=f"ws-{conn_id}-watchdog")
                tg.create_task(self._expire(session.principal), name=f"ws-{conn_id}-expiry")
                tg.create_task(self._until_stopping(), name=f"ws-{conn_id}-stop")
        except BaseExceptionGroup as group:  # not except*: the group as raised, to let go of its traceback
            ended, rest = group.split(_Ended)
            if ended is None:
                raise
            first = ended.exceptions[0]
            assert isinstance(first, _Ended)
            code, reason = first.code, first.reason
            # The tracebacks hold frames that hold the group (TaskGroup.__aexit__'s) and the task group that holds
            # the errors: reference cycles per connection, left to the cyclic collector (off under load,
            # cti.app.tune_gc) unless cut here.
            group.__traceback__ = None
            for error in ended.exceptions:
                error.__traceback__ = None
            del first, ended
            if rest is not None:
                raise rest from None
        finally:
            self._unregister(conn_id, session)
            if self.phones is not None:
                self.phones.release(conn_id)  # the page's phone ends with the connection that turned it on
            self._dropped += mailbox.dropped
            self._live[role] -= 1
            if reason == "slow_consumer":
                self._slow += 1
            await self._close(request, ws, code, reason)
            _log.info("ws.client.disconnected", conn=conn_id, role=role, subject=subject, reason=reason,
                      code=code, dropped=mailbox.dropped)

    def _greet(self, session: Session, mailbox: Mailbox, since: int | None) -> None:
        """``hello``, then (resuming) the missed events it may see or a ``resync``. No await from the registration
        to here: the replay ends exactly where the live events the dispatcher queues from now on begin."""
        now = self._clock()
        missed = None if since is None else self.replay.since(since, now)
        mailbox.put_reply(session.hello(now, seq=self.replay.last_seq, resumed=missed is not None))
        if since is None:
            return
        if missed is None:
            window = self.replay.window()
            self._resyncs += 1
            mailbox.put_reply(session.resync(since, window.first_seq, window.last_seq))
            _log.info("ws.client.resync", subject=session.principal.subject, since=since,
                      first_seq=window.first_seq, last_seq=window.last_seq)
            return
        self._resumed += 1
        sent = 0
        agent = session.principal.subject if session.principal.role is Role.AGENT else None
        for event in missed:
            if agent is not None and event.agent_id != agent and (event.agent_id is not None
                                                                  or not _for_every_agent(event.type)):
                continue  # the dispatcher would not have offered it to this agent either
            try:
                envelope = event.envelope()
            except EnvelopeError:
                continue  # it could not be encoded when published: no client ever got it
            frame = session.deliver(envelope, json_frame=event.frame)
            if frame is not None:
                mailbox.put_reply(frame)  # replayed events are never dropped: the client counts on exactly once
                sent += 1
        self._replayed += sent
        _log.info("ws.client.resumed", subject=session.principal.subject, since=since, replayed=sent,
                  scanned=len(missed))

    async def _read(self, ws: web.WebSocketResponse, session: Session, mailbox: Mailbox, tg: asyncio.TaskGroup,
                    conn_id: int) -> None:
        async for message in ws:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                for frame in session.receive(message.data, self._clock()):
                    mailbox.put_reply(frame)
                for request in session.take_pending():
                    tg.create_task(self._phone(session, mailbox, conn_id, request),
                                   name=f"ws-{conn_id}-{request.name}")
            elif message.type is WSMsgType.ERROR:
                raise _Ended(1011, "protocol_error")
        raise _Ended(1000, "client_closed")

    async def _phone(self, session: Session, mailbox: Mailbox, conn_id: int, request: PhoneRequest) -> None:
        """Run one phone command (it may wait for ICE gathering) and reply; a failure costs this command only."""
        assert self.phones is not None  # the session refuses phone commands without them
        try:
            async with asyncio.timeout(self.settings.phone_command_timeout_s):
                data = await self.phones.command(request.agent_id, conn_id, request.name, request.args)
        except ControlError as exc:
            mailbox.put_reply(session.reply_error(request.frame_id, exc.code, str(exc)))
        except TimeoutError:
            mailbox.put_reply(session.reply_error(request.frame_id, "phone_timeout", f"{request.name} took too long"))
        except Exception as exc:  # a bug in one phone must not take the connection down; it is logged
            _log.exception("ws.command.failed", command=request.name, subject=session.principal.subject)
            mailbox.put_reply(session.reply_error(request.frame_id, "internal_error", type(exc).__name__))
        else:
            mailbox.put_reply(session.reply(request.frame_id, data))

    async def _write(self, ws: web.WebSocketResponse, mailbox: Mailbox) -> None:
        while True:
            frame = await mailbox.get()
            try:
                if isinstance(frame, str):
                    await ws.send_str(frame)
                else:
                    await ws.send_bytes(frame)
            except ConnectionError:
                raise _Ended(1006, "connection_lost") from None
            self._sent += 1

    async def _watch(self, mailbox: Mailbox) -> None:
        while True:
            await mailbox.full.wait()
            try:
                async with asyncio.timeout(self.settings.slow_consumer_timeout_s):
                    await mailbox.drained.wait()
            except TimeoutError:
                raise _Ended(4008, "slow_consumer") from None

    async def _expire(self, principal: Principal) -> None:
        await asyncio.sleep(max(0.0, principal.expires_at - self._clock()))
        raise _Ended(4001, "token_expired")

    async def _until_stopping(self) -> None:
        await self._stopping.wait()
        raise _Ended(1001, "node_stopping")

    async def shutdown(self, _app: web.Application) -> None:
        """aiohttp ``on_shutdown``: close every connection with 1001 (going away), so that the HTTP server's
        shutdown, which waits for its handlers, is not held up by clients that would stay connected forever."""
        self._stopping.set()

    async def _close(self, request: web.Request, ws: web.WebSocketResponse, code: int, reason: str) -> None:
        if ws.closed:
            return
        try:
            async with asyncio.timeout(self.settings.close_timeout_s):
                await ws.close(code=code, message=reason.encode())
        except (TimeoutError, ConnectionError):
            if request.transport is not None:
                request.transport.abort()  # the peer does not read: drop the socket
