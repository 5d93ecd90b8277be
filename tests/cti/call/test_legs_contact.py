"""The node's Contact and Via port per transport (cti.call.legs.LegTable): a TLS leg names the TLS listener."""

from __future__ import annotations

from typing import cast

from cti.call.legs import LegTable
from sip.aio import SipEndpoint


def test_a_tls_leg_names_the_tls_listener_and_the_others_the_sip_port() -> None:
    table = LegTable(cast(SipEndpoint, object()), "127.0.0.1", 0)
    table.set_port(5060, 5061)
    assert str(table.contact_for("TLS", user="cti")) == "sip:cti@127.0.0.1:5061;transport=tls"
    assert table.via_port_for("TLS") == 5061
    for transport in ("UDP", "TCP"):
        assert str(table.contact_for(transport)) == "sip:127.0.0.1:5060"
        assert table.via_port_for(transport) == 5060


def test_without_a_tls_listener_every_leg_names_the_sip_port() -> None:
    table = LegTable(cast(SipEndpoint, object()), "127.0.0.1", 0)
    table.set_port(5070)
    assert str(table.contact_for("TLS", user="cti")) == "sip:cti@127.0.0.1:5070"
    assert table.via_port_for("TLS") == 5070
    assert len(table) == 0  # the leg maps exist before any leg (made in __init__)
