"""Parse the structured condition language of ``branch`` cases.

One key per condition mapping::

    {var: tier, op: eq, value: gold}       # ops: eq ne lt le gt ge in matches exists
    {in_list: vip}                         # caller number in a list (or {in_list: vip, var: x})
    {business_hours: office}               # calendar open now
    {time_of_day: {from: "08:00", to: "20:00", timezone: Europe/Paris}}
    {all: [...]}  {any: [...]}  {not: {...}}

Types are checked later against the flow set's variables (:mod:`ivr.validate`).
"""

from __future__ import annotations

import re
from datetime import time
from typing import TYPE_CHECKING, Any

from ivr.fields import Fields
from ivr.flow import (
    AllOf,
    AnyOf,
    BusinessHours,
    CalendarName,
    Compare,
    CompareOp,
    Condition,
    InList,
    ListName,
    Not,
    TimeOfDay,
)
from ivr.sections import parse_time, parse_zone

if TYPE_CHECKING:
    from ivr.parse import Parsed

_KINDS = ("var", "in_list", "business_hours", "time_of_day", "all", "any", "not")


def parse_condition(p: Parsed, parent: Fields, key: str | int) -> Condition | None:
    raw = parent.raw(key)
    if raw is None:
        return None
    f = Fields(p.src, p.problems, (*parent.path, key), raw, "condition")
    if not isinstance(raw, dict):
        return None
    kinds = [k for k in _KINDS if k in raw]
    if len(kinds) != 1:
        f.error((), f"condition needs exactly one of {', '.join(_KINDS)}; got {sorted(map(str, raw)) or 'nothing'}")
        return None
    cond = _parse(p, f, kinds[0])
    f.finish()
    if cond is not None and isinstance(cond, Compare | InList | BusinessHours):
        p.conditions.append((cond, (*f.path, kinds[0])))
    return cond


def _parse(p: Parsed, f: Fields, kind: str) -> Condition | None:
    if kind == "var":
        return _compare(f)
    if kind == "in_list":
        name = f.text("in_list") or ""
        return InList(list_name=ListName(name), var=f.text("var", "caller") or "caller")
    if kind == "business_hours":
        return BusinessHours(calendar=CalendarName(f.text("business_hours") or ""))
    if kind == "time_of_day":
        return _time_of_day(p, f)
    if kind == "not":
        inner = parse_condition(p, f, "not")
        return None if inner is None else Not(condition=inner)
    items = f.raw(kind)
    if not isinstance(items, list) or not items:
        f.error((kind,), f"condition: '{kind}' must be a non-empty list of conditions")
        return None
    wrapper = Fields(p.src, p.problems, (*f.path, kind), dict(enumerate(items)), "condition")
    parts = [parse_condition(p, wrapper, index) for index in range(len(items))]
    if any(part is None for part in parts):
        return None
    conds = tuple(part for part in parts if part is not None)
    return AllOf(conditions=conds) if kind == "all" else AnyOf(conditions=conds)


def _compare(f: Fields) -> Condition | None:
    f.used.add("value")
    var = f.text("var") or ""
    op_name = f.text("op", "eq") or "eq"
    try:
        op = CompareOp(op_name)
    except ValueError:
        f.error(("op",), f"condition: unknown operator {op_name!r} (known: {', '.join(o.value for o in CompareOp)})")
        return None
    if op is CompareOp.EXISTS:
        return Compare(var=var, op=op)
    value: Any = f.raw("value")
    if op is CompareOp.IN:
        if not isinstance(value, list) or not all(_scalar(v) for v in value):
            f.error(("value",), "condition: 'in' needs a list of strings, integers or booleans")
            return None
        return Compare(var=var, op=op, value=tuple(value))
    if not _scalar(value):
        f.error(("value",), f"condition: '{op.value}' needs a string, integer or boolean value")
        return None
    pattern = None
    if op is CompareOp.MATCHES:
        if not isinstance(value, str):
            f.error(("value",), "condition: 'matches' needs a regular expression string")
            return None
        try:
            pattern = re.compile(value)
        except re.error as exc:
            f.error(("value",), f"condition: invalid regular expression {value!r}: {exc}")
            return None
    return Compare(var=var, op=op, value=value, pattern=pattern)


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | bool)


def _time_of_day(p: Parsed, parent: Fields) -> Condition | None:
    f = Fields(p.src, p.problems, (*parent.path, "time_of_day"), parent.raw("time_of_day"), "time_of_day")
    start_text = f.text("from") or ""
    end_text = f.text("to") or ""
    tz = parse_zone(f, "timezone", f.text("timezone", p.timezone))
    f.finish()
    try:
        start = parse_time(start_text, allow_24=False)
        end = parse_time(end_text, allow_24=True)
    except ValueError:
        f.error((), f"time_of_day: 'from' and 'to' must be HH:MM, got {start_text!r} and {end_text!r}")
        return None
    if start is None:
        return None
    return TimeOfDay(start=start, end=end or time(0, 0), timezone=tz)
