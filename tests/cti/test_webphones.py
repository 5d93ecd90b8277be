"""cti.phone.WebPhones over real sockets on 127.0.0.1: an aiortc peer connection plays the agent's page, a UDP socket
plays the node's SIP side (the INVITEs the call path sends a registered phone). Checked: the binding made and removed
in the registrar's door, who may INVITE the user agent, ringing / answer / BYE with their events, a second INVITE
while ringing, the page declining, the connection's end, and that a failing task ends nothing else."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from cti.phone import PhoneError, PhoneSettings, PhoneState, WebPhones
from cti.phone.media import CallAudio
from sip import Response, parse_message

HOST = "127.0.0.1"
OFFER_SDP = ("v=0\r\no=node 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             "m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
             "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendrecv\r\n")
_ids = itertools.count(1)


class FakeBindings:
    """The registrar's door: records every bind_local."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def bind_local(self, user: str, uri: str, *, call_id: str, cseq: int, expires: int,
                   source: tuple[str, int]) -> int:
        self.calls.append((user, uri, expires))
        return expires


class SipSide(asyncio.DatagramProtocol):
    """One UDP socket speaking plain SIP text to the user agent."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.inbox.put_nowait(parse_message(data))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, text: str, to: tuple[str, int], body: str = "") -> None:
        assert self.transport is not None
        head = text.strip().replace("\n", "\r\n")
        self.transport.sendto(f"{head}\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode(), to)

    def invite(self, to: tuple[str, int], user: str, *, call_id: str | None = None) -> str:
        call_id = call_id or f"inv-{next(_ids)}"
        self.send(f"""INVITE sip:{user}@{to[0]}:{to[1]} SIP/2.0
Via: SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK-{call_id};rport
Max-Forwards: 70
From: "Ann" <sip:5551234@{HOST}:{self.port}>;tag=node-{call_id}
To: <sip:{user}@{to[0]}:{to[1]}>
Call-ID: {call_id}
CSeq: 1 INVITE
Contact: <sip:cti@{HOST}:{self.port}>
X-CTI-Call-ID: call-{call_id}
Content-Type: application/sdp""", to, OFFER_SDP)
        return call_id

    def in_dialog(self, method: str, to: tuple[str, int], user: str, call_id: str, to_tag: str, cseq: int, *,
                  body: str = "", extra: str = "") -> None:
        branch = f"z9hG4bK-{method}-{call_id}-{cseq}"  # an ACK of a 2xx is a transaction of its own (§17.1.1.3)
        self.send(f"""{method} sip:{user}@{to[0]}:{to[1]} SIP/2.0
