"""YAML loading that remembers where every value came from.

Config and IVR flow files are YAML. A refused file must name ``file:line: reason``,
so loading keeps a map from each value's path (tuple of mapping keys and list indices)
to its 1-based line. Validators (pydantic for the server config, the IVR validator for
flows) report a path; :meth:`Located.line_of` turns it into a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from config.errors import ConfigFileError, Problem

PathKey = tuple[str | int, ...]


@dataclass(slots=True)
class Located:
    """A loaded document plus the line of every mapping key, list item and scalar."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[str | int]) -> int:
        """Line of the deepest known prefix of ``path`` (1 if nothing matches)."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)

    def problem(self, path: Sequence[str | int], reason: str) -> Problem:
        return Problem(self.file, self.line_of(path), reason)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (a silent overwrite hides mistakes)."""


def _walk(
    node: yaml.Node, path: PathKey, lines: dict[PathKey, int], file: str, loader: _UniqueKeyLoader
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                raise ConfigFileError([Problem(file, key_node.start_mark.line + 1, "mapping key must be a scalar")])
            if key in out:
                raise ConfigFileError(
                    [Problem(file, key_node.start_mark.line + 1, f"duplicate key {key!r}")]
                )
            child = (*path, key if isinstance(key, str | int) else str(key))
            lines[child] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, child, lines, file, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            items.append(_walk(item, child, lines, file, loader))
        return items
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # a scalar YAML resolves as a timestamp but that is no date (2026-13-01)
        raise ConfigFileError([Problem(file, node.start_mark.line + 1, f"{node.value!r} is not a valid date or "
                                       f"time: {exc}")]) from exc


def load_text(text: str, file: str = "<string>") -> Located:
    """Parse YAML text; a syntax error becomes a located :class:`ConfigFileError`.

    Raises:
        ConfigFileError: the text is not valid YAML, has duplicate keys or anchors/tags we refuse.
    """
    try:
        node = yaml.compose(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigFileError([Problem(file, line, f"YAML syntax: {exc.problem or exc}")]) from exc
    except yaml.YAMLError as exc:
        raise ConfigFileError([Problem(file, 1, f"YAML: {exc}")]) from exc
    lines: dict[PathKey, int] = {}
    if node is None:
        return Located(file, None, {(): 1})
    try:
        data = _walk(node, (), lines, file, _UniqueKeyLoader(""))
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigFileError([Problem(file, line, f"YAML: {exc.problem}")]) from exc
    return Located(file, data, lines)


def load_file(path: str | Path) -> Located:
    """Read and parse a YAML file (blocking: call from a thread or before the loop starts).

    Raises:
        ConfigFileError: unreadable file, or as :func:`load_text`.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError([Problem(str(p), 1, f"cannot read file: {exc}")]) from exc
    return load_text(text, str(p))
