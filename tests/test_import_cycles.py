"""No import cycles between the modules of cti/, sip/, acd/ and ivr/.

The graph is read from the source (AST), so it sees every import a module can execute: module level and
inside functions (a function-level import that dodges a cycle is still a cycle in the design). Imports
under ``if TYPE_CHECKING:`` are left out: they never run. ``from pkg import name`` is an edge to
``pkg.name`` when that is a module, else to ``pkg`` (its ``__init__``).

Each strongly connected group of modules is reported with the import lines that tie it together.
``KNOWN`` lists the groups that run through the call path now being rewritten (cti/call/shell.py and its
neighbours); the lead empties it when that rewrite lands. Any other cycle, or a known group that grows,
fails the test.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cti", "sip", "acd", "ivr")

# Modules of the call path: cycles through them were allowed while it was being rewritten; none is now.
CALL_PATH = frozenset({
    "cti.call.shell", "cti.node.controller", "cti.call.legs", "cti.call.supervision", "cti.node.routing",
    "cti.call.ivrchannel", "cti.node.trunks", "cti.node.admission", "cti.call.media",
})

KNOWN: tuple[frozenset[str], ...] = ()
KNOWN_FOR_CALL_PATH: tuple[frozenset[str], ...] = ()


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    line: int
    file: str = ""

    def __str__(self) -> str:
        return f"{self.file or self.source.replace('.', '/') + '.py'}:{self.line}: imports {self.target}"


def _module_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, skipping the bodies of ``if TYPE_CHECKING:`` (their ``else`` still runs)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _edges(name: str, path: Path, modules: set[str]) -> set[Edge]:
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges: set[Edge] = set()
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a non-module name: its nearest module
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(Edge(name, target, node.lineno, str(path.relative_to(ROOT))))
    return edges


@functools.cache
def import_graph() -> dict[str, set[Edge]]:
    files = _module_files()
    modules = set(files)
    return {name: _edges(name, path, modules) for name, path in files.items()}


def cycles(graph: dict[str, set[Edge]]) -> list[frozenset[str]]:
    """The strongly connected groups of more than one module (Tarjan), each a set of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[frozenset[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for edge in sorted(graph[v], key=lambda e: e.target):
            w = edge.target
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(frozenset(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def describe(group: frozenset[str], graph: dict[str, set[Edge]]) -> str:
    inside = sorted((e for m in group for e in graph[m] if e.target in group), key=str)
    return "cycle between " + ", ".join(sorted(group)) + ":\n    " + "\n    ".join(str(e) for e in inside)


def test_the_graph_sees_the_packages() -> None:
    graph = import_graph()
    assert len(graph) > 150
    assert any(e.target == "sip.errors" for e in graph["sip.message"])
    # a TYPE_CHECKING-only import is not an edge: sip/errors.py imports sip.message only for typing
    assert not any(e.target == "sip.message" for e in graph["sip.errors"])


def test_cycle_finder_finds_a_cycle_and_names_its_lines() -> None:
    graph = {
        "a": {Edge("a", "b", 3)}, "b": {Edge("b", "c", 5)}, "c": {Edge("c", "a", 7)}, "d": {Edge("d", "a", 1)},
    }
    (group,) = cycles(graph)
    assert group == {"a", "b", "c"}
    assert "b.py:5: imports c" in describe(group, graph)


def test_no_import_cycles_outside_the_known_call_path_ones() -> None:
    graph = import_graph()
    known = KNOWN + KNOWN_FOR_CALL_PATH
    new = [g for g in cycles(graph) if not any(g <= k for k in known)]
    assert new == [], "\n".join(describe(g, graph) for g in new)


def test_known_cycles_all_run_through_the_call_path() -> None:
    for known in KNOWN:
        assert known & CALL_PATH, sorted(known)
