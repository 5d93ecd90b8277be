"""The HTTP listener's limits as plain code: JSON bodies, a connection's read deadlines, refusal logging.

Nothing here imports asyncio or reads a clock: ``now`` is passed in (seconds, any monotonic origin), and the
asyncio side (:mod:`cti.http.guard.aio`) owns the sockets and the one timer per connection.

- :func:`parse_json` turns a request body into a value or a :class:`BodyError` (400/413) — never anything else.
  RFC 8259 §9: "An implementation may set limits on the size of texts that it accepts. An implementation may set
  limits on the maximum depth of nesting."
- :class:`ReadDeadlines` is one connection's deadline: a connection with no request under way is closed after
  ``idle_s``; once a request's first byte arrives its head must be complete within ``head_s`` (RFC 9110 §15.5.9:
  408 "the server did not receive a complete request message within the time that it was prepared to wait");
  an answer must be taken by the client within ``send_s``.
- :class:`RefusalLog` is a token bucket that decides which refusal lines are written, so that a flood of bad
  requests cannot flood the log; the lines it holds back are counted and reported with the next one written.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, Final, assert_never

from cti.errors import CtiError

__all__ = ["BodyError", "CloseReason", "ConnectionPhase", "ReadDeadlines", "RefusalLog", "parse_json"]

_SHOWN_BYTES: Final = 60  # of a JSON syntax error's message


class BodyError(CtiError):
    """A request body the node refuses: answered ``status`` with the stable ``code``.

    ``close`` asks for the connection to be closed after the answer (the body was not read to its end).
    """

    def __init__(self, status: int, code: str, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.close = status, code, close


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes, *, max_bytes: int, max_depth: int) -> Any:
    """The JSON value of ``raw`` (UTF-8, -16 or -32 per RFC 8259 §8.1), or None when ``raw`` is only blanks.

    Raises:
        BodyError: 413 ``body_too_large`` past ``max_bytes``; 400 ``bad_json`` for anything that is not one JSON
            text (bad syntax, bad encoding, ``NaN``, an integer of more than 4300 digits); 400 ``json_too_deep``
            when arrays and objects nest deeper than ``max_depth``.
    """
    if len(raw) > max_bytes:
        raise BodyError(413, "body_too_large", f"the JSON body is {len(raw)} bytes; at most {max_bytes} are taken")
    if not raw.strip():
        return None
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:  # nested deeper than the interpreter's stack allows: surely deeper than max_depth
        raise BodyError(400, "json_too_deep", f"the JSON body nests deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise BodyError(400, "bad_json", f"the body is not JSON: {exc.msg} at line {exc.lineno} column "
                                         f"{exc.colno}") from None
    except ValueError as exc:  # UnicodeDecodeError, NaN/Infinity, the int digit limit
        raise BodyError(400, "bad_json", f"the body is not JSON: {str(exc)[:_SHOWN_BYTES]}") from None
    if _deeper_than(value, max_depth):
        raise BodyError(400, "json_too_deep", f"the JSON body nests deeper than {max_depth} levels")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest deeper than ``limit`` (``[]`` is 1; a scalar is 0)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class ConnectionPhase(Enum):
    """Where a connection is between requests."""

    IDLE = "idle"  # no request under way: waiting for the first byte of the next one
    HEAD = "head"  # a request's first bytes have arrived; its head is not parsed yet
    BUSY = "busy"  # a request is being handled (its body read, a WebSocket served): no deadline here
    SENDING = "sending"  # its answer is being written: the client must take it in time


class CloseReason(Enum):
    """Why a connection's deadline closed it; the value is the ``reason`` label on ``/metrics``."""

    IDLE = "idle"
    HEADER_TIMEOUT = "header_timeout"
    SEND_TIMEOUT = "send_timeout"


class ReadDeadlines:
    """One connection's deadline: idle, a request head that must arrive in time, an answer that must be taken.

    The adapter calls :meth:`data_received` for every read, :meth:`request_started` when a request's head is
    parsed and its handler begins, :meth:`answer_started` when the handler has returned an answer and it is being
    written, :meth:`request_finished` once it is written (or the handler wrote it itself), and keeps a timer at
    :meth:`get_timer`. A timer that fires early or late is harmless: :meth:`handle_timer` checks the deadline.
    After the answer, the last bytes may still wait in the transport: ``pending_write`` bytes that change between
    two checks are not idleness, and the idle deadline moves on by ``idle_s``.
    """

    __slots__ = ("_deadline", "_head_s", "_idle_s", "_pending", "_send_s", "phase")

    def __init__(self, *, idle_s: float, head_s: float, send_s: float, now: float) -> None:
        self._idle_s, self._head_s, self._send_s = idle_s, head_s, send_s
        self.phase = ConnectionPhase.IDLE
        self._deadline: float | None = now + idle_s
        self._pending = 0

    def get_timer(self) -> float | None:
        return self._deadline

    def data_received(self, now: float) -> None:
        if self.phase is ConnectionPhase.IDLE:
            self.phase, self._deadline = ConnectionPhase.HEAD, now + self._head_s

    def request_started(self, now: float) -> None:
        self.phase, self._deadline = ConnectionPhase.BUSY, None

    def answer_started(self, now: float) -> None:
        self.phase, self._deadline = ConnectionPhase.SENDING, now + self._send_s

    def request_finished(self, now: float) -> None:
        self.phase, self._deadline, self._pending = ConnectionPhase.IDLE, now + self._idle_s, 0

    def handle_timer(self, now: float, *, pending_write: int = 0) -> CloseReason | None:
        """The reason to close the connection now, or None (then re-read :meth:`get_timer`)."""
        if self._deadline is None or now < self._deadline:
            return None
        match self.phase:
            case ConnectionPhase.IDLE:
                if pending_write and pending_write != self._pending:  # the client still takes the last answer
                    self._pending, self._deadline = pending_write, now + self._idle_s
                    return None
                return CloseReason.IDLE
            case ConnectionPhase.HEAD:
                return CloseReason.HEADER_TIMEOUT
            case ConnectionPhase.SENDING:
                return CloseReason.SEND_TIMEOUT
            case ConnectionPhase.BUSY:
                return None  # no deadline while busy (unreachable: the deadline is None)
            case _:
                assert_never(self.phase)


class RefusalLog:
    """Which refusal lines to write: at most ``burst`` at once, then ``per_s`` a second (a token bucket)."""

    __slots__ = ("_burst", "_held", "_last", "_per_s", "_tokens", "suppressed_total")

    def __init__(self, *, per_s: float, burst: int, now: float) -> None:
        self._per_s, self._burst = per_s, float(burst)
        self._tokens, self._last = float(burst), now
        self._held = 0
        self.suppressed_total = 0

    def admit(self, now: float) -> int | None:
        """None to hold this line back (it is counted); else the number held back since the last line written."""
        self._tokens = min(self._burst, self._tokens + max(0.0, now - self._last) * self._per_s)
        self._last = now
        if self._tokens < 1.0:
            self._held += 1
            self.suppressed_total += 1
            return None
        self._tokens -= 1.0
        held, self._held = self._held, 0
        return held
