"""Whole-flow-set checks: targets, reachability, loops, sub-flows, variable types, prompts.

The loop rule (what lets us promise that a flow never traps a caller): take every
*automatic* edge -- edges of nodes that do not wait for the caller, plus the ``on_failure``
edge of each menu/collect -- and require that this graph has **no cycle**. A cycle of the
whole flow must then pass through a menu or collect, which waits for input with a timeout,
allows a bounded number of retries per visit and a bounded number of visits per call, and
then leaves through ``on_failure`` -- which, by the rule, cannot lead back into the loop.
Sub-flow calls must not recurse. Together these bound the steps of every call.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from config.errors import Problem
from ivr.fields import locate
from ivr.flow import (
    BUILTIN_VARS,
    INPUT_NODES,
    BusinessHours,
    Compare,
    CompareOp,
    EdgeKind,
    Flow,
    FlowName,
    InList,
    NodeId,
    PromptName,
    SubFlow,
    VarType,
    edges,
)
from ivr.parse import Parsed
from ivr.template import variables_of

PROMPT_RATE = 8000
K = TypeVar("K", bound=str)


def _problem(doc: Parsed, path: Sequence[str | int], reason: str) -> Problem:
    return doc.src.problem(locate(doc.src, path), reason)


def var_types(docs: Sequence[Parsed], problems: list[Problem]) -> dict[str, VarType]:
    types: dict[str, VarType] = {name: VarType.STR for name in BUILTIN_VARS}
    first: dict[str, str] = {}
    for doc in docs:
        for name, var_type, path in doc.var_defs:
            if not name:
                continue
            if name in BUILTIN_VARS:
                problems.append(_problem(doc, path, f"cannot assign built-in variable '{name}'"))
            elif name in types and types[name] is not var_type:
                problems.append(
                    _problem(doc, path, f"variable '{name}' is {var_type.value} here but {types[name].value} "
                             f"at {first[name]}")
                )
            elif name not in types:
                types[name] = var_type
                first[name] = f"{doc.src.file}:{doc.src.line_of(locate(doc.src, path))}"
    return types


def _type_of(value: object) -> VarType:
    if isinstance(value, bool):
        return VarType.BOOL
    return VarType.INT if isinstance(value, int) else VarType.STR


def _check_compare(cond: Compare, types: dict[str, VarType]) -> str | None:
    var_type = types.get(cond.var)
    if var_type is None:
        return f"condition: unknown variable '{cond.var}' (no node sets it)"
    if cond.op is CompareOp.EXISTS:
        return None
    if cond.op in (CompareOp.LT, CompareOp.LE, CompareOp.GT, CompareOp.GE):
        if var_type is not VarType.INT or _type_of(cond.value) is not VarType.INT:
            return (f"condition: '{cond.op.value}' compares integers; '{cond.var}' is {var_type.value} "
                    f"and the value is {_type_of(cond.value).value}")
        return None
    if cond.op is CompareOp.MATCHES:
        return None if var_type is VarType.STR else f"condition: 'matches' needs a str variable, '{cond.var}' is " \
            f"{var_type.value}"
    values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
    for value in values:
        if _type_of(value) is not var_type:
            return (f"condition: variable '{cond.var}' is {var_type.value}, cannot compare with "
                    f"{_type_of(value).value} {value!r}")
    return None


def check_references(docs: Sequence[Parsed], types: dict[str, VarType], problems: list[Problem]) -> None:
    lists = {name for doc in docs for name in doc.lists}
    calendars = {name for doc in docs for name in doc.calendars}
    for doc in docs:
        for cond, path in doc.conditions:
            reason: str | None = None
            if isinstance(cond, Compare):
                reason = _check_compare(cond, types)
            elif isinstance(cond, InList):
                if cond.list_name not in lists:
                    reason = f"condition: unknown list '{cond.list_name}' (known: {', '.join(sorted(lists)) or 'none'})"
                elif types.get(cond.var) is not VarType.STR:
                    reason = f"condition: in_list needs a str variable, '{cond.var}' is not one"
            elif isinstance(cond, BusinessHours) and cond.calendar not in calendars:
                reason = f"condition: unknown calendar '{cond.calendar}'"
            if reason:
                problems.append(_problem(doc, path, reason))
        for template, path in doc.templates:
            names, bad = variables_of(template)
            for placeholder in bad:
                problems.append(_problem(doc, path, f"unknown placeholder {placeholder} (use {{caller}}, "
                                         "{called} or {vars.NAME})"))
            for name in names:
                if name not in types:
                    problems.append(_problem(doc, path, f"template uses unknown variable '{name}'"))


def _cycle_reason(flow: Flow, cycle: list[NodeId]) -> str:
    ring = " -> ".join([*cycle, cycle[0]])
    waits = [nid for nid in cycle if isinstance(flow.nodes[nid], INPUT_NODES)]
    if waits:
        return f"loop {ring} has no bounded exit: on_failure of '{waits[0]}' leads back into the loop"
    return f"loop {ring} never waits for caller input (add a menu or collect, or break the loop)"


def check_graph(doc: Parsed, flow: Flow, flows: set[FlowName], problems: list[Problem]) -> None:
    base = ("flows", flow.name)
    nodes = flow.nodes
    known = set(nodes) | {nid for name, nid in doc.broken if name == flow.name}
    if flow.start and flow.start not in known:
        problems.append(_problem(doc, (*base, "start"), f"flow '{flow.name}': unknown start node '{flow.start}'"))
    for nid, node in nodes.items():
        for field_name, target, _kind in edges(node):
            if target and target not in known:
                path = (*base, "nodes", nid, *field_name.split("."))
                problems.append(_problem(doc, path, f"node '{nid}': unknown target '{target}' in {field_name}"))
        if isinstance(node, SubFlow) and node.flow and node.flow not in flows:
            problems.append(_problem(doc, (*base, "nodes", nid, "flow"), f"node '{nid}': unknown flow '{node.flow}'"))
    seen: set[NodeId] = set()
    todo = [flow.start] if flow.start in nodes else []
    while todo:
        nid = todo.pop()
        if nid in seen:
            continue
        seen.add(nid)
        todo.extend(t for _f, t, _k in edges(nodes[nid]) if t in nodes)
    if flow.start in nodes:
        for nid in nodes:
            if nid not in seen:
                problems.append(_problem(doc, (*base, "nodes", nid), f"node '{nid}' is unreachable from "
                                         f"start '{flow.start}'"))
    for cycle in _cycles(flow):
        problems.append(_problem(doc, (*base, "nodes", cycle[0]), _cycle_reason(flow, cycle)))


def _cycles(flow: Flow) -> list[list[NodeId]]:
    """Distinct cycles of the automatic-edge graph, found by depth-first search."""
    auto = {
        nid: [t for _f, t, kind in edges(node) if kind is EdgeKind.AUTOMATIC and t in flow.nodes]
        for nid, node in flow.nodes.items()
    }
    return _graph_cycles(auto)


def _graph_cycles(graph: dict[K, list[K]]) -> list[list[K]]:
    done: set[K] = set()
    found: list[list[K]] = []
    reported: set[frozenset[K]] = set()
    for root in graph:
        if root in done:
            continue
        stack: list[tuple[K, int]] = [(root, 0)]
        on_path: list[K] = [root]
        while stack:
            nid, index = stack[-1]
            if index < len(graph[nid]):
                stack[-1] = (nid, index + 1)
                nxt = graph[nid][index]
                if nxt in on_path:
                    cycle = on_path[on_path.index(nxt):]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        found.append(cycle)
                elif nxt not in done:
                    stack.append((nxt, 0))
                    on_path.append(nxt)
            else:
                done.add(nid)
                stack.pop()
                on_path.pop()
    return found


def check_subflows(docs: Sequence[Parsed], problems: list[Problem]) -> None:
    calls: dict[FlowName, list[FlowName]] = {}
    where: dict[str, Parsed] = {}
    for doc in docs:
        for name, flow in doc.flows.items():
            where[name] = doc
            calls[name] = [n.flow for n in flow.nodes.values() if isinstance(n, SubFlow)]
    for name in calls:
        calls[name] = [callee for callee in calls[name] if callee in calls]
    for cycle in _graph_cycles(calls):
        doc = where[cycle[0]]
        ring = " -> ".join([*cycle, cycle[0]])
        problems.append(_problem(doc, ("flows", cycle[0]), f"sub-flow recursion: {ring}"))


def check_prompts(docs: Sequence[Parsed], prompt_dir: Path, problems: list[Problem]) -> dict[PromptName, float]:
    """Every prompt must be ``<prompt_dir>/<name>.wav``, 8 kHz mono 16-bit PCM (blocking file reads)."""
    seconds: dict[PromptName, float] = {}
    for doc in docs:
        for name, path in doc.prompts:
            if name in seconds:
                continue
            file = prompt_dir / f"{name}.wav"
            reason = None
            try:
                with wave.open(str(file), "rb") as wav:
                    shape = (wav.getframerate(), wav.getnchannels(), wav.getsampwidth())
                    if shape != (PROMPT_RATE, 1, 2):
                        reason = (f"prompt '{name}': {file.name} must be 8000 Hz mono 16-bit PCM, got "
                                  f"{shape[0]} Hz, {shape[1]} channel(s), {8 * shape[2]}-bit")
                    else:
                        seconds[PromptName(name)] = wav.getnframes() / PROMPT_RATE
            except FileNotFoundError:
                reason = f"missing prompt '{name}': no file {file}"
            except (OSError, wave.Error, EOFError) as exc:
                reason = f"prompt '{name}': {file.name} is not a readable WAV file ({exc})"
            if reason:
                problems.append(_problem(doc, path, reason))
    return seconds
