"""Dialogs (RFC 3261 §12, §13.2.2.4, §15): creation, route sets, CSeq rules, in-dialog requests."""

from __future__ import annotations

import pytest

from sip.dialog import Dialog, DialogState, check_dialog_creating, dialog_id_from_request, dialog_id_from_response
from sip.errors import LocalSipError, RemoteSipError
from sip.headers import NameAddr
from sip.message import Request, Response
from sip.uri import SipUri, parse_uri
from tests.sip.pair import answer, make_request, roundtrip

ALICE_CONTACT = "<sip:alice@192.0.2.1:5060>"
BOB_CONTACT = NameAddr.parse("<sip:bob@192.0.2.2:5070>")
RR = ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")


def invite(record_routes: tuple[str, ...] = RR, seq: int = 10) -> Request:
    extra = (("Contact", ALICE_CONTACT), *(("Record-Route", rr) for rr in record_routes))
    return roundtrip(make_request("INVITE", seq=seq, extra=extra))  # type: ignore[return-value]


def uas_dialog(request: Request | None = None) -> Dialog:
    return Dialog.uas_from_invite(request or invite(), "bobtag", BOB_CONTACT)


def response_with(request: Request, status: int, *, record_routes: tuple[str, ...] = RR) -> Response:
    headers = [("Contact", "<sip:bob@192.0.2.2:5070>"), *(("Record-Route", rr) for rr in record_routes)]
    from sip.message import response_to

    return roundtrip(response_to(request, status, to_tag="bobtag", headers=headers))  # type: ignore[return-value]


# ------------------------------------------------------------------------- UAS
def test_uas_dialog_from_invite() -> None:
    request = invite()
    dialog = uas_dialog(request)
    assert dialog.state is DialogState.EARLY
    assert dialog.id == (request.call_id, "bobtag", "fromtag") == dialog_id_from_request(
        roundtrip(make_request("BYE", to_tag="bobtag"))  # type: ignore[arg-type]
    )
    assert dialog.remote_target == parse_uri("sip:alice@192.0.2.1:5060")
    assert [str(r) for r in dialog.route_set] == list(RR)  # in order, as received
    assert (dialog.remote_seq, dialog.local_seq) == (10, None)
    assert dialog.local_uri.tag == "bobtag" and dialog.remote_uri.tag == "fromtag"
    assert dialog.secure is False


def test_a_request_without_contact_cannot_create_a_dialog_but_one_without_from_tag_can() -> None:
    check_dialog_creating(invite())
    no_contact = roundtrip(make_request("INVITE"))
    assert isinstance(no_contact, Request) and not no_contact.headers.get_all("Contact")
    bad_route = invite(record_routes=("<sip:p1\\192.0.2.9;lr>",))
    for request in (no_contact, bad_route):
        with pytest.raises(RemoteSipError) as caught:
            check_dialog_creating(request)
        assert caught.value.status_hint == 400
        with pytest.raises(RemoteSipError):
            Dialog.uas_from_invite(request, "bobtag", BOB_CONTACT)
    # §12.1.1: "A UAS MUST be prepared to receive a request without a tag in the From field, in which
    # case the tag is considered to have a value of null."
    no_tag = invite()
    no_tag.headers.set("From", "<sip:alice@example.com>")
    dialog = Dialog.uas_from_invite(no_tag, "bobtag", BOB_CONTACT)
    assert dialog.id == (no_tag.call_id, "bobtag", "")
    assert dialog.remote_uri.tag is None


def test_an_rfc2543_invite_without_contact_is_reached_at_its_from_uri() -> None:
    """RFC 4475 §3.4.1 'inv2543': no branch, no From tag, no Contact, to be accepted."""
    request = invite()
    request.headers.set("Via", "SIP/2.0/UDP iftgw.example.com")
    request.headers.set("From", "<sip:+13035551111@ift.client.example.net;user=phone>")
    request.headers.remove("Contact")
    check_dialog_creating(request)
    dialog = Dialog.uas_from_invite(request, "bobtag", BOB_CONTACT)
    assert dialog.remote_target == parse_uri("sip:+13035551111@ift.client.example.net;user=phone")
    bye = dialog.create_request("BYE")
    assert str(bye.uri) == "sip:+13035551111@ift.client.example.net;user=phone"
    assert bye.to.tag is None and bye.from_.tag == "bobtag"


