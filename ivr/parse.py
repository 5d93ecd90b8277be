"""Parse flow YAML (already loaded with its lines) into :mod:`ivr.flow` nodes.

Parsing checks the shape of each node (keys, types, ranges). Whatever needs the whole flow
set -- targets, reachability, loops, variable types, lists, calendars, prompt files -- is
collected in :class:`Parsed` and checked by :mod:`ivr.validate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from config.errors import Problem
from config.yamlsource import Located, PathKey
from ivr.conditions_parse import parse_condition
from ivr.fields import Fields
from ivr.flow import (
    Branch,
    Calendar,
    CalendarName,
    Case,
    Collect,
    Condition,
    Flow,
    FlowName,
    Hangup,
    ListName,
    Lookup,
    Menu,
    Node,
    NodeId,
    Play,
    Queue,
    ResultField,
    Return,
    SetVars,
    SubFlow,
    Tag,
    Value,
    VarType,
    Voicemail,
)
from ivr.sections import parse_calendar, parse_list, parse_zone

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIGITS = frozenset("0123456789*#")
_DAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
_DAY_GROUPS = {"weekdays": (1, 2, 3, 4, 5), "weekend": (6, 7), "daily": (1, 2, 3, 4, 5, 6, 7)}
_INTERVAL_RE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


@dataclass(slots=True)
class Parsed:
    """Nodes plus everything the cross-checks need, each with its location."""

    src: Located
    problems: list[Problem] = field(default_factory=list)
    flows: dict[FlowName, Flow] = field(default_factory=dict)
    lists: dict[ListName, frozenset[str]] = field(default_factory=dict)
    calendars: dict[CalendarName, Calendar] = field(default_factory=dict)
    conditions: list[tuple[Condition, PathKey]] = field(default_factory=list)
    templates: list[tuple[str, PathKey]] = field(default_factory=list)
    var_defs: list[tuple[str, VarType, PathKey]] = field(default_factory=list)
    prompts: list[tuple[str, PathKey]] = field(default_factory=list)
    broken: set[tuple[FlowName, NodeId]] = field(default_factory=set)  # refused nodes: no cascading errors
    timezone: str = "UTC"


def _var_name(f: Fields, key: str, value: str | None) -> str | None:
    if value is not None and not _VAR_RE.match(value):
        f.error((key,), f"{f.what}: variable name {value!r} must be letters, digits and _")
        return None
    return value


def _prompts(p: Parsed, f: Fields, key: str, *, required: bool) -> tuple[Any, ...]:
    names = f.prompts(key, required=required)
    for index, name in enumerate(names):
        p.prompts.append((name, (*f.path, key, index)))
    return names


def _template(p: Parsed, f: Fields, key: str, default: Any = ...) -> str:
    value = f.text(key) if default is ... else f.text(key, default)
    if value is not None:
        p.templates.append((value, (*f.path, key)))
    return value or ""


def _play(p: Parsed, f: Fields, nid: NodeId) -> Node:
    return Play(id=nid, prompts=_prompts(p, f, "prompts", required=True), next=f.target("next"))


def _retry_fields(p: Parsed, f: Fields) -> dict[str, Any]:
    return {
        "prompts": _prompts(p, f, "prompts", required=True),
        "timeout": f.seconds("timeout", 5.0, 0.5, 60.0),
        "retries": f.integer("retries", 2, 0, 5) or 0,
        "invalid_prompts": _prompts(p, f, "invalid_prompts", required=False),
        "no_input_prompts": _prompts(p, f, "no_input_prompts", required=False),
        "on_failure": f.target("on_failure"),
        "max_visits": f.integer("max_visits", 3, 1, 10) or 1,
    }


def _menu(p: Parsed, f: Fields, nid: NodeId) -> Node:
    options: dict[str, NodeId] = {}
    for key, target in f.mapping("options", required=True).items():
        digit = str(key)
        if digit not in _DIGITS:
            f.error(("options", key), f"{f.what}: option {digit!r} must be one key: 0-9, * or #")
        elif not isinstance(target, str):
            f.error(("options", key), f"{f.what}: option {digit!r} must name a target node")
        else:
            options[digit] = NodeId(target)
    if f.data.get("options") == {}:
        f.error(("options",), f"{f.what}: 'options' needs at least one option")
    store = _var_name(f, "store", f.text("store", None))
    if store is not None:
        p.var_defs.append((store, VarType.STR, (*f.path, "store")))
    return Menu(id=nid, options=options, store=store, **_retry_fields(p, f))


def _collect(p: Parsed, f: Fields, nid: NodeId) -> Node:
    variable = _var_name(f, "variable", f.text("variable")) or ""
    p.var_defs.append((variable, VarType.STR, (*f.path, "variable")))
    min_length = f.integer("min_length", 1, 0, 32)
    max_length = f.integer("max_length", 20, 1, 32)
    if min_length is not None and max_length is not None and min_length > max_length:
        f.error(("min_length",), f"{f.what}: min_length {min_length} is greater than max_length {max_length}")
    terminator = f.text("terminator", "#")
    if terminator is not None and terminator not in ("#", "*"):
        f.error(("terminator",), f"{f.what}: terminator must be '#', '*' or null")
    pattern = None
    raw = f.text("pattern", None)
    if raw is not None:
        try:
            pattern = re.compile(raw)
        except re.error as exc:
            f.error(("pattern",), f"{f.what}: invalid pattern {raw!r}: {exc}")
    return Collect(
        id=nid,
        variable=variable,
        min_length=min_length or 0,
        max_length=max_length or 1,
        terminator=terminator,
        inter_digit_timeout=f.seconds("inter_digit_timeout", 3.0, 0.5, 30.0),
        pattern=pattern,
        next=f.target("next"),
        **_retry_fields(p, f),
    )


def _set(p: Parsed, f: Fields, nid: NodeId) -> Node:
    values: dict[str, Value] = {}
    for name, value in f.mapping("values", required=True).items():
        if not isinstance(name, str) or not _VAR_RE.match(name):
            f.error(("values", name), f"{f.what}: variable name {name!r} must be letters, digits and _")
            continue
        path = (*f.path, "values", name)
        if isinstance(value, bool):
            p.var_defs.append((name, VarType.BOOL, path))
        elif isinstance(value, int):
            p.var_defs.append((name, VarType.INT, path))
        elif isinstance(value, str):
            p.var_defs.append((name, VarType.STR, path))
            p.templates.append((value, path))
        else:
            f.error(("values", name), f"{f.what}: value of {name!r} must be a string, integer or boolean")
            continue
        values[name] = value
    return SetVars(id=nid, values=values, next=f.target("next"))


def _branch(p: Parsed, f: Fields, nid: NodeId) -> Node:
    cases: list[Case] = []
    raw = f.raw("cases")
    if not isinstance(raw, list) or not raw:
        f.error(("cases",), f"{f.what}: 'cases' must be a non-empty list of {{when, goto}}")
        raw = []
    for index, item in enumerate(raw):
        cf = Fields(p.src, p.problems, (*f.path, "cases", index), item, f"{f.what} case {index + 1}")
        cond = parse_condition(p, cf, "when")
        goto = cf.target("goto")
        cf.finish()
        if cond is not None:
            cases.append(Case(when=cond, goto=goto))
    return Branch(id=nid, cases=tuple(cases), default=f.target("default"))


def _lookup(p: Parsed, f: Fields, nid: NodeId) -> Node:
    url = _template(p, f, "url")
    if url and not url.startswith(("http://", "https://")):
        f.error(("url",), f"{f.what}: url must start with http:// or https://")
    params: dict[str, str] = {}
    for key, value in f.mapping("params").items():
        if not isinstance(value, str | int) or isinstance(value, bool):
            f.error(("params", key), f"{f.what}: parameter {key!r} must be a string")
            continue
        params[str(key)] = str(value)
        p.templates.append((str(value), (*f.path, "params", key)))
    result: dict[str, ResultField] = {}
    for name, spec in f.mapping("result").items():
        rf = _result_field(p, f, str(name), spec)
        if rf is not None:
            result[str(name)] = rf
    return Lookup(
        id=nid,
        url=url,
        params=params,
        timeout=f.seconds("timeout", 3.0, 0.1, 30.0),
        result=result,
        next=f.target("next"),
        on_error=f.target("on_error"),
    )


def _result_field(p: Parsed, f: Fields, name: str, spec: Any) -> ResultField | None:
    path = (*f.path, "result", name)
    if not _VAR_RE.match(name):
        f.error(("result", name), f"{f.what}: variable name {name!r} must be letters, digits and _")
        return None
    if isinstance(spec, str):
        spec = {"path": spec}
    sf = Fields(p.src, p.problems, path, spec, f"{f.what} result {name!r}")
    dotted = sf.text("path") or ""
    type_name = sf.text("type", "str")
    sf.finish()
    try:
        var_type = VarType(type_name)
    except ValueError:
        sf.error(("type",), f"{sf.what}: type must be str, int or bool, got {type_name!r}")
        return None
    p.var_defs.append((name, var_type, path))
    return ResultField(path=tuple(dotted.split(".")), type=var_type)


def _tag(p: Parsed, f: Fields, nid: NodeId) -> Node:
    alert = f.text("alert", None)
    if alert is not None:
        p.templates.append((alert, (*f.path, "alert")))
    tag = Tag(
        id=nid,
        vip=f.flag("vip", False),
        priority=f.integer("priority", None, 0, 100) if f.has("priority") else None,
        reason=f.text("reason", None),
        skills=f.skills("skills"),
        alert=alert,
        next=f.target("next"),
    )
    if not (tag.vip or tag.priority is not None or tag.reason or tag.skills or tag.alert):
        f.error((), f"{f.what}: a tag node needs at least one of vip, priority, reason, skills, alert")
    return tag


def _queue(p: Parsed, f: Fields, nid: NodeId) -> Node:
    return Queue(
        id=nid,
        queue=f.text("queue") or "",
        skills=f.skills("skills"),
        priority=f.integer("priority", None, 0, 100) if f.has("priority") else None,
        prompts=_prompts(p, f, "prompts", required=False),
    )


def _voicemail(p: Parsed, f: Fields, nid: NodeId) -> Node:
    mailbox = f.text("mailbox") or ""
    if mailbox and not _NAME_RE.match(mailbox):
        f.error(("mailbox",), f"{f.what}: mailbox {mailbox!r} must be letters, digits, _ and -")
    return Voicemail(
        id=nid,
        mailbox=mailbox,
        max_seconds=f.seconds("max_seconds", 120.0, 5.0, 600.0),
        prompts=_prompts(p, f, "prompts", required=False),
        beep=f.flag("beep", True),
        silence_seconds=f.seconds("silence_seconds", 5.0, 1.0, 60.0),
        next=f.target("next") if f.has("next") else None,
    )


def _subflow(p: Parsed, f: Fields, nid: NodeId) -> Node:
    return SubFlow(id=nid, flow=FlowName(f.text("flow") or ""), next=f.target("next"))


def _return(p: Parsed, f: Fields, nid: NodeId) -> Node:
    return Return(id=nid)


def _hangup(p: Parsed, f: Fields, nid: NodeId) -> Node:
    return Hangup(id=nid, prompts=_prompts(p, f, "prompts", required=False))


NODE_PARSERS: dict[str, Callable[[Parsed, Fields, NodeId], Node]] = {
    "play": _play,
    "menu": _menu,
    "collect": _collect,
    "set": _set,
    "branch": _branch,
    "lookup": _lookup,
    "tag": _tag,
    "queue": _queue,
    "voicemail": _voicemail,
    "subflow": _subflow,
    "return": _return,
    "hangup": _hangup,
}


REFUSED_NODES: dict[str, str] = {
    "transfer": "transfer to an external number (the node never sends an INVITE to an outside number; "
                "use a queue node)",
    "callback": "call-back requests (use a voicemail node: the caller's number is kept with the message)",
}
"""Node types of earlier drafts that this version refuses with a clear reason rather than accept and ignore."""


def _node(p: Parsed, path: PathKey, nid: NodeId, data: Any, flow: str) -> Node | None:
    f = Fields(p.src, p.problems, path, data, f"node '{nid}'")
    kind = f.text("type")
    if kind is None:
        return None
    if kind in REFUSED_NODES:
        f.error(("type",), f"{kind} node '{nid}': not available in this version: {REFUSED_NODES[kind]}")
        return None
    parser = NODE_PARSERS.get(kind)
    if parser is None:
        f.error(("type",), f"node '{nid}': unknown node type {kind!r} (known: {', '.join(sorted(NODE_PARSERS))})")
        return None
    f.what = f"{kind} node '{nid}'"
    node = parser(p, f, nid)
    f.finish()
    return node


def parse_flow(p: Parsed, name: str, data: Any) -> None:
    path: PathKey = ("flows", name)
    if not _NAME_RE.match(name):
        p.problems.append(p.src.problem(path, f"flow name {name!r} must be letters, digits, _ and -"))
    f = Fields(p.src, p.problems, path, data, f"flow '{name}'")
    start = f.target("start")
    nodes: dict[NodeId, Node] = {}
    for nid, body in f.mapping("nodes", required=True).items():
        if not isinstance(nid, str) or not _NAME_RE.match(nid):
            f.error(("nodes", nid), f"flow '{name}': node name {nid!r} must be letters, digits, _ and -")
            continue
        node = _node(p, (*path, "nodes", nid), NodeId(nid), body, name)
        if node is not None:
            nodes[NodeId(nid)] = node
        else:
            p.broken.add((FlowName(name), NodeId(nid)))
    f.raw("description", "")
    f.finish()
    p.flows[FlowName(name)] = Flow(name=FlowName(name), start=start, nodes=nodes, file=p.src.file)


def parse_document(src: Located) -> Parsed:
    """Parse one flow file. Problems are collected in the result, never raised."""
    p = Parsed(src=src)
    f = Fields(src, p.problems, (), src.data, "flow file")
    if not isinstance(src.data, dict):
        return p
    p.timezone = parse_zone(f, "timezone", f.text("timezone", "UTC"))
    for name, data in f.mapping("lists").items():
        parse_list(p, str(name), data)
    for name, data in f.mapping("calendars").items():
        parse_calendar(p, str(name), data)
    if not any(f.has(key) for key in ("flows", "lists", "calendars")):
        f.error((), "flow file: needs 'flows' (or a 'lists' / 'calendars' section shared with other files)")
    for name, data in f.mapping("flows").items():
        parse_flow(p, str(name), data)
    f.finish()
    return p
