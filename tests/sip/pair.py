"""Test helpers: message factories, a drained-layer view, and ``UacUasPair``, two transaction layers
joined by a fake link that can drop, reorder or duplicate datagrams (after h11's ConnectionPair and
aioquic's roundtrip). Every message crossing the link is serialised with ``bytes()`` and parsed back
with ``parse_message``, so the whole stack is exercised.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sip.events import Destination, SipEvent
from sip.ids import new_branch
from sip.message import Headers, Outgoing, Request, Response, parse_message, response_to
from sip.transaction import TransactionLayer
from sip.uri import parse_uri

UAC_ADDR = ("192.0.2.1", 5060)
UAS_ADDR = ("192.0.2.2", 5060)
UDP_FROM_UAC = Destination(transport="UDP", addr=UAC_ADDR)
UDP_TO_UAS = Destination(transport="UDP", addr=UAS_ADDR)
TCP_FROM_UAC = Destination(transport="TCP", addr=UAC_ADDR, connection_id=7)
TCP_TO_UAS = Destination(transport="TCP", addr=UAS_ADDR, connection_id=8)


def make_request(
    method: str = "OPTIONS",
    *,
    branch: str | None = None,
    transport: str = "UDP",
    via_host: str = "192.0.2.1",
    via_params: str = "",
    seq: int = 1,
    call_id: str = "call-1@192.0.2.1",
    from_tag: str | None = "fromtag",
    to_tag: str | None = None,
    uri: str = "sip:bob@192.0.2.2",
    routes: tuple[str, ...] = (),
    extra: tuple[tuple[str, str], ...] = (),
) -> Request:
    """A complete request, as a UAC would send it."""
    headers = Headers()
    branch_param = "" if branch == "" else f";branch={branch or new_branch()}"
    headers.add("Via", f"SIP/2.0/{transport} {via_host}:5060{branch_param}{via_params}")
    headers.add("Max-Forwards", "70")
    headers.add("From", "<sip:alice@192.0.2.1>" + ("" if from_tag is None else f";tag={from_tag}"))
    headers.add("To", "<sip:bob@192.0.2.2>" + (f";tag={to_tag}" if to_tag else ""))
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{seq} {method}")
    for route in routes:
        headers.add("Route", route)
    for name, value in extra:
        headers.add(name, value)
    return Request(method=method, uri=parse_uri(uri), headers=headers)


def answer(request: Request, status: int, *, to_tag: str = "totag") -> Response:
    return response_to(request, status, to_tag=to_tag)


def roundtrip(message: Request | Response) -> Request | Response:
    """Serialise and parse back, as the wire would."""
    return parse_message(bytes(message))


def wire(sent: list[tuple[Outgoing, Destination]]) -> list[tuple[bytes, Destination]]:
    """What went on the wire: a server transaction hands out its final response as a SentResponse (bytes)."""
    return [(bytes(message), destination) for message, destination in sent]


def drain(layer: TransactionLayer) -> list[SipEvent]:
    events = []
    while (event := layer.next_event()) is not None:
        events.append(event)
    return events


@dataclass
class FakeLink:
    """A lossy datagram link: drops with ``loss``, duplicates with ``duplicate``, reorders a batch."""

    rng: random.Random
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: bool = False
    delivered: int = 0
    dropped: int = 0

    def carry(self, datagrams: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for data in datagrams:
            if self.rng.random() < self.loss:
                self.dropped += 1
                continue
            out.append(data)
            if self.rng.random() < self.duplicate:
                out.append(data)
        if self.reorder:
            self.rng.shuffle(out)
        self.delivered += len(out)
        return out


@dataclass
class UacUasPair:
    """Two transaction layers over a :class:`FakeLink`; time is stepped by hand."""

    link: FakeLink
    uac: TransactionLayer = field(default_factory=TransactionLayer)
    uas: TransactionLayer = field(default_factory=TransactionLayer)
    now: float = 0.0
    uac_events: list[SipEvent] = field(default_factory=list)
    uas_events: list[SipEvent] = field(default_factory=list)

    def transfer(self) -> int:
        """Move every queued message across the link (both ways) until both sides are quiet."""
        moved = 0
        while True:
            to_uas = [bytes(m) for m, dest in self.uac.messages_to_send() if dest.addr == UAS_ADDR]
            to_uac = [bytes(m) for m, dest in self.uas.messages_to_send() if dest.addr == UAC_ADDR]
            if not to_uas and not to_uac:
                return moved
            for data in self.link.carry(to_uas):
                self.uas.receive_message(parse_message(data), UDP_FROM_UAC, self.now)
            for data in self.link.carry(to_uac):
                self.uac.receive_message(parse_message(data), UDP_TO_UAS, self.now)
            moved += len(to_uas) + len(to_uac)
            self.uac_events.extend(drain(self.uac))
            self.uas_events.extend(drain(self.uas))

    def advance(self) -> bool:
        """Jump to the earliest timer of either side and fire it; False when no timer is left."""
        timers = [t for t in (self.uac.get_timer(), self.uas.get_timer()) if t is not None]
        if not timers:
            return False
        self.now = max(self.now, min(timers))
        self.uac.handle_timer(self.now)
        self.uas.handle_timer(self.now)
        self.uac_events.extend(drain(self.uac))
        self.uas_events.extend(drain(self.uas))
        return True
