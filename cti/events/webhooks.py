"""Webhooks: signed JSON POSTs of bus events to CRM endpoints, at least once, from the durable outbox.

Contract (design.md "Webhooks", docs/webhooks.md): each POST carries one envelope as its JSON body with
``X-CTI-Event-Id`` (the envelope id), ``X-CTI-Timestamp`` (integer epoch seconds of this attempt) and
``X-CTI-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}." + body)>``.

:class:`WebhookDispatcher` owns two named tasks:

- the **recorder** (``webhooks.recorder``) reads a bus subscription and writes every matching event to the
  outbox, one row per matching endpoint, all in one transaction: an event counts as accepted only once that
  commit returned. The outbox row is keyed by the endpoint *name*.
- the **sender** (``webhooks.sender``) supervises one lane per endpoint (``webhooks.sender.<name>``). A lane
  claims its endpoint's head (``claim_due(endpoint=name, limit=1)``: per-endpoint order comes from the store),
  POSTs it, and marks it delivered, failed (retry after back-off) or dead. Lanes never block each other.

A claim is a lease of ``timeout_s + LEASE_MARGIN_S``; if the process dies mid-delivery the entry is claimed again
once the lease ran out, by this process or the next one (that is what makes SIGKILL safe, and why receivers must
deduplicate on ``X-CTI-Event-Id``). Lanes wake when the recorder commits and otherwise at their head's next
attempt, never sleeping longer than ``poll_s`` (to pick up expired leases and replays from other processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import hmac
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import aiohttp
import structlog
import tenacity

from config.schema import WebhookConfig, WebhookRetryConfig
from cti.errors import SettingsError
from cti.events.backoff import Backoff
from cti.events.bus import Bus, Subscription
from cti.events.registry import Envelope, EnvelopeError
from cti.store import (
    ConflictError,
    InvalidRecordError,
    OutboxEntry,
    OutboxStateError,
    OutboxStatus,
    Store,
    StoreClosedError,
    StoreError,
)

__all__ = [
    "LEASE_MARGIN_S", "EndpointStats", "Verdict", "WebhookDispatcher", "WebhookStats", "backoff_delay",
    "classify", "event_matches", "sign", "signature_headers", "verify_signature",
]

_log = structlog.get_logger(__name__)

SIGNATURE_PREFIX: Final = "sha256="
LEASE_MARGIN_S: Final = 2.0  # a lease covers the POST (bounded by timeout_s) plus the write that ends it
_ERROR_CHARS: Final = 300
_WRITE_RETRY_FIRST_S: Final = 0.05
_WRITE_RETRY_MAX_S: Final = 2.0

# 4xx answers that say "this payload will never be accepted": dead-lettered at once (docs/webhooks.md).
REJECTING_STATUSES: Final = frozenset({400, 410, 413, 415, 422})


# ---------------------------------------------------------------------------------------------- pure helpers
def check_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """Validate event patterns: ``*``, an exact dotted type, or ``prefix.*``.

    Raises:
        SettingsError: a pattern is malformed or none is given.
    """
    checked = tuple(patterns)
    for pattern in checked:
        stem = pattern[:-2] if pattern.endswith(".*") else pattern
        if pattern != "*" and (not stem or "*" in stem):
            raise SettingsError(f"bad event pattern {pattern!r}: use 'a.b', 'a.*' or '*'")
    if not checked:
        raise SettingsError("an endpoint needs at least one event pattern")
    return checked


def event_matches(patterns: Iterable[str], event_type: str) -> bool:
    """True if ``event_type`` matches one pattern (``*``; exact; ``call.*`` matches ``call.x``, not ``callback.x``)."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-CTI-Signature`` value: ``sha256=`` + hex HMAC-SHA256(secret, ``f"{timestamp}."`` + body)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def signature_headers(secret: str, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header of one delivery attempt."""
    return {"Content-Type": "application/json", "X-CTI-Event-Id": event_id,
            "X-CTI-Timestamp": str(timestamp), "X-CTI-Signature": sign(secret, timestamp, body)}


