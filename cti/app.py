"""The composition root: build every service from the configuration, run them, stop them cleanly.

``run_server`` is what ``cti serve`` runs. Start order: logging, storage (and the closing of calls a
crash left open), SIP endpoint (UDP+TCP), HTTP/WebSocket. Stop order is the reverse.

Crash-only (docs/reliability.md): SIGINT/SIGTERM start a graceful stop bounded by ``node.drain_s``;
a second signal exits at once. A task of the node's own task group failing (the store gone past
``storage.fatal_after_s``, a listener dead, a bug outside any call) is fatal: it is logged with its
traceback and the process exits non-zero within seconds, whatever threads are blocked, so that
the service manager restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import secrets
import signal
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web

from config.errors import Problem
from config.loader import LoadedConfig
from config.schema import ServerConfig
from cti import gcaudit
from cti.adherence.routes import AdherenceApi
from cti.adherence.service import AdherenceService, report_options, settings_from_config
from cti.call.ivrchannel import keep_message
from cti.call.legs import LegTable
from cti.errors import CtiError
from cti.events.bus import Bus, first_seq
from cti.events.mqtt import MqttBridge, MqttConfig
from cti.events.publish import Publisher
from cti.events.webhooks import WebhookDispatcher
from cti.floor.agent_admin import RuntimeAgents
from cti.floor.alerts import AlertService, AlertSettings, VipSettings, default_rules
from cti.floor.notices import NoticeService
from cti.floor.operations import NodeControl
from cti.gateway import GATEWAY_KEY, GatewaySettings, add_gateway_routes
from cti.gateway.session import site_info
from cti.http.api import MetricFamily, NodeMetrics, build_app
from cti.http.contacts import add_contact_routes
from cti.http.pages import add_page_routes
from cti.http.webhook_routes import add_webhook_routes, webhook_metrics
from cti.logging import LogFormat, bind_module_loggers, configure_logging
from cti.node.controller import CallController
from cti.node.records import CallRecords, is_durable
from cti.node.sipcore import SipCore
from cti.phone import WebPhones, local_host
from cti.qa.routes import mount_qa
from cti.reports.routes import add_report_routes
from cti.store import Store, StoreError, open_store
from cti.tlsfiles import TlsFiles, self_signed, server_context
from cti.tokens import TokenIssuer
from cti.voicemail import recover_messages
from cti.voicemail.routes import add_voicemail_routes
from ivr import validate_flow_dir
from sip import TransactionLayer
from sip.aio import SipEndpoint

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
    welcome: bool = False  # print where to go next once the node is up (``cti serve --demo``)

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
    from cti.node.routing import overflow_flow_problems

    problems += overflow_flow_problems(loaded.source, config.queues, flows)
    from ivr.flow import Queue

    for name, flow_def in flows.flows.items():
        for node in flow_def.nodes.values():
            if isinstance(node, Queue) and node.queue not in queues:
                problems.append(Problem(str(loaded.flows_dir), 1,
                                        f"flow {name!r} sends calls to queue {node.queue!r}, which the config lacks"))
    return problems


class Server:
    """One node: SIP signalling, media, routing, HTTP/WebSocket."""

    started = False

    def __init__(self, loaded: LoadedConfig, overrides: Overrides = Overrides()) -> None:
        self.loaded = loaded
        self.overrides = overrides
        self.config = overrides.apply(loaded.config)
        self.sip_core = SipCore(self.config)
        self.endpoint = SipEndpoint(TransactionLayer(), self.sip_core)
        self.sip_core.bind(self.endpoint)
        self._http_runner: web.AppRunner | None = None
        self.http_port = 0
        self.store: Store | None = None
        self.store_target: str | Path | None = None  # what report workers open
        self.controller: CallController | None = None
        # CTI_VALIDATE_EVENTS=1 (the test fixtures set it): every event is checked against its schema
        # and a mismatch is logged as bus.event.invalid (docs/events.md, docs/testing.md).
        self.bus = Bus(log_invalid=os.environ.get("CTI_VALIDATE_EVENTS") == "1", first_seq=first_seq(time.time()))
        self.publisher = Publisher(self.bus, self.config.node.name)
        self.mqtt: MqttBridge | None = None
        self._app: web.Application | None = None
        self.webhooks: WebhookDispatcher | None = None
        self._webhooks_task: asyncio.Task[None] | None = None
        self.phones: WebPhones | None = None

    async def start(self, tasks: asyncio.TaskGroup) -> None:
        """Open the store, load the flows, bind every listener.

        Raises:
            OSError: a port is taken. ConfigFileError: the flows are invalid. StoreError: bad database.
        """
        data_dir = Path(self.config.data_dir)
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
        self.store_target = self.config.storage.url or data_dir / "cti.sqlite3"
        self.store = await open_store(self.store_target, pool_size=self.config.storage.pool_size)
        threshold = min((q.sl_threshold_s for q in self.config.queues), default=20.0)
        target = max((q.sl_target for q in self.config.queues), default=0.8)
        self.alerts = AlertService(self.bus, self.config.node.name, AlertSettings(
            vip=VipSettings(vip_wait_alert_s=threshold / 2), thresholds=default_rules(sl_target=target)))
        tasks.create_task(self.alerts.run(self.alerts.subscribe()), name="alerts")
        self.adherence = AdherenceService(self.bus, self.store, self.config.node.name,
                                          settings_from_config(self.config.adherence))
        tasks.create_task(self.adherence.run(self.adherence.subscribe()), name="adherence")
        self.notices = NoticeService(self.bus, self.config.node.name)
        self.webhooks = WebhookDispatcher(self.bus, self.store, self.config.webhooks, self.config.webhook_retry,
                                          recorded_elsewhere=is_durable)
        self._webhooks_task = tasks.create_task(self.webhooks.run(), name="webhooks")
        async with asyncio.timeout(5):
            await self.webhooks.started.wait()  # subscribed before anything publishes: no early event missed
        sip = self.config.sip
        # The call path is ready before the SIP sockets are bound: the first INVITE is served, not refused.
        legs = LegTable(self.endpoint, sip.bind, sip.port)
        controller = CallController(self.loaded, self.config, legs, self.sip_core.registration, self.store,
                                    self.publisher)
        await asyncio.to_thread(controller.load)
        # Durable events reach the outbox through the record writer, with their records.
        controller.records.outbox = self.webhooks
        self.publisher.durable = controller.records.event
        await self._close_interrupted(controller.records)
        from cti.reports.live import restore_live_stats  # "today" goes on from the records (docs/reports.md)

        restored = await restore_live_stats(controller.acd.router, self.store, self.config, controller.clock)
        log.info("server.stats.restored", legs=restored)
        started = asyncio.Event()
        tasks.create_task(controller.run(started), name="call-controller")
        await started.wait()
        # Messages a crash cut short are kept like the others (row, voicemail.left) before a call arrives.
        for message in await asyncio.to_thread(recover_messages, controller.settings.voicemail_dir):
            await keep_message(controller.call_ports, message)
        self.controller = controller
        self.sip_core.attach_calls(legs, controller)
        self.sip_core.registration.use_agents(controller.agents)
        sip_tls = await asyncio.to_thread(self._sip_tls_context) if "tls" in sip.transports else None
        await self.endpoint.start(sip.bind, sip.port, sip.transports, tcp_idle_timeout=sip.tcp_idle_timeout_s,
                                  tls=sip_tls, tls_port=sip.tls_port)
        legs.set_port(self.endpoint.local_address()[1],  # the bound ports (sip.port, sip.tls_port may be 0)
                      self.endpoint.local_address("TLS")[1] if "tls" in sip.transports else None)
        # Browser phones (docs/web.md): the node's own SIP user agent, bound in the registrar like a softphone.
        self.phones = WebPhones(self.sip_core.registration,
                                lambda type_, data: self.publisher.publish(type_, data, durable=False),
                                host=sip.bind, node_sip=(local_host(sip.bind), self.endpoint.local_address()[1]))
        tasks.create_task(self.phones.run(), name="web-phones")
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
                        extra_metrics=[webhook_metrics(self.webhooks), self._gateway_metrics],
                        http=self.config.http,
                        adherence=AdherenceApi(service=self.adherence, zone=self.config.node.zone,
                                               report_max_days=self.config.adherence.report_max_days,
                                               options=report_options(self.config), agents=control.agent_ids))
        add_webhook_routes(app, store=self.store, dispatcher=self.webhooks)
        add_page_routes(app)
        secret = self.config.token_secret.encode() if self.config.token_secret else secrets.token_bytes(32)
        tokens = TokenIssuer(secret, ttl_s=self.config.token_ttl_s, clock=time.time)
        add_report_routes(app, store_target=self.store_target, config=self.config, clock=controller.clock.wall,
                          tokens=tokens)
        add_contact_routes(app, store=self.store, control=control, tokens=tokens)  # the screen pop's history
        desk = self.config.desk
        add_voicemail_routes(app, store=self.store, control=control, tokens=tokens,  # docs/voicemail.md
                             directory=controller.settings.voicemail_dir, clock=controller.clock.wall)
        replay = GatewaySettings(replay_events=self.config.http.ws_replay_events,
                                 replay_age_s=self.config.http.ws_replay_s,
                                 replay_bytes=self.config.http.ws_replay_bytes)
        add_gateway_routes(app, control=control, bus=self.bus, tokens=tokens,
                           operator_token=self.config.operator_token, node=self.config.node.name,
                           notices=self.notices, settings=replay, phones=self.phones,
                           site=site_info(self.config.node.timezone, desk.codes_of(desk.pause_reasons),
                                          desk.codes_of(desk.dispositions),
                                          pause_reason_labels=desk.labels_of(desk.pause_reasons),
                                          disposition_labels=desk.labels_of(desk.dispositions)))
        qa = mount_qa(app, store=self.store, config=self.config, directory=control, publisher=self.publisher,
                      notices=self.notices, tokens=tokens)  # quality assurance (docs/qa.md)
        tasks.create_task(qa.run_finaliser(), name="qa-finaliser")  # FINAL once the filing window closes
        self._app = app
        from cti.http.guard import serve_http  # the HTTP guard's caps, deadlines and headers (docs/api.md)

        http_tls = self.config.http.tls
        https = None if http_tls is None else await asyncio.to_thread(
            server_context, TlsFiles(Path(http_tls.cert_file), Path(http_tls.key_file)))
        self._http_runner, self.http_port = await serve_http(app, https)
        self.started = True
        if self.bus.checks_events:
            log.info("server.events.checked", env="CTI_VALIDATE_EVENTS")
        log.info("server.node.started", node=self.config.node.name,
                 sip=f"{sip.bind}:{self.endpoint.local_address()[1]}",
                 http=f"{self.config.http.bind}:{self.http_port}")
        if self.overrides.welcome:
            tls_port = self.endpoint.local_address("TLS")[1] if "tls" in sip.transports else None
            print(welcome_text(self.config, self.endpoint.local_address()[1], self.http_port, tls_port),
                  file=sys.stderr, flush=True)

    def _sip_tls_context(self) -> ssl.SSLContext:
        """SIP's TLS server context: the configured pair, else a self-signed one in the data dir (blocks)."""
        tls = self.config.sip.tls
        if tls is not None:
            return server_context(TlsFiles(Path(tls.cert_file), Path(tls.key_file)))
        files = self_signed(Path(self.config.data_dir) / "tls", self.config.sip.bind)
        log.warning("sip.tls.self_signed", cert_file=str(files.cert_file),
                    hint="for local use: phones must accept it; set sip.tls for a real certificate")
        return server_context(files)

    async def _close_interrupted(self, records: CallRecords) -> None:
        """Close the calls a crash of this node left open, before the first new call arrives
        (their ``call.ended`` enters the outbox with the closing records, then the bus)."""
        for envelope in await records.close_interrupted(self.publisher.interrupted_call_ended):
            self.bus.publish(envelope)

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
                MetricFamily("cti_ws_resumes_total", "counter", "reconnections with ?since=, by outcome",
                             [({"outcome": "replayed"}, float(stats.resumed)),
                              ({"outcome": "resync"}, float(stats.resyncs))]),
                MetricFamily("cti_ws_events_replayed_total", "counter", "events replayed to resuming clients",
                             [({}, float(stats.replayed))]),
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


