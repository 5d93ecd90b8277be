"""Admin API routes of the webhooks: endpoints and their counts, dead letters, replay (docs/webhooks.md).

Mount them on the application of ``cti.http.api.build_app`` *before* it is frozen (before ``AppRunner.setup()``);
its middleware guards every path under ``/api/`` with ``Authorization: Bearer <operator token>``, so these
handlers do no authentication of their own. Errors are ``{"error": {"code", "message"}}``:

- 400 ``bad_id`` / ``bad_limit``: a malformed path or query value;
- 404 ``dead_letter_not_found``: no outbox entry with that id;
- 409 ``not_dead``: the entry is pending or delivered; 409 ``endpoint_not_configured``: nobody would send it;
- 503 ``store_unavailable``: the database failed (busy, closed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from cti.events.webhooks import WebhookDispatcher
from cti.http.api import MetricFamily
from cti.store import NotFoundError, OutboxEntry, OutboxId, OutboxStateError, OutboxStatus, Store, StoreError

__all__ = ["OutboxCounter", "add_webhook_routes", "dead_letter_view", "webhook_metrics"]

_MAX_LIST: int = 10_000


@runtime_checkable
class OutboxCounter(Protocol):
    """Optional store capability (not in ``cti.store`` yet): outbox rows of one endpoint by status."""

    async def outbox_counts(self, endpoint: str) -> Mapping[OutboxStatus, int]: ...


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def dead_letter_view(entry: OutboxEntry) -> dict[str, Any]:
    """The JSON shape of one dead letter (the payload itself is left out: it can be large)."""
    return {"id": entry.entry_id, "endpoint": entry.endpoint, "event_id": entry.event_id,
            "event_type": entry.event_type, "created": entry.created, "attempts": entry.attempts,
            "last_error": entry.last_error}


def webhook_metrics(dispatcher: WebhookDispatcher) -> Callable[[], list[MetricFamily]]:
    """An ``extra_metrics`` source for ``cti.http.api.build_app``: the dispatcher's counters per endpoint."""

    def families() -> list[MetricFamily]:
        per = dispatcher.stats().endpoints
        return [MetricFamily(f"cti_webhook_{field}_total", "counter", text,
                             [({"endpoint": name}, float(getattr(s, field))) for name, s in per.items()])
                for field, text in (("recorded", "Events written to the webhook outbox."),
                                    ("delivered", "Webhook deliveries acknowledged with a 2xx."),
                                    ("failed", "Failed webhook delivery attempts."),
                                    ("dead", "Webhook entries moved to the dead-letter list."))]

    return families


def add_webhook_routes(app: web.Application, *, store: Store, dispatcher: WebhookDispatcher) -> None:
    """Add ``GET /api/v1/webhooks``, ``GET /api/v1/webhooks/dead-letters`` and
    ``POST /api/v1/webhooks/dead-letters/{id}/replay`` to ``app``.

    Raises:
        RuntimeError: ``app`` is already frozen (its runner was set up).
    """

    async def list_endpoints(_: web.Request) -> web.Response:
        stats = dispatcher.stats().endpoints
        views = []
        try:
            for ep in dispatcher.endpoints:
                dead = len(await store.list_dead_letters(ep.name, limit=_MAX_LIST))
                counts = await store.outbox_counts(ep.name) if isinstance(store, OutboxCounter) else None
                since = stats[ep.name]
                views.append({
                    "name": ep.name, "url": ep.url, "events": list(ep.events), "max_attempts": ep.max_attempts,
                    "timeout_s": ep.timeout_s, "dead": dead,
                    "pending": counts.get(OutboxStatus.PENDING, 0) if counts is not None else None,
                    "delivered": counts.get(OutboxStatus.DELIVERED, 0) if counts is not None else None,
                    "since_start": {"recorded": since.recorded, "delivered": since.delivered,
                                    "failed": since.failed, "dead": since.dead},
                })
        except StoreError as exc:
            return _error(503, "store_unavailable", str(exc))
        return web.json_response({"webhooks": views})

    async def list_dead(request: web.Request) -> web.Response:
        endpoint = request.query.get("endpoint") or None
        raw_limit = request.query.get("limit", "1000")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= _MAX_LIST:
            return _error(400, "bad_limit", f"limit must be an integer in 1..{_MAX_LIST}")
        try:
            entries = await store.list_dead_letters(endpoint, limit=int(raw_limit))
        except StoreError as exc:
            return _error(503, "store_unavailable", str(exc))
        return web.json_response({"dead_letters": [dead_letter_view(e) for e in entries]})

    async def replay(request: web.Request) -> web.Response:
        raw = request.match_info["id"]
        if not raw.isdigit():
            return _error(400, "bad_id", f"dead-letter ids are positive integers, got {raw!r}")
        entry_id = OutboxId(int(raw))
        try:
            entry = await store.get_outbox_entry(entry_id)
            if entry is None:
                return _error(404, "dead_letter_not_found", f"no outbox entry {entry_id}")
            if entry.endpoint not in {ep.name for ep in dispatcher.endpoints}:
                return _error(409, "endpoint_not_configured",
                              f"entry {entry_id} is for endpoint {entry.endpoint!r}, which is not configured")
            await store.replay_dead_letter(entry_id, dispatcher.now())
        except NotFoundError as exc:
            return _error(404, "dead_letter_not_found", str(exc))
        except OutboxStateError as exc:
            return _error(409, "not_dead", str(exc))
        except StoreError as exc:
            return _error(503, "store_unavailable", str(exc))
        dispatcher.wake(entry.endpoint)
        return web.json_response({"replayed": dead_letter_view(entry) | {"attempts": 0}})

    app.router.add_get("/api/v1/webhooks", list_endpoints)
    app.router.add_get("/api/v1/webhooks/dead-letters", list_dead)
    app.router.add_post("/api/v1/webhooks/dead-letters/{id}/replay", replay)
