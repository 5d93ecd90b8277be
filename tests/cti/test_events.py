"""Envelope encodings, ids, and schema validation for every registered event type."""

from __future__ import annotations

import json
import math
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.events.registry import (
    REGISTRY,
    Envelope,
    EnvelopeError,
    EventIdFactory,
    EventSchema,
    Field,
    FieldKind,
    SchemaError,
    catalog,
    validate,
)

NOW = 1_718_000_000.123

REQUIRED_TYPES = {
    "agent.state_changed", "agent.logged_in", "agent.logged_out", "call.arrived", "call.ivr_input", "call.queued",
    "call.offered", "call.answered", "call.ended", "call.abandoned", "queue.stats", "alert.raised", "alert.cleared",
    "notice.broadcast", "supervision.started", "supervision.changed", "supervision.ended",
}


def _valid_value(spec: Field) -> Any:
    if spec.choices is not None:
        return sorted(spec.choices)[0]
    return {
        FieldKind.STR: "x",
        FieldKind.INT: 3,
        FieldKind.NUMBER: 1.5,
        FieldKind.BOOL: True,
        FieldKind.STR_LIST: ["a", "b"],
        FieldKind.OBJECT: {"k": "v"},
    }[spec.kind]


def _wrong_value(spec: Field) -> Any:
    # A value of another JSON kind; bool is deliberately used against INT/NUMBER (bool is an int in Python).
    return {
        FieldKind.STR: 7,
        FieldKind.INT: True,
        FieldKind.NUMBER: "1.5",
        FieldKind.BOOL: 1,
        FieldKind.STR_LIST: ["a", 2],
        FieldKind.OBJECT: ["not", "an", "object"],
    }[spec.kind]


def _sample(schema: EventSchema) -> Envelope:
    data = {spec.name: _valid_value(spec) for spec in schema.fields}
    return Envelope.new(schema.type, data, node="node-a", now=NOW)


FIELDS = [(schema, spec) for schema in REGISTRY.values() for spec in schema.fields]
FIELD_IDS = [f"{schema.type}:{spec.name}" for schema, spec in FIELDS]


def test_registry_covers_the_required_types() -> None:
    assert REQUIRED_TYPES <= set(REGISTRY)
    for schema in REGISTRY.values():
        assert schema.version >= 1
        names = [spec.name for spec in schema.fields]
        assert len(names) == len(set(names)), schema.type


def test_screen_pop_carries_what_the_agent_needs() -> None:
    names = {spec.name for spec in REGISTRY["call.offered"].fields}
    assert {"caller_number", "caller_name", "dialled_number", "queue", "wait_seconds", "ivr_inputs", "crm", "vip",
            "recording_serial"} <= names


@pytest.mark.parametrize("schema", REGISTRY.values(), ids=list(REGISTRY))
def test_a_complete_sample_validates_strictly(schema: EventSchema) -> None:
    validate(_sample(schema), strict=True)


@pytest.mark.parametrize(("schema", "spec"), FIELDS, ids=FIELD_IDS)
def test_a_missing_field_is_caught(schema: EventSchema, spec: Field) -> None:
    env = _sample(schema)
    del env.data[spec.name]
    with pytest.raises(SchemaError) as info:
        validate(env)
    assert info.value.field_name == spec.name
    assert info.value.event_type == schema.type


@pytest.mark.parametrize(("schema", "spec"), FIELDS, ids=FIELD_IDS)
def test_a_mistyped_field_is_caught(schema: EventSchema, spec: Field) -> None:
    env = _sample(schema)
    env.data[spec.name] = _wrong_value(spec)
    with pytest.raises(SchemaError) as info:
        validate(env)
    assert info.value.field_name == spec.name


@pytest.mark.parametrize(("schema", "spec"), FIELDS, ids=FIELD_IDS)
def test_null_is_accepted_only_where_declared(schema: EventSchema, spec: Field) -> None:
    env = _sample(schema)
    env.data[spec.name] = None
    if spec.nullable:
        validate(env, strict=True)
    else:
        with pytest.raises(SchemaError):
            validate(env)


def test_choices_are_enforced() -> None:
    env = _sample(REGISTRY["agent.state_changed"])
    env.data["state"] = "napping"
    with pytest.raises(SchemaError, match="state"):
        validate(env)


def test_unknown_keys_pass_unless_strict() -> None:
    env = _sample(REGISTRY["call.answered"])
    env.data["added_later"] = 1
    validate(env)
    with pytest.raises(SchemaError, match="added_later"):
        validate(env, strict=True)


def test_unregistered_type_is_refused() -> None:
    with pytest.raises(SchemaError, match="unregistered"):
        validate(Envelope.new("call.teleported", {}, node="n", now=NOW))


@pytest.mark.parametrize("schema", REGISTRY.values(), ids=list(REGISTRY))
def test_round_trips_json_and_msgpack(schema: EventSchema) -> None:
    env = _sample(schema)
    assert Envelope.from_json(env.to_json()) == env
    assert Envelope.from_msgpack(env.to_msgpack()) == env


def test_wire_shape_is_the_five_key_contract() -> None:
    env = Envelope.new("call.offered", {"vip": True, "caller_name": "Zoë"}, node="cti-a", now=NOW)
    decoded = json.loads(env.to_json())
    assert list(decoded) == ["type", "id", "ts", "node", "data"]
    assert decoded["ts"] == NOW and isinstance(decoded["ts"], float)
    assert "Zoë".encode() in env.to_json()
    assert msgpack.unpackb(env.to_msgpack()) == decoded


