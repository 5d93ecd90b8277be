"""A CRM stand-in for tests: an aiohttp server on its own thread and event loop that checks each
webhook's signature (docs/webhooks.md) and records every delivery, duplicates included.

The tests that use it drive blocking subprocesses (the server, SIPp) from the test's thread; the
receiver runs beside them on a loop of its own, so it answers at once whatever the test is doing.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass

from aiohttp import web

from cti.events.webhooks import verify_signature

__all__ = ["Delivery", "WebhookReceiver"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One accepted POST: the envelope id (``X-CTI-Event-Id``), its type and its ``data.call_id``."""

    event_id: str
    event_type: str
    call_id: str | None
    at: float  # time.time() when it arrived


class WebhookReceiver:
    """Answers 200 to every correctly signed POST on ``/hook`` and 401 to the others (counted in ``bad``).

    Use as a context manager; ``url`` is where the server should post.
    """

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self.bad = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def deliveries(self) -> list[Delivery]:
        """Every delivery so far, in arrival order (a redelivered id appears once per delivery)."""
        with self._lock:
            return list(self._deliveries)

    def counts(self, event_type: str | None = None) -> Counter[str]:
        """Deliveries per event id (of ``event_type`` only, if given)."""
        return Counter(d.event_id for d in self.deliveries() if event_type in (None, d.event_type))

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = request.headers
        event_id = headers.get("X-CTI-Event-Id", "")
        signed = verify_signature(self._secret, headers.get("X-CTI-Timestamp", ""), body,
                                  headers.get("X-CTI-Signature", ""), tolerance_s=120, now=time.time())
        try:
            envelope = json.loads(body)
        except ValueError:
            envelope = None
        if not signed or not isinstance(envelope, dict) or envelope.get("id") != event_id:
            with self._lock:
                self.bad += 1
            return web.Response(status=401)
        data = envelope.get("data")
        call_id = data.get("call_id") if isinstance(data, dict) else None
        with self._lock:
            self._deliveries.append(Delivery(event_id, str(envelope.get("type")), call_id, time.time()))
        return web.Response(status=200)

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = getattr(site, "_server", None)
        self.port = int(server.sockets[0].getsockname()[1]) if server is not None else 0
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def _main(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported by __enter__ / __exit__
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None or not self.port:
            raise RuntimeError(f"the webhook receiver did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        stop = self._stop
        if stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(10)
