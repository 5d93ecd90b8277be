"""Map a CRM JSON result into typed call variables (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from ivr.flow import ResultField, Value, VarType


def _walk(data: object, path: tuple[str, ...]) -> object:
    for part in path:
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _coerce(value: object, var_type: VarType) -> Value | None:
    if var_type is VarType.BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return None
    if var_type is VarType.INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def map_result(spec: Mapping[str, ResultField], result: Mapping[str, object]) -> tuple[dict[str, Value], str | None]:
    """Typed variables from a result; a missing path leaves the variable unset.

    Returns the variables and None, or ``({}, reason)`` when a present value has the wrong type
    (the look-up then counts as failed and the flow takes ``on_error``).
    """
    values: dict[str, Value] = {}
    for name, field in spec.items():
        raw = _walk(result, field.path)
        if raw is None:
            continue
        value = _coerce(raw, field.type)
        if value is None:
            return {}, f"result field {'.'.join(field.path)!r} is not a {field.type.value}"
        values[name] = value
    return values, None
