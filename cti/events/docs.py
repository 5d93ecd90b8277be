"""docs/events.md's tables, generated from the event registry (:data:`cti.events.registry.REGISTRY`), the one
source of truth.

The file keeps its prose; the generator owns only the regions between markers::

    <!-- BEGIN GENERATED: event-types -->        the summary table of every type
    <!-- BEGIN GENERATED: event call.ended -->   one type's heading, summary and field table
    <!-- END GENERATED -->

Hand-written notes on a type go after its region. A registered type that has no region yet gets one just above the
``<!-- GENERATED: new event sections go above this line -->`` marker; a region for a type the registry no longer
has is an error (remove it by hand, with its notes).

Run ``python -m cti.events.docs`` to rewrite docs/events.md, ``python -m cti.events.docs --check`` to fail (exit 1) when
it is stale; tests/cti/test_event_docs.py runs the check.

Errors::

    DocsError   a marker is missing, unbalanced, or names an unknown type
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from cti.errors import CtiError
from cti.events.registry import REGISTRY, EventSchema, Field

__all__ = ["DOCS_PATH", "REGENERATE", "DocsError", "render_docs", "render_section", "render_summary"]

DOCS_PATH: Final = Path(__file__).resolve().parents[2] / "docs" / "events.md"
REGENERATE: Final = "python -m cti.events.docs"
"""The command that rewrites the generated regions (quoted in the staleness test's message)."""

_BEGIN: Final = re.compile(r"^<!-- BEGIN GENERATED: (event-types|event [a-z0-9_.]+) -->$", re.MULTILINE)
_END: Final = "<!-- END GENERATED -->"
_NEW_HERE: Final = "<!-- GENERATED: new event sections go above this line -->"


class DocsError(CtiError):
    """docs/events.md's markers do not fit the registry (missing, unbalanced, unknown type)."""

    code = "event_docs_invalid"


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def _kind(spec: Field) -> str:
    if spec.choices is None:
        return spec.kind.value
    return f"{spec.kind.value}: " + ", ".join(f"`{choice}`" for choice in sorted(spec.choices))


def render_summary(schemas: Iterable[EventSchema]) -> str:
    """The table of every type with its version and summary."""
    rows = ["| type | v | summary |", "|---|---|---|"]
    rows += [f"| `{s.type}` | {s.version} | {s.doc} |" for s in schemas]
    return "\n".join(rows)


def render_section(schema: EventSchema) -> str:
    """One type's heading, summary sentence and field table."""
    rows = [f"### `{schema.type}` (v{schema.version})", "", _sentence(schema.doc), "",
            "| field | type | null? | meaning |", "|---|---|---|---|"]
    rows += [f"| `{f.name}` | {_kind(f)} | {'yes' if f.nullable else 'no'} | {f.doc} |" for f in schema.fields]
    return "\n".join(rows)


def _region(name: str, body: str) -> str:
    return f"<!-- BEGIN GENERATED: {name} -->\n{body}\n{_END}"


def render_docs(text: str, registry: Mapping[str, EventSchema] = REGISTRY) -> str:
    """``text`` (docs/events.md) with every generated region rewritten from ``registry``.

    Raises:
        DocsError: a region is not closed, names a type the registry lacks, appears twice, or a marker is missing.
    """
    out: list[str] = []
    seen: set[str] = set()
    pos = 0
    for match in _BEGIN.finditer(text):
        if match.start() < pos:
            raise DocsError(f"docs/events.md: a region opened inside another before offset {match.start()}")
        end = text.find(_END, match.end())
        if end < 0:
            raise DocsError(f"docs/events.md: {match.group(0)} is not closed by {_END}")
        nested = _BEGIN.search(text, match.end(), end)
        if nested is not None:
            raise DocsError(f"docs/events.md: {nested.group(0)} opens before {match.group(0)} is closed")
        name = match.group(1)
        if name in seen:
            raise DocsError(f"docs/events.md: region {name!r} appears twice")
        seen.add(name)
        if name == "event-types":
            body = render_summary(registry.values())
        else:
            event_type = name.removeprefix("event ")
            if event_type not in registry:
                raise DocsError(f"docs/events.md: a section for {event_type!r}, which the registry "
                                "(cti/events/registry.py) does not have: remove it and its notes")
            body = render_section(registry[event_type])
        out += [text[pos:match.start()], _region(name, body)]
        pos = end + len(_END)
    out.append(text[pos:])
    result = "".join(out)
    if "event-types" not in seen:
        raise DocsError("docs/events.md: the marker <!-- BEGIN GENERATED: event-types --> is missing")
    missing = [t for t in registry if f"event {t}" not in seen]
    if missing:
        if _NEW_HERE not in result:
            raise DocsError(f"docs/events.md: the marker {_NEW_HERE} is missing")
        new = "".join(_region(f"event {t}", render_section(registry[t])) + "\n\n" for t in missing)
        result = result.replace(_NEW_HERE, new + _NEW_HERE, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    """Rewrite docs/events.md (or, with ``--check``, say whether it is stale). Returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m cti.events.docs", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/events.md is stale; change nothing")
    parser.add_argument("--path", type=Path, default=DOCS_PATH, help="the file (default: docs/events.md)")
    args = parser.parse_args(argv)
    text = args.path.read_text(encoding="utf-8")
    try:
        wanted = render_docs(text)
    except DocsError as exc:
        print(f"{args.path}: {exc}", file=sys.stderr)
        return 2
    if wanted == text:
        return 0
    if args.check:
        print(f"{args.path} is stale: run `{REGENERATE}`", file=sys.stderr)
        return 1
    args.path.write_text(wanted, encoding="utf-8")
    print(f"{args.path} rewritten from the registry", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
