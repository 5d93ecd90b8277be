"""Admin API routes of the staffing calculator (docs/staffing.md): the same inputs and answers as ``cti staffing``.

- ``GET /api/v1/staffing?calls=&aht_s=[&interval_s=&sl_target=&answer_within_s=&model=&patience_s=&sl_formula=
  &shrinkage=&max_occupancy=&agents=&what_if=]`` -> the object of ``cti staffing --json``;
- ``POST /api/v1/staffing/forecast?[same, without calls, aht_s and agents]`` with a CSV volume file as the body
  (``interval,calls,aht_s``) -> the object of ``cti staffing --forecast FILE --json``.

Mount them on the application of ``cti.http.api.build_app`` before it is frozen; its middleware guards ``/api/``
with the operator token. The arithmetic runs in a worker thread (a large Erlang A load takes about a second),
at most two at a time. Errors are ``{"error": {"code", "message"}}``:

- 400 ``unknown_parameter`` / ``bad_parameter``: a query parameter that is not ours, or not a number;
- 400 ``staffing.input_invalid``: a value out of range (AHT <= 0, shrinkage >= 1...), ``field`` names it;
- 400 ``staffing.forecast_invalid``: the volume file was refused, ``problems`` lists file/line/reason;
- 503 ``staffing_busy``: the computation took longer than 30 s.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web

from acd import SlFormula
from cti.errors import CtiError
from cti.staffing import (
    WHAT_IF_SPAN,
    ForecastFileError,
    Model,
    StaffingInput,
    StaffingInputError,
    forecast_to_json,
    parse_forecast,
    plan,
    plan_forecast,
    required_agents,
)

__all__ = ["add_staffing_routes"]

_TIMEOUT_S = 30.0
_NUMBERS = ("calls", "aht_s", "interval_s", "sl_target", "answer_within_s", "patience_s", "shrinkage",
            "max_occupancy")
_INTEGERS = ("agents", "what_if")
_CHOICES: dict[str, tuple[str, ...]] = {"model": tuple(m.value for m in Model),
                                        "sl_formula": tuple(f.value for f in SlFormula)}
_FORECAST_SOURCE = "request body"

T = TypeVar("T")


class _BadRequest(CtiError):
    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.extra = code, extra


def _parse_query(query: Mapping[str, str], allowed: tuple[str, ...]) -> dict[str, Any]:
    """Typed values of the parameters present. Raises: _BadRequest."""
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise _BadRequest("unknown_parameter", f"unknown parameter(s): {', '.join(unknown)}; "
                                               f"known: {', '.join(allowed)}")
    values: dict[str, Any] = {}
    for name, raw in query.items():
        if name in _CHOICES:
            if raw not in _CHOICES[name]:
                raise _BadRequest("bad_parameter", f"{name} must be one of {', '.join(_CHOICES[name])}, got {raw!r}")
            values[name] = raw
            continue
        try:
            number = int(raw) if name in _INTEGERS else float(raw)
        except ValueError:
            kind = "an integer" if name in _INTEGERS else "a number"
            raise _BadRequest("bad_parameter", f"{name} must be {kind}, got {raw!r}") from None
        if not math.isfinite(number):
            raise _BadRequest("bad_parameter", f"{name} must be a finite number, got {raw!r}")
        values[name] = number
    return values


def _input(values: dict[str, Any], *, forecast: bool) -> StaffingInput:
    """Raises: _BadRequest (a required parameter is missing), StaffingInputError."""
    if not forecast:
        missing = [n for n in ("calls", "aht_s") if n not in values]
        if missing:
            raise _BadRequest("bad_parameter", f"missing parameter(s): {', '.join(missing)}")
    fields = {k: v for k, v in values.items() if k in _NUMBERS}
    if "model" in values:
        fields["model"] = Model(values["model"])
    if "sl_formula" in values:
        fields["sl_formula"] = SlFormula(values["sl_formula"])
    if forecast:  # replaced by each line of the file
        fields |= {"calls": 0.0, "aht_s": 1.0}
    return StaffingInput(**fields)


def add_staffing_routes(app: web.Application) -> None:
    """Add ``GET /api/v1/staffing`` and ``POST /api/v1/staffing/forecast`` to ``app``.

    Raises:
        RuntimeError: ``app`` is already frozen (its runner was set up).
    """
    workers = asyncio.Semaphore(2)

    async def compute(func: Callable[[], T]) -> T:
        async with workers, asyncio.timeout(_TIMEOUT_S):
            return await asyncio.to_thread(func)

    def refused(exc: Exception) -> web.Response:
        match exc:
            case _BadRequest():
                body: dict[str, Any] = {"code": exc.code, "message": str(exc), **exc.extra}
            case StaffingInputError():
                body = {"code": exc.code, "message": str(exc), "field": exc.field}
            case ForecastFileError():
                body = {"code": exc.code, "message": str(exc),
                        "problems": [{"file": p.file, "line": p.line, "reason": p.reason} for p in exc.problems]}
            case _:
                raise exc
        return web.json_response({"error": body}, status=400)

    async def one_interval(request: web.Request) -> web.Response:
        try:
            values = _parse_query(request.query, (*_NUMBERS, *_INTEGERS, *_CHOICES))
            inp = _input(values, forecast=False)
            span = values.get("what_if", WHAT_IF_SPAN)
            agents = values.get("agents")
            if agents is None:
                work = functools.partial(required_agents, inp, what_if_span=span)
            else:
                work = functools.partial(plan, inp, agents, what_if_span=span)
            result = await compute(work)
        except (_BadRequest, StaffingInputError) as exc:
            return refused(exc)
        except TimeoutError:
            return web.json_response({"error": {"code": "staffing_busy", "message": "the computation took "
                                                f"longer than {_TIMEOUT_S:g} s"}}, status=503)
        return web.json_response(result.to_json())

    async def per_interval(request: web.Request) -> web.Response:
        try:
            values = _parse_query(request.query, tuple(n for n in (*_NUMBERS, *_CHOICES)
                                                       if n not in ("calls", "aht_s")))
            template = _input(values, forecast=True)
            try:
                text = await request.text()
            except UnicodeDecodeError as exc:
                raise _BadRequest("bad_parameter", f"the body is not UTF-8 text: {exc}") from exc

            def work() -> dict[str, Any]:
                rows = parse_forecast(text, _FORECAST_SOURCE)
                return forecast_to_json(rows, plan_forecast(rows, template, _FORECAST_SOURCE))

            answer = await compute(work)
        except (_BadRequest, StaffingInputError, ForecastFileError) as exc:
            return refused(exc)
        except TimeoutError:
            return web.json_response({"error": {"code": "staffing_busy", "message": "the computation took "
                                                f"longer than {_TIMEOUT_S:g} s"}}, status=503)
        return web.json_response(answer)

    app.router.add_get("/api/v1/staffing", one_interval)
    app.router.add_post("/api/v1/staffing/forecast", per_interval)
