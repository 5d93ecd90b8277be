"""The two complete examples of docs/ivr.md load, validate and run."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import yaml

from ivr.engine import Session
from ivr.events import DigitReceived, EnqueueCall, PromptFinished, RecordVoicemail, StartLookup, StopVoicemail
from ivr.loader import load_flow_text
from tests.ivr.helpers import FakeCall

REPO = Path(__file__).resolve().parents[2]


def examples() -> dict[str, str]:
    text = (REPO / "docs" / "ivr.md").read_text(encoding="utf-8")
    found = re.findall(r"^## (Example \d)[^\n]*\n.*?```yaml\n(.*?)```", text, flags=re.S | re.M)
    return dict(found)


def test_both_examples_are_valid_and_example_1_is_the_demo_flow() -> None:
    docs = examples()
    assert set(docs) == {"Example 1", "Example 2"}
    for name, body in docs.items():
        load_flow_text(body, name)
    demo = yaml.safe_load((REPO / "config" / "flows" / "main.yaml").read_text(encoding="utf-8"))
    demo["flows"]["main"].pop("description")
    assert yaml.safe_load(docs["Example 1"]) == demo


def test_example_2_after_hours_and_crm_paths() -> None:
    flow_set = load_flow_text(examples()["Example 2"], "example2.yaml")
    sunday = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()
    c = FakeCall(Session(flow_set, "support_line", caller="5551234"), now=sunday)
    c.start()
    c.send(PromptFinished())
    c.send(DigitReceived(digit="1"))
    assert c.send(PromptFinished()) == [RecordVoicemail(mailbox="support", max_seconds=120.0)]
    assert c.send(DigitReceived(digit="#")) == [StopVoicemail()]

    monday = datetime(2026, 11, 30, 9, 0, tzinfo=UTC).timestamp()
    c = FakeCall(Session(flow_set, "support_line", caller="5551234"), now=monday)
    (lookup,) = c.start()
    assert isinstance(lookup, StartLookup) and lookup.url.endswith("/customers/5551234")
    out = c.expire()  # the CRM never answers: ask for the account number in the sub-flow
    assert out and c.session.record.lookups[0].reason == "timeout"
    c.send(PromptFinished())
    for digit in "123456":
        out = c.send(DigitReceived(digit=digit))
    assert isinstance(out[-1], EnqueueCall) and out[-1].variables["account"] == "123456"
