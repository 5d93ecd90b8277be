"""Tests for sip.registrar: RFC 3261 §10.3 binding rules, expiry timers, events."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.registrar import (
    AddressOfRecord,
    BindingAdded,
    BindingExpired,
    BindingRefreshed,
    BindingRemoved,
    ContactBinding,
    RegisterReason,
    RegisterRequest,
    Registrar,
    RegistrarError,
    RegistrarPolicy,
    contact_key,
)

AOR = AddressOfRecord("1001")
PHONE = "sip:1001@192.0.2.10:5060;transport=udp"
DESK = "sip:1001@192.0.2.20:5062"


def req(*contacts: ContactBinding, call_id: str = "c1", cseq: int = 1, expires: int | None = None,
        wildcard: bool = False, source: tuple[str, int] | None = ("203.0.113.7", 40000)) -> RegisterRequest:
    return RegisterRequest(aor=AOR, call_id=call_id, cseq=cseq, contacts=contacts, expires=expires,
                           wildcard=wildcard, source=source)


def c(uri: str = PHONE, expires: int | None = None, q: float | None = None) -> ContactBinding:
    return ContactBinding(uri=uri, expires=expires, q=q)


def test_first_registration_adds_a_binding_and_lists_it() -> None:
    reg = Registrar()
    out = reg.register(req(c(), expires=600), now=100.0)
    assert (out.status, out.reason) == (200, RegisterReason.OK)
    assert out.contacts == (ContactBinding(uri=PHONE, expires=600),)
    assert [type(e) for e in out.events] == [BindingAdded]
    binding = out.events[0].binding
    assert (binding.source, binding.expires_at, binding.call_id, binding.cseq) == (("203.0.113.7", 40000), 700.0,
                                                                                    "c1", 1)
    assert reg.lookup(AOR, 101.0) == [binding]


def test_expires_precedence_and_bounds() -> None:
    reg = Registrar(RegistrarPolicy(default_expires=1800, min_expires=60, max_expires=3600))
    out = reg.register(req(c(PHONE, expires=120), c(DESK), expires=300), now=0.0)
    assert {x.uri: x.expires for x in out.contacts} == {PHONE: 120, DESK: 300}
    out = reg.register(req(c(PHONE), c(DESK, expires=99999), cseq=2), now=0.0)
    assert {x.uri: x.expires for x in out.contacts} == {PHONE: 1800, DESK: 3600}


def test_interval_too_brief_is_423_with_min_expires_and_changes_nothing() -> None:
    reg = Registrar(RegistrarPolicy(min_expires=60))
    out = reg.register(req(c(DESK, expires=600), c(PHONE, expires=59)), now=0.0)
    assert (out.status, out.reason, out.min_expires, out.events) == (423, RegisterReason.INTERVAL_TOO_BRIEF, 60, ())
    assert reg.lookup(AOR, 0.0) == []
    assert reg.register(req(c(expires=60)), now=0.0).status == 200


def test_423_only_below_one_hour() -> None:
    reg = Registrar(RegistrarPolicy(min_expires=4000, default_expires=5000, max_expires=9000))
    assert reg.register(req(c(expires=3700)), now=0.0).status == 200
    assert reg.register(req(c(expires=3599), cseq=2), now=0.0).status == 423


def test_negative_expires_is_400() -> None:
    assert Registrar().register(req(c(expires=-1)), now=0.0).status == 400


def test_refresh_keeps_registration_time_and_updates_source() -> None:
    reg = Registrar()
    reg.register(req(c(expires=600)), now=0.0)
    out = reg.register(req(c(expires=600), cseq=2, source=("203.0.113.7", 40001)), now=300.0)
    (event,) = out.events
    assert isinstance(event, BindingRefreshed)
    assert (event.binding.registered_at, event.binding.refreshed_at, event.binding.expires_at) == (0.0, 300.0, 900.0)
    assert event.binding.source == ("203.0.113.7", 40001) and event.previous.source == ("203.0.113.7", 40000)
    assert out.contacts[0].expires == 600


def test_same_call_id_lower_or_equal_cseq_fails_the_whole_request() -> None:
    reg = Registrar()
    reg.register(req(c(PHONE), cseq=5), now=0.0)
    for cseq in (5, 4):
        out = reg.register(req(c(DESK), c(PHONE, expires=0), cseq=cseq), now=1.0)
        assert (out.status, out.reason, out.events) == (500, RegisterReason.OUT_OF_ORDER, ())
    assert [b.uri for b in reg.lookup(AOR, 1.0)] == [PHONE]  # DESK was not added: all or nothing


def test_other_call_id_may_have_any_cseq() -> None:
    reg = Registrar()
    reg.register(req(c(PHONE), cseq=50), now=0.0)
    out = reg.register(req(c(PHONE), call_id="after-reboot", cseq=1), now=1.0)
    assert out.status == 200 and isinstance(out.events[0], BindingRefreshed)
    assert reg.lookup(AOR, 1.0)[0].call_id == "after-reboot"


def test_unregister_one_contact_with_expires_zero() -> None:
    reg = Registrar()
    reg.register(req(c(PHONE), c(DESK)), now=0.0)
    out = reg.register(req(c(PHONE, expires=0), cseq=2), now=1.0)
    assert [type(e) for e in out.events] == [BindingRemoved] and out.events[0].binding.uri == PHONE
    assert [x.uri for x in out.contacts] == [DESK]
    out = reg.register(req(c("sip:never@192.0.2.1"), expires=0, cseq=3), now=2.0)
    assert out.status == 200 and out.events == ()


def test_wildcard_removes_everything() -> None:
    reg = Registrar()
    reg.register(req(c(PHONE)), now=0.0)
    reg.register(req(c(DESK), call_id="c2"), now=0.0)
    out = reg.register(req(wildcard=True, expires=0, cseq=2), now=1.0)
    assert (out.status, out.contacts) == (200, ())
    assert sorted(e.binding.uri for e in out.events if isinstance(e, BindingRemoved)) == sorted([PHONE, DESK])
    assert reg.lookup(AOR, 1.0) == [] and reg.get_timer() is None


@pytest.mark.parametrize("request_", [
    req(wildcard=True, cseq=9),  # no Expires header
    req(wildcard=True, expires=3600, cseq=9),
    req(c(DESK), wildcard=True, expires=0, cseq=9),
])
def test_wildcard_misuse_is_400(request_: RegisterRequest) -> None:
    reg = Registrar()
    reg.register(req(c(PHONE)), now=0.0)
    out = reg.register(request_, now=1.0)
    assert (out.status, out.reason) == (400, RegisterReason.WILDCARD_MISUSED)
    assert len(reg.lookup(AOR, 1.0)) == 1


def test_wildcard_obeys_the_cseq_rule() -> None:
    reg = Registrar()
    reg.register(req(c(PHONE), cseq=3), now=0.0)
    assert reg.register(req(wildcard=True, expires=0, cseq=3), now=1.0).status == 500
    assert reg.register(req(wildcard=True, expires=0, cseq=4), now=1.0).status == 200


def test_query_lists_without_changing() -> None:
    reg = Registrar()
    reg.register(req(c(expires=600)), now=0.0)
    out = reg.register(req(cseq=2), now=100.0)
    assert (out.status, out.contacts, out.events) == (200, (ContactBinding(uri=PHONE, expires=500),), ())


def test_lookup_orders_by_q_then_recency() -> None:
    reg = Registrar()
    reg.register(req(c("sip:a@192.0.2.1", q=0.5)), now=0.0)
    reg.register(req(c("sip:b@192.0.2.2")), now=1.0)  # no q: counts as 1.0
    reg.register(req(c("sip:c@192.0.2.3", q=1.0)), now=2.0)
    reg.register(req(c("sip:d@192.0.2.4", q=0.5)), now=3.0)
    assert [b.uri for b in reg.lookup(AOR, 4.0)] == ["sip:c@192.0.2.3", "sip:b@192.0.2.2", "sip:d@192.0.2.4",
                                                     "sip:a@192.0.2.1"]


def test_timer_expires_bindings_and_skips_refreshed_entries() -> None:
    reg = Registrar()
    assert reg.get_timer() is None
    reg.register(req(c(PHONE, expires=100), c(DESK, expires=200)), now=0.0)
    assert reg.get_timer() == 100.0
    reg.register(req(c(PHONE, expires=300), cseq=2), now=50.0)  # PHONE now ends at 350
    assert reg.get_timer() == 200.0
    assert reg.handle_timer(199.0) == []
    events = reg.handle_timer(200.0)
    assert [(type(e), e.binding.uri, e.at) for e in events] == [(BindingExpired, DESK, 200.0)]
    assert reg.get_timer() == 350.0
    assert [e.binding.uri for e in reg.handle_timer(1000.0)] == [PHONE]
    assert reg.get_timer() is None and reg.lookup(AOR, 1000.0) == []


def test_expired_bindings_are_invisible_and_purged_before_a_register() -> None:
    reg = Registrar()
    reg.register(req(c(PHONE, expires=100), cseq=7), now=0.0)
    assert reg.lookup(AOR, 100.0) == []
    out = reg.register(req(c(PHONE, expires=100), cseq=1), now=150.0)  # same Call-ID, lower CSeq: binding is gone
    assert out.status == 200
    assert [type(e) for e in out.events] == [BindingExpired, BindingAdded]


def test_too_many_contacts_is_403() -> None:
    reg = Registrar(RegistrarPolicy(max_contacts=2))
    reg.register(req(c("sip:a@192.0.2.1"), c("sip:b@192.0.2.2")), now=0.0)
    out = reg.register(req(c("sip:c@192.0.2.3"), cseq=2), now=1.0)
    assert (out.status, out.reason) == (403, RegisterReason.TOO_MANY_CONTACTS)
    out = reg.register(req(c("sip:c@192.0.2.3"), c("sip:a@192.0.2.1", expires=0), cseq=3), now=1.0)
    assert out.status == 200


def test_contact_comparison() -> None:
    assert contact_key("sip:1001@EXAMPLE.com;Transport=UDP;lr") == contact_key("SIP:1001@example.com;lr;transport=udp")
    assert contact_key("sip:%31001@example.com") == contact_key("sip:1001@example.com")
    assert contact_key("sip:Bob@example.com") != contact_key("sip:bob@example.com")
    assert contact_key("sip:bob@example.com") != contact_key("sip:bob@example.com:5060")
    reg = Registrar()
    reg.register(req(c("sip:1001@Example.COM")), now=0.0)
    out = reg.register(req(c("sip:1001@example.com"), cseq=2), now=1.0)
    assert isinstance(out.events[0], BindingRefreshed) and len(out.contacts) == 1


def test_contact_header_value_and_validation() -> None:
    contact = ContactBinding(uri=PHONE, expires=30, q=0.5, params=(("+sip.instance", '"<urn:uuid:1>"'), ("ob", None)))
    assert contact.header_value() == f'<{PHONE}>;expires=30;q=0.5;+sip.instance="<urn:uuid:1>";ob'
    assert ContactBinding(uri=PHONE, q=1.0).header_value() == f"<{PHONE}>;q=1"
    with pytest.raises(ValueError):
        ContactBinding(uri=PHONE, q=1.5)
    with pytest.raises(RegistrarError):
        RegistrarPolicy(min_expires=100, default_expires=50)


_ops = st.lists(st.tuples(st.sampled_from(["sip:a@h", "sip:b@h", "sip:c@h", "*"]),
                          st.one_of(st.none(), st.integers(0, 5000)), st.sampled_from(["x", "y"]),
                          st.integers(1, 5), st.floats(0, 500)), max_size=25)


@given(_ops)
def test_invariants_under_random_registers(ops: list[tuple[str, int | None, str, int, float]]) -> None:
    reg = Registrar(RegistrarPolicy(max_contacts=2))
    now = 0.0
    live: set[str] = set()
    for uri, expires, call_id, cseq, step in ops:
        now += step
        for event in reg.handle_timer(now):
            live.discard(event.binding.uri)
        request = (req(wildcard=True, expires=expires, call_id=call_id, cseq=cseq) if uri == "*"
                   else req(c(uri, expires=expires), call_id=call_id, cseq=cseq))
        out = reg.register(request, now)
        assert out.status in (200, 400, 403, 423, 500)
        for event in out.events:
            if isinstance(event, BindingAdded):
                assert event.binding.uri not in live
                live.add(event.binding.uri)
            elif isinstance(event, BindingRemoved | BindingExpired):
                live.remove(event.binding.uri)
        bindings = reg.lookup(AOR, now)
        assert {b.uri for b in bindings} == live and len(bindings) <= 2
        assert all(b.expires_at > now for b in bindings)
        if out.status == 200:
            assert {x.uri for x in out.contacts} == live and all(x.expires and x.expires > 0 for x in out.contacts)
        timer = reg.get_timer()
        assert timer == (min(b.expires_at for b in bindings) if bindings else None)


def test_refreshing_in_a_loop_does_not_grow_the_expiry_heap() -> None:
    """Each refresh leaves a stale deadline behind; the heap is rebuilt before it passes twice the
    live bindings (plus slack), so an authenticated client re-registering in a loop cannot grow it."""
    from sip.registrar import HEAP_SLACK, AddressOfRecord, ContactBinding, RegisterRequest, Registrar

    registrar = Registrar()
    for n in range(5000):
        request = RegisterRequest(aor=AddressOfRecord("1001"), call_id="loop", cseq=n + 1,
                                  contacts=(ContactBinding(uri="sip:1001@192.0.2.1"),), expires=3600)
        assert registrar.register(request, float(n) / 100).status == 200
    assert registrar.binding_count == 1
    assert len(registrar._timers) <= 2 + HEAP_SLACK
    assert registrar.get_timer() == 49.99 + 3600