Via: SIP/2.0/UDP {HOST}:{self.port};branch={branch};rport
Max-Forwards: 70
From: "Ann" <sip:5551234@{HOST}:{self.port}>;tag=node-{call_id}
To: <sip:{user}@{to[0]}:{to[1]}>;tag={to_tag}
Call-ID: {call_id}
CSeq: {cseq} {method}{chr(10) + extra if extra else ""}""", to, body)

    async def response(self, status: int | None = None, within: float = 3.0) -> Response:
        async with asyncio.timeout(within):
            while True:
                message = await self.inbox.get()
                if isinstance(message, Response) and (message.status == status or status is None
                                                      and message.status >= 200):  # None: the final one
                    return message


async def _udp(side: SipSide) -> SipSide:
    await asyncio.get_running_loop().create_datagram_endpoint(lambda: side, local_addr=(HOST, 0))
    return side


class Harness:
    def __init__(self, phones: WebPhones, node: SipSide, bindings: FakeBindings,
                 events: list[tuple[str, dict[str, Any]]]) -> None:
        self.phones, self.node, self.bindings, self.events = phones, node, bindings, events
        self.pages: list[RTCPeerConnection] = []

    @property
    def ua(self) -> tuple[str, int]:
        addr = self.phones.endpoint.local_address()
        return (addr[0], int(addr[1]))

    async def page_turns_on(self, agent: str, owner: int, *, auto_answer: bool = False) -> dict[str, Any]:
        """An aiortc peer as the page: offer, phone_on, answer applied; returns the reply."""
        page = RTCPeerConnection()
        self.pages.append(page)
        page.addTrack(CallAudio())  # the page's "microphone": silence, paced
        await page.setLocalDescription(await page.createOffer())
        reply = await self.phones.command(agent, owner, "phone_on", {"sdp": page.localDescription.sdp,
                                                                      "auto_answer": auto_answer})
        await page.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        return reply

    def states(self, agent: str) -> list[tuple[str, str | None]]:
        return [(d["state"], d["reason"]) for t, d in self.events if t == "phone.state_changed"
                and d["agent_id"] == agent]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    node = await _udp(SipSide())
    bindings, events = FakeBindings(), []
    phones = WebPhones(bindings, lambda t, d: events.append((t, d)), host=HOST, node_sip=(HOST, node.port),
                       settings=PhoneSettings(ice_timeout_s=10.0))
    task = asyncio.get_running_loop().create_task(phones.run(), name="web-phones-under-test")
    await asyncio.wait_for(phones.ready.wait(), 5)
    h = Harness(phones, node, bindings, events)
    try:
        yield h
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for page in h.pages:
            await page.close()
        assert node.transport is not None
        node.transport.close()


async def test_a_call_rings_is_answered_and_ends_with_the_nodes_bye(harness: Harness) -> None:
    h = harness
    reply = await h.page_turns_on("1003", owner=7)
    assert reply["state"] == "ready" and reply["sdp"].startswith("v=0") and "a=fingerprint:" in reply["sdp"]
    assert "PCMU/8000" in reply["sdp"] and "opus" not in reply["sdp"].lower()  # G.711 on the page's side too
    user, uri, expires = h.bindings.calls[0]
    assert (user, uri, expires) == ("1003", f"sip:1003@{HOST}:{h.ua[1]}", 300)

    call_id = h.node.invite(h.ua, "1003")
    ringing = await h.node.response(180)
    assert h.phones.state_of("1003") is PhoneState.RINGING
    ring_event = [d for t, d in h.events if d["state"] == "ringing"][0]
    assert (ring_event["caller"], ring_event["call_id"], ring_event["phone_id"]) == (
        "5551234", f"call-{call_id}", reply["phone_id"])

    second = h.node.invite(h.ua, "1003")  # another call while this one rings: busy, the first rings on
    busy = await h.node.response(486)
    assert busy.headers.get("Call-ID") == second and h.phones.state_of("1003") is PhoneState.RINGING

    answered = await h.phones.command("1003", 7, "phone_answer", {})
    assert answered["state"] == "in_call"
    ok = await h.node.response(200)
    assert b"m=audio" in ok.body and b"RTP/AVP 0" in ok.body  # PCMU, the node's first codec
    to_tag = ok.to.tag
    assert to_tag is not None and to_tag == ringing.to.tag
    h.node.in_dialog("ACK", h.ua, "1003", call_id, to_tag, 1)
    hold = OFFER_SDP.replace("o=node 1 1", "o=node 1 2").replace("a=sendrecv", "a=sendonly")
    h.node.in_dialog("INVITE", h.ua, "1003", call_id, to_tag, 2, body=hold, extra="Content-Type: application/sdp")
    held = await h.node.response(200)  # the node holds the call (RFC 3264 §8.4): the phone answers recvonly
    assert held.cseq.method == "INVITE" and b"a=recvonly" in held.body and b"RTP/AVP 0" in held.body
    h.node.in_dialog("ACK", h.ua, "1003", call_id, to_tag, 2)
    h.node.in_dialog("BYE", h.ua, "1003", call_id, to_tag, 3)
    bye_ok = await h.node.response(200)
    assert bye_ok.cseq.method == "BYE"
    assert h.states("1003") == [("ready", None), ("ringing", None), ("in_call", None), ("ready", "remote_hangup")]

    h.phones.release(7)  # the page's connection ended
    assert h.phones.state_of("1003") is PhoneState.OFF and len(h.phones) == 0
    assert h.bindings.calls[-1] == ("1003", uri, 0)  # the binding is removed
    assert h.states("1003")[-1] == ("off", "disconnected")


async def test_the_page_declines_and_hangs_up(harness: Harness) -> None:
    h = harness
    await h.page_turns_on("1003", owner=1)
    call_id = h.node.invite(h.ua, "1003")
    await h.node.response(180)
    await h.phones.command("1003", 1, "phone_hangup", {})
    declined = await h.node.response(603)
    assert declined.headers.get("Call-ID") == call_id
    with pytest.raises(PhoneError) as nothing:
        await h.phones.command("1003", 1, "phone_hangup", {})
    assert nothing.value.code == "no_call"

    call_id = h.node.invite(h.ua, "1003")
    await h.node.response(180)
    await h.phones.command("1003", 1, "phone_answer", {})
    ok = await h.node.response(200)
    assert ok.to.tag is not None
    h.node.in_dialog("ACK", h.ua, "1003", call_id, ok.to.tag, 1)
    await h.phones.command("1003", 1, "phone_hangup", {})
    async with asyncio.timeout(3):
        while True:
            message = await h.node.inbox.get()
            if getattr(message, "method", None) == "BYE":
                break
    assert h.states("1003")[-3:] == [("ringing", None), ("in_call", None), ("ready", "hung_up")]
    assert ("ready", "declined") in h.states("1003")


async def test_auto_answer_and_the_caller_cancelling(harness: Harness) -> None:
    h = harness
    await h.page_turns_on("1001", owner=2, auto_answer=True)
    h.node.invite(h.ua, "1001")
    await h.node.response(200)  # answered by itself
    assert h.phones.state_of("1001") is PhoneState.IN_CALL
    with pytest.raises(PhoneError) as in_call:
        await h.page_turns_on("1001", owner=3)  # another page may not take a phone in a call
    assert in_call.value.code == "phone_in_call"

    await h.page_turns_on("1002", owner=4)
    call_id = h.node.invite(h.ua, "1002")
    await h.node.response(180)
    h.node.send(f"""CANCEL sip:1002@{h.ua[0]}:{h.ua[1]} SIP/2.0
