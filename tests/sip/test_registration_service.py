"""REGISTER handling of the node (cti/node/registration.py) on the demo config: what the torture set and
real phones found (issue 16): a non-SIP To is a bad request, an unknown Authorization scheme is
challenged, and Contact parameters come back as they were written (quoted values stay quoted)."""

from __future__ import annotations

from config.loader import demo_config_path, load_config
from cti.node.registration import RegistrationService
from sip.auth import answer_challenge, parse_challenge
from sip.events import Destination
from sip.message import Request, parse_message

SOURCE = Destination(transport="UDP", addr=("127.0.0.1", 40000))
INSTANCE = '+sip.instance="<urn:uuid:acd7a95b-6ff5-0028-84b5-3a001fa93264>"'


def _register(to: str, *extra: str, contact: str = "<sip:1002@127.0.0.1:40000>") -> Request:
    lines = ["REGISTER sip:127.0.0.1 SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKreg1;rport",
             "Max-Forwards: 70", f"From: {to};tag=f1", f"To: {to}", "Call-ID: reg-1", "CSeq: 1 REGISTER",
             f"Contact: {contact}", *extra, "Content-Length: 0", "", ""]
    request = parse_message("\r\n".join(lines).encode())
    assert isinstance(request, Request)
    return request


def _service() -> RegistrationService:
    return RegistrationService(load_config(demo_config_path()).config, clock=lambda: 1000.0)


async def test_contact_parameters_come_back_as_written() -> None:
    service = _service()
    contact = f"<sip:1002@127.0.0.1:40000;transport=udp>;expires=3600;{INSTANCE}"
    status, headers, stateless = service.handle(_register("<sip:1002@127.0.0.1>", contact=contact), SOURCE)
    assert status == 401 and stateless  # a challenge changes nothing: sent as a stateless UAS
    challenge = parse_challenge(dict(headers)["WWW-Authenticate"])
    creds = answer_challenge(challenge, username="1002", password="demo1002", method="REGISTER",
                             uri="sip:127.0.0.1", cnonce="c0ffee", nc=1)
    status, headers, stateless = service.handle(
        _register("<sip:1002@127.0.0.1>", f"Authorization: {creds.header_value()}", contact=contact), SOURCE)
    service.close()
    assert status == 200 and not stateless  # a binding made (and a nonce count used)
    contacts = [value for name, value in headers if name == "Contact"]
    assert contacts == [f"<sip:1002@127.0.0.1:40000;transport=udp>;expires=3600;{INSTANCE}"]


async def test_a_non_sip_to_is_a_bad_request_and_an_unknown_scheme_is_challenged() -> None:
    service = _service()
    status, headers, stateless = service.handle(_register("isbn:2983792873"), SOURCE)  # RFC 4475 'unksm2'
    assert status == 400 and "SIP or SIPS URI" in dict(headers)["Warning"] and stateless
    status, headers, stateless = service.handle(  # RFC 4475 'regaut01'
        _register("<sip:1002@127.0.0.1>", "Authorization: NoOneKnowsThisScheme opaque-data=here"), SOURCE)
    assert status == 401 and dict(headers)["WWW-Authenticate"].startswith("Digest ") and stateless
    status, _, stateless = service.handle(_register("<sip:1002@127.0.0.1>", "Authorization: Digest realm="), SOURCE)
    assert status == 400 and stateless  # a malformed Digest header is still refused, and counts for nothing
    service.close()


async def test_a_wrong_password_counts_toward_a_lock_out_so_its_answer_keeps_its_transaction() -> None:
    service = _service()
    _, headers, _ = service.handle(_register("<sip:1002@127.0.0.1>"), SOURCE)
    challenge = parse_challenge(dict(headers)["WWW-Authenticate"])
    creds = answer_challenge(challenge, username="1002", password="not-the-password", method="REGISTER",
                             uri="sip:127.0.0.1", cnonce="c0ffee", nc=1)
    status, _, stateless = service.handle(
        _register("<sip:1002@127.0.0.1>", f"Authorization: {creds.header_value()}"), SOURCE)
    service.close()
    assert status == 403 and not stateless
