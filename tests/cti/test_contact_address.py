"""The NAT rule for reaching a registered phone (cti.call.legs.contact_address)."""

from __future__ import annotations

import pytest

from cti.call.legs import contact_address
from sip.errors import LocalSipError
from sip.registrar import AddressOfRecord, Binding, ContactKey
from sip.uri import parse_uri


def binding(uri: str, source: tuple[str, int] | None, transport: str = "UDP") -> Binding:
    return Binding(aor=AddressOfRecord("1001"), key=ContactKey(uri), uri=uri, q=None, params=(), call_id="c",
                   cseq=1, expires_at=100.0, registered_at=0.0, refreshed_at=0.0, source=source, transport=transport)


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


def test_a_phone_registered_over_tls_is_called_on_its_registration_connection() -> None:
    """Its Contact names its listening port; the node's connection to it is the REGISTER's source."""
    b = binding("sip:1001@127.0.0.1:53672;transport=tls", ("127.0.0.1", 33028), transport="TLS")
    assert contact_address(parse_uri(b.uri), b) == ("127.0.0.1", 33028)
    b = binding("sip:1001@127.0.0.1:53672;transport=tcp", ("127.0.0.1", 33028), transport="TCP")
    assert contact_address(parse_uri(b.uri), b) == ("127.0.0.1", 53672)  # TCP: as before
