"""The MQTT bridge: every bus event to a broker, in order, surviving broker restarts.

The bridge subscribes to the bus (``*``) and publishes each envelope as compact JSON to
``<prefix>/<node>/<type with dots as slashes>`` (``cti/cti-a/call/offered``) with the configured QoS (1 by default).

Delivery: the bridge keeps events in a bounded in-memory deque (``buffer_size``, default 10,000). It publishes the
head, waits for the broker's acknowledgement (PUBACK for QoS 1), and only then removes it; so events leave in order
and a connection lost mid-publish re-sends that event after reconnecting (at-least-once: consumers de-duplicate on
``id``). While the broker is away the deque fills; when full the *oldest* event is dropped and counted
(``mqtt.event.dropped`` is logged at most once per second). Reconnection uses exponential back-off with jitter,
bounded by ``reconnect_min`` and ``reconnect_max`` (0.5 s → 30 s): :class:`cti.events.backoff.Backoff`, over tenacity.

``run()`` is one long-lived coroutine: start it as a named task in the owner's TaskGroup and cancel it to stop; it
disconnects cleanly and unsubscribes from the bus. Events still buffered at shutdown are lost (and logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from dataclasses import dataclass
from typing import Final

import aiomqtt
import structlog

from cti.errors import SettingsError
from cti.events.backoff import Backoff
from cti.events.bus import Bus, Subscription
from cti.events.registry import Envelope, EnvelopeError

__all__ = ["MqttBridge", "MqttBridgeStats", "MqttConfig", "backoff_delay", "topic_for"]

_log = structlog.get_logger(__name__)

_DROP_LOG_INTERVAL: Final = 1.0
_TOPIC_UNSAFE: Final = str.maketrans({"/": "_", "+": "_", "#": "_"})


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttConfig:
    """Settings of the MQTT bridge; the bridge is off unless ``enabled``."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str = "cti"
    client_id: str | None = None  # None: a random id per connection
    username: str | None = None
    password: str | None = None
    buffer_size: int = 10_000
    qos: int = 1
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    timeout: float = 10.0  # connect, acknowledgement and disconnect timeout
    keepalive: int = 30

    def __post_init__(self) -> None:
        if self.qos not in (0, 1, 2):
            raise SettingsError(f"qos must be 0, 1 or 2, got {self.qos}")
        if self.buffer_size < 1:
            raise SettingsError("buffer_size must be at least 1")
        if not self.prefix or any(c in self.prefix for c in "+#") or self.prefix.startswith("/"):
            raise SettingsError(f"prefix must be a plain topic level path, got {self.prefix!r}")
        if not 0 < self.reconnect_min <= self.reconnect_max:
            raise SettingsError("need 0 < reconnect_min <= reconnect_max")
        if self.timeout <= 0 or not 0 < self.port < 65536:
            raise SettingsError("timeout must be positive and port in 1..65535")

    def __repr__(self) -> str:  # never show the password
        return f"MqttConfig(host={self.host!r}, port={self.port}, prefix={self.prefix!r}, enabled={self.enabled})"


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttBridgeStats:
    """Counters of the bridge (for ``/metrics``)."""

    connected: bool
    published: int  # acknowledged by the broker
    buffered: int  # waiting to be published
    dropped: int  # lost to the buffer bound
    skipped: int  # could not be encoded
    connects: int  # successful connections so far


def topic_for(prefix: str, envelope: Envelope) -> str:
    """Return ``<prefix>/<node>/<type with dots as slashes>``; ``/``, ``+`` and ``#`` in the node become ``_``."""
    return f"{prefix}/{envelope.node.translate(_TOPIC_UNSAFE)}/{envelope.type.replace('.', '/')}"


def backoff_delay(attempt: int, *, initial: float, maximum: float, rand: float) -> float:
    """Delay before reconnect ``attempt`` (0-based): half of ``min(maximum, initial * 2**attempt)`` plus jitter.

    ``rand`` in [0, 1) spreads the second half, so the delay lies in [ceiling/2, ceiling]. The schedule is
    :class:`cti.events.backoff.Backoff` (tenacity's exponential wait) with ``floor=0.5``.
    """
    return Backoff(initial, maximum, floor=0.5).delay(attempt + 1, rand)


