"""The NAT rule for reaching a registered phone (cti.call.legs.contact_address)."""

from __future__ import annotations

import pytest

from cti.call.legs import contact_address
from sip.errors import LocalSipError
from sip.registrar import AddressOfRecord, Binding, ContactKey
from sip.uri import parse_uri


def binding(uri: str, source: tuple[str, int] | None) -> Binding:
    return Binding(aor=AddressOfRecord("1001"), key=ContactKey(uri), uri=uri, q=None, params=(), call_id="c",
                   cseq=1, expires_at=100.0, registered_at=0.0, refreshed_at=0.0, source=source, transport="UDP")


def test_a_phone_registering_from_its_contact_address_is_called_there() -> None:
    b = binding("sip:1001@10.0.0.7:5062", ("10.0.0.7", 40000))
    assert contact_address(parse_uri(b.uri), b) == ("10.0.0.7", 5062)


def test_a_phone_behind_nat_is_called_where_its_register_came_from() -> None:
    b = binding("sip:1001@192.168.1.20:5060", ("203.0.113.9", 61001))
    assert contact_address(parse_uri(b.uri), b) == ("203.0.113.9", 61001)


def test_default_port_and_ipv6_contact() -> None:
    b = binding("sip:1001@[::1]", ("::1", 5099))
    assert contact_address(parse_uri(b.uri), b) == ("::1", 5060)


def test_no_usable_address_is_an_error() -> None:
    b = binding("tel:+15550100", None)
    with pytest.raises(LocalSipError):
        contact_address(parse_uri(b.uri), b)