EXIT_FATAL = 70  # EX_SOFTWARE: the node failed; the service manager restarts it
EXIT_SECOND_SIGNAL = 143  # 128 + SIGTERM: stopped at once by a second signal
FATAL_EXIT_S = 3.0  # after a fatal error, the process is gone by then whatever blocks
STOP_MARGIN_S = 10.0  # a graceful stop may take node.drain_s plus this, then the process is ended
STORE_CHECK_EVERY_S = 1.0
STALL_S = 1.0  # a probe's timeout firing this much late means the node, not its store, was stalled


async def run_server(loaded: LoadedConfig, overrides: Overrides = Overrides()) -> None:
    """Run one node until SIGINT/SIGTERM (see the module docstring for what ends it otherwise).

    Raises:
        BaseExceptionGroup: the failure that ended the node (a fatal error), after a bounded stop.
    """
    config = overrides.apply(loaded.config)
    fmt: LogFormat = "json" if config.logging.format == "json" else "console"
    configure_logging(config.logging.level, fmt)
    bind_module_loggers()  # the project's loggers, looked up once instead of at every call (cti/logging.py)
    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = 0.05
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("server.node.exiting", signal=sig.name, reason="second signal")
            exit_now(EXIT_SECOND_SIGNAL)
        log.info("server.signal.received", signal=sig.name, drain_s=config.node.drain_s)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    server = Server(loaded, overrides)
    try:
        async with asyncio.TaskGroup() as tasks:
            try:
                gc_report = os.environ.get(gcaudit.ENV)  # test hook: cti/gcaudit.py
                if gc_report:  # before the ports open: a test may signal as soon as the node answers
                    loop.add_signal_handler(signal.SIGUSR1, gcaudit.report, Path(gc_report))
                await server.start(tasks)  # a port taken, a bad flow...: stop what did start, then report
                bind_module_loggers()  # those of the modules the start imported: made now, not by the first traffic
                if gc_report:
                    gcaudit.hold()
                else:
                    tune_gc()
                collector = tasks.create_task(collect_garbage(), name="gc")
                tasks.create_task(watch_store(server), name="store-health")
                await stop.wait()
                collector.cancel()
            finally:
                if stop.is_set():
                    arm_exit(config.node.drain_s + STOP_MARGIN_S, 1, "graceful stop overran")
                    await server.stop(grace=config.node.drain_s)
                else:  # cancelled by a failing task: stop fast, and be gone in seconds whatever blocks
                    arm_exit(FATAL_EXIT_S, EXIT_FATAL, "fatal error")
                    with contextlib.suppress(Exception):
                        await server.stop(grace=0.0)
            raise _Stopped
    except* _Stopped:
        pass
    except* BaseException as group:
        if server.started:
            log.critical("server.node.failed", error=repr(group.exceptions[0]), exc_info=group)
        raise


