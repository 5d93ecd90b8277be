"""The SIP messages of one queued call, as the node handles them, without sockets: a driver for
``bench_instructions.py`` (case ``sip_call``) and its test (tests/cti/call/test_callpath_driver.py).

What the load benchmark (``bench_callpath.py``) makes the node do per call, with the real code on the
path: :class:`sip.aio.SipEndpoint` (parse, transaction layer, pump, serialisation of every message sent),
:class:`cti.call.legs.LegTable` and its legs (dialogs, responses built with ``response_to``, ACK and
BYE), :func:`cti.call.useragent.invite_phone` (the agent's INVITE), and what ``cti.node.sipcore`` and the
door read from a new INVITE (To tag, Max-Forwards, Require, Contact/Record-Route, the body's headers,
the caller's identity). The peers write what SIPp's ``load_carrier.xml`` and ``load_agent_uas.xml``
write; the SDP bodies are fixed bytes (the SDP work is its own case, ``sdp_call``).

Per call the node receives 6 messages (the caller's INVITE, ACK, BYE; the agent's 180, 200, and 200 to
the BYE) and sends 7 (100, 180, 200 and the BYE's 200 to the caller; INVITE, ACK, BYE to the agent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import structlog

from cti.call.legs import (
    HangupCause,
    InboundLeg,
    Leg,
    LegAnswered,
    LegEnded,
    LegEvent,
    LegTable,
)
from cti.call.useragent import PhoneInvite, invite_phone
from cti.node.trunks import caller_identity
from sip.aio import SipEndpoint
from sip.dialog import check_dialog_creating
from sip.events import Destination, RequestReceived, ResponseReceived, SipEvent
from sip.transaction import TransactionLayer


def quiet_logs() -> None:
    """Log as the load benchmark's node does (level warning, loggers cached): call before the first call."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        cache_logger_on_first_use=True)


NODE = ("127.0.0.1", 5060)
CARRIER = Destination(transport="UDP", addr=("127.0.0.1", 5070))
AGENT = Destination(transport="UDP", addr=("127.0.0.1", 5080))

CALLER_SDP = (b"v=0\r\no=load 4242%d 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
              b"m=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
              b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n")
AGENT_SDP = CALLER_SDP.replace(b"o=load", b"o=agent").replace(b"6000", b"7000")
NODE_OFFER = (b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
              b"m=audio 20002 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
              b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n")
NODE_ANSWER = NODE_OFFER.replace(b"20002", b"20000")


def _carrier(method: str, n: int, *, cseq: int, to_tag: bytes = b"", body: bytes = b"") -> bytes:
    uri = f"sip:200@{NODE[0]}:{NODE[1]}"
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-4242-{n}-{cseq}-{method};rport",
        f'From: "load" <sip:555{n}@127.0.0.1:5070>;tag=4242SIPpTag00{n}',
        f"To: <{uri}>" + to_tag.decode(),
        f"Call-ID: {n}-4242@127.0.0.1",
        f"CSeq: {cseq} {method}",
    ]
    if method == "INVITE":
        lines.append(f"Contact: <sip:555{n}@127.0.0.1:5070;transport=UDP>")
    lines.append("Max-Forwards: 70")
    if method == "INVITE":
        lines += ["User-Agent: SIPp load", "Content-Type: application/sdp"]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _header_lines(message: bytes) -> dict[bytes, bytes]:
    """What SIPp's ``[last_Via:]`` and friends copy: whole header lines, by name."""
    head = message.partition(b"\r\n\r\n")[0]
    return {line.partition(b":")[0]: line for line in head.split(b"\r\n")[1:]}


def _agent_answer(invite: bytes, status: bytes, n: int, body: bytes = b"", *, contact: bool = True) -> bytes:
    last = _header_lines(invite)
    to = last[b"To"] if b";tag=" in last[b"To"] else last[b"To"] + b";tag=4343SIPpTag01%d" % n
    lines = [b"SIP/2.0 " + status, last[b"Via"], last[b"From"], to, last[b"Call-ID"], last[b"CSeq"]]
    if contact:
        lines.append(b"Contact: <sip:agent@127.0.0.1:5080;transport=UDP>")
    if body:
        lines.append(b"Content-Type: application/sdp")
    lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _Wire:
    """The endpoint's one transport: keeps what the node sends, by destination."""

    local_address = NODE

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Destination]] = []

    def send(self, data: bytes, destination: Destination) -> None:
        self.sent.append((data, destination))

    def read_pending(self, limit: int) -> int:
        return 0

    async def close(self) -> None:
        return None


