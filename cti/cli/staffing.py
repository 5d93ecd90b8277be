"""``cti staffing``: required agents for an interval, or for each interval of a volume file (docs/staffing.md).

Works without a server: the figures come from :mod:`cti.staffing`; only ``--patience-from-records`` asks a
running node (``GET /api/v1/reports/patience``) for the callers' patience estimated from its stored legs.
Output is a small table with the what-if curve, or one JSON object with ``--json``. Exit codes: 0 success;
2 bad usage, an input out of range (AHT <= 0, shrinkage >= 1...), a refused volume file (``file:line: reason``
on stderr, nothing on stdout), or no abandon to estimate the patience from.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from acd import SlFormula
from cti.cli.http import DEFAULT_URL, ApiClient, OpsError
from cti.staffing import (
    SL_FORMULAS,
    WHAT_IF_SPAN,
    ForecastFileError,
    ForecastProblem,
    Model,
    QueueFigures,
    StaffingInput,
    StaffingInputError,
    StaffingResult,
    forecast_to_json,
    parse_forecast,
    plan,
    plan_forecast,
    required_agents,
    scheduled,
)

__all__ = ["staffing"]


def _estimate(start: str, end: str, queue: str | None, url: str, token: str | None) -> dict[str, Any]:
    """``GET /api/v1/reports/patience`` of the node; exits 2 when it refuses the range or finds no abandon."""
    query = {"from": start, "to": end, **({"queue": queue} if queue else {})}
    try:
        data: dict[str, Any] = ApiClient(url, token, 60.0).request(
            "GET", f"/api/v1/reports/patience?{urllib.parse.urlencode(query)}")
    except OpsError as exc:
        if exc.message.startswith(("reports.input_invalid", "unknown_parameter")):
            _refuse([exc.message])
        raise
    if data["patience_s"] is None:
        _refuse([f"no abandoned call among the {data['legs']} resolved legs of {queue or 'every queue'} from "
                 f"{data['from']} to {data['to']}: the patience cannot be estimated (use --patience-s)"])
    return data


def _refuse(lines: Sequence[object]) -> NoReturn:
    for line in lines:
        click.echo(f"cti staffing: {line}", err=True)
    sys.exit(2)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _secs(value: float | None) -> str:
    return "inf" if value is None else f"{value:.1f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned first column, right-aligned numbers."""
    cells = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                                    strict=True)))
                     for row in cells)


def _figure_cells(f: QueueFigures, model: Model) -> list[str]:
    cells = [_pct(f.service_level), _secs(f.asa_s), _pct(f.wait_probability), _pct(f.occupancy)]
    return cells + [_pct(f.abandon_probability)] if model is Model.ERLANG_A else cells


def _figure_headers(model: Model) -> list[str]:
    headers = ["SL", "ASA_S", "WAIT", "OCCUPANCY"]
    return headers + ["ABANDON"] if model is Model.ERLANG_A else headers


def _describe(result: StaffingResult, given: bool) -> str:
    inp, f = result.inputs, result.figures
    model = "Erlang A" if inp.model is Model.ERLANG_A else "Erlang C"
    lines = [f"{model}: {inp.calls:g} calls in {inp.interval_s:g} s, AHT {inp.aht_s:g} s -> "
             f"{inp.traffic:.2f} Erlangs"]
    target = f"target {inp.sl_target * 100:g}% answered within {inp.answer_within_s:g} s"
    if inp.model is Model.ERLANG_A:
        target += f" ({inp.sl_formula.value}), patience {inp.patience_s:g} s"
    if inp.max_occupancy < 1:
        target += f", occupancy at most {inp.max_occupancy * 100:g}%"
    lines.append(target)
    if given:
        verdict = "meet the target" if result.meets_target else "do NOT meet the target"
        lines.append(f"{result.agents} agents {verdict}")
    elif inp.traffic == 0:
        lines.append("no calls: 0 agents")
    else:
        lines.append(f"agents needed: {result.agents} (limited by {str(result.limited_by).replace('_', ' ')})")
    lines.append(f"scheduled with {inp.shrinkage * 100:g}% shrinkage: {result.agents_scheduled}")
    figures = f"at {result.agents}: SL {_pct(f.service_level)}, ASA {_secs(f.asa_s)} s, wait probability " \
              f"{_pct(f.wait_probability)}, occupancy {_pct(f.occupancy)}"
    if inp.model is Model.ERLANG_A:
        figures += f", abandon {_pct(f.abandon_probability)}"
    if f.understaffed:
        figures += " (understaffed: the queue grows without bound)"
    lines.append(figures)
    if result.what_if:
        rows = [[("> " if w.agents == result.agents else "  ") + str(w.agents),
                 str(scheduled(w.agents, inp.shrinkage)), *_figure_cells(w, inp.model)] for w in result.what_if]
        lines += ["", _table(["  AGENTS", "SCHEDULED", *_figure_headers(inp.model)], rows)]
    return "\n".join(lines)


