"""The hostile corpus against the parser: each parser-layer case is refused exactly as promised."""

from __future__ import annotations

from collections import Counter

import pytest

from sip.errors import RemoteSipError
from sip.message import Request, Response, parse_message, response_to
from tests.sip.hostile import HOSTILE, SENT_BY, HostileCase

PARSER = [case for case in HOSTILE if case.layer == "parser"]
SERVER = [case for case in HOSTILE if case.layer == "server"]


def _ids(cases: list[HostileCase]) -> list[str]:
    return [case.name for case in cases]


@pytest.mark.parametrize("case", PARSER, ids=_ids(PARSER))
def test_parser_layer_case_is_refused_with_its_status(case: HostileCase) -> None:
    with pytest.raises(RemoteSipError) as info:
        parse_message(case.data)
    error = info.value
    if case.expected_status is None:
        assert error.partial is None, "a dropped case must not be answerable"
        return
    assert error.status_hint == case.expected_status, str(error)
    assert error.partial is not None, f"answerable case without partial headers: {error}"
    assert error.is_request is True
    response = response_to(error.partial, error.status_hint)
    assert response.headers.get_all("Via")[0].startswith(f"SIP/2.0/UDP {SENT_BY};branch=z9hG4bK-hostile-")
    assert bytes(response).startswith(f"SIP/2.0 {case.expected_status} ".encode())
    # The answer copies the request's headers as they came, even the malformed one (§8.2.6.2).
    assert response.headers.get("Call-ID") == error.partial.get("Call-ID")


@pytest.mark.parametrize("case", SERVER, ids=_ids(SERVER))
def test_server_layer_case_is_accepted_by_the_parser(case: HostileCase) -> None:
    message = parse_message(case.data)
    if case.expected_status is None:
        assert isinstance(message, Response)
    else:
        assert isinstance(message, Request)
        assert message.top_via.branch is not None and message.top_via.branch.startswith("z9hG4bK")


def test_corpus_shape() -> None:
    assert len(HOSTILE) >= 30
    assert len({case.name for case in HOSTILE}) == len(HOSTILE)
    for case in HOSTILE:
        assert case.why and "\n" not in case.why
        assert case.layer in ("parser", "server")
        assert case.expected_status is None or 100 <= case.expected_status <= 699
    by_status = Counter(case.expected_status for case in HOSTILE)
    assert by_status[400] >= 15 and by_status[None] >= 5
    assert {416, 420, 483, 501, 505, 513} <= set(by_status)


def test_every_answerable_request_has_unique_transaction_and_call_ids() -> None:
    branches: set[str] = set()
    call_ids: set[str] = set()
    for case in HOSTILE:
        if case.expected_status is None or case.layer != "server":
            continue
        message = parse_message(case.data)
        assert isinstance(message, Request)
        branch = message.top_via.branch
        assert branch is not None and branch not in branches
        assert message.call_id not in call_ids
        branches.add(branch)
        call_ids.add(message.call_id)
