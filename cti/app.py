"""The composition root: build every service from the configuration, run them, stop them cleanly.

``run_server`` is what ``cti serve`` runs. Start order: logging, storage, SIP endpoint (UDP+TCP),
HTTP/WebSocket. Stop order is the reverse; SIGINT/SIGTERM start a graceful stop.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web

from config.errors import Problem
from config.loader import LoadedConfig
from config.schema import ServerConfig
from cti.logging import LogFormat, configure_logging
from cti.sipcore import SipCore
from sip.aio import SipEndpoint
from sip.transaction import TransactionLayer

log = structlog.get_logger(__name__)


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
    """Checks beyond the file itself: flows and prompts it refers to."""
    return []


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

    async def start(self) -> None:
        """Bind every listener. Raises: OSError when a port is taken."""
        await asyncio.to_thread(Path(self.config.data_dir).mkdir, parents=True, exist_ok=True)
        sip = self.config.sip
        await self.endpoint.start(sip.bind, sip.port, sip.transports, tcp_idle_timeout=sip.tcp_idle_timeout_s)
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
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

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "node": self.config.node.name})

    async def stop(self) -> None:
        log.info("server.node.stopping", node=self.config.node.name)
        if self._http_runner is not None:
            await self._http_runner.cleanup()
        await self.endpoint.close()
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
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.stop()