def test_integer_ts_decodes_as_float_and_unknown_top_level_keys_are_ignored() -> None:
    raw = json.dumps({"type": "a.b", "id": "1", "ts": 5, "node": "n", "data": {}, "extra": 1})
    env = Envelope.from_json(raw)
    assert env.ts == 5.0 and isinstance(env.ts, float)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"type": "a.b", "id": "1", "ts": 1.0, "node": "n"}',
        b'{"type": "nodots", "id": "1", "ts": 1.0, "node": "n", "data": {}}',
        b'{"type": "a.b", "id": "", "ts": 1.0, "node": "n", "data": {}}',
        b'{"type": "a.b", "id": "1", "ts": "yesterday", "node": "n", "data": {}}',
        b'{"type": "a.b", "id": "1", "ts": true, "node": "n", "data": {}}',
        b'{"type": "a.b", "id": "1", "ts": 1.0, "node": "", "data": {}}',
        b'{"type": "a.b", "id": "1", "ts": 1.0, "node": "n", "data": []}',
    ],
)
def test_malformed_json_raises_envelope_error_only(raw: bytes) -> None:
    with pytest.raises(EnvelopeError):
        Envelope.from_json(raw)


@pytest.mark.parametrize("raw", [b"", b"\xc1", b"\x92\x01\x02", msgpack.packb({1: 2})])
def test_malformed_msgpack_raises_envelope_error_only(raw: bytes) -> None:
    with pytest.raises(EnvelopeError):
        Envelope.from_msgpack(raw)


def test_unencodable_data_raises_envelope_error() -> None:
    env = Envelope.new("a.b", {"x": math.nan}, node="n", now=NOW)
    with pytest.raises(EnvelopeError):
        env.to_json()
    with pytest.raises(EnvelopeError):
        Envelope.new("a.b", {"x": object()}, node="n", now=NOW).to_msgpack()


def test_ids_are_ulids_sorted_by_creation_even_within_a_millisecond_or_a_clock_step_back() -> None:
    ids = EventIdFactory()
    made = [ids.new(NOW) for _ in range(1000)] + [ids.new(NOW - 5)] + [ids.new(NOW + 1)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(len(i) == 26 and set(i) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in made)


def _decode(ulid: str) -> int:
    value = 0
    for char in ulid:
        value = value * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(char)
    return value


def test_id_time_prefix_encodes_milliseconds_and_the_rest_counts_up() -> None:
    ids = EventIdFactory()
    first, second = _decode(ids.new(NOW)), _decode(ids.new(NOW))
    assert first >> 80 == int(NOW * 1000)
    assert first >> 128 == 0  # 26 characters hold 130 bits: the top two are zero
    assert second - first == 1  # the same millisecond: the random part + 1, down to the last bit


def test_ids_carry_each_new_milliseconds_time_and_their_own_random_part() -> None:
    ids = EventIdFactory()
    for now in (NOW, NOW + 0.001, NOW + 0.002, NOW + 1.0, NOW + 1.0, NOW + 86_400.5):
        value = _decode(ids.new(now))
        assert value >> 80 == int(now * 1000)  # the time characters follow the clock from one millisecond to the next
        assert value & ((1 << 80) - 1) == ids._last_rand


def test_catalog_is_json_and_lists_every_type() -> None:
    data = json.loads(json.dumps(catalog()))
    assert set(data) == set(REGISTRY)
    assert data["agent.state_changed"]["fields"]["state"]["choices"]
    assert data["call.offered"]["version"] == REGISTRY["call.offered"].version


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(data=st.dictionaries(st.text(), _json, max_size=6), ts=st.floats(0, 4e9), node=st.text(min_size=1))
def test_any_json_data_round_trips(data: dict[str, Any], ts: float, node: str) -> None:
    env = Envelope(type="x.y", id="01", ts=ts, node=node, data=data)
    assert Envelope.from_json(env.to_json()) == env
    assert Envelope.from_msgpack(env.to_msgpack()) == env


def test_docs_list_every_type_with_its_version_and_fields() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()
    for schema in REGISTRY.values():
        heading = f"### `{schema.type}` (v{schema.version})"
        assert heading in doc, heading
        section = doc.split(heading, 1)[1].split("\n### ", 1)[0]
        for spec in schema.fields:
            assert f"| `{spec.name}` |" in section, f"{schema.type}.{spec.name} is not documented"


def test_seq_is_optional_travels_in_both_encodings_and_is_checked() -> None:
    env = Envelope.new("call.reason", {"call_id": "c", "reason": "r", "source": "ivr"}, node="n", now=NOW)
    assert "seq" not in env.to_dict()
    seqd = env.sequenced(42)
    assert seqd.to_dict()["seq"] == 42 and seqd.id == env.id and env.seq is None
    assert Envelope.from_json(seqd.to_json()).seq == 42
    assert Envelope.from_msgpack(seqd.to_msgpack()).seq == 42
    for bad in (-1, 1.5, True, "7"):
        with pytest.raises(EnvelopeError, match="seq"):
            Envelope.from_dict({**seqd.to_dict(), "seq": bad})


@pytest.mark.parametrize(("type_", "data", "node", "now"), [
    ("Call.Queued", {}, "n", NOW), ("call", {}, "n", NOW), (["call.queued"], {}, "n", NOW),
    ("call.queued", {1: "x"}, "n", NOW), ("call.queued", {}, "", NOW),
])
def test_a_new_envelope_is_checked_as_a_decoded_one_is(type_: object, data: dict[object, object], node: str,
                                                        now: float) -> None:
    with pytest.raises(EnvelopeError):
        Envelope.new(type_, data, node=node, now=now)  # type: ignore[arg-type]
    Envelope.new("call.queued", {}, node="n", now=NOW)  # a type checked once is not refused after a bad one
    with pytest.raises(EnvelopeError):
        Envelope.new(type_, data, node=node, now=now)  # type: ignore[arg-type]