def verify_signature(secret: str, timestamp: str | int, body: bytes, header: str, *,
                     tolerance_s: float = 300.0, now: float) -> bool:
    """CRM side: True if ``header`` signs ``body`` at ``timestamp`` and the timestamp is within ``tolerance_s``
    of ``now`` (refusing old timestamps stops replays of captured requests). Never raises on bad input."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(now - ts) > tolerance_s or not header.startswith(SIGNATURE_PREFIX):
        return False
    return hmac.compare_digest(sign(secret, ts, body).encode(), header.strip().encode())


def backoff_delay(attempts: int, *, base: float, maximum: float, rand: float) -> float:
    """Delay after the ``attempts``-th failed attempt (1-based): uniform in ``[base, ceiling]`` with
    ``ceiling = min(maximum, base * 2 ** (attempts - 1))``; ``rand`` in [0, 1] picks the point (full jitter).
    The schedule is :class:`cti.events.backoff.Backoff` (tenacity's exponential wait)."""
    return Backoff(base, max(base, maximum)).delay(attempts, rand)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After: <seconds>`` header; None when absent or an HTTP date (not honoured)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


class Verdict(enum.Enum):
    """What an HTTP status means for the entry."""

    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # 408, 429, 5xx, other 4xx (401, 403, 404...: endpoint-wide, fixable), 1xx/3xx
    REJECTED = "rejected"  # REJECTING_STATUSES: this payload will never be accepted -> dead letter now


def classify(status: int) -> Verdict:
    """Map a response status to a :class:`Verdict` (docs/webhooks.md, "Which answers are retried")."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status in REJECTING_STATUSES:
        return Verdict.REJECTED
    return Verdict.RETRY


# ---------------------------------------------------------------------------------------------- counters
@dataclass(slots=True)
class _Counters:
    recorded: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointStats:
    """Counters of one endpoint since this process started."""

    recorded: int  # outbox rows written
    delivered: int  # 2xx received
    failed: int  # failed attempts (each retry counts)
    dead: int  # entries dead-lettered


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookStats:
    """Totals over every endpoint, and per endpoint (for ``/metrics``)."""

    recorded: int
    delivered: int
    failed: int
    dead: int
    endpoints: Mapping[str, EndpointStats]


# ---------------------------------------------------------------------------------------------- dispatcher
class WebhookDispatcher:
    """Records matching bus events in the outbox and delivers them; see the module docstring.

    ``clock`` gives UTC epoch seconds (outbox times and ``X-CTI-Timestamp``); ``rand`` gives jitter in [0, 1);
    ``http`` is a session the caller owns (else ``run`` makes and closes one).

    Raises:
        SettingsError: two endpoints share a name, or an event pattern is malformed.
    """

    def __init__(self, bus: Bus, store: Store, endpoints: Sequence[WebhookConfig], retry: WebhookRetryConfig, *,
                 clock: Callable[[], float] = time.time, http: aiohttp.ClientSession | None = None,
                 rand: Callable[[], float] = random.random, poll_s: float = 1.0, queue_size: int = 10_000,
                 recorded_elsewhere: Callable[[str], bool] | None = None) -> None:
        names = [ep.name for ep in endpoints]
        if len(set(names)) != len(names):
            raise SettingsError(f"webhook endpoint names must be unique, got {names}")
        for ep in endpoints:
            check_patterns(ep.events)
        self._bus = bus
        self._store = store
        self._endpoints = {ep.name: ep for ep in endpoints}
        self._retry = retry
        self._backoff = Backoff(retry.base_delay_s, max(retry.base_delay_s, retry.max_delay_s))
        self._clock = clock
        self._http = http
        self._rand = rand
        self._poll_s = poll_s
        self._queue_size = queue_size
        # Event types another writer puts in the outbox with their records (cti.node.records.DURABLE_EVENTS):
        # the bus recorder skips them, the lanes are woken by ``committed``.
        self._recorded_elsewhere = recorded_elsewhere or (lambda _type: False)
        self._wake = {name: asyncio.Event() for name in names}
        self._counters = {name: _Counters() for name in names}
        self.started = asyncio.Event()  # set once the bus subscription exists

    @property
    def endpoints(self) -> tuple[WebhookConfig, ...]:
        """The configured endpoints, in configuration order."""
        return tuple(self._endpoints.values())

    def stats(self) -> WebhookStats:
        """A snapshot of the counters."""
        per = {name: EndpointStats(recorded=c.recorded, delivered=c.delivered, failed=c.failed, dead=c.dead)
               for name, c in self._counters.items()}
        return WebhookStats(recorded=sum(s.recorded for s in per.values()),
                            delivered=sum(s.delivered for s in per.values()),
                            failed=sum(s.failed for s in per.values()),
                            dead=sum(s.dead for s in per.values()), endpoints=per)

    def now(self) -> float:
        """The dispatcher's clock (UTC epoch seconds)."""
        return self._clock()

    def targets(self, event_type: str) -> list[str]:
        """The endpoints that receive ``event_type``, in configuration order."""
        return [ep.name for ep in self._endpoints.values() if event_matches(ep.events, event_type)]

    def committed(self, rows: Mapping[str, int]) -> None:
        """Another writer committed ``rows[endpoint]`` outbox rows: count them and wake those lanes."""
        for name, n in rows.items():
            if name in self._counters:
                self._counters[name].recorded += n
                self._wake[name].set()

    def wake(self, endpoint: str | None = None) -> None:
        """Make the lane of ``endpoint`` (every lane with None) look for due work now (e.g. after a replay)."""
        for name, event in self._wake.items():
            if endpoint is None or name == endpoint:
                event.set()

    async def run(self) -> None:
        """Record and deliver until cancelled (or until the store is closed under it)."""
        if not self._endpoints:
            self.started.set()
            _log.info("webhook.dispatcher.idle")
            await asyncio.get_running_loop().create_future()  # nothing to do until cancelled
            return
        patterns = sorted({p for ep in self._endpoints.values() for p in ep.events})
        subscription = self._bus.subscribe(patterns, maxsize=self._queue_size, name="webhooks")
        session = self._http if self._http is not None else aiohttp.ClientSession()
        self.started.set()
        _log.info("webhook.dispatcher.started", endpoints=list(self._endpoints))
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._record(subscription), name="webhooks.recorder")
                tasks.create_task(self._send(session), name="webhooks.sender")
        finally:
            subscription.close()
            if self._http is None:
                await session.close()
            _log.info("webhook.dispatcher.stopped")

    # ------------------------------------------------------------------------------------------ recorder
    async def _record(self, subscription: Subscription) -> None:
        async for envelope in subscription:
            if self._recorded_elsewhere(envelope.type):
                continue
            targets = self.targets(envelope.type)
            if not targets:
                continue
            try:
                await self._persist(envelope, targets)
            except StoreClosedError:
                _log.info("webhook.recorder.stopped", reason="store closed")
                return
            for name in targets:
                self._wake[name].set()

    async def _persist(self, envelope: Envelope, targets: list[str]) -> None:
        """Write one row per target in one transaction; retry while the store is busy or failing.

        The retries are tenacity's (exponential from 50 ms, capped at ``_WRITE_RETRY_MAX_S``, never giving up);
        a closed store ends them (shutdown) and a record the store refuses is logged and dropped.
        """

        def log_retry(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            delay = state.next_action.sleep if state.next_action is not None else None
            _log.warning("webhook.outbox.write_failed", event_id=envelope.id, error=str(error), retry_in=delay)

        retrying = tenacity.AsyncRetrying(
            wait=tenacity.wait_exponential(multiplier=_WRITE_RETRY_FIRST_S, max=_WRITE_RETRY_MAX_S),
            retry=tenacity.retry_if_exception(
                lambda exc: isinstance(exc, StoreError) and not isinstance(exc, StoreClosedError | InvalidRecordError)),
            before_sleep=log_retry, reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    await self._enqueue_all(envelope, targets)
        except InvalidRecordError as exc:
            _log.error("webhook.event.unrecordable", event_id=envelope.id, type=envelope.type, error=str(exc))

    async def _enqueue_all(self, envelope: Envelope, targets: list[str]) -> None:
        payload, now = envelope.to_dict(), self._clock()
        try:
            async with self._store.transaction() as tx:
                for name in targets:
                    await tx.enqueue(endpoint=name, event_id=envelope.id, event_type=envelope.type,
                                     payload=payload, created=now)
            fresh = targets
        except ConflictError:  # the same event seen twice: keep the rows we have, add the missing ones
            fresh = []
            for name in targets:
                with contextlib.suppress(ConflictError):
                    await self._store.enqueue(endpoint=name, event_id=envelope.id, event_type=envelope.type,
                                              payload=payload, created=now)
                    fresh.append(name)
        for name in fresh:
            self._counters[name].recorded += 1

    # ------------------------------------------------------------------------------------------ sender
    async def _send(self, session: aiohttp.ClientSession) -> None:
        async with asyncio.TaskGroup() as lanes:
            for ep in self._endpoints.values():
                lanes.create_task(self._lane(ep, session), name=f"webhooks.sender.{ep.name}")

    async def _lane(self, ep: WebhookConfig, session: aiohttp.ClientSession) -> None:
        wake, lease_s = self._wake[ep.name], ep.timeout_s + LEASE_MARGIN_S
        next_due: float | None = None  # when our head is due again, if we rescheduled it
        while True:
            wake.clear()
            try:
                claimed = await self._store.claim_due(self._clock(), endpoint=ep.name, limit=1, lease_s=lease_s)
                if claimed:
                    next_due = await self._attempt(ep, claimed[0], session)
                    continue
            except StoreClosedError:
                _log.info("webhook.sender.stopped", endpoint=ep.name, reason="store closed")
                return
            except StoreError as exc:
                _log.warning("webhook.outbox.read_failed", endpoint=ep.name, error=str(exc))
                next_due = None
            now = self._clock()
            if next_due is not None and next_due <= now:
                next_due = None  # already due yet not claimable: leased elsewhere, or gone; poll
            sleep = self._poll_s if next_due is None else min(self._poll_s, next_due - now)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(sleep):
                    await wake.wait()

    async def _attempt(self, ep: WebhookConfig, entry: OutboxEntry, session: aiohttp.ClientSession) -> float | None:
        """One POST of the claimed head; returns its next attempt time if it stays pending.

        Raises:
            StoreClosedError: the store was closed (shutdown).
        """
        with structlog.contextvars.bound_contextvars(endpoint=ep.name, event_id=entry.event_id,
                                                      entry_id=entry.entry_id, attempt=entry.attempts):
            try:
                body = Envelope.from_dict(entry.payload).to_json()
            except EnvelopeError as exc:
                await self._give_up(ep, entry, f"stored payload is not an envelope: {exc}")
                return None
            timestamp = int(self._clock())
            headers = signature_headers(ep.secret, entry.event_id, timestamp, body)
            try:
                async with asyncio.timeout(ep.timeout_s):
                    async with session.post(ep.url, data=body, headers=headers, allow_redirects=False) as resp:
                        status, retry_after = resp.status, resp.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                return await self._failed(ep, entry, f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS], None)
            try:
                match classify(status):
                    case Verdict.DELIVERED:
                        await self._store.mark_delivered(entry.entry_id, self._clock())
                        self._counters[ep.name].delivered += 1
                        _log.info("webhook.delivery.succeeded", status=status)
                        return None
                    case Verdict.REJECTED:
                        await self._give_up(ep, entry, f"HTTP {status} (rejected)")
                        return None
                    case Verdict.RETRY:
                        return await self._failed(ep, entry, f"HTTP {status}", parse_retry_after(retry_after))
            except OutboxStateError as exc:  # replayed, purged or finished elsewhere while we were sending
                _log.warning("webhook.delivery.outcome_discarded", error=str(exc))
                return None

    async def _failed(self, ep: WebhookConfig, entry: OutboxEntry, error: str,
                      retry_after: float | None) -> float | None:
        delay = self._backoff.delay(entry.attempts, self._rand())
        if retry_after is not None:
            delay = min(max(delay, retry_after), self._retry.max_delay_s)
        next_at = self._clock() + delay
        status = await self._store.mark_failed(entry.entry_id, next_attempt_at=next_at, error=error,
                                               max_attempts=ep.max_attempts)
        counters = self._counters[ep.name]
        counters.failed += 1
        if status is OutboxStatus.DEAD:
            counters.dead += 1
            _log.warning("webhook.delivery.dead_lettered", error=error, max_attempts=ep.max_attempts)
            return None
        _log.warning("webhook.delivery.failed", error=error, retry_in_s=round(delay, 3))
        return next_at

    async def _give_up(self, ep: WebhookConfig, entry: OutboxEntry, error: str) -> None:
        await self._store.dead_letter(entry.entry_id, error)
        counters = self._counters[ep.name]
        counters.failed += 1
        counters.dead += 1
        _log.warning("webhook.delivery.dead_lettered", error=error)