def test_uas_response_copies_record_route_and_adds_contact_then_confirms() -> None:
    request = invite()
    dialog = uas_dialog(request)
    ok = dialog.create_response(request, 200, body=b"v=0\r\n")
    assert ok.to.tag == "bobtag"
    assert ok.headers.get_all("Record-Route") == list(RR)
    assert ok.contacts[0].address == BOB_CONTACT
    assert ok.headers.get("Content-Type") == "application/sdp"
    dialog.response_sent(request, ok)
    assert dialog.state is DialogState.CONFIRMED


def test_uas_in_dialog_request_uses_reversed_view_and_starts_local_cseq() -> None:
    dialog = uas_dialog()
    bye = dialog.create_request("BYE")
    assert bye.uri == parse_uri("sip:alice@192.0.2.1:5060")
    assert bye.headers.get_all("Route") == list(RR)
    assert bye.cseq.seq == 1 and bye.cseq.method == "BYE"
    assert bye.from_.tag == "bobtag" and bye.to.tag == "fromtag"
    assert bye.top_via.host == "192.0.2.2" and bye.top_via.port == 5070
    assert bye.top_via.branch is not None and bye.top_via.branch.startswith("z9hG4bK")
    assert bye.headers.get("Contact") is None  # BYE is not a target refresh
    assert bytes(roundtrip(bye)) == bytes(bye)  # complete and parsable


def test_remote_cseq_rules() -> None:
    dialog = uas_dialog()
    dialog.receive_request(roundtrip(make_request("INFO", seq=11, to_tag="bobtag")))  # type: ignore[arg-type]
    assert dialog.remote_seq == 11
    dialog.receive_request(roundtrip(make_request("INFO", seq=15, to_tag="bobtag")))  # type: ignore[arg-type]
    assert dialog.remote_seq == 15  # gaps are allowed on receipt
    with pytest.raises(RemoteSipError) as info:
        dialog.receive_request(roundtrip(make_request("INFO", seq=14, to_tag="bobtag")))  # type: ignore[arg-type]
    assert info.value.status_hint == 500
    dialog.receive_request(roundtrip(make_request("ACK", seq=10, to_tag="bobtag")))  # type: ignore[arg-type]
    assert dialog.remote_seq == 15  # ACK neither checked nor counted


def test_reinvite_refreshes_remote_target_and_bye_terminates() -> None:
    dialog = uas_dialog()
    reinvite = make_request("INVITE", seq=11, to_tag="bobtag", extra=(("Contact", "<sip:alice@198.51.100.5>"),))
    dialog.receive_request(roundtrip(reinvite))  # type: ignore[arg-type]
    assert dialog.remote_target == parse_uri("sip:alice@198.51.100.5")
    dialog.receive_request(roundtrip(make_request("BYE", seq=12, to_tag="bobtag")))  # type: ignore[arg-type]
    assert dialog.state is DialogState.TERMINATED
    with pytest.raises(LocalSipError):
        dialog.create_request("INFO")


def test_uas_cancelled_early_dialog_terminates_on_487() -> None:
    request = invite()
    dialog = uas_dialog(request)
    dialog.response_sent(request, dialog.create_response(request, 180))
    assert dialog.state is DialogState.EARLY
    dialog.response_sent(request, dialog.create_response(request, 487))
    assert dialog.state is DialogState.TERMINATED


def test_uas_needs_from_tag_and_contact() -> None:
    with pytest.raises(RemoteSipError):
        Dialog.uas_from_invite(roundtrip(make_request("INVITE")), "t", BOB_CONTACT)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- UAC
def test_uac_dialog_from_2xx_reverses_record_route() -> None:
    request = invite(record_routes=())
    ok = response_with(request, 200)
    dialog = Dialog.uac_from_response(request, ok)
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.id == (request.call_id, "fromtag", "bobtag") == dialog_id_from_response(ok)
    assert [str(r) for r in dialog.route_set] == list(reversed(RR))
    assert dialog.remote_target == parse_uri("sip:bob@192.0.2.2:5070")
    assert (dialog.local_seq, dialog.remote_seq) == (10, None)
    info = dialog.create_request("INFO")
    assert info.cseq.seq == 11
    assert dialog.create_request("INFO").cseq.seq == 12  # strictly increasing by one
    assert info.headers.get_all("Route") == list(reversed(RR))
    assert info.uri == parse_uri("sip:bob@192.0.2.2:5070")