class _Endpoint(SipEndpoint):
    def _arm_timer(self) -> None:  # no event loop here: the driver fires the layer's timers itself
        return None


@dataclass(slots=True)
class _Binding:
    uri: str
    transport: str
    source: tuple[str, int] | None


BINDING = _Binding(uri="sip:3001@127.0.0.1:5080;transport=UDP", transport="UDP", source=AGENT.addr)


class _Call:
    """What the call shell does on the SIP side of a queued call: 180 to the caller, INVITE the agent, 200
    to the caller when the agent answers, and on the caller's BYE the 200 (after the record) and a BYE to
    the agent."""

    def __init__(self, node: CallNode, event: RequestReceived) -> None:
        self.node = node
        request = event.request
        number, name = caller_identity(request)
        self.trunk = InboundLeg(node.legs, self, event)
        self.trunk.hold_bye_answer = True
        self.trunk.ringing()
        self.agent: Leg = invite_phone(node.legs, self, BINDING, PhoneInvite(
            caller=number, display=name, callee="3001", call_id="c-bench", queue="load"), NODE_OFFER)
        self.ended = False

    def on_leg_event(self, event: LegEvent) -> None:
        if isinstance(event, LegAnswered) and event.leg is self.agent:
            assert isinstance(self.trunk, InboundLeg)
            self.trunk.answer(NODE_ANSWER)
        elif isinstance(event, LegEnded) and event.leg is self.trunk and event.cause is HangupCause.REMOTE_BYE:
            self.trunk.release_bye()
            self.agent.bye()
            self.ended = True


class CallNode:
    """The node's SIP side for the benchmark: the endpoint, its layer and legs, and a handler that routes
    requests as ``cti.node.sipcore`` does."""

    def __init__(self) -> None:
        self.now = 0.0
        self.wire = _Wire()
        self.endpoint = _Endpoint(TransactionLayer(), self, clock=lambda: self.now)
        self.endpoint._transports["UDP"] = self.wire  # type: ignore[assignment]
        self.legs = LegTable(self.endpoint, *NODE)
        self.calls: list[_Call] = []

    def on_sip_event(self, event: SipEvent) -> None:
        if isinstance(event, RequestReceived):
            request = event.request
            if request.to.tag is not None:
                leg = self.legs.leg_for_request(request)
                if leg is not None:
                    leg.on_request(event)
                return
            if request.method != "INVITE":
                return
            _ = request.max_forwards
            _ = request.headers.get_all("Require")
            check_dialog_creating(request)
            # The door's offer check reads the body's headers (cti.call.offercheck).
            _ = (request.headers.get("Content-Type"), request.headers.get_all("Content-Encoding"),
                 request.headers.get("Content-Disposition"), request.headers.get("Accept"))
            self.calls.append(_Call(self, event))
        elif isinstance(event, ResponseReceived):
            self.legs.on_response(event)

    def take(self) -> list[tuple[bytes, Destination]]:
        sent, self.wire.sent = self.wire.sent, []
        return sent

    def call(self, n: int) -> int:
        """One whole call numbered ``n`` (unique per driver); returns the messages the node sent."""
        endpoint, count = self.endpoint, 0
        endpoint.message_received(_carrier("INVITE", n, cseq=1, body=CALLER_SDP % n), CARRIER)
        sent = self.take()  # 180 to the caller (at once: no 100 Trying), the INVITE to the agent
        count += len(sent)
        invite = next(data for data, dest in sent if dest == AGENT)
        endpoint.message_received(_agent_answer(invite, b"180 Ringing", n), AGENT)
        endpoint.message_received(_agent_answer(invite, b"200 OK", n, AGENT_SDP % n), AGENT)
        sent = self.take()  # the ACK to the agent, the 200 to the caller
        count += len(sent)
        ok = next(data for data, dest in sent if dest == CARRIER)
        to_tag = _header_lines(ok)[b"To"].partition(b">")[2]
        endpoint.message_received(_carrier("ACK", n, cseq=1, to_tag=to_tag), CARRIER)
        endpoint.message_received(_carrier("BYE", n, cseq=2, to_tag=to_tag), CARRIER)
        sent = self.take()  # the 200 to the caller's BYE, the BYE to the agent
        count += len(sent)
        bye = next(data for data, dest in sent if dest == AGENT)
        endpoint.message_received(_agent_answer(bye, b"200 OK", n, contact=False), AGENT)
        count += len(self.take())
        self.now += 0.004  # 250 calls/s
        self.endpoint.layer.handle_timer(self.now)
        call = self.calls.pop()
        assert call.ended and not self.endpoint.failed and not self.endpoint.rejected, "the call went wrong"
        return count
