"""The composition root: build every service from the configuration, run them, stop them cleanly.

``run_server`` is what ``cti serve`` runs. Start order: logging, storage, SIP endpoint (UDP+TCP),
HTTP/WebSocket. Stop order is the reverse; SIGINT/SIGTERM start a graceful stop.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web

from config.errors import Problem
from config.loader import LoadedConfig
from config.schema import ServerConfig
from cti.agent_admin import RuntimeAgents
from cti.alerts import AlertService, AlertSettings, VipSettings, default_rules
from cti.api import MetricFamily, NodeMetrics, build_app
from cti.bus import Bus
from cti.controller import CallController
from cti.gateway import GATEWAY_KEY, add_gateway_routes
from cti.legs import LegTable
from cti.logging import LogFormat, configure_logging
from cti.mqtt import MqttBridge, MqttConfig
from cti.notices import NoticeService
from cti.operations import NodeControl
from cti.publish import Publisher
from cti.sipcore import SipCore
from cti.store import Store, open_store
from cti.tokens import TokenIssuer
from cti.webhook_routes import add_webhook_routes, webhook_metrics
from cti.webhooks import WebhookDispatcher
from ivr import validate_flow_dir
from sip.aio import SipEndpoint
from sip.transaction import TransactionLayer

log = structlog.get_logger(__name__)
WEBHOOKS_WIRED = True  # the webhooks dispatcher runs in every node (tests/integration/test_webhooks_restart.py)


@dataclass(frozen=True, slots=True)
class Overrides:
    """Command-line settings that win over the file."""

    sip_port: int | None = None
    http_port: int | None = None
    bind: str | None = None
    data_dir: str | None = None
    log_format: str | None = None
    log_level: str | None = None

    def apply(self, config: ServerConfig) -> ServerConfig:
        sip = config.sip.model_copy(update={k: v for k, v in (("port", self.sip_port), ("bind", self.bind))
                                            if v is not None})
        http = config.http.model_copy(update={k: v for k, v in (("port", self.http_port), ("bind", self.bind))
                                              if v is not None})
        logging = config.logging.model_copy(update={k: v for k, v in (("format", self.log_format),
                                                                         ("level", self.log_level)) if v is not None})
        update: dict[str, object] = {"sip": sip, "http": http, "logging": logging}
        if self.data_dir is not None:
            update["data_dir"] = self.data_dir
        return config.model_copy(update=update)


def check_everything(loaded: LoadedConfig) -> list[Problem]:
    """Checks beyond the file itself: the flows and prompts it refers to, and the names they use."""
    config = loaded.config
    extra = {"vip": config.vip_numbers} if config.vip_numbers else {}
    problems = list(validate_flow_dir(loaded.flows_dir, loaded.prompts_dir, extra_lists=extra))
    if problems:
        return problems
    from ivr import load_flow_dir

    flows = load_flow_dir(loaded.flows_dir, loaded.prompts_dir, extra_lists=extra)
    queues = {q.name for q in config.queues}
    for t_index, trunk in enumerate(config.trunks):
        for number, flow in trunk.numbers.items():
            if flow not in flows.flows:
                path = ("trunks", t_index, "numbers", number)
                problems.append(loaded.source.problem(path, f"trunk {trunk.name!r}: unknown flow {flow!r}"))
    from ivr.flow import Callback, Queue

    for name, flow_def in flows.flows.items():
        for node in flow_def.nodes.values():
            if isinstance(node, Queue | Callback) and node.queue not in queues:
                problems.append(Problem(str(loaded.flows_dir), 1,
                                        f"flow {name!r} sends calls to queue {node.queue!r}, which the config lacks"))
    return problems


class Server:
    """One node: SIP signalling, media, routing, HTTP/WebSocket."""

    def __init__(self, loaded: LoadedConfig, overrides: Overrides = Overrides()) -> None:
        self.loaded = loaded
        self.config = overrides.apply(loaded.config)
        self.sip_core = SipCore(self.config)
        self.endpoint = SipEndpoint(TransactionLayer(), self.sip_core)
        self.sip_core.bind(self.endpoint)
        self._http_runner: web.AppRunner | None = None
        self.http_port = 0
        self.store: Store | None = None
        self.controller: CallController | None = None
        self.bus = Bus()
        self.publisher = Publisher(self.bus, self.config.node.name)
        self.mqtt: MqttBridge | None = None
        self._app: web.Application | None = None
        self.webhooks: WebhookDispatcher | None = None
        self._webhooks_task: asyncio.Task[None] | None = None

    async def start(self, tasks: asyncio.TaskGroup) -> None:
        """Open the store, load the flows, bind every listener.

        Raises:
            OSError: a port is taken. ConfigFileError: the flows are invalid. StoreError: bad database.
        """
        data_dir = Path(self.config.data_dir)
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
        self.store = await open_store(self.config.storage.url or data_dir / "cti.sqlite3",
                                      pool_size=self.config.storage.pool_size)
        threshold = min((q.sl_threshold_s for q in self.config.queues), default=20.0)
        target = max((q.sl_target for q in self.config.queues), default=0.8)
        self.alerts = AlertService(self.bus, self.config.node.name, AlertSettings(
            vip=VipSettings(vip_wait_alert_s=threshold / 2), thresholds=default_rules(sl_target=target)))
        tasks.create_task(self.alerts.run(self.alerts.subscribe()), name="alerts")
        self.notices = NoticeService(self.bus, self.config.node.name)
        self.webhooks = WebhookDispatcher(self.bus, self.store, self.config.webhooks, self.config.webhook_retry)
        self._webhooks_task = tasks.create_task(self.webhooks.run(), name="webhooks")
        async with asyncio.timeout(5):
            await self.webhooks.started.wait()  # subscribed before anything publishes: no early event missed
        sip = self.config.sip
        # The call path is ready before the SIP sockets are bound: the first INVITE is served, not refused.
        legs = LegTable(self.endpoint, sip.bind, sip.port)
        controller = CallController(self.loaded, self.config, legs, self.sip_core.registration, self.store,
                                    self.publisher)
        await asyncio.to_thread(controller.load)
        started = asyncio.Event()
        tasks.create_task(controller.run(started), name="call-controller")
        await started.wait()
        self.controller = controller
        self.sip_core.attach_calls(legs, controller)
        self.sip_core.registration.use_agents(controller.agents)
        await self.endpoint.start(sip.bind, sip.port, sip.transports, tcp_idle_timeout=sip.tcp_idle_timeout_s)
        legs.set_port(self.endpoint.local_address()[1])  # the bound port (sip.port may be 0)
        mqtt = self.config.mqtt
        if mqtt.enabled:
            self.mqtt = MqttBridge(MqttConfig(enabled=True, host=mqtt.host, port=mqtt.port, prefix=mqtt.prefix,
                                              client_id=f"cti-{self.config.node.name}", username=mqtt.username,
                                              password=mqtt.password, buffer_size=mqtt.buffer_size, qos=mqtt.qos),
                                   self.bus)
            tasks.create_task(self.mqtt.run(), name="mqtt-bridge")
        control = NodeControl(controller)
        self.control = control

        async def reload_flows() -> int:
            return (await controller.flows.reload()).version

        app = build_app(control, token=self.config.operator_token, node=self.config.node.name,
                        metrics=NodeMetrics(controller), reload=reload_flows,
                        agent_admin=RuntimeAgents(controller.agents, control),
                        extra_metrics=[webhook_metrics(self.webhooks), self._gateway_metrics])
        add_webhook_routes(app, store=self.store, dispatcher=self.webhooks)
        secret = self.config.token_secret.encode() if self.config.token_secret else secrets.token_bytes(32)
        tokens = TokenIssuer(secret, ttl_s=self.config.token_ttl_s, clock=time.time)
        add_gateway_routes(app, control=control, bus=self.bus, tokens=tokens,
                           operator_token=self.config.operator_token, node=self.config.node.name,
                           notices=self.notices)
        self._app = app
        self._http_runner = web.AppRunner(app, access_log=None)
        await self._http_runner.setup()
        site = web.TCPSite(self._http_runner, self.config.http.bind, self.config.http.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.http_port = sockets[0].getsockname()[1] if sockets else self.config.http.port
        log.info("server.node.started", node=self.config.node.name,
                 sip=f"{sip.bind}:{self.endpoint.local_address()[1]}",
                 http=f"{self.config.http.bind}:{self.http_port}")

    def _gateway_metrics(self) -> list[MetricFamily]:
        """WebSocket and MQTT figures for ``/metrics``."""
        families: list[MetricFamily] = []
        if self._app is not None and GATEWAY_KEY in self._app:
            stats = self._app[GATEWAY_KEY].stats()
            families += [
                MetricFamily("cti_ws_connections", "gauge", "open WebSocket connections by role",
                             [({"role": role}, float(n)) for role, n in stats.connections.items()]),
                MetricFamily("cti_ws_events_dropped_total", "counter", "events dropped for slow WebSocket clients",
                             [({}, float(stats.events_dropped))]),
                MetricFamily("cti_ws_slow_disconnects_total", "counter", "clients disconnected for not reading",
                             [({}, float(stats.slow_disconnects))]),
            ]
        if self.mqtt is not None:
            mqtt = self.mqtt.stats()
            families += [
                MetricFamily("cti_mqtt_connected", "gauge", "1 while the MQTT bridge is connected",
                             [({}, float(mqtt.connected))]),
                MetricFamily("cti_mqtt_published_total", "counter", "events acknowledged by the broker",
                             [({}, float(mqtt.published))]),
                MetricFamily("cti_mqtt_dropped_total", "counter", "events lost to the bridge's buffer bound",
                             [({}, float(mqtt.dropped))]),
            ]
        return families

    async def stop(self, grace: float = 10.0) -> None:
        """Graceful stop: refuse new calls with 503, let live ones end (up to ``grace``), close."""
        log.info("server.node.stopping", node=self.config.node.name, calls=len(self.controller.calls)
                 if self.controller else 0)
        if self.controller is not None:
            await self.controller.drain(grace)
        if self._http_runner is not None:
            await self._http_runner.cleanup()
        self.sip_core.registration.close()
        await self.endpoint.close()
        if self._webhooks_task is not None:
            self._webhooks_task.cancel()
            await asyncio.wait([self._webhooks_task], timeout=5)
        if self.store is not None:
            await self.store.close()
        log.info("server.node.stopped", node=self.config.node.name)


async def run_server(loaded: LoadedConfig, overrides: Overrides = Overrides()) -> None:
    """Run one node until SIGINT/SIGTERM."""
    config = overrides.apply(loaded.config)
    fmt: LogFormat = "json" if config.logging.format == "json" else "console"
    configure_logging(config.logging.level, fmt)
    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = 0.05
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = Server(loaded, overrides)
    try:
        async with asyncio.TaskGroup() as tasks:
            try:
                await server.start(tasks)  # a port taken, a bad flow...: stop what did start, then report
                tune_gc()
                collector = tasks.create_task(collect_garbage(), name="gc")
                await stop.wait()
                collector.cancel()
            finally:
                await server.stop()
            raise _Stopped
    except* _Stopped:
        pass


# Cyclic garbage collection, tuned for a server whose heap is mostly long-lived: config, flows,
# agents, and every finished transaction of the last 32 s (RFC 3261 timers J/K/D keep them). A
# finished call lets go of its reference cycles (Call._release), so reference counting frees it;
# the cyclic collector only has to catch what is left. CPython's automatic full collections would
# still traverse the whole heap every few seconds (a quarter of the event loop's time at 250 calls/s,
# docs/performance.md). So: what start-up made is frozen out of collections, the young generations
# are collected after 50,000 net allocations (not 700), automatic full collections are off, and
# ``collect_garbage`` runs one full collection every ``FULL_GC_EVERY_S`` seconds, logged with its
# pause (about 0.4 s at 250 calls/s, a few ms at tens of calls/s).
GC_THRESHOLDS = (50_000, 50, 1_000_000)
FULL_GC_EVERY_S = 600.0


def tune_gc() -> None:
    """Freeze what start-up made and set the thresholds (see ``GC_THRESHOLDS``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def collect_garbage(every_s: float = FULL_GC_EVERY_S) -> None:
    """One full cyclic collection every ``every_s`` seconds, until cancelled."""
    while True:
        await asyncio.sleep(every_s)
        started = time.perf_counter()
        found = gc.collect()
        pause_ms = (time.perf_counter() - started) * 1000
        (log.warning if pause_ms > 200 else log.info)("server.gc.collected", objects=found, pause_ms=round(pause_ms))


class _Stopped(Exception):
    """Ends the server's task group after a graceful stop (cancelling the owned tasks)."""
