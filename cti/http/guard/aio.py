"""The asyncio side of the HTTP listener's guard: connection caps, read deadlines, body limits, answer headers.

:func:`serve_http` binds an application made by :func:`cti.http.api.build_app` (which holds an :class:`HttpGuard` as
``app[HTTP_GUARD_KEY]``) through :class:`GuardedSite`. Each accepted socket gets a :class:`_Connection` between the
transport and aiohttp's request handler: it refuses the connection past ``http.max_connections`` (or past
``http.max_connections_per_host`` for its address) with a 503 and closes it at once, and runs the connection's
:class:`~cti.http.guard.limits.ReadDeadlines` on one ``call_at`` timer: no request under way for ``idle_timeout_s``
closes it, a request head not complete ``header_timeout_s`` after its first byte gets 408 and is closed.

The guard's middleware (outermost) tells the connection when a request is being handled and refuses a declared
body past ``max_body_bytes`` (413) before any handler runs; :func:`read_json` reads a JSON body within
``body_timeout_s`` and the JSON limits. Its ``on_response_prepare`` hook gives every answer of the application
``Server: cti-server`` (no version), ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
``Referrer-Policy: no-referrer`` and, unless the route set its own, ``Cache-Control: no-store``; and it counts
every 4xx answer by status and logs it (``http.request.refused``) within the refusal log's rate. A request
aiohttp cannot parse (400, answered by aiohttp itself) reaches the guard through the logger it is given.

The middleware also writes the answer itself (within ``send_timeout_s``; a client that does not take it loses the
connection), so that a connection is busy, never idle, until its answer is sent.

Logs: ``http.request.refused`` and ``http.connection.refused`` (info, at most ``refusal_log_burst`` at once then
``refusal_log_per_s``; a line carries ``suppressed`` when lines were held back before it), ``http.connection.closed``
(``header_timeout`` and ``send_timeout`` at info within the same rate; ``idle`` at debug), ``http.request.failed``
(a handler raised: error with the traceback, within its own rate).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import ssl
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final, cast

import structlog
from aiohttp import web, web_response
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from config.schema import HttpConfig
from cti.http.guard.limits import BodyError, CloseReason, ConnectionPhase, ReadDeadlines, RefusalLog, parse_json

__all__ = ["HTTP_GUARD_KEY", "REFUSAL_KEY", "SERVER_NAME", "GuardStats", "GuardedSite", "HttpGuard", "Refusal",
           "body_refusal", "read_json", "refusal_response", "serve_http"]

_log = structlog.get_logger(__name__)

SERVER_NAME: Final = "cti-server"
ANSWER_HEADERS: Final = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                         "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
_STATUS_CODES: Final = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                        405: "method_not_allowed", 408: "timeout", 413: "body_too_large", 429: "too_many_requests"}
_PATH_SHOWN: Final = 128
_FILES_KEPT: Final = 256  # descriptors the rest of the node needs (SIP, media, database, logs)


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a refusing handler tells the guard about its 4xx answer: the stable ``code`` and details to log."""

    code: str
    detail: Mapping[str, str] = field(default_factory=dict)


REFUSAL_KEY: Final = web.ResponseKey("cti.refusal", Refusal)


def refusal_response(status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None,
                     detail: Mapping[str, str] | None = None, close: bool = False, **extra: Any) -> web.Response:
    """The JSON error answer ``{"error": {"code", "message", **extra}}``, marked for the guard's count and log."""
    response = web.json_response({"error": {"code": code, "message": message, **extra}}, status=status,
                                 headers=headers)
    response[REFUSAL_KEY] = Refusal(code, dict(detail or {}))
    if close:
        response.force_close()
    return response


def body_refusal(exc: BodyError) -> web.Response:
    """The answer to a refused body (the connection is closed after it when the body was not read through)."""
    return refusal_response(exc.status, exc.code, str(exc), close=exc.close)


