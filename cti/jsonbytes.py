"""Compact JSON as UTF-8 bytes: what ``json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)`` gives, encoded by orjson (about 20 times faster on an event's envelope: 0.8 against 16 µs).

Every event is encoded at least once (the WebSocket replay window keeps its JSON), so this is on the call path.
The standard encoder stays the judge of what is refused, so the two agree on what they accept:

- orjson writes NaN and the infinities as ``null``; ``json`` with ``allow_nan=False`` refuses them. When the
  bytes hold a ``null`` the value is searched for non-finite floats, and one raises ``ValueError`` as before.
- What orjson refuses (a key that is not a string, an integer past 64 bits) or would encode where ``json``
  refuses (a dataclass, a date: passed through to no default, so refused) goes to ``json``, which encodes it
  or raises its own ``TypeError``/``ValueError``.

Values decode the same; the text may differ in the spelling of a float's exponent (``1e16`` for ``1e+16``).
One difference is kept: orjson encodes any ``Enum`` by its value, where ``json`` takes only ``str``/``int``
enums.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
_SORTED = _OPTIONS | orjson.OPT_SORT_KEYS


def dumps(obj: Any, *, sort_keys: bool = False) -> bytes:
    """``obj`` as compact UTF-8 JSON (keys sorted with ``sort_keys``).

    Raises:
        ValueError: a NaN or an infinity.
        TypeError: a value JSON cannot carry.
    """
    try:
        raw = orjson.dumps(obj, option=_SORTED if sort_keys else _OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          sort_keys=sort_keys).encode()
    if b"null" in raw and not _finite(obj):
        raise ValueError("Out of range float values are not JSON compliant")
    return raw


def _finite(obj: Any) -> bool:
    """False if a float in ``obj`` (through dicts, lists and tuples) is a NaN or an infinity."""
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                return False
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
    return True