class MqttBridge:
    """Publishes every bus event to an MQTT broker; see the module docstring for the delivery rules."""

    def __init__(self, config: MqttConfig, bus: Bus, *, rng: random.Random | None = None) -> None:
        self._config = config
        self._bus = bus
        self._rng = rng or random.Random()
        self._backoff = Backoff(config.reconnect_min, config.reconnect_max, floor=0.5)
        self._pending: deque[Envelope] = deque()
        self._subscription: Subscription | None = None
        self._connected = False
        self._published = 0
        self._dropped = 0
        self._skipped = 0
        self._connects = 0
        self._dropped_since_log = 0
        self._last_drop_log: float | None = None

    @property
    def connected(self) -> bool:
        """True while a broker connection is up."""
        return self._connected

    def stats(self) -> MqttBridgeStats:
        """Snapshot of the counters; ``dropped`` includes events the bus dropped before the bridge saw them."""
        sub = self._subscription
        return MqttBridgeStats(
            connected=self._connected,
            published=self._published,
            buffered=len(self._pending) + (sub.qsize() if sub else 0),
            dropped=self._dropped + (sub.dropped if sub else 0),
            skipped=self._skipped,
            connects=self._connects,
        )

    async def run(self) -> None:
        """Bridge until cancelled. Never returns on its own unless the bridge is disabled.

        Raises:
            asyncio.CancelledError: on shutdown (after disconnecting and unsubscribing).
        """
        cfg = self._config
        if not cfg.enabled:
            _log.info("mqtt.bridge.disabled")
            return
        async with self._bus.subscribe("*", maxsize=cfg.buffer_size, name="mqtt-bridge") as sub:
            self._subscription = sub
            _log.info("mqtt.bridge.started", host=cfg.host, port=cfg.port, prefix=cfg.prefix, qos=cfg.qos)
            attempt = 0
            try:
                while True:
                    connects = self._connects
                    try:
                        await self._session(sub)
                    except* aiomqtt.MqttError as group:
                        reason = str(group.exceptions[0])
                        if self._connects != connects:
                            _log.warning("mqtt.broker.disconnected", reason=reason, buffered=self.stats().buffered)
                        else:
                            _log.info("mqtt.connect.failed", reason=reason, attempt=attempt + 1)
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():  # a child error must not hide our cancellation
                        raise asyncio.CancelledError
                    if self._connects != connects:
                        attempt = 0
                    delay = self._backoff.delay(attempt + 1, self._rng.random())
                    attempt += 1
                    await self._buffer_for(sub, delay)
            finally:
                self._connected = False
                _log.info("mqtt.bridge.stopped", published=self._published, lost=self.stats().buffered)

    def _client(self) -> aiomqtt.Client:
        cfg = self._config
        return aiomqtt.Client(
            cfg.host,
            cfg.port,
            identifier=cfg.client_id,
            username=cfg.username,
            password=cfg.password,
            timeout=cfg.timeout,
            keepalive=cfg.keepalive,
        )

    async def _session(self, sub: Subscription) -> None:
        """One connection: publish until the broker goes away (raises ``aiomqtt.MqttError``)."""
        async with contextlib.AsyncExitStack() as stack:
            client = self._client()
            try:
                async with asyncio.timeout(self._config.timeout + 1):
                    await stack.enter_async_context(client)
            except TimeoutError as exc:
                raise aiomqtt.MqttError("connect timed out") from exc
            self._connected = True
            self._connects += 1
            _log.info("mqtt.broker.connected", host=self._config.host, port=self._config.port,
                      buffered=self.stats().buffered)
            try:
                # Forward in the body, not in a child: on 3.11 a child failing after the body has ended leaves a
                # stray cancellation request on this task (fixed in 3.12), which would end the bridge.
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._watch(client), name="mqtt.bridge.watch")
                    await self._forward(client, sub)
            finally:
                self._connected = False

    async def _watch(self, client: aiomqtt.Client) -> None:
        """Raise ``MqttError`` as soon as the connection drops, even while the bridge is idle."""
        async for _message in client.messages:  # we subscribe to nothing; this only ends on disconnect
            pass
        raise aiomqtt.MqttError("message stream ended")

    async def _forward(self, client: aiomqtt.Client, sub: Subscription) -> None:
        cfg = self._config
        while True:
            self._take_ready(sub)
            if not self._pending:
                self._enqueue(await sub.get())  # idle: wait for the next event (ended by cancellation)
                continue
            envelope = self._pending[0]
            try:
                payload = envelope.to_json()
            except EnvelopeError as exc:
                self._pending.popleft()
                self._skipped += 1
                _log.error("mqtt.event.skipped", type=envelope.type, id=envelope.id, reason=str(exc))
                continue
            try:
                async with asyncio.timeout(cfg.timeout + 1):
                    await client.publish(topic_for(cfg.prefix, envelope), payload, qos=cfg.qos, timeout=cfg.timeout)
            except TimeoutError as exc:
                raise aiomqtt.MqttError("publish not acknowledged") from exc
            self._pending.popleft()  # only now: a failed publish is retried after reconnecting
            self._published += 1

    async def _buffer_for(self, sub: Subscription, delay: float) -> None:
        """Wait ``delay`` seconds before reconnecting, moving bus events into the bounded buffer meanwhile."""
        try:
            async with asyncio.timeout(delay):
                while True:
                    self._enqueue(await sub.get())
        except TimeoutError:
            pass

    def _take_ready(self, sub: Subscription) -> None:
        while sub.qsize():
            self._enqueue(sub.get_nowait())

    def _enqueue(self, envelope: Envelope) -> None:
        if len(self._pending) >= self._config.buffer_size:
            lost = self._pending.popleft()
            self._dropped += 1
            self._dropped_since_log += 1
            now = asyncio.get_running_loop().time()
            if self._last_drop_log is None or now - self._last_drop_log >= _DROP_LOG_INTERVAL:
                _log.warning("mqtt.event.dropped", type=lost.type, dropped=self._dropped_since_log,
                             dropped_total=self.stats().dropped, buffer_size=self._config.buffer_size)
                self._last_drop_log, self._dropped_since_log = now, 0
        self._pending.append(envelope)