def _forecast(path: Path, template: StaffingInput, as_json: bool) -> None:
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _refuse([ForecastProblem(file=str(path), line=0, reason=f"cannot read: {reason}")])
    try:
        rows = parse_forecast(text, str(path))
        results = plan_forecast(rows, template, str(path))
    except ForecastFileError as exc:
        _refuse(exc.problems)
    if as_json:
        click.echo(json.dumps(forecast_to_json(rows, results), indent=2))
        return
    model = template.model
    table = [[row.interval, f"{row.calls:g}", f"{row.aht_s:g}", f"{r.inputs.traffic:.2f}", str(r.agents),
              str(r.agents_scheduled), *_figure_cells(r.figures, model)] for row, r in zip(rows, results, strict=True)]
    click.echo(_table(["INTERVAL", "CALLS", "AHT_S", "ERLANGS", "AGENTS", "SCHEDULED", *_figure_headers(model)],
                      table))
    peak = max(range(len(rows)), key=lambda i: results[i].agents_scheduled)
    click.echo(f"\npeak: {results[peak].agents_scheduled} scheduled at {rows[peak].interval}; "
               f"{sum(r.agents_scheduled for r in results)} agent-intervals scheduled")


@click.command("staffing")
@click.option("--calls", type=float, help="calls offered in the interval")
@click.option("--aht-s", type=float, help="average handle time (talk + hold + wrap-up), seconds")
@click.option("--interval-s", type=float, default=1800.0, show_default=True, help="interval length, seconds")
@click.option("--sl-target", type=float, default=0.80, show_default=True, help="service-level target, 0..1")
@click.option("--answer-within-s", type=float, default=20.0, show_default=True, help="service-level threshold T")
@click.option("--model", type=click.Choice([m.value for m in Model]), default=Model.ERLANG_C.value,
              show_default=True, help="erlang-c (nobody abandons) or erlang-a (needs --patience-s)")
@click.option("--patience-s", type=float, help="erlang-a: callers' mean patience, seconds")
@click.option("--sl-formula", type=click.Choice([f.value for f in SL_FORMULAS]),
              default=SlFormula.ABANDONS_AFTER_T_NEGATIVE.value, show_default=True,
              help="erlang-a: how abandons count in the SL (equal for erlang-c)")
@click.option("--shrinkage", type=float, default=0.0, show_default=True, help="share of paid time not on calls")
@click.option("--max-occupancy", type=float, default=1.0, show_default=True, help="occupancy cap, 0..1")
@click.option("--agents", type=int, help="figures for this many agents instead of the required number")
@click.option("--what-if", "what_if_span", type=click.IntRange(0, 50), default=WHAT_IF_SPAN, show_default=True,
              help="what-if curve from N-K to N+K agents")
@click.option("--forecast", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV volume file (interval,calls,aht_s): required agents per interval")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--patience-from-records", "from_records", is_flag=True,
              help="erlang-a: estimate the patience from a running node's stored legs (--from, --to, --queue)")
@click.option("--from", "start", help="with --patience-from-records: first day (YYYY-MM-DD, site time) or ISO time")
@click.option("--to", "end", help="with --patience-from-records: last day (inclusive) or ISO time (exclusive)")
@click.option("--queue", help="with --patience-from-records: one queue's legs (default every queue)")
@click.option("--url", envvar="CTI_URL", default=DEFAULT_URL, show_default=True,
              help="with --patience-from-records: admin API base URL (env CTI_URL)")
@click.option("--token", envvar="CTI_TOKEN", help="with --patience-from-records: operator token (env CTI_TOKEN)")
def staffing(calls: float | None, aht_s: float | None, interval_s: float, sl_target: float, answer_within_s: float,
             model: str, patience_s: float | None, sl_formula: str, shrinkage: float, max_occupancy: float,
             agents: int | None, what_if_span: int, forecast: Path | None, as_json: bool, from_records: bool,
             start: str | None, end: str | None, queue: str | None, url: str, token: str | None) -> None:
    """Agents needed to answer SL-TARGET of the calls within T seconds (Erlang C or A, shrinkage, occupancy cap)."""
    if forecast is not None and (calls is not None or aht_s is not None or agents is not None):
        raise click.UsageError("--forecast takes calls and AHT from the file: drop --calls, --aht-s and --agents")
    if forecast is None and (calls is None or aht_s is None):
        raise click.UsageError("give --calls and --aht-s (or --forecast FILE)")
    estimate: dict[str, Any] | None = None
    if from_records:
        if model != Model.ERLANG_A.value or patience_s is not None:
            raise click.UsageError("--patience-from-records goes with --model erlang-a and without --patience-s")
        if start is None or end is None:
            raise click.UsageError("--patience-from-records needs --from and --to")
        estimate = _estimate(start, end, queue, url, token)
        patience_s = estimate["patience_s"]
        click.echo(f"patience from the records: {patience_s:.1f} s = {estimate['total_wait_s']:.1f} s waited by "
                   f"{estimate['legs']} callers / {estimate['abandoned']} abandons ({queue or 'every queue'}, "
                   f"{estimate['from']} to {estimate['to']})", err=as_json)
    elif start is not None or end is not None or queue is not None:
        raise click.UsageError("--from, --to and --queue go with --patience-from-records")
    try:
        inp = StaffingInput(calls=0.0 if calls is None else calls, aht_s=1.0 if aht_s is None else aht_s,
                            interval_s=interval_s, sl_target=sl_target, answer_within_s=answer_within_s,
                            model=Model(model), patience_s=patience_s, shrinkage=shrinkage,
                            max_occupancy=max_occupancy, sl_formula=SlFormula(sl_formula))
        if forecast is not None:
            _forecast(forecast, inp, as_json)
            return
        if agents is None:
            result = required_agents(inp, what_if_span=what_if_span)
        else:
            result = plan(inp, agents, what_if_span=what_if_span)
    except StaffingInputError as exc:
        _refuse([exc])
    out: Any = result.to_json()
    if estimate is not None:
        out["patience_from_records"] = estimate
    click.echo(json.dumps(out, indent=2) if as_json else _describe(result, agents is not None))
