"""cti.jsonbytes against the standard encoder it stands for: the same values decoded, the same refusals."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti import jsonbytes


def _reference(obj: object, sort_keys: bool = False) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=sort_keys).encode()


_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
_keys = st.text(max_size=8) | st.integers(-5, 5)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
                       max_leaves=20)


@settings(max_examples=300)
@given(_values, st.booleans())
def test_it_accepts_and_refuses_what_json_does_and_the_values_decode_the_same(value: object, sort_keys: bool) -> None:
    try:
        expected = _reference(value, sort_keys)
    except (TypeError, ValueError) as exc:
        with pytest.raises(type(exc)):
            jsonbytes.dumps(value, sort_keys=sort_keys)
        return
    got = jsonbytes.dumps(value, sort_keys=sort_keys)
    # Decoded with every object as its pairs in order: the same values and the same order of keys.
    assert json.loads(got, object_pairs_hook=tuple) == json.loads(expected, object_pairs_hook=tuple)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_float_anywhere_is_refused(bad: float) -> None:
    for value in ({"a": None, "b": [1, {"c": bad}]}, [bad], {"x": (None, bad)}):
        with pytest.raises(ValueError):
            jsonbytes.dumps(value)


def test_values_json_refuses_stay_refused_and_the_rest_is_compact_utf8() -> None:
    @dataclasses.dataclass
    class Point:
        x: int

    for bad in (Point(1), dt.datetime(2026, 12, 7), {1, 2}, b"bytes"):
        with pytest.raises(TypeError):
            jsonbytes.dumps({"v": bad})
    assert jsonbytes.dumps({"name": "张三", "n": [1, 2.5, None], "ok": True}) == (
        '{"name":"张三","n":[1,2.5,null],"ok":true}'.encode())
    assert jsonbytes.dumps({1: "a", None: "b"}) == _reference({1: "a", None: "b"})  # keys json turns into text
    assert jsonbytes.dumps({"big": 2**80}) == b'{"big":1208925819614629174706176}'
