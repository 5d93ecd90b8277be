"""The parser's memo caches are bounded in bytes, not only in entries (issue 13: hostile SIP).

Typed header views and URIs are memoised (a dialog repeats the same From/To/Via). Entries were
capped in number only, so peers sending huge header values could park up to 8192 x 32 KiB in the
view cache after the messages themselves were gone. Long values are now parsed each time, never
kept.
"""

from __future__ import annotations

import gc

import pytest

import sip.message as message_module
import sip.uri as uri_module
from sip.errors import RemoteSipError
from sip.message import parse_message
from sip.uri import parse_uri
from tests.sip.pair import make_request


def test_long_header_values_are_not_kept_in_the_view_cache() -> None:
    for n in range(50):
        long_name = "x" * 5000 + str(n)
        request = make_request("OPTIONS", call_id=f"long-{n}",
                               extra=(("Contact", f'"{long_name}" <sip:a@192.0.2.1>'),))
        request = parse_message(bytes(request))
        assert request.from_.tag == "fromtag"
        assert request.contacts  # parsed (and the long one must not be kept)
    kept = [raw for (_, raw) in message_module._view_cache]
    assert kept, "short values are still memoised"
    assert max(len(raw) for raw in kept) <= message_module.CACHED_TEXT_MAX


def test_long_uris_are_parsed_but_not_memoised() -> None:
    uri_module._parse_uri_cached.cache_clear()
    for n in range(20):
        uri = parse_uri(f"sip:{'u' * 1000}{n}@192.0.2.1")
        assert uri == parse_uri(str(uri))
    assert uri_module._parse_uri_cached.cache_info().currsize == 0
    parse_uri("sip:bob@192.0.2.2")
    parse_uri("sip:bob@192.0.2.2")
    assert uri_module._parse_uri_cached.cache_info().hits >= 1


def test_clearing_the_caches_forgets_the_header_names_a_peer_invented() -> None:
    """After a burst the endpoint empties the parse caches (sip.aio): the header names invented by a flood
    go too, the next message refills the names it uses."""
    request = make_request("OPTIONS", extra=(("X-Invented-By-A-Flood-1", "1"),))
    parse_message(bytes(request))
    assert "X-Invented-By-A-Flood-1" in message_module._names
    message_module.clear_parse_caches()
    assert message_module._names == {} and message_module._view_cache == {}
    assert parse_message(bytes(request)).headers.get("x-invented-by-a-flood-1") == "1"
    assert "Call-ID" in message_module._names


def test_a_refused_message_leaves_no_reference_cycle() -> None:
    """A refused message is freed as soon as the caller drops the error: nothing of it waits for a cyclic
    collection. (Its error's traceback keeps the parser's frame; a local naming the error there made a cycle,
    and under a flood the bad messages piled up in the oldest generation, which the node collects rarely.)"""
    bad = [
        b"OPTIONS sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nbad line\r\n\r\n",
        bytes(make_request("OPTIONS")).replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1),
        b"OPTIONS sip:bob@192.0.2.2 SIP/2.0\r\n" + b"X: y\r\n" * 300 + b"\r\n",
    ]
    gc.collect()
    gc.disable()
    try:
        for data in bad:
            with pytest.raises(RemoteSipError):
                parse_message(data)
        assert gc.collect() == 0
    finally:
        gc.enable()
