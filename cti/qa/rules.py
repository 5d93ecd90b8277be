"""The sampling-rule language (domain.md §4.4): parse and validate a rule's JSON into frozen dataclasses.

A rule is JSON with a closed set of keys; an unknown key, field or operator is refused with its path and the
reason (``RuleInvalidError.problems``), never ignored. Conditions combine ``all`` / ``any`` / ``not`` over
``{"field", "op", "value"}`` leaves; fields and operators are whitelisted (:data:`FIELDS`, :data:`OPERATORS`),
and each field's value is type-checked against its kind. The canonical form (:func:`canonical_rule`) is what is
hashed and stored: sorted keys, no whitespace, defaults filled in. Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cti.qa.errors import RuleInvalidError

__all__ = ["FIELDS", "OPERATORS", "And", "Assignment", "Condition", "DaySelector", "FieldKind", "Leaf", "Not", "Or",
           "Rule", "Select", "SelectMethod", "canonical_rule", "parse_rule", "rule_hash"]


class FieldKind(enum.Enum):
    TIME = "time"  # "HH:MM" or "HH:MM:SS", local site time
    NUMBER = "number"
    INTEGER = "integer"
    TEXT = "text"
    TEXT_SET = "text_set"  # the call carries several values (skills): == / != test membership
    BOOLEAN = "boolean"


FIELDS: Mapping[str, FieldKind] = {
    "answer_local_time": FieldKind.TIME, "local_weekday": FieldKind.INTEGER, "talk_s": FieldKind.NUMBER,
    "hold_s": FieldKind.NUMBER, "acw_s": FieldKind.NUMBER, "wait_s": FieldKind.NUMBER, "queue_id": FieldKind.TEXT,
    "skill": FieldKind.TEXT_SET, "call_reason": FieldKind.TEXT, "direction": FieldKind.TEXT,
    "outcome": FieldKind.TEXT, "transfer_count": FieldKind.INTEGER, "vip_flag": FieldKind.BOOLEAN,
}
"""Fields a filter may test (domain.md §4.4 whitelist)."""

OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "not_in", "between")
_ORDERED_OPS = frozenset({"<", "<=", ">", ">=", "between"})
_ORDER_FIELDS = frozenset({"t_answer", "recording_serial", "talk_s", "hold_s", "acw_s", "wait_s",
                           "answer_local_time", "transfer_count"})
_PARTITIONS = ("agent_id", "local_date", "queue_id")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KEYS = frozenset({"rule_id", "version", "period", "scope", "filter", "partition_by", "order_by", "select",
                   "per_partition", "day_selector", "fallback", "form_id", "form_version", "assign", "title"})
MAX_CONDITIONS = 64


class SelectMethod(enum.Enum):
    NTH = "nth"
    SEEDED_RANDOM = "seeded_random"
    PERCENT = "percent"
    ALL = "all"


@dataclass(frozen=True, slots=True, kw_only=True)
class Leaf:
    field: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class And:
    terms: tuple[Condition, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Or:
    terms: tuple[Condition, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Not:
    term: Condition


Condition = Leaf | And | Or | Not


@dataclass(frozen=True, slots=True, kw_only=True)
class Select:
    method: SelectMethod
    n: int = 1  # nth
    k: int = 1  # seeded_random
    p: float = 0.0  # percent, 0 < p <= 1


@dataclass(frozen=True, slots=True, kw_only=True)
class DaySelector:
    count: int  # seeded_random_day: this many days of the period, the same for everyone


@dataclass(frozen=True, slots=True, kw_only=True)
class Assignment:
    method: str  # round_robin | seeded
    evaluators: tuple[str, ...]
    independent: bool  # an evaluator never evaluates an agent of a team they lead


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """A validated rule. ``source`` is its canonical JSON object (what is stored and hashed)."""

    rule_id: str
    version: int
    start: dt.date
    end: dt.date
    tz: ZoneInfo
    agents: frozenset[str] | None  # None: every agent with calls in scope
    queues: frozenset[str] | None
    direction: str | None
    condition: Condition | None
    partition_by: tuple[str, ...]
    order_by: tuple[tuple[str, bool], ...]  # (field, descending)
    select: Select
    per_partition: int | None
    day_selector: DaySelector | None
    fallback_next_day: bool
    form_id: str | None
    form_version: int | None
    assign: Assignment | None
    source: Mapping[str, Any]

    def days(self) -> list[dt.date]:
        """Every local date of the period, in order."""
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, reason: str) -> None:
        self.items.append(f"{path}: {reason}")


def _unknown(obj: Mapping[str, Any], allowed: Sequence[str] | frozenset[str], path: str, p: _Problems) -> None:
    for key in sorted(set(obj) - set(allowed)):
        p.add(f"{path}.{key}" if path else key, f"unknown key (known: {', '.join(sorted(allowed))})")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _time_ok(v: Any) -> bool:
    return isinstance(v, str) and _TIME.match(v) is not None


def normalise_time(v: str) -> str:
    """"HH:MM" -> "HH:MM:00" (the comparable form of local times)."""
    return v if len(v) == 8 else f"{v}:00"


def _scalar_ok(kind: FieldKind, v: Any) -> bool:
    match kind:
        case FieldKind.TIME:
            return _time_ok(v)
        case FieldKind.NUMBER:
            return _is_num(v)
        case FieldKind.INTEGER:
            return _is_int(v)
        case FieldKind.TEXT | FieldKind.TEXT_SET:
            return isinstance(v, str)
        case FieldKind.BOOLEAN:
            return isinstance(v, bool)


def _leaf(obj: Mapping[str, Any], path: str, p: _Problems) -> Leaf | None:
    _unknown(obj, ("field", "op", "value"), path, p)
    field: Any = obj.get("field")
    op: Any = obj.get("op")
    value: Any = obj.get("value")
    if field not in FIELDS:
        p.add(f"{path}.field", f"unknown field {field!r} (allowed: {', '.join(FIELDS)})")
        return None
    if op not in OPERATORS:
        p.add(f"{path}.op", f"unknown operator {op!r} (allowed: {' '.join(OPERATORS)})")
        return None
    kind = FIELDS[field]
    if op in _ORDERED_OPS and kind in (FieldKind.TEXT_SET, FieldKind.BOOLEAN, FieldKind.TEXT):
        p.add(f"{path}.op", f"operator {op!r} does not apply to field {field!r}")
        return None
    if op in ("in", "not_in"):
        ok = isinstance(value, list) and bool(value) and all(_scalar_ok(kind, v) for v in value)
        want = f"a non-empty list of {kind.value} values"
    elif op == "between":
        ok = isinstance(value, list) and len(value) == 2 and all(_scalar_ok(kind, v) for v in value)
        want = f"a list [low, high] of {kind.value} values"
    else:
        ok = _scalar_ok(kind, value)
        want = f"a {kind.value} value" + (" (HH:MM or HH:MM:SS)" if kind is FieldKind.TIME else "")
    if not ok:
        p.add(f"{path}.value", f"{field} {op} needs {want}, got {json.dumps(value)}")
        return None
    if kind is FieldKind.TIME:
        value = [normalise_time(v) for v in value] if isinstance(value, list) else normalise_time(value)
    return Leaf(field=field, op=op, value=tuple(value) if isinstance(value, list) else value)


def _condition(obj: Any, path: str, p: _Problems, count: list[int]) -> Condition | None:
    count[0] += 1
    if count[0] > MAX_CONDITIONS:
        if count[0] == MAX_CONDITIONS + 1:
            p.add(path, f"more than {MAX_CONDITIONS} conditions")
        return None
    if not isinstance(obj, dict):
        p.add(path, "a condition is an object: {field, op, value}, {all: [...]}, {any: [...]} or {not: {...}}")
        return None
    combinators = [k for k in ("all", "any", "not") if k in obj]
    if not combinators:
        return _leaf(obj, path, p)
    if len(obj) != 1:
        p.add(path, f"{combinators[0]!r} must be the only key of its object")
        return None
    key = combinators[0]
    if key == "not":
        inner = _condition(obj["not"], f"{path}.not", p, count)
        return None if inner is None else Not(term=inner)
    terms = obj[key]
    if not isinstance(terms, list) or not terms:
        p.add(f"{path}.{key}", "a non-empty list of conditions")
        return None
    parsed = [_condition(t, f"{path}.{key}[{i}]", p, count) for i, t in enumerate(terms)]
    if any(t is None for t in parsed):
        return None
    done = tuple(t for t in parsed if t is not None)
    return And(terms=done) if key == "all" else Or(terms=done)


def _date(v: Any, path: str, p: _Problems) -> dt.date | None:
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            pass
    p.add(path, f"a date YYYY-MM-DD, got {json.dumps(v)}")
    return None


def _text_set(v: Any, path: str, p: _Problems) -> frozenset[str] | None:
    if v in ("*", "all", None):
        return None
    if isinstance(v, list) and v and all(isinstance(x, str) and x for x in v):
        return frozenset(v)
    p.add(path, f'"*" or a non-empty list of ids, got {json.dumps(v)}')
    return None


def parse_rule(obj: Any, *, default_tz: str = "UTC") -> Rule:
    """Validate a rule's JSON object; the period's ``tz`` defaults to ``default_tz`` (the site's zone).

    Raises:
        RuleInvalidError: every problem found, each ``path: reason``.
    """
    p = _Problems()
    if not isinstance(obj, dict):
        raise RuleInvalidError(["rule: a JSON object"])
    _unknown(obj, _KEYS, "", p)
    rule_id = obj.get("rule_id")
    if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
        p.add("rule_id", "1-64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit")
    version = obj.get("version", 1)
    if not _is_int(version) or version < 1:
        p.add("version", "a positive integer")
    # period
    period = obj.get("period")
    start = end = None
    tz: ZoneInfo | None = None
    tz_name = default_tz
    if not isinstance(period, dict):
        p.add("period", 'required: {"start": "YYYY-MM-DD", "end": "YYYY-MM-DD", "tz": "Area/City"}')
    else:
        _unknown(period, ("start", "end", "tz"), "period", p)
        start, end = _date(period.get("start"), "period.start", p), _date(period.get("end"), "period.end", p)
        if start and end and end < start:
            p.add("period.end", "before period.start")
        if start and end and (end - start).days > 366:
            p.add("period", "longer than 366 days")
        tz_name = period.get("tz", default_tz)
        try:
            tz = ZoneInfo(tz_name) if isinstance(tz_name, str) and tz_name else None
        except (ZoneInfoNotFoundError, ValueError):
            tz = None
        if tz is None:
            p.add("period.tz", f"unknown time zone {json.dumps(tz_name)}")
    # scope
    scope = obj.get("scope", {})
    agents = queues = None
    direction: str | None = None
    if not isinstance(scope, dict):
        p.add("scope", "an object {agents, queues, direction}")
        scope = {}
    _unknown(scope, ("agents", "queues", "direction"), "scope", p)
    agents = _text_set(scope.get("agents"), "scope.agents", p)
    queues = _text_set(scope.get("queues"), "scope.queues", p)
    direction = scope.get("direction", "inbound")
    if direction not in ("inbound", "any"):
        p.add("scope.direction", "inbound or any (the node records inbound queue calls)")
    # filter
    condition = None
    if "filter" in obj:
        condition = _condition(obj["filter"], "filter", p, [0])
    # partition, order
    partition = obj.get("partition_by", ["agent_id"])
    if (not isinstance(partition, list) or not all(x in _PARTITIONS for x in partition)
            or "agent_id" not in partition or len(set(partition)) != len(partition)):
        p.add("partition_by", f"a list of distinct {', '.join(_PARTITIONS)} that includes agent_id")
        partition = ["agent_id"]
    order_raw = obj.get("order_by", [{"field": "t_answer", "dir": "asc"}, {"field": "recording_serial", "dir": "asc"}])
    order: list[tuple[str, bool]] = []
    if not isinstance(order_raw, list) or not order_raw:
        p.add("order_by", "a non-empty list of {field, dir}")
    else:
        for i, o in enumerate(order_raw):
            if not isinstance(o, dict) or o.get("field") not in _ORDER_FIELDS or o.get("dir", "asc") not in (
                    "asc", "desc") or set(o) - {"field", "dir"}:
                p.add(f"order_by[{i}]", f"{{field, dir}} with field one of {', '.join(sorted(_ORDER_FIELDS))} "
                                        "and dir asc or desc")
            else:
                order.append((o["field"], o.get("dir", "asc") == "desc"))
        if order and order[-1][0] != "recording_serial" and all(f != "recording_serial" for f, _ in order):
            order.append(("recording_serial", False))  # a total order: serials are unique
    # select
    select = Select(method=SelectMethod.NTH, n=1)
    sel = obj.get("select")
    if not isinstance(sel, dict) or sel.get("method") not in {m.value for m in SelectMethod}:
        p.add("select.method", f"required, one of {', '.join(m.value for m in SelectMethod)}")
    else:
        method = SelectMethod(sel["method"])
        known = {SelectMethod.NTH: ("n",), SelectMethod.SEEDED_RANDOM: ("k",), SelectMethod.PERCENT: ("p",),
                 SelectMethod.ALL: ()}[method]
        _unknown(sel, ("method", *known), "select", p)
        if method is SelectMethod.NTH:
            n: Any = sel.get("n")
            if not _is_int(n) or n < 1:
                p.add("select.n", "a positive integer")
            else:
                select = Select(method=method, n=n)
        elif method is SelectMethod.SEEDED_RANDOM:
            k: Any = sel.get("k")
            if not _is_int(k) or k < 1:
                p.add("select.k", "a positive integer")
            else:
                select = Select(method=method, k=k)
        elif method is SelectMethod.PERCENT:
            pct: Any = sel.get("p")
            if not _is_num(pct) or not 0 < pct <= 1:
                p.add("select.p", "a fraction in (0, 1], e.g. 0.05 for 5 %")
            else:
                select = Select(method=method, p=float(pct))
        else:
            select = Select(method=method)
    per_partition = obj.get("per_partition")
    if per_partition is not None and (not _is_int(per_partition) or per_partition < 1):
        p.add("per_partition", "a positive integer")
    # day selector, fallback
    days: DaySelector | None = None
    ds = obj.get("day_selector")
    if ds is not None:
        if not isinstance(ds, dict) or ds.get("method") != "seeded_random_day":
            p.add("day_selector.method", "seeded_random_day")
        else:
            _unknown(ds, ("method", "count"), "day_selector", p)
            count = ds.get("count", 1)
            if not _is_int(count) or count < 1:
                p.add("day_selector.count", "a positive integer")
            elif start and end and count > (end - start).days + 1:
                p.add("day_selector.count", "more days than the period has")
            else:
                days = DaySelector(count=count)
    fallback = obj.get("fallback", "none")
    if fallback not in ("none", "next_eligible_day"):
        p.add("fallback", "none or next_eligible_day")
    elif fallback == "next_eligible_day" and days is None:
        p.add("fallback", "next_eligible_day needs a day_selector")
    # form and assignment
    form_id, form_version = obj.get("form_id"), obj.get("form_version")
    if form_id is not None and (not isinstance(form_id, str) or not form_id):
        p.add("form_id", "a form id")
    if form_version is not None and (not _is_int(form_version) or form_version < 1):
        p.add("form_version", "a positive integer")
    if (form_id is None) != (form_version is None):
        p.add("form_version", "form_id and form_version go together")
    assign = None
    a = obj.get("assign")
    if a is not None:
        if not isinstance(a, dict):
            p.add("assign", "an object {method, evaluators, independent}")
        else:
            _unknown(a, ("method", "evaluators", "independent"), "assign", p)
            evs: Any = a.get("evaluators")
            if a.get("method", "round_robin") not in ("round_robin", "seeded"):
                p.add("assign.method", "round_robin or seeded")
            if not isinstance(evs, list) or not evs or not all(isinstance(e, str) and e for e in evs) or len(
                    set(evs)) != len(evs):
                p.add("assign.evaluators", "a non-empty list of distinct supervisor ids")
            if not isinstance(a.get("independent", False), bool):
                p.add("assign.independent", "true or false")
            if not p.items:
                assign = Assignment(method=a.get("method", "round_robin"), evaluators=tuple(evs),
                                    independent=a.get("independent", False))
    title = obj.get("title")
    if title is not None and (not isinstance(title, str) or len(title) > 200):
        p.add("title", "a text of at most 200 characters")
    if p.items:
        raise RuleInvalidError(p.items)
    assert start is not None and end is not None and tz is not None and isinstance(rule_id, str)
    source = dict(obj)
    source["period"] = {"start": start.isoformat(), "end": end.isoformat(), "tz": tz_name}
    source["version"] = version
    source.setdefault("partition_by", partition)
    source["order_by"] = [{"field": f, "dir": "desc" if d else "asc"} for f, d in order]
    source.setdefault("fallback", fallback)
    return Rule(rule_id=rule_id, version=version, start=start, end=end, tz=tz, agents=agents, queues=queues,
                direction=None if direction == "any" else direction, condition=condition,
                partition_by=tuple(partition), order_by=tuple(order), select=select, per_partition=per_partition,
                day_selector=days, fallback_next_day=fallback == "next_eligible_day", form_id=form_id,
                form_version=form_version, assign=assign, source=source)


def canonical_rule(rule: Rule) -> str:
    """The rule's canonical JSON text (sorted keys, no spaces): what is stored and hashed."""
    return json.dumps(rule.source, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rule_hash(rule: Rule) -> str:
    """``sha256:<hex>`` of the canonical rule."""
    return "sha256:" + hashlib.sha256(canonical_rule(rule).encode()).hexdigest()
