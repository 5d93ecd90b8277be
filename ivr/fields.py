"""Typed, located reading of one YAML mapping for the flow loader.

Every getter records a :class:`~config.errors.Problem` (``file:line: reason``) instead of
raising, so one pass reports every mistake in a file. Keys nobody asked for are reported by
:meth:`Fields.finish`, which catches typos such as ``timout:``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from config.errors import Problem
from config.yamlsource import Located, PathKey
from ivr.flow import NodeId, PromptName

_MISSING: Any = object()


def locate(src: Located, path: Sequence[str | int]) -> PathKey:
    """Map a logical path to the key spelling YAML used (``"1"`` may have been read as the int 1)."""
    out: list[str | int] = []
    for part in path:
        if isinstance(part, str) and part.lstrip("-").isdigit() and (*out, part) not in src.lines:
            if (*out, int(part)) in src.lines:
                out.append(int(part))
                continue
        out.append(part)
    return tuple(out)


class Fields:
    """Typed access to one mapping, for one node or section."""

    def __init__(self, src: Located, problems: list[Problem], path: PathKey, data: Any, what: str) -> None:
        self.src = src
        self.problems = problems
        self.path = path
        self.what = what
        self.data: dict[Any, Any] = data if isinstance(data, dict) else {}
        self.used: set[Any] = set()
        if not isinstance(data, dict):
            self.error((), f"{what} must be a mapping")

    def error(self, sub: Sequence[str | int], reason: str) -> None:
        self.problems.append(self.src.problem(locate(self.src, (*self.path, *sub)), reason))

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str | int, default: Any = _MISSING) -> Any:
        self.used.add(key)
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            self.error((), f"{self.what}: missing required key '{key}'")
            return None
        return default

    def text(self, key: str, default: Any = _MISSING) -> str | None:
        value = self.raw(key, default)
        if value is None or isinstance(value, str):
            return value
        hint = " (YAML reads yes/no/on/off as booleans: quote it)" if isinstance(value, bool) else ""
        self.error((key,), f"{self.what}: '{key}' must be a string, got {type(value).__name__}{hint}")
        return None

    def target(self, key: str) -> NodeId:
        value = self.text(key)
        return NodeId(value or "")

    def integer(self, key: str, default: int | None, low: int, high: int) -> int | None:
        value = self.raw(key, _MISSING if default is None else default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error((key,), f"{self.what}: '{key}' must be an integer, got {type(value).__name__}")
            return default
        if not low <= value <= high:
            self.error((key,), f"{self.what}: '{key}' must be between {low} and {high}, got {value}")
            return default
        return value

    def seconds(self, key: str, default: float, low: float, high: float) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error((key,), f"{self.what}: '{key}' must be a number of seconds, got {type(value).__name__}")
            return default
        if not low <= value <= high:
            self.error((key,), f"{self.what}: '{key}' must be between {low:g} and {high:g} seconds, got {value}")
            return default
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            self.error((key,), f"{self.what}: '{key}' must be true or false")
            return default
        return value

    def prompts(self, key: str, *, required: bool) -> tuple[PromptName, ...]:
        value = self.raw(key, _MISSING if required else [])
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            self.error((key,), f"{self.what}: '{key}' must be a list of prompt names")
            return ()
        if required and not value:
            self.error((key,), f"{self.what}: '{key}' needs at least one prompt")
        return tuple(PromptName(item) for item in value)

    def mapping(self, key: str, *, required: bool = False) -> dict[Any, Any]:
        value = self.raw(key, _MISSING if required else {})
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error((key,), f"{self.what}: '{key}' must be a mapping")
            return {}
        return value

    def skills(self, key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for skill, level in self.mapping(key).items():
            if not isinstance(skill, str) or isinstance(level, bool) or not isinstance(level, int):
                self.error((key, skill), f"{self.what}: skill levels must be 'name: integer'")
            elif not 1 <= level <= 10:
                self.error((key, skill), f"{self.what}: skill {skill!r} level must be 1..10, got {level}")
            else:
                out[skill] = level
        return out

    def finish(self) -> None:
        for key in self.data:
            if key not in self.used:
                self.error((key,), f"{self.what}: unknown key '{key}'")
