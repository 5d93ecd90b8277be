"""The rooms of cti/ and what each may import (each package's docstring says the same in words).

The import graph comes from tests/test_import_cycles.py (AST, every import that can run). A room is a
subpackage of cti/; the top-level modules that are not rooms (``cti.errors``, ``cti.ids``, ``cti.clock``,
``cti.logging``, ``cti.tokens``, ``cti.tlsfiles``, ``cti.gcaudit``, ``cti.jsonbytes``) are helpers every room may use,
and the composition roots (``cti.app``, ``cti.cli``, ``cti.__main__``) may use every room. Anything else fails with the
import lines that break the rule, so a feature cannot quietly reach into another room.
"""

from __future__ import annotations

import ast

from tests.test_import_cycles import ROOT, _imports, import_graph

HELPERS = frozenset({"cti.errors", "cti.ids", "cti.clock", "cti.logging", "cti.tokens", "cti.tlsfiles",
                     "cti.gcaudit", "cti.jsonbytes"})
ROOTS = frozenset({"cti.app", "cti.cli", "cti.__main__", "cti"})
FEATURES = frozenset({"cti.qa", "cti.reports", "cti.staffing", "cti.adherence"})

# room -> the other rooms it may import
MAY_IMPORT: dict[str, frozenset[str]] = {
    "cti.call": frozenset({"cti.events", "cti.store", "cti.voicemail"}),
    "cti.node": frozenset({"cti.call", "cti.events", "cti.store", "cti.voicemail"}),
    "cti.events": frozenset({"cti.store"}),
    "cti.store": frozenset(),
    "cti.floor": frozenset({"cti.call", "cti.node", "cti.events", "cti.store"}),
    "cti.http": frozenset({"cti.floor", "cti.events", "cti.store"}) | FEATURES,
    "cti.gateway": frozenset({"cti.floor", "cti.events", "cti.http", "cti.store"}) | FEATURES,
    # features own their routes: they use the HTTP toolkit (guard, tokens' roles, API readers) and floor notices
    "cti.qa": frozenset({"cti.events", "cti.store", "cti.http", "cti.floor"}),
    "cti.reports": frozenset({"cti.events", "cti.store", "cti.http"}),
    "cti.staffing": frozenset({"cti.store", "cti.http"}),
    "cti.adherence": frozenset({"cti.events", "cti.store", "cti.http"}),
    # voicemail: the message model and its take (used by the call), its store, and its routes (QA's playback)
    "cti.voicemail": frozenset({"cti.events", "cti.store", "cti.http", "cti.floor", "cti.qa"}),
    # the browser phone: a SIP user agent answering with the call path's own legs (docs/web.md)
    "cti.phone": frozenset({"cti.call"}),
}
# Single names one room takes from another it may not otherwise touch, each with its reason.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("cti.http.api", "cti.call.offercheck"): "the refusal reasons an offer check gives, as /metrics labels",
    ("cti.http.api", "cti.node.admission"): "the refusal reasons admission gives, as /metrics labels",
    ("cti.reports.routes", "cti.node.routing"): "the config -> ACD queue mapping, to replay a past day's live figures "
                                                "through the live statistics' own code (cti kpi verify --date)",
}


def room(module: str) -> str | None:
    """The room of a cti module (``None``: a helper or a root)."""
    if module in HELPERS or module in ROOTS or module.startswith("cti.cli."):
        return None
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else None


def test_every_room_is_listed() -> None:
    rooms = {room(m) for m in import_graph() if m.startswith("cti.")} - {None}
    assert rooms == set(MAY_IMPORT), "a new room (or helper) of cti/ needs its line in MAY_IMPORT (or HELPERS)"


def test_rooms_import_only_what_they_may() -> None:
    broken = []
    for module, edges in import_graph().items():
        source = room(module) if module.startswith("cti.") else None
        if source is None:
            continue
        for edge in edges:
            target = room(edge.target) if edge.target.startswith("cti.") else None
            if target is None or target == source or target in MAY_IMPORT[source]:
                continue
            if (module, edge.target) in EXCEPTIONS:
                continue
            broken.append(f"{edge}  ({source} may not import {target})")
    assert not broken, "\n".join(sorted(broken))


def test_the_call_core_imports_no_io() -> None:
    """The pure core of the call (and the vocabulary it is written in) imports no asyncio, SIP, store or node."""
    core = ("cti.call", "cti.call.core", "cti.call.events", "cti.call.commands", "cti.call.model", "cti.call.detail")
    graph = import_graph()
    for module in core:
        for edge in graph[module]:
            assert edge.target in core or edge.target.startswith(("acd", "cti.errors", "cti.ids")), str(edge)
        path = ROOT / (module.replace(".", "/") + ("/__init__.py" if module == "cti.call" else ".py"))
        for node in _imports(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                assert name.partition(".")[0] not in {"asyncio", "aiohttp", "socket", "time"}, f"{path}: {name}"