Via: SIP/2.0/UDP {HOST}:{h.node.port};branch=z9hG4bK-{call_id};rport
Max-Forwards: 70
From: "Ann" <sip:5551234@{HOST}:{h.node.port}>;tag=node-{call_id}
To: <sip:1002@{h.ua[0]}:{h.ua[1]}>
Call-ID: {call_id}
CSeq: 1 CANCEL""", h.ua)
    assert (await h.node.response(487)).cseq.method == "INVITE"  # §9.2: the INVITE ends 487
    assert h.states("1002")[-1] == ("ready", "caller_cancelled")


async def test_only_the_node_calls_its_web_phones(harness: Harness) -> None:
    h = harness
    await h.page_turns_on("1003", owner=1)
    stranger = await _udp(SipSide())
    try:
        stranger.invite(h.ua, "1003")
        assert (await stranger.response()).status == 403
    finally:
        assert stranger.transport is not None
        stranger.transport.close()
    h.node.invite(h.ua, "1002")  # an agent whose page has no phone on
    assert (await h.node.response()).status == 480
    assert h.phones.state_of("1003") is PhoneState.READY


async def test_a_newer_page_takes_the_phone_and_commands_need_the_owner(harness: Harness) -> None:
    h = harness
    first = await h.page_turns_on("1003", owner=1)
    second = await h.page_turns_on("1003", owner=2)
    assert first["phone_id"] != second["phone_id"]
    assert ("off", "replaced") in h.states("1003")
    with pytest.raises(PhoneError) as not_yours:
        await h.phones.command("1003", 1, "phone_off", {})
    assert not_yours.value.code == "phone_off"
    h.phones.release(1)  # the old page's connection ends: the new phone stays
    assert h.phones.state_of("1003") is PhoneState.READY
    await h.phones.command("1003", 2, "phone_off", {})
    assert h.phones.state_of("1003") is PhoneState.OFF and h.states("1003")[-1] == ("off", "turned_off")


async def test_a_bad_offer_is_refused_and_leaves_nothing_behind(harness: Harness) -> None:
    h = harness
    with pytest.raises(PhoneError) as bad:
        await h.phones.command("1003", 1, "phone_on", {"sdp": "v=0\r\nnot an offer\r\n"})
    assert bad.value.code == "bad_sdp" and len(h.phones) == 0 and h.bindings.calls == []


async def test_a_failing_task_ends_nothing_else(harness: Harness) -> None:
    h = harness
    await h.page_turns_on("1003", owner=1)

    async def broken() -> None:
        raise RuntimeError("a bug in one phone's task")

    h.phones._spawn(broken(), "webphone-test-broken")
    await asyncio.sleep(0.05)
    assert h.phones.failed_tasks == 1
    h.node.invite(h.ua, "1003")
    await h.node.response(180)  # the user agent and the phone go on


async def test_a_connection_that_ends_while_ice_gathers_leaves_no_phone(harness: Harness) -> None:
    h = harness
    page = RTCPeerConnection()
    h.pages.append(page)
    page.addTrack(CallAudio())
    await page.setLocalDescription(await page.createOffer())
    turning_on = asyncio.get_running_loop().create_task(
        h.phones.command("1003", 5, "phone_on", {"sdp": page.localDescription.sdp}), name="phone-on-under-test")
    async with asyncio.timeout(5):  # phone_on is under way (the node's side gathers): the page's connection ends now
        while len(h.phones) == 0:  # noqa: ASYNC110 - the service has no event for "a phone is being set up"
            await asyncio.sleep(0)
    h.phones.release(5)
    with pytest.raises(PhoneError) as gone:
        await turning_on
    assert gone.value.code == "phone_off"
    assert len(h.phones) == 0 and h.bindings.calls == [] and h.states("1003") == []


async def test_ice_that_does_not_complete_in_time_turns_the_phone_off(harness: Harness) -> None:
    h = harness
    h.phones.settings = PhoneSettings(ice_timeout_s=0.3)
    page = RTCPeerConnection()
    h.pages.append(page)
    page.addTrack(CallAudio())
    await page.setLocalDescription(await page.createOffer())
    await h.phones.command("1003", 1, "phone_on", {"sdp": page.localDescription.sdp})  # the page never applies it
    assert h.phones.state_of("1003") is PhoneState.READY
    await asyncio.sleep(0.6)
    assert h.phones.state_of("1003") is PhoneState.OFF and h.states("1003")[-1] == ("off", "ice_failed")
    assert [expires for _, _, expires in h.bindings.calls] == [300, 0]  # bound, then removed


def test_the_node_starts_without_the_webrtc_side() -> None:
    """aiortc and PyAV (about 0.2 s to import) load with the first browser phone turned on, not with the node."""
    probe = "import sys, cti.app; print([m for m in ('aiortc', 'av', 'cti.phone.phone') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