async def watch_store(server: Server) -> None:
    """Fatal when the store has failed for ``storage.fatal_after_s``: every write failing, no answer
    to a probe while no other transaction ends either (a store that still commits is busy, not
    gone), or (SQLite) the database file removed or replaced under the open connection, where
    writes would go on "succeeding" into a file nobody can read again.

    Raises:
        StoreError: the store is gone (ends the node: see the module docstring).
    """
    store, controller = server.store, server.controller
    assert store is not None and controller is not None
    bound = server.config.storage.fatal_after_s
    path: Path | None = getattr(store, "path", None)
    inode = (await asyncio.to_thread(os.stat, path)).st_ino if path is not None else None
    failing_since: float | None = None
    probe_s = min(bound, 5.0)
    while True:
        await asyncio.sleep(STORE_CHECK_EVERY_S)
        asked, done = time.monotonic(), store.completed
        problem = await _store_problem(store, path, inode, probe_s)
        if problem is None and controller.records.failing_since is not None:
            problem = "writes are failing"
        now = time.monotonic()
        if problem is not None and problem.startswith("no answer") and now - asked > probe_s + STALL_S:
            # The timeout itself fired late: this process was stalled (CPU starved, a long pause),
            # not its store. Such a probe proves nothing either way.
            log.warning("store.health.stalled", waited_s=round(now - asked, 3), probe_s=probe_s)
            continue
        if problem is not None and problem.startswith("no answer") and store.completed != done:
            # The probe waited behind other work that the store did finish meanwhile: a busy store
            # (a backlog under load, its thread short of CPU) is not a gone one. Overload is shed at
            # the door (admission), never by stopping the node.
            log.warning("store.health.busy", waited_s=round(now - asked, 3), completed=store.completed - done)
            if failing_since is not None:
                log.info("store.health.recovered", failed_s=round(now - failing_since, 3))
            failing_since = None
            continue
        if problem is None:
            if failing_since is not None:
                log.info("store.health.recovered", failed_s=round(now - failing_since, 3))
            failing_since = None
            continue
        failing_since = failing_since if failing_since is not None else now
        log.error("store.health.failing", problem=problem, for_s=round(now - failing_since, 3), fatal_after_s=bound)
        if now - failing_since >= bound:
            raise StoreUnavailableError(f"store failing for {now - failing_since:.1f} s: {problem}")


