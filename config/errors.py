"""Configuration errors.

Exception tree::

    ConfigError (cti.errors.CtiError)  base: something in a config or flow file is wrong
    └── ConfigFileError         one or more located problems: file:line: reason
"""

from __future__ import annotations

from dataclasses import dataclass

from cti.errors import CtiError


class ConfigError(CtiError):
    """Base class for every configuration problem."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One located problem in a file."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class ConfigFileError(ConfigError):
    """A file was refused; ``problems`` lists every error found, each with file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("ConfigFileError needs at least one problem")
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
