"""The in-process event bus: synchronous, non-blocking publish; bounded, drop-oldest subscriptions.

Producers are state machines and adapters that must never wait on a slow consumer, so :meth:`Bus.publish` is a
plain function: it appends the envelope to the queue of every matching subscription and returns. Each subscription
owns a bounded :class:`asyncio.Queue`; when it is full the *oldest* queued envelope is dropped to make room, the
subscription's ``dropped`` counter goes up, and ``bus.event.dropped`` is logged at most once per second per
subscription (the clock is injected so tests need no sleeps).

Patterns: ``"call.offered"`` matches exactly, ``"call.*"`` matches every type starting with ``call.``, ``"*"``
matches everything.

Counters (``Bus.stats()``): ``published`` envelopes, ``delivered`` enqueues into subscriptions (one envelope
matching two subscriptions counts twice), ``dropped`` envelopes evicted from full queues, ``invalid`` envelopes that
broke their schema (counted only when the bus checks them).

Contract checks: ``validate_schemas`` refuses (raises) an envelope whose ``data`` breaks its registered schema;
``log_invalid`` (what ``CTI_VALIDATE_EVENTS=1`` turns on in a node, as the integration and interop tests do) checks
strictly too but delivers the envelope and logs ``bus.event.invalid`` at error level, which the tests' server
fixture turns into a failure.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

import structlog

from cti.errors import CtiError, SettingsError
from cti.events.registry import Envelope, SchemaError, validate

__all__ = ["Bus", "BusStats", "Subscription", "SubscriptionClosed", "first_seq"]

_log = structlog.get_logger(__name__)

_DROP_LOG_INTERVAL: Final = 1.0


def first_seq(now: float) -> int:
    """The first sequence number of a node started at ``now`` (UTC epoch seconds): its start time in microseconds.

    Within a run, ``seq`` goes up by one per event, so the next run starts above the last one's events as long as the
    node published fewer than a million events per second on average and the clock did not go back. It stays below
    2**53 (exact in JavaScript) until the year 2255.
    """
    return int(now * 1_000_000)


class SubscriptionClosed(CtiError):
    """The subscription was closed (unsubscribed) and holds no more envelopes."""

    code = "subscription_closed"


@dataclass(frozen=True, slots=True, kw_only=True)
class BusStats:
    """A snapshot of the bus counters (for ``/metrics``)."""

    published: int
    delivered: int
    dropped: int
    subscriptions: int
    invalid: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class _Patterns:
    everything: bool
    exact: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def parse(cls, patterns: Iterable[str]) -> _Patterns:
        everything, exact, prefixes = False, set(), []
        for pattern in patterns:
            if pattern == "*":
                everything = True
            elif pattern.endswith(".*") and "*" not in pattern[:-2] and pattern[:-2]:
                prefixes.append(pattern[:-1])  # keep the dot: "call.*" matches "call.x", not "callback.x"
            elif pattern and "*" not in pattern:
                exact.add(pattern)
            else:
                raise SettingsError(f"bad event pattern {pattern!r}: use 'a.b', 'a.*' or '*'")
        if not (everything or exact or prefixes):
            raise SettingsError("subscribe needs at least one pattern")
        return cls(everything=everything, exact=frozenset(exact), prefixes=tuple(prefixes))

    def matches(self, event_type: str) -> bool:
        return self.everything or event_type in self.exact or event_type.startswith(self.prefixes)


class Subscription:
    """A bounded stream of envelopes matching some patterns.

    Use it as an async context manager (unsubscribes on exit) and as an async iterator (ends once closed and
    drained). ``dropped`` counts envelopes evicted because the consumer fell behind.
    """

    def __init__(self, bus: Bus, patterns: _Patterns, *, maxsize: int, name: str) -> None:
        self._bus = bus
        self._patterns = patterns
        # One spare slot so the end-of-stream marker always fits.
        self._queue: asyncio.Queue[Envelope | None] = asyncio.Queue(maxsize=maxsize + 1)
        self._closed = False
        self._last_drop_log: float | None = None
        self._dropped_since_log = 0
        self.name = name
        self.maxsize = maxsize
        self.delivered = 0
        self.dropped = 0

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran; queued envelopes can still be read."""
        return self._closed

    def qsize(self) -> int:
        """Envelopes waiting to be read."""
        return self._queue.qsize() - (1 if self._closed and self._queue.qsize() else 0)

    def matches(self, event_type: str) -> bool:
        """True if this subscription wants events of ``event_type``."""
        return self._patterns.matches(event_type)

    def _offer(self, envelope: Envelope, now: float) -> bool:
        """Enqueue, evicting the oldest when full; return True if something was dropped."""
        dropped = False
        if self._queue.qsize() >= self.maxsize:
            self._queue.get_nowait()
            self.dropped += 1
            self._dropped_since_log += 1
            dropped = True
            if self._last_drop_log is None or now - self._last_drop_log >= _DROP_LOG_INTERVAL:
                _log.warning("bus.event.dropped", subscription=self.name, type=envelope.type,
                             dropped=self._dropped_since_log, dropped_total=self.dropped, maxsize=self.maxsize)
                self._last_drop_log = now
                self._dropped_since_log = 0
        self._queue.put_nowait(envelope)
        self.delivered += 1
        return dropped

    async def get(self) -> Envelope:
        """Wait for the next envelope.

        Raises:
            SubscriptionClosed: the subscription is closed and drained.
        """
        if self._closed and self._queue.empty():
            raise SubscriptionClosed(self.name)
        envelope = await self._queue.get()
        if envelope is None:
            self._queue.put_nowait(None)  # keep the marker for other waiters
            raise SubscriptionClosed(self.name)
        return envelope

    def get_nowait(self) -> Envelope:
        """Return the next envelope without waiting.

        Raises:
            asyncio.QueueEmpty: nothing is queued.
            SubscriptionClosed: the subscription is closed and drained.
        """
        envelope = self._queue.get_nowait()
        if envelope is None:
            self._queue.put_nowait(None)
            raise SubscriptionClosed(self.name)
        return envelope

    def close(self) -> None:
        """Unsubscribe. Envelopes already queued can still be read; then iteration ends. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._bus._remove(self)
        self._queue.put_nowait(None)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Envelope:
        try:
            return await self.get()
        except SubscriptionClosed:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Bus:
    """In-process publish/subscribe of :class:`~cti.events.registry.Envelope`.

    ``validate_schemas`` (debug mode) checks each envelope against the registry in strict mode before fan-out and
    raises on a mismatch; ``log_invalid`` checks the same way but logs ``bus.event.invalid`` (error) and delivers.
    ``clock`` is a monotonic clock in seconds, used only to rate-limit drop logs. Each published envelope gets the
    next sequence number (``seq``), starting at ``first_seq`` (:func:`first_seq` of the start time in a node).
    """

    def __init__(self, *, validate_schemas: bool = False, log_invalid: bool = False,
                 clock: Callable[[], float] = time.monotonic, first_seq: int = 1) -> None:
        if first_seq < 1:
            raise ValueError("first_seq must be at least 1")
        self._next_seq = first_seq
        self._subscriptions: list[Subscription] = []
        self._validate = validate_schemas
        self._log_invalid = log_invalid
        self._invalid = 0
        self._clock = clock
        self._names = itertools.count(1)
        self._published = 0
        self._delivered = 0
        self._dropped = 0

    @property
    def last_seq(self) -> int:
        """The sequence number of the last envelope published (``first_seq - 1`` before the first)."""
        return self._next_seq - 1

    def publish(self, envelope: Envelope) -> Envelope:
        """Give ``envelope`` the next sequence number and hand it to every matching subscription; never blocks,
        never awaits. Returns the envelope as delivered (with its ``seq``).

        Raises:
            SchemaError: only with ``validate_schemas``, when ``data`` does not match the registered schema.
        """
        if self._validate:
            validate(envelope, strict=True)
        elif self._log_invalid:
            try:
                validate(envelope, strict=True)
            except SchemaError as exc:
                self._invalid += 1
                _log.error("bus.event.invalid", type=envelope.type, event_id=envelope.id, field=exc.field_name,
                           error=str(exc))
        envelope = envelope.sequenced(self._next_seq)
        self._next_seq += 1
        self._published += 1
        now: float | None = None
        for subscription in self._subscriptions:
            if subscription.matches(envelope.type):
                if now is None:
                    now = self._clock()
                if subscription._offer(envelope, now):
                    self._dropped += 1
                self._delivered += 1
        return envelope

    @property
    def checks_events(self) -> bool:
        """True when each published envelope is checked against its schema."""
        return self._validate or self._log_invalid

    def subscribe(self, patterns: Iterable[str] | str, *, maxsize: int = 1000, name: str | None = None) -> Subscription:
        """Subscribe to event types matching ``patterns`` with a queue of ``maxsize`` envelopes.

        Raises:
            SettingsError: a pattern is malformed, none is given, or ``maxsize`` < 1.
        """
        if maxsize < 1:
            raise SettingsError("maxsize must be at least 1")
        parsed = _Patterns.parse([patterns] if isinstance(patterns, str) else patterns)
        subscription = Subscription(self, parsed, maxsize=maxsize, name=name or f"sub-{next(self._names)}")
        self._subscriptions.append(subscription)
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def stats(self) -> BusStats:
        """Snapshot of the counters."""
        return BusStats(published=self._published, delivered=self._delivered, dropped=self._dropped,
                        subscriptions=len(self._subscriptions), invalid=self._invalid)
