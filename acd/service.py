"""Thin asyncio adapter around the ACD router: one loop, one ``call_at`` timer, one publisher.

``AcdService.submit(request)`` applies a request at ``loop.time()``; timers fire from a single
``loop.call_at`` handle re-armed after every step. Every output (events and commands, in order)
is handed to the injected async ``publish`` callback by ``run()``, which the owner starts in its
``TaskGroup``; the call controller consumes the commands from there. Errors of ``submit`` are
the router's ``RequestError``s, raised to the caller unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from acd.events import AcdOutput, AcdRequest
from acd.router import Router

Publish = Callable[[AcdOutput], Awaitable[None]]


class AcdService:
    """Drive one ``Router`` on the running loop and publish what it emits."""

    def __init__(self, router: Router, publish: Publish) -> None:
        self._router = router
        self._publish = publish
        self._outbox: asyncio.Queue[AcdOutput] = asyncio.Queue()
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._log = structlog.get_logger("acd")

    @property
    def router(self) -> Router:
        """The core (for read-only queries: stats, positions, states)."""
        return self._router

    def submit(self, request: AcdRequest) -> list[AcdOutput]:
        """Apply ``request`` now; outputs are queued for publication and returned.

        Raises:
            RequestError: the router refused the request; nothing changed.
        """
        outputs = self._router.handle(request, asyncio.get_running_loop().time())
        self._emit(outputs)
        return outputs

    async def run(self) -> None:
        """Publish outputs forever (cancel to stop); start it in the owner's TaskGroup."""
        try:
            while True:
                output = await self._outbox.get()
                await self._publish(output)
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _emit(self, outputs: list[AcdOutput]) -> None:
        for output in outputs:
            self._outbox.put_nowait(output)
        self._rearm()

    def _rearm(self) -> None:
        deadline = self._router.get_timer()
        if deadline == self._deadline and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = deadline
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._deadline = None, None
        now = asyncio.get_running_loop().time()
        outputs = self._router.handle_timer(now)
        self._log.debug("acd.timer.fired", outputs=len(outputs))
        self._emit(outputs)