def _raw_answer(status: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 answer written straight to a socket aiohttp does not serve (a refused connection)."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json; charset=utf-8", f"Content-Length: {len(body)}",
            "Connection: close", f"Server: {SERVER_NAME}", *(f"{k}: {v}" for k, v in ANSWER_HEADERS.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


_FULL_ANSWER: Final = _raw_answer("503 Service Unavailable", "too_many_connections",
                                  "the node holds as many HTTP connections as it takes; try again later")
_TIMEOUT_ANSWER: Final = _raw_answer("408 Request Timeout", "header_timeout",
                                     "the request head did not arrive in time")


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardStats:
    """The guard's counters for ``/metrics``."""

    open: int
    accepted: int
    connections_refused: dict[str, int]  # by reason: max_connections, max_connections_per_host
    connections_closed: dict[str, int]  # by CloseReason value
    requests_refused: dict[int, int]  # by status
    logs_suppressed: int


class HttpGuard:
    """The limits of one HTTP listener and their counters (one per application, ``app[HTTP_GUARD_KEY]``)."""

    def __init__(self, config: HttpConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._refusals = RefusalLog(per_s=config.refusal_log_per_s, burst=config.refusal_log_burst, now=clock())
        self._failures = RefusalLog(per_s=config.refusal_log_per_s, burst=config.refusal_log_burst, now=clock())
        self._open = 0
        self._accepted = 0
        self._per_host: Counter[str] = Counter()
        self._conn_refused: Counter[str] = Counter()
        self._closed: Counter[str] = Counter({reason.value: 0 for reason in CloseReason})
        self._requests_refused: Counter[int] = Counter()

    def stats(self) -> GuardStats:
        return GuardStats(open=self._open, accepted=self._accepted, connections_refused=dict(self._conn_refused),
                          connections_closed=dict(self._closed), requests_refused=dict(self._requests_refused),
                          logs_suppressed=self._refusals.suppressed_total)

    # ------------------------------------------------------------------ the application side

    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        """Outermost: the connection is busy from the parsed head until the client has taken the answer (sent
        here, within ``send_timeout_s``, rather than by aiohttp after the middlewares); an oversized declared body
        is refused before any handler runs."""
        conn = _connection_of(request)
        if conn is not None:
            conn.request_started()
        try:
            length = request.content_length
            if length is not None and length > self.config.max_body_bytes:
                response: web.StreamResponse = refusal_response(
                    413, "body_too_large", f"the body is {length} bytes; at most {self.config.max_body_bytes} are "
                    "taken", close=True)
            else:
                try:
                    response = await handler(request)
                except web.HTTPException as exc:  # aiohttp's own refusals (no route, wrong method...)
                    # The router's frames in its traceback hold it (through the request's match info): a reference
                    # cycle per refused request, left to the cyclic collector (off under load, cti.app.tune_gc).
                    exc.__traceback__ = None
                    response = web.Response(status=exc.status, reason=exc.reason, body=exc.body,
                                            headers=exc.headers)
            if conn is not None and not response.prepared:
                conn.answer_started()  # the connection's deadline: send_timeout_s
                await _send(request, response)
            return response
        finally:
            if conn is not None:
                conn.request_finished()

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """``on_response_prepare``: the answer headers; a 4xx answer counted and logged."""
        headers = response.headers
        headers["Server"] = SERVER_NAME
        for name, value in ANSWER_HEADERS.items():
            headers.setdefault(name, value)
        status = response.status
        if 400 <= status < 500:
            refusal = response.get(REFUSAL_KEY)
            code = refusal.code if refusal is not None else _STATUS_CODES.get(status, "refused")
            detail = refusal.detail if refusal is not None else {}
            self._requests_refused[status] += 1
            self._log_refusal("http.request.refused", status=status, code=code, method=request.method,
                              path=request.path[:_PATH_SHOWN], remote=request.remote, **detail)

    def runner_kwargs(self) -> dict[str, Any]:
        """Arguments of ``web.AppRunner`` for this listener.

        aiohttp's own keep-alive timer only backs the guard's deadlines up: it fires after any of them would.
        """
        config = self.config
        backstop = config.idle_timeout_s + config.header_timeout_s + 1.0
        return {"access_log": None, "keepalive_timeout": backstop, "logger": _ServerLog(self),
                "max_line_size": config.max_header_line_bytes, "max_field_size": config.max_header_line_bytes,
                "max_headers": config.max_headers, "auto_decompress": False}

    # ------------------------------------------------------------------ the connection side

    def protocol_factory(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        """The ``create_server`` factory: a :class:`_Connection` in front of each of ``server``'s handlers."""
        return lambda: _Connection(self, server)

    def admit(self, host: str) -> str | None:
        """Take a place for a connection from ``host``; the cap that refuses it, or None."""
        if self._open >= self.config.max_connections:
            reason = "max_connections"
        elif self.config.max_connections_per_host and self._per_host[host] >= self.config.max_connections_per_host:
            reason = "max_connections_per_host"
        else:
            self._open += 1
            self._accepted += 1
            if self.config.max_connections_per_host:
                self._per_host[host] += 1
            return None
        self._conn_refused[reason] += 1
        self._log_refusal("http.connection.refused", reason=reason, remote=host, open=self._open)
        return reason

    def release(self, host: str) -> None:
        """Give back the place of an admitted connection from ``host``."""
        self._open -= 1
        if self.config.max_connections_per_host:
            self._per_host[host] -= 1
            if self._per_host[host] <= 0:
                del self._per_host[host]

    def deadline_closed(self, reason: CloseReason, host: str) -> None:
        self._closed[reason.value] += 1
        if reason is CloseReason.IDLE:
            _log.debug("http.connection.closed", reason=reason.value, remote=host)
        else:
            self._log_refusal("http.connection.closed", reason=reason.value, remote=host)

    def unparsable(self, exc: HttpProcessingError, remote: str | None) -> None:
        """aiohttp answered a request it could not parse (its status is ``exc.code``)."""
        status = exc.code if 400 <= exc.code < 500 else 400
        self._requests_refused[status] += 1
        self._log_refusal("http.request.refused", status=status, code="bad_http", remote=remote,
                          reason=str(exc.message)[:_PATH_SHOWN])

    def failed(self, exc: BaseException | None, what: str, remote: str | None) -> None:
        """A handler raised (aiohttp answers 500): an error with the traceback, within its own rate."""
        held = self._failures.admit(self._clock())
        if held is not None:
            _log.error("http.request.failed", what=what, remote=remote, suppressed=held, exc_info=exc or True)

    def _log_refusal(self, event: str, **fields: Any) -> None:
        held = self._refusals.admit(self._clock())
        if held is None:
            return
        if held:
            fields["suppressed"] = held
        _log.info(event, **fields)


async def _send(request: web.Request, response: web.StreamResponse) -> None:
    """Write ``response`` (aiohttp's own finish then finds it sent)."""
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        pass  # the client left, or the send deadline dropped it: aiohttp's finish sees the same and ends it


HTTP_GUARD_KEY: Final = web.AppKey("cti.http.guard", HttpGuard)
"""``app[HTTP_GUARD_KEY]`` is the guard of an application made by :func:`cti.http.api.build_app`."""


def _connection_of(request: web.BaseRequest) -> _Connection | None:
    transport = request.transport
    protocol = transport.get_protocol() if transport is not None else None
    return protocol if isinstance(protocol, _Connection) else None


class _GuardedHandler(RequestHandler):
    """aiohttp's per-connection handler whose own error answers (an unparsable request, a handler that raised, a
    handler timeout) are the node's JSON error with the security headers, never aiohttp's plain text echoing the
    request's bytes back."""

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs (through the guard's logger) and checks the writer
        if status >= 500:
            code, text = ("timeout", "the request took too long") if status == 504 else \
                ("internal_error", "the node could not answer this request; it was logged")
        else:
            code = _STATUS_CODES.get(status, "bad_request")
            text = "the request could not be parsed as HTTP/1.1" if status == 400 else HTTPStatus(status).phrase
        return refusal_response(status, code, text, headers=ANSWER_HEADERS, close=True)


class _Connection(asyncio.Protocol):
    """One accepted socket: the guard's caps and deadlines in front of aiohttp's handler (made once admitted)."""

    def __init__(self, guard: HttpGuard, server: web.Server) -> None:
        self._guard, self._server = guard, server
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._handler: RequestHandler | None = None
        self._host = ""
        self._deadlines: ReadDeadlines | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if not peer:  # reset by the peer before it was accepted
            transport.close()
            return
        self._host = str(peer[0])
        if self._guard.admit(self._host) is not None:
            self._transport.write(_FULL_ANSWER)
            transport.close()
            return
        config = self._guard.config
        self._deadlines = ReadDeadlines(idle_s=config.idle_timeout_s, head_s=config.header_timeout_s,
                                        send_s=config.send_timeout_s, now=self._loop.time())
        # What web.Server() would build, with the node's error answers (the server's handler settings are its
        # `_kwargs`, aiohttp's own way of building handlers; tests/integration/test_http_hardening.py checks it).
        self._handler = _GuardedHandler(self._server, loop=self._loop, **self._server._kwargs)
        self._handler.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._handler is None:
            return  # refused: closing
        deadlines = self._deadlines
        if deadlines is not None and deadlines.phase is ConnectionPhase.IDLE:
            deadlines.data_received(self._loop.time())
            self._arm()
        self._handler.data_received(data)

    def eof_received(self) -> None:
        if self._handler is not None:
            self._handler.eof_received()

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        handler, self._handler, self._transport = self._handler, None, None
        if handler is not None:
            self._guard.release(self._host)
            handler.connection_lost(exc)

    def request_started(self) -> None:
        if self._deadlines is not None:
            self._deadlines.request_started(self._loop.time())

    def answer_started(self) -> None:
        if self._deadlines is not None:
            self._deadlines.answer_started(self._loop.time())
            self._arm()

    def request_finished(self) -> None:
        if self._deadlines is not None:
            self._deadlines.request_finished(self._loop.time())
            self._arm()

    def _arm(self) -> None:
        """Keep the one timer at or before the deadline. A later deadline leaves it as it is (it re-arms when it
        fires), so that requests on a keep-alive connection cost no timer operations."""
        deadline = self._deadlines.get_timer() if self._deadlines is not None else None
        if deadline is None or (self._armed is not None and self._armed <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._armed = deadline
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._armed = None, None
        transport, deadlines = self._transport, self._deadlines
        if transport is None or deadlines is None or transport.is_closing():
            return
        reason = deadlines.handle_timer(self._loop.time(), pending_write=transport.get_write_buffer_size())
        if reason is None:
            self._arm()
            return
        self._guard.deadline_closed(reason, self._host)
        if reason is CloseReason.SEND_TIMEOUT:
            transport.abort()  # the client does not read: what is queued for it will never go
            return
        if reason is CloseReason.HEADER_TIMEOUT and not transport.get_write_buffer_size():
            transport.write(_TIMEOUT_ANSWER)
        transport.close()


class _ServerLog(logging.Logger):
    """The logger aiohttp's request handlers are given: what they report reaches the guard.

    aiohttp reports a request it could not parse (it answers 400 itself) with ``exception`` (``debug`` for a
    first request that is not HTTP at all), and a handler that raised (it answers 500) with ``exception``.
    """

    def __init__(self, guard: HttpGuard) -> None:
        super().__init__("cti.http.server")
        self.parent = logging.getLogger("aiohttp.server")
        self._guard = guard

    def _report(self, msg: object, args: tuple[object, ...], exc_info: object) -> None:
        remote = args[0] if args and isinstance(args[0], str) else None
        exc = exc_info if isinstance(exc_info, BaseException) else None
        if isinstance(exc, HttpProcessingError):
            self._guard.unparsable(exc, remote)
        else:
            self._guard.failed(exc, str(msg), remote)

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        self._report(msg, args, exc_info)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        if isinstance(exc_info, HttpProcessingError):
            self._report(msg, args, exc_info)


async def read_json(request: web.Request) -> Any:
    """The request's JSON body (None when there is none), within the guard's limits (defaults without a guard).

    Raises:
        BodyError: 415 ``unsupported_encoding`` (a ``Content-Encoding`` other than identity), 413 ``body_too_large``,
            408 ``body_timeout`` (not complete within ``body_timeout_s``), 400 ``bad_body`` (a broken chunked body),
            and :func:`~cti.http.guard.limits.parse_json`'s 400 ``bad_json`` / ``json_too_deep``.
    """
    guard = request.config_dict.get(HTTP_GUARD_KEY)
    config = guard.config if guard is not None else _DEFAULTS
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise BodyError(415, "unsupported_encoding", "request bodies are taken without Content-Encoding", close=True)
    length = request.content_length
    if length is not None and length > config.max_json_bytes:
        raise BodyError(413, "body_too_large", f"the JSON body is {length} bytes; at most {config.max_json_bytes} "
                        "are taken", close=True)
    if not request.body_exists:
        return None
    try:
        async with asyncio.timeout(config.body_timeout_s):
            raw = await request.read()
    except TimeoutError:
        raise BodyError(408, "body_timeout", f"the body was not complete within {config.body_timeout_s:g} s",
                        close=True) from None
    except web.HTTPRequestEntityTooLarge:
        raise BodyError(413, "body_too_large", f"the body is over {request.client_max_size} bytes",
                        close=True) from None
    except web.RequestPayloadError as exc:
        raise BodyError(400, "bad_body", f"the body could not be read: {exc}", close=True) from None
    return parse_json(raw, max_bytes=config.max_json_bytes, max_depth=config.max_json_depth)


_DEFAULTS: Final = HttpConfig()


class GuardedSite(web.BaseSite):
    """A TCP listener whose connections go through the guard's :class:`_Connection`."""

    __slots__ = ("_bound", "_guard", "_host", "_port")

    def __init__(self, runner: web.BaseRunner, guard: HttpGuard, host: str, port: int, *, backlog: int = 128,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(runner, backlog=backlog, ssl_context=ssl_context)
        self._guard, self._host, self._port = guard, host, port
        self._bound: int | None = None

    @property
    def port(self) -> int:
        """The bound port once started (``port`` 0 asks the system for one)."""
        return self._bound if self._bound is not None else self._port

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{'https' if self._ssl_context else 'http'}://{host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None, "runner.setup() comes first"
        # A TLS handshake is part of the request head: it gets the header deadline, not asyncio's 60 s.
        handshake = self._guard.config.header_timeout_s if self._ssl_context else None
        listener = await asyncio.get_running_loop().create_server(self._guard.protocol_factory(server), self._host,
                                                                  self._port, backlog=self._backlog,
                                                                  ssl=self._ssl_context,
                                                                  ssl_handshake_timeout=handshake)
        self._server = listener
        self._bound = int(listener.sockets[0].getsockname()[1]) if listener.sockets else self._port


async def serve_http(app: web.Application, ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, int]:
    """Start serving ``app`` (from :func:`cti.http.api.build_app`) on its guard's ``bind``/``port``; HTTPS
    (and WSS) with ``ssl_context``.

    Returns the runner (``cleanup()`` it to stop) and the bound port.

    Raises:
        TypeError: ``app`` holds no guard. OSError: the address is taken or cannot be bound.
    """
    guard = app.get(HTTP_GUARD_KEY)
    if guard is None:
        raise TypeError("serve_http needs an application made by cti.http.api.build_app (it holds the HTTP guard)")
    # aiohttp answers a request it cannot parse by itself (no application, no on_response_prepare): its default
    # Server header names the Python and aiohttp versions. This process serves no other HTTP.
    web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]
    files, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if files != resource.RLIM_INFINITY and guard.config.max_connections > files - _FILES_KEPT:
        # past the process's file limit, accept() fails first: connections wait in the backlog, unanswered
        _log.warning("http.listener.cap_above_file_limit", max_connections=guard.config.max_connections,
                     file_limit=files)
    runner = web.AppRunner(app, **guard.runner_kwargs())
    await runner.setup()
    site = GuardedSite(runner, guard, guard.config.bind, guard.config.port, backlog=guard.config.backlog,
                       ssl_context=ssl_context)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site.port
