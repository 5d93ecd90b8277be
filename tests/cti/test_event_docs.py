"""docs/events.md is generated from the registry: stale docs fail here, with the command that fixes them."""

from __future__ import annotations

import dataclasses

import pytest

from cti.events.docs import DOCS_PATH, REGENERATE, DocsError, main, render_docs
from cti.events.registry import REGISTRY, Envelope, FieldKind, SchemaError, validate


def test_docs_are_generated_from_the_registry() -> None:
    text = DOCS_PATH.read_text(encoding="utf-8")
    assert render_docs(text) == text, f"docs/events.md is stale: run `{REGENERATE}` and commit the result"


def test_a_changed_field_makes_the_docs_stale() -> None:
    text = DOCS_PATH.read_text(encoding="utf-8")
    ended = REGISTRY["call.ended"]
    fields = tuple(dataclasses.replace(f, doc="changed meaning") if f.name == "talk_seconds" else f
                   for f in ended.fields)
    changed = {**REGISTRY, "call.ended": dataclasses.replace(ended, fields=fields, version=2)}
    regenerated = render_docs(text, changed)
    assert regenerated != text
    assert "### `call.ended` (v2)" in regenerated
    assert "| `talk_seconds` | number | yes | changed meaning |" in regenerated
    assert "| `call.ended` | 2 |" in regenerated


def test_a_new_type_gets_a_section_and_a_removed_one_is_an_error() -> None:
    text = DOCS_PATH.read_text(encoding="utf-8")
    extra = dataclasses.replace(REGISTRY["call.reason"], type="qa.example_done", doc="an example type")
    regenerated = render_docs(text, {**REGISTRY, "qa.example_done": extra})
    assert "<!-- BEGIN GENERATED: event qa.example_done -->\n### `qa.example_done` (v1)" in regenerated
    assert regenerated.index("qa.example_done` (v1)") < regenerated.index("## The in-process bus")
    assert render_docs(regenerated, {**REGISTRY, "qa.example_done": extra}) == regenerated  # idempotent
    with pytest.raises(DocsError, match="qa.example_done"):
        render_docs(regenerated)


def test_unclosed_region_is_an_error() -> None:
    with pytest.raises(DocsError, match="not closed"):
        render_docs("<!-- BEGIN GENERATED: event-types -->\n| x |\n")


def test_check_mode_reports_stale_file(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    stale = tmp_path / "events.md"
    stale.write_text(DOCS_PATH.read_text(encoding="utf-8").replace("| `call.ended` | 1 |", "| `call.ended` | 7 |"))
    assert main(["--check", "--path", str(stale)]) == 1
    assert REGENERATE in capsys.readouterr().err
    assert main(["--path", str(stale)]) == 0
    assert main(["--check", "--path", str(stale)]) == 0


def test_enumerations_are_listed_and_enforced() -> None:
    text = DOCS_PATH.read_text(encoding="utf-8")
    reason = next(f for f in REGISTRY["call.ended"].fields if f.name == "reason")
    assert reason.kind is FieldKind.STR and reason.choices is not None
    assert "`caller-hangup`" in text and "caller_hangup" not in text  # the stored CDR value, documented
    data = {"call_id": "c1", "duration_seconds": 3.0, "talk_seconds": None, "agent_id": None, "queue": None,
            "recording_serial": None}
    validate(Envelope.new("call.ended", {**data, "reason": "caller-hangup"}, node="n", now=1.0), strict=True)
    validate(Envelope.new("call.ended", {**data, "reason": "flowout:max_wait"}, node="n", now=1.0), strict=True)
    with pytest.raises(SchemaError, match="reason"):
        validate(Envelope.new("call.ended", {**data, "reason": "caller_hangup"}, node="n", now=1.0))
