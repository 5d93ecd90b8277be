"""The MQTT bridge against a real Mosquitto started per test on a free port.

Determinism across a broker restart: the test subscriber uses a persistent session (``clean_session=False``, fixed
client id, QoS 1) and the broker runs with persistence on, so the broker keeps the subscriber's subscription through
the restart and queues what the bridge flushes even if the bridge reconnects before the subscriber does.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiomqtt
import pytest

from cti.events.bus import Bus
from cti.events.mqtt import MqttBridge, MqttConfig, backoff_delay, topic_for
from cti.events.registry import Envelope
from tests.support.procs import free_port

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed"),
    pytest.mark.timeout(30),
]

NODE = "node-a"


class Broker:
    """A private Mosquitto with persistence, restartable on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port("tcp")
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
            f"persistence true\npersistence_location {workdir}/\nautosave_interval 0\n"
            f"log_dest file {workdir}/mosquitto.log\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.workdir / "mosquitto.log").read_text()
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise TimeoutError("mosquitto did not listen")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()  # SIGTERM: mosquitto saves its persistence database on the way out
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()


class Recorder:
    """An aiomqtt subscriber with a persistent session that reconnects until cancelled."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[tuple[str, bytes]] = []
        self.subscribed = asyncio.Event()
        self._changed = asyncio.Event()
        self._client: aiomqtt.Client | None = None

    async def sync(self) -> None:
        """Make sure the broker has processed our acknowledgements (it handles one connection's packets in order).

        Without this, stopping the broker right after delivery may leave the last PUBACKs unprocessed and the
        persistent session re-delivers those messages after the restart (correct at-least-once behaviour, but not
        what these tests measure).
        """
        assert self._client is not None
        await self._client.publish("test/sync", b"", qos=1, timeout=2)

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", self.port, identifier="test-recorder", clean_session=False,
                                          timeout=2) as client:
                    await client.subscribe("cti/#", qos=1)
                    self._client = client
                    self.subscribed.set()
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes | bytearray)
                        self.received.append((str(message.topic), bytes(message.payload)))
                        self._changed.set()
            except aiomqtt.MqttError:
                self._client = None
                self.subscribed.clear()
                await asyncio.sleep(0.05)

    async def wait_for(self, count: int, within: float = 8.0) -> list[Envelope]:
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self._changed.clear()
                await self._changed.wait()
        return [Envelope.from_json(payload) for _, payload in self.received]


async def until(predicate: Callable[[], bool], within: float = 8.0) -> None:
    """Poll a condition the bridge exposes no event for (it is test-only, so polling is acceptable)."""
    async with asyncio.timeout(within):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(broker: Broker, *, buffer_size: int = 1000) -> AsyncIterator[tuple[Bus, MqttBridge, Recorder]]:
    bus = Bus(validate_schemas=False)
    config = MqttConfig(enabled=True, port=broker.port, buffer_size=buffer_size, reconnect_min=0.05,
                        reconnect_max=0.3, timeout=3.0)
    bridge = MqttBridge(config, bus)
    recorder = Recorder(broker.port)
    async with asyncio.TaskGroup() as tg:
        recorder_task = tg.create_task(recorder.run(), name="test.mqtt.recorder")
        async with asyncio.timeout(5):
            await recorder.subscribed.wait()
        bridge_task = tg.create_task(bridge.run(), name="mqtt.bridge")
        await until(lambda: bridge.connected)
        try:
            yield bus, bridge, recorder
        finally:
            bridge_task.cancel()
            recorder_task.cancel()
    # Clean shutdown: the bridge left the bus and reports itself disconnected.
    assert bus.stats().subscriptions == 0
    assert not bridge.connected


def event(n: int, type_: str = "call.offered") -> Envelope:
    return Envelope.new(type_, {"n": n}, node=NODE, now=1_718_000_000.0 + n)


async def test_events_reach_the_documented_topics_in_order(broker: Broker) -> None:
    types = ["agent.state_changed", "call.offered", "call.answered", "queue.stats", "notice.broadcast"]
    sent = [event(n, types[n % len(types)]) for n in range(25)]
    async with running(broker) as (bus, bridge, recorder):
        for env in sent:
            bus.publish(env)
        got = await recorder.wait_for(len(sent))
        await until(lambda: bridge.stats().published == len(sent))
    assert got == sent
    assert [topic for topic, _ in recorder.received] == [f"cti/{NODE}/{e.type.replace('.', '/')}" for e in sent]
    assert recorder.received[1][0] == "cti/node-a/call/offered" == topic_for("cti", sent[1])
    assert bridge.stats().dropped == 0


async def test_events_published_while_the_broker_is_down_all_arrive_in_order(broker: Broker) -> None:
    before = [event(n) for n in range(5)]
    during = [event(n, "call.ended") for n in range(5, 5 + 200)]
    async with running(broker) as (bus, bridge, recorder):
        for env in before:
            bus.publish(env)
        await recorder.wait_for(len(before))
        await until(lambda: bridge.stats().published == len(before))
        await recorder.sync()

        await asyncio.to_thread(broker.stop)
        await until(lambda: not bridge.connected)
        for env in during:
            bus.publish(env)
        await until(lambda: bridge.stats().buffered == len(during))
        assert bridge.stats().published == len(before)

        await asyncio.to_thread(broker.start)
        got = await recorder.wait_for(len(before) + len(during))
        await until(lambda: bridge.stats().buffered == 0)
    assert got == before + during  # all of them, in order, no duplicates
    assert bridge.stats().dropped == 0
    assert bridge.stats().connects == 2


async def test_overflow_beyond_the_buffer_drops_the_oldest_and_counts_them(broker: Broker) -> None:
    size, overflow = 20, 7
    async with running(broker, buffer_size=size) as (bus, bridge, recorder):
        await asyncio.to_thread(broker.stop)
        await until(lambda: not bridge.connected)
        during = [event(n) for n in range(size + overflow)]
        for env in during:
            bus.publish(env)
        assert bridge.stats().dropped == overflow
        await asyncio.sleep(0.2)  # let the bridge move events into its own buffer across a reconnect attempt
        assert bridge.stats().dropped == overflow
        assert bridge.stats().buffered == size

        await asyncio.to_thread(broker.start)
        got = await recorder.wait_for(size)
        await until(lambda: bridge.stats().buffered == 0)
    assert got == during[overflow:]
    assert bridge.stats().dropped == overflow


def test_backoff_is_bounded_and_jittered() -> None:
    delays = [backoff_delay(a, initial=0.5, maximum=30.0, rand=r) for a in range(12) for r in (0.0, 0.999)]
    assert min(delays) == 0.25 and max(delays) <= 30.0
    assert backoff_delay(3, initial=0.5, maximum=30.0, rand=0.0) == 2.0
    assert backoff_delay(100, initial=0.5, maximum=30.0, rand=0.5) == 22.5


def test_config_is_validated_and_hides_the_password() -> None:
    with pytest.raises(ValueError):
        MqttConfig(qos=3)
    with pytest.raises(ValueError):
        MqttConfig(prefix="cti/#")
    with pytest.raises(ValueError):
        MqttConfig(buffer_size=0)
    assert "s3cret" not in repr(MqttConfig(username="u", password="s3cret"))
    assert topic_for("cti", Envelope.new("call.ended", {}, node="a/b+#", now=0.0)) == "cti/a_b__/call/ended"
