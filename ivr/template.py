"""Safe text templates for prompts-free strings: look-up URLs, parameters, alerts, numbers.

Only substitution, never evaluation: ``{caller}``, ``{called}`` and ``{vars.NAME}`` are
replaced by the call's values (an unset variable becomes the empty string). Anything else
in braces is refused by the loader. In URLs, substituted values are percent-encoded so a
caller-entered value cannot change the path or add query parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from ivr.flow import Value

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"^(caller|called|vars\.[A-Za-z_][A-Za-z0-9_]*)$")


def variables_of(template: str) -> tuple[list[str], list[str]]:
    """The variable names a template uses, and the placeholders it cannot accept."""
    names: list[str] = []
    bad: list[str] = []
    for match in _PLACEHOLDER.finditer(template):
        inner = match.group(1).strip()
        if _NAME.match(inner):
            names.append(inner.removeprefix("vars."))
        else:
            bad.append(match.group(0))
    return names, bad


def _text(value: Value | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(template: str, variables: Mapping[str, Value], *, url: bool = False) -> str:
    """Substitute placeholders; with ``url=True`` each value is percent-encoded."""

    def repl(match: re.Match[str]) -> str:
        inner = match.group(1).strip()
        if not _NAME.match(inner):
            return match.group(0)
        text = _text(variables.get(inner.removeprefix("vars.")))
        return quote(text, safe="") if url else text

    return _PLACEHOLDER.sub(repl, template)
