"""``cti webhooks ...``: see endpoints and dead letters of a running server and replay them (docs/webhooks.md).

The group talks to the admin API (``/api/v1/webhooks...``) of the server at ``--url`` (env ``CTI_URL``, default
``http://127.0.0.1:8080``) with the operator token ``--token`` (env ``CTI_TOKEN``). Output is a table, or the
API's JSON with ``--json``. Exit codes: 0 success; 1 the server is unreachable, refused the token or the
request (the API's error code and message are printed on stderr); 2 bad usage (click).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from cti.cli.http import DEFAULT_URL, ApiClient

__all__ = ["webhooks"]

_TIMEOUT_S = 10.0

F = TypeVar("F", bound=Callable[..., Any])


def _connection_options(func: F) -> F:
    func = click.option("--json", "as_json", is_flag=True, help="print the API's JSON answer")(func)
    func = click.option("--token", envvar="CTI_TOKEN", help="operator token (env CTI_TOKEN)")(func)
    func = click.option("--url", envvar="CTI_URL", default=DEFAULT_URL, show_default=True,
                        help="server admin URL (env CTI_URL)")(func)
    return func


def _call(method: str, url: str, token: str | None, path: str) -> Any:
    """The API's JSON answer; on a failure, the reason on stderr and exit code 1 (:class:`OpsError`)."""
    return ApiClient(url, token, _TIMEOUT_S).request(method, path)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[["-" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


@click.group("webhooks")
def webhooks() -> None:
    """Webhook endpoints, dead letters and replays of a running server."""


@webhooks.command("list")
@_connection_options
def list_endpoints(url: str, token: str | None, as_json: bool) -> None:
    """Configured endpoints with their dead-letter count and delivery counters."""
    data = _call("GET", url, token, "/api/v1/webhooks")
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    rows = [(w["name"], w["url"], ",".join(w["events"]), w["pending"], w["delivered"], w["dead"],
             w["since_start"]["delivered"], w["since_start"]["failed"]) for w in data["webhooks"]]
    click.echo(_table(("NAME", "URL", "EVENTS", "PENDING", "DELIVERED", "DEAD", "SENT_NOW", "FAILED_NOW"), rows))


@webhooks.command("dead-letters")
@click.option("--endpoint", help="only this endpoint's dead letters")
@click.option("--limit", type=click.IntRange(1, 10_000), default=1000, show_default=True)
@_connection_options
def dead_letters(endpoint: str | None, limit: int, url: str, token: str | None, as_json: bool) -> None:
    """Dead letters, oldest first."""
    query = f"?limit={limit}" + (f"&endpoint={endpoint}" if endpoint else "")
    data = _call("GET", url, token, f"/api/v1/webhooks/dead-letters{query}")
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    rows = [(d["id"], d["endpoint"], d["event_type"], d["event_id"], d["attempts"], d["last_error"])
            for d in data["dead_letters"]]
    click.echo(_table(("ID", "ENDPOINT", "TYPE", "EVENT_ID", "ATTEMPTS", "LAST_ERROR"), rows))


@webhooks.command("replay")
@click.argument("ids", nargs=-1, required=True, type=click.IntRange(min=1))
@_connection_options
def replay(ids: tuple[int, ...], url: str, token: str | None, as_json: bool) -> None:
    """Send dead letters ID... again (each goes back to its place in its endpoint's line)."""
    answers = [_call("POST", url, token, f"/api/v1/webhooks/dead-letters/{entry_id}/replay") for entry_id in ids]
    if as_json:
        click.echo(json.dumps({"replayed": [a["replayed"] for a in answers]}, indent=2))
        return
    for answer in answers:
        r = answer["replayed"]
        click.echo(f"replayed {r['id']} ({r['event_type']} {r['event_id']}) to {r['endpoint']}")