async def _store_problem(store: Store, path: Path | None, inode: int | None, timeout_s: float) -> str | None:
    """What is wrong with the store now, or None. The whole probe is bounded: a ``stat`` of a file on a
    hung file system (or a thread pool with no free thread) counts as no answer, never as a watchdog
    that waits for ever."""
    try:
        async with asyncio.timeout(timeout_s):
            if path is not None:
                try:
                    if (await asyncio.to_thread(os.stat, path)).st_ino != inode:
                        return "database file replaced"
                except FileNotFoundError:
                    return "database file removed"
                except OSError as exc:
                    return f"database file unreadable: {exc}"
            await store.schema_version()
    except TimeoutError:
        return f"no answer within {timeout_s} s"
    except StoreError as exc:
        return f"probe failed: {exc}"
    return None


def welcome_text(config: ServerConfig, sip_port: int, http_port: int, tls_port: int | None = None) -> str:
    """What to do next with a node just started on the demo configuration (README, docs/web.md)."""
    web = f"{'https' if config.http.tls else 'http'}://{config.http.bind}:{http_port}"
    plain = ", ".join(t.upper() for t in config.sip.transports if t != "tls")
    sips = f", TLS on {tls_port}" if tls_port is not None else ""
    return "\n".join([
        "",
        f"cti-server is up: SIP {config.sip.bind}:{sip_port} ({plain}{sips}), HTTP {web}",
        "Next steps / 下一步:",
        f"  agent desktop / 坐席工作台     {web}/agent        (agent 1001, password demo1001)",
        f"  supervisor console / 班长台    {web}/supervisor   (sup1, password demosup1)",
        f"  wallboard / 大屏               {web}/wallboard",
        f"  softphone: register sip:1001@{config.sip.bind}:{sip_port} (user 1001, password demo1001),",
        f"  then call sip:100@{config.sip.bind}:{sip_port} from another phone; API: {web}/api/v1/openapi.json",
        "  Ctrl-C stops the node.",
        "",
    ])