def test_uac_early_dialog_confirmed_by_2xx_with_recomputed_route_set() -> None:
    request = invite(record_routes=())
    dialog = Dialog.uac_from_response(request, response_with(request, 180, record_routes=RR[:1]))
    assert dialog.state is DialogState.EARLY
    assert len(dialog.route_set) == 1
    dialog.receive_response(request, response_with(request, 200))
    assert dialog.state is DialogState.CONFIRMED
    assert [str(r) for r in dialog.route_set] == list(reversed(RR))


def test_uac_early_dialog_terminated_by_487_after_cancel() -> None:
    request = invite(record_routes=())
    dialog = Dialog.uac_from_response(request, response_with(request, 183))
    dialog.receive_response(request, response_with(request, 487))
    assert dialog.state is DialogState.TERMINATED


def test_ack_for_2xx_keeps_invite_cseq_with_new_branch() -> None:
    request = invite(record_routes=())
    dialog = Dialog.uac_from_response(request, response_with(request, 200))
    ack = dialog.create_ack(request)
    assert (ack.cseq.seq, ack.cseq.method) == (10, "ACK")
    assert ack.top_via.branch != request.top_via.branch
    assert dialog.local_seq == 10  # ACK does not consume a number
    with pytest.raises(LocalSipError):
        dialog.create_request("ACK")


def test_2xx_to_reinvite_refreshes_target_and_contact_is_sent() -> None:
    request = invite(record_routes=())
    dialog = Dialog.uac_from_response(request, response_with(request, 200))
    reinvite = dialog.create_request("INVITE", body=b"v=0\r\n")
    assert reinvite.contacts[0].address is not None
    assert reinvite.headers.get("Content-Type") == "application/sdp"
    ok = roundtrip(answer(reinvite, 200, to_tag="bobtag"))
    ok.headers.add("Contact", "<sip:bob@203.0.113.50>")
    dialog.receive_response(reinvite, ok)  # type: ignore[arg-type]
    assert dialog.remote_target == parse_uri("sip:bob@203.0.113.50")


@pytest.mark.parametrize("status", [408, 481])
def test_408_and_481_terminate(status: int) -> None:
    request = invite(record_routes=())
    dialog = Dialog.uac_from_response(request, response_with(request, 200))
    info = dialog.create_request("INFO")
    dialog.receive_response(info, roundtrip(answer(info, status, to_tag="bobtag")))  # type: ignore[arg-type]
    assert dialog.state is DialogState.TERMINATED


def test_response_from_another_fork_is_refused() -> None:
    request = invite(record_routes=())
    dialog = Dialog.uac_from_response(request, response_with(request, 180))
    with pytest.raises(LocalSipError):
        dialog.receive_response(request, roundtrip(answer(request, 200, to_tag="fork2")))  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [100, 404])
def test_uac_cannot_create_dialog_from_100_or_error(status: int) -> None:
    request = invite(record_routes=())
    with pytest.raises(LocalSipError):
        Dialog.uac_from_response(request, response_with(request, status))


def test_strict_routing_puts_first_route_in_request_uri() -> None:
    request = invite(record_routes=())
    strict = ("<sip:p2.example.com;lr>", "<sip:strict.example.com;method=INVITE;maddr=10.0.0.1>")
    dialog = Dialog.uac_from_response(request, response_with(request, 200, record_routes=strict))
    bye = dialog.create_request("BYE")
    assert bye.uri == parse_uri("sip:strict.example.com;maddr=10.0.0.1")  # method= stripped
    routes = bye.headers.get_all("Route")
    assert routes == ["<sip:p2.example.com;lr>", "<sip:bob@192.0.2.2:5070>"]  # remote target last


def test_secure_flag_from_sips_request() -> None:
    request = invite(record_routes=())
    request.uri = SipUri(scheme="sips", user="bob", host="192.0.2.2")
    assert Dialog.uac_from_response(request, response_with(request, 200)).secure is True
