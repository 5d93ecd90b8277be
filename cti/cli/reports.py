"""``cti report queues|agents|ivr`` and ``cti kpi verify``: KPI reports of a running node (docs/reports.md).

Both read ``GET /api/v1/reports/...`` (and ``GET /api/v1/queues`` for the live figures) through the admin
API, with ``--url``/``--token`` as the other operator commands. Exit codes: 0 success (``kpi verify``: no
difference); 1 server unreachable or a difference found; 2 bad usage or a range the server refuses (from not
before to, longer than ``reports.max_range_days``).
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from typing import Any

import click

from cti.cli.http import DEFAULT_URL, ApiClient, OpsError
from cti.cli.ops import table
from cti.reports.live import live_differences
from cti.reports.report import TOTAL, rows_to_csv

__all__ = ["kpi", "report"]

_REFUSED = ("reports.input_invalid", "unknown_parameter")


def _client_options(command: Any) -> Any:
    for option in reversed([
        click.option("--url", envvar="CTI_URL", default=DEFAULT_URL, show_default=True,
                     help="admin API base URL (env CTI_URL)"),
        click.option("--token", envvar="CTI_TOKEN", help="operator token (env CTI_TOKEN)"),
        click.option("--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
                     help="seconds to wait for the server"),
    ]):
        command = option(command)
    return command


def _get(client: ApiClient, path: str) -> Any:
    """The JSON answer; a range or parameter the server refuses exits 2 with its message."""
    try:
        return client.request("GET", path)
    except OpsError as exc:
        if exc.message.startswith(_REFUSED):
            click.echo(f"cti: {exc.message}", err=True)
            sys.exit(2)
        raise


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _secs(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def _queue_line(row: dict[str, Any]) -> list[object]:
    f = row["figures"]
    return [row["group"], row["interval"], f["offered"], f["answered"], f["abandoned"], f["abandoned_short"],
            f["flowouts"], _pct(f["service_level"]), _secs(f["asa_s"]), _secs(f["longest_wait_s"]), _secs(f["aht_s"]),
            _pct(f["answer_rate"]), _pct(f["abandon_rate"]), _pct(f["transfer_rate"]), _pct(f["repeat_rate"])]


def _agent_line(row: dict[str, Any]) -> list[object]:
    f = row["figures"]
    return [row["group"], row["interval"], _secs(f["logged_in_s"]), _secs(f["handle_s"]), _secs(f["available_s"]),
            _pct(f["occupancy"]), _pct(f["utilisation"]), f["answered"], f["handled"], _secs(f["aht_s"]),
            _secs(f["avg_ring_s"])]


def _ivr_line(row: dict[str, Any]) -> list[object]:
    f = row["figures"]
    return [row["group"], row["flow"] or "-", row["interval"], f["offered"], f["ivr_answered"], f["to_queue"],
            f["ivr_abandoned"], f["ivr_contained"], f["ivr_callbacks"], f["ivr_failed"], _pct(f["system_answer_rate"]),
            _pct(f["ivr_abandon_rate"]), _pct(f["containment_rate"]), _secs(f["avg_ivr_s"])]


_IVR_HEADERS = ["NUMBER", "FLOW", "INTERVAL", "OFFERED", "IVR_ANSWERED", "TO_QUEUE", "IVR_ABANDONED", "CONTAINED",
                "CALLBACKS", "FAILED", "SYSTEM_ANSWER_RATE", "IVR_ABANDON_RATE", "CONTAINMENT"]
_LINES = {"queues": (["QUEUE", "INTERVAL", "OFFERED", "ANSWERED", "ABANDONED", "SHORT", "FLOWOUTS", "SL", "ASA_S",
                      "LONGEST_S", "AHT_S", "ANSWER_RATE", "ABANDON_RATE", "TRANSFER_RATE", "REPEAT_RATE"],
                     _queue_line),
          "agents": (["AGENT", "INTERVAL", "LOGGED_IN_S", "HANDLE_S", "AVAILABLE_S", "OCCUPANCY", "UTILISATION",
                      "ANSWERED", "HANDLED", "AHT_S", "RING_S"], _agent_line),
          "ivr": ([*_IVR_HEADERS, "AVG_IVR_S"], _ivr_line)}


def _gaps(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        if row["interval"] != TOTAL:
            continue
        for name, g in row["targets"].items():
            verdict = "-" if g["met"] is None else ("met" if g["met"] else "MISSED")
            lines.append([row["group"], name, g["direction"].replace("_", " "), g["target"], g["actual"], g["gap"],
                          verdict])
    if not lines:
        return ""
    return "\n\nTargets (whole range)\n" + table(["GROUP", "FIGURE", "KIND", "TARGET", "ACTUAL", "GAP", ""],
                                                  [[f"{v:.4g}" if isinstance(v, float) else v for v in line]
                                                   for line in lines])


@click.command("report")
@click.argument("kind", type=click.Choice(["queues", "agents", "ivr"]))
@click.option("--from", "start", required=True, help="first day (YYYY-MM-DD, site time), today, or an ISO time")
@click.option("--to", "end", required=True, help="last day (inclusive) or an ISO time (exclusive)")
@click.option("--interval", default="30m", show_default=True, help="15m, 30m, 60m, day, week or month")
@click.option("--csv", "as_csv", is_flag=True, help="CSV, one line per group and interval")
@click.option("--json", "as_json", is_flag=True, help="the API's JSON")
@_client_options
def report(kind: str, start: str, end: str, interval: str, as_csv: bool, as_json: bool, url: str,
           token: str | None, timeout: float) -> None:
    """KPI report of every queue, agent (and team) or dialled number (ivr) per interval, from the records
    (docs/reports.md)."""
    if as_csv and as_json:
        raise click.UsageError("give at most one of --csv and --json")
    query = urllib.parse.urlencode({"from": start, "to": end, "interval": interval})
    data = _get(ApiClient(url, token, timeout), f"/api/v1/reports/{kind}?{query}")
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    if as_csv:
        click.echo(rows_to_csv(data["rows"]), nl=False)
        return
    headers, line = _LINES[kind]
    shown = [r for r in data["rows"] if r["interval"] == TOTAL or _active(r, kind)]
    click.echo(f"{kind} report {data['from']} to {data['to']} ({data['timezone']}), interval {data['interval']}, "
               f"attribution {data['attribution']}; intervals with no activity omitted")
    click.echo(table(headers, [line(r) for r in shown]) + _gaps(data["rows"]))


def _active(row: dict[str, Any], kind: str) -> bool:
    f = row["figures"]
    if kind == "queues":
        return bool(f["offered"] or f["in_queue"] or f["handled"])
    if kind == "ivr":
        return bool(f["offered"])
    return bool(f["logged_in_s"] or f["answered"] or f["handled"])


@click.group("kpi")
def kpi() -> None:
    """Check the live figures against the records."""


@kpi.command("verify")
@click.option("--date", "day", help="the site's day (YYYY-MM-DD; default: the node's today)")
@_client_options
def verify(day: str | None, url: str, token: str | None, timeout: float) -> None:
    """Recompute the live "today" figures (queue.stats) of a day from the records and print any difference.

    For the node's current day the live figures are the node's own; for an earlier day they are rebuilt by
    replaying that day's legs through the live statistics (GET /api/v1/kpi/replay). Exit 0 when there is no
    difference, 1 when there is one, 2 for a day after the node's today.
    """
    client = ApiClient(url, token, timeout)
    live = _get(client, "/api/v1/queues")["queues"]
    query = urllib.parse.urlencode({"from": day or "today", "to": day or "today", "interval": "day"})
    data = _get(client, f"/api/v1/reports/queues?{query}")
    today = data["generated_at"][:10]
    day = day or today
    source = "live figures"
    waiting: list[str] = []
    if day != today:
        replayed = _get(client, f"/api/v1/kpi/replay?{urllib.parse.urlencode({'date': day})}")
        live = replayed["queues"]
        source = "live figures replayed from the day's legs"
        waiting = [f"{q['queue']}: {q['queued_at_day_end']}" for q in live if q["queued_at_day_end"]]
    differences = live_differences(live, data["rows"])
    checked = sum(1 for _ in live)
    if waiting:
        click.echo(f"legs still queued at the day's end (the live figures of {day} never count them; the report "
                   f"does once they resolved): {', '.join(waiting)}")
    if not differences:
        click.echo(f"{day} ({data['timezone']}): {checked} queue(s), offered/answered/abandoned/service_level/"
                   f"asa_seconds: {source} and records agree (0 differences)")
        return
    click.echo(table(["QUEUE", "FIGURE", "LIVE", "RECORDS"], [[d.queue, d.figure, d.live, d.records]
                                                              for d in differences]))
    click.echo(f"{len(differences)} difference(s) between the {source} and the records", err=True)
    sys.exit(1)