class StoreUnavailableError(StoreError):
    """The store has failed for longer than ``storage.fatal_after_s`` (fatal)."""


def exit_now(code: int) -> None:
    """End the process at once with ``code`` (logs flushed; threads, even blocked ones, not waited for)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def arm_exit(after_s: float, code: int, why: str) -> None:
    """Exit with ``code`` after ``after_s`` seconds unless the process ended before (a daemon thread:
    it fires even when the event loop or a database thread is stuck)."""

    def fire() -> None:
        log.critical("server.node.exit_forced", code=code, reason=why, after_s=after_s)
        exit_now(code)

    timer = threading.Timer(after_s, fire)
    timer.daemon = True
    timer.start()


# Cyclic garbage collection, tuned for a server whose heap is mostly long-lived: config, flows, agents, and
# every finished transaction of the last 32 s (RFC 3261 timers J/K/D keep them). The call path makes no
# reference cycles (tests/integration/test_call_cycles.py: answered calls, and callers who hang up during the
# IVR, whose runner cuts the cycle a cancelled asyncio.TaskGroup leaves: ivr.runner), nor does a TCP connection
# its peer resets (sip.transport.tcp), an HTTP request the router refuses (cti.http.guard.aio) or a WebSocket
# session (cti.gateway.ws; tests/integration/test_http_cycles.py), so under call load the collector finds
# nothing, and what it costs is large: CPython counts a young generation as allocations minus deallocations of
# objects of any age, so under a steady load it is collected only every few seconds and then holds every object
# made since (0.3-0.4 ms of the loop per call at 250 calls/s and pauses up to 0.3 s, docs/performance.md).
# So what start-up made is frozen out of collections, automatic collection is off, and
# ``collect_garbage`` runs one full collection, logged with its pause, when either
# - ``FULL_GC_EVERY_S`` seconds have passed since the last one, or
# - the tracked objects made since the last one, net of those freed, exceed ``GC_GROWTH_MIN`` or what
#   the last one kept, whichever is more: cyclic garbage is never freed by reference counting, so it
#   shows as growth and is collected within ``GC_CHECK_S`` of reaching the bound, while a node whose
#   live calls merely level off never reaches it;
# and the SIP endpoint runs one when a burst of traffic has drained (sip.aio).
GC_CHECK_S = 1.0
FULL_GC_EVERY_S = 600.0
GC_GROWTH_MIN = 1_000_000


def tune_gc() -> None:
    """Freeze what start-up made and turn automatic collection off (see ``collect_garbage``)."""
    gc.collect()
    gc.freeze()
    gc.disable()


class GcSchedule:
    """When the next full collection is due: a pure rule (see the comment above ``GC_CHECK_S``)."""

    def __init__(self, now: float, *, every_s: float = FULL_GC_EVERY_S, growth_min: int = GC_GROWTH_MIN) -> None:
        self.every_s = every_s
        self.growth_min = growth_min
        self.last = now
        self.bound = growth_min

    def due(self, now: float, grown: int) -> str | None:
        """Why a collection is due at ``now`` with ``grown`` net new tracked objects since the last one, or None."""
        if grown > self.bound:
            return "growth"
        if now - self.last >= self.every_s:
            return "periodic"
        return None

    def collected(self, now: float, kept: int) -> None:
        """A collection ended at ``now``, leaving ``kept`` tracked objects (the frozen ones not counted)."""
        self.last = now
        self.bound = max(self.growth_min, kept)


async def collect_garbage(every_s: float = FULL_GC_EVERY_S, *, check_s: float = GC_CHECK_S,
                          growth_min: int = GC_GROWTH_MIN) -> None:
    """Run a full cyclic collection whenever :class:`GcSchedule` says one is due, until cancelled."""
    schedule = GcSchedule(time.monotonic(), every_s=every_s, growth_min=growth_min)
    while True:
        await asyncio.sleep(check_s)
        grown = gc.get_count()[0]  # counted with automatic collection off too
        why = schedule.due(time.monotonic(), grown)
        if why is None:
            continue
        started = time.perf_counter()
        found = gc.collect()
        pause_ms = (time.perf_counter() - started) * 1000
        kept = len(gc.get_objects())
        schedule.collected(time.monotonic(), kept)
        (log.warning if pause_ms > 200 else log.info)("server.gc.collected", objects=found, pause_ms=round(pause_ms),
                                                      reason=why, grown=grown, kept=kept)


class _Stopped(CtiError):
    """Ends the server's task group after a graceful stop (cancelling the owned tasks)."""
