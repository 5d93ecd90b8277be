"""The carrier of the media load benchmark: SIP calls that stream G.711 the whole call and count what comes back.

One asyncio process plays the trunk: per call an INVITE (SDP: one G.711 law and telephone-event, our
RTP socket), the ACK, RTP every ``ptime`` from the answer until the hang-up, then BYE. Every packet
carries its index in the first four payload bytes (the rest is A-law/μ-law silence); the agent side
(SIPp ``-rtp_echo``) sends it back through the node, so the carrier sees each packet's round trip.

Counted per call, by measuring step (``Carrier.step``, stamped on each packet when it is sent):
* **loss by index**: a packet is lost when its index has not come back by the time its slot in a
  256-packet ring is reused (5 s at 20 ms) or when its step is settled (``settle_step``, a second
  after the step ends);
* **loss by sequence number** (RFC 3550 A.3 on the echoed stream as received: extended highest
  minus first plus one, minus received), whatever the node did to the payload;
* **round trip** (send to echo received) in a 0.1 ms histogram.

Sending is spread over the packet time: call ``i`` sends in slot ``i mod 10`` of the ``ptime``, so
the node gets a steady stream rather than one burst per ``ptime``. SIP requests are resent on
RFC 3261 timer A/E doubling from 0.5 s (UDP); responses are read with regular expressions (this is
a load generator, not a SIP stack).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import socket
import struct
from array import array
from dataclasses import dataclass, field

HOST = "127.0.0.1"
RING = 256
RTT_BINS = 20_000  # 0.1 ms each: up to 2 s, the last bin holds the rest
SLOTS = 10
_RTP = struct.Struct("!BBHIII")  # header + the packet index (first 4 payload bytes)
_SILENCE = {0: b"\xff", 8: b"\xd5"}  # μ-law / A-law zero
_STATUS = re.compile(rb"^SIP/2\.0 (\d{3})")
_HEADER = {name: re.compile(rb"(?im)^" + name + rb"\s*:\s*(.*?)\r?$") for name in (rb"Call-ID", rb"CSeq", rb"To",
                                                                                     rb"Contact", rb"Via")}
_M_AUDIO = re.compile(rb"(?m)^m=audio (\d+) ")
_C_LINE = re.compile(rb"(?m)^c=IN IP4 (\S+)")


@dataclass
class StepStats:
    """What the packets sent during one measuring step became."""

    sent: int = 0
    lost: int = 0
    rtt: array = field(default_factory=lambda: array("l", bytes(8 * RTT_BINS)))

    def add_rtt(self, seconds: float) -> None:
        self.rtt[min(RTT_BINS - 1, int(seconds * 10_000))] += 1

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile of the round trip in ms (bin upper edge), or None without samples."""
        total = sum(self.rtt)
        if not total:
            return None
        want, seen = q * total, 0
        for k, n in enumerate(self.rtt):
            seen += n
            if seen >= want:
                return (k + 1) / 10
        return RTT_BINS / 10


class Call:
    """One call's SIP state and RTP accounting."""

    def __init__(self, carrier: Carrier, n: int, sock: socket.socket) -> None:
        self.carrier = carrier
        self.n = n
        self.call_id = f"ml-{n}-{random.getrandbits(40):x}"
        self.tag = f"c{n}"
        self.sock = sock
        self.rtp_port = int(sock.getsockname()[1])
        self.transport: asyncio.DatagramTransport | None = None
        self.remote: tuple[str, int] | None = None  # the node's RTP address for this call
        self.to_header = b""
        self.contact = ""
        self.state = "calling"  # calling, up, ending, ended, failed
        self.invite_at = 0.0
        self.setup_s: float | None = None
        self.provisional: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.final: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.bye_done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        self.index = 0
        self.sent_at = array("d", bytes(8 * RING))
        self.sent_index = array("q", [-1] * RING)
        self.step_of = array("b", bytes(RING))
        self.back = bytearray(RING)
        # echoed stream, by sequence number (RFC 3550 A.1/A.3)
        self.rx_ssrc: int | None = None
        self.rx_base = self.rx_max = self.rx_cycles = 0
        self.rx_received = 0
        self.rx_expected_done = self.rx_received_done = 0

    # ------------------------------------------------------------------------------------- RTP
    def send_rtp(self, now: float) -> None:
        if self.remote is None or self.transport is None:
            return
        c = self.carrier
        slot = self.index % RING
        old = self.sent_index[slot]
        if old >= 0:
            self._settle(slot)
        self.sent_index[slot] = self.index
        self.sent_at[slot] = now
        self.step_of[slot] = c.step
        self.back[slot] = 0
        header = _RTP.pack(0x80, c.payload_type, self.seq, self.ts & 0xFFFFFFFF, self.ssrc, self.index)
        self.transport.sendto(header + c.payload_tail, self.remote)
        self.index += 1
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts += c.samples

    def _settle(self, slot: int) -> None:
        step = self.step_of[slot]
        if step >= 0:
            stats = self.carrier.steps[step]
            stats.sent += 1
            if not self.back[slot]:
                stats.lost += 1
        self.sent_index[slot] = -1

    def settle_step(self, step: int) -> None:
        for slot in range(RING):
            if self.sent_index[slot] >= 0 and self.step_of[slot] == step:
                self._settle(slot)

    def settle_all(self) -> None:
        for slot in range(RING):
            if self.sent_index[slot] >= 0:
                self._settle(slot)

    def rtp_received(self, data: bytes, now: float) -> None:
        if len(data) < 16:
            return
        _, _, seq, _, ssrc, index = _RTP.unpack_from(data)
        if ssrc != self.rx_ssrc:
            if self.rx_ssrc is not None:
                self.rx_expected_done += self.rx_cycles + self.rx_max - self.rx_base + 1
                self.rx_received_done += self.rx_received
            self.rx_ssrc, self.rx_base, self.rx_max, self.rx_cycles, self.rx_received = ssrc, seq, seq, 0, 0
        elif (seq - self.rx_max) & 0xFFFF < 0x8000:
            if seq < self.rx_max:
                self.rx_cycles += 0x10000
            self.rx_max = seq
        self.rx_received += 1
        slot = index % RING
        if self.sent_index[slot] == index and not self.back[slot]:
            self.back[slot] = 1
            step = self.step_of[slot]
            if step >= 0:
                self.carrier.steps[step].add_rtt(now - self.sent_at[slot])

    def seq_loss(self) -> tuple[int, int]:
        """(expected, lost) of the echoed stream by sequence number."""
        expected = self.rx_expected_done + (self.rx_cycles + self.rx_max - self.rx_base + 1 if self.rx_ssrc is not None
                                            else 0)
        return expected, expected - self.rx_received_done - self.rx_received


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, call: Call) -> None:
        self.call = call
        self.time = asyncio.get_running_loop().time

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.call.rtp_received(data, self.time())

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP from a closed port at the end of a call


class _SipProtocol(asyncio.DatagramProtocol):
    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.carrier.sip_received(data, addr)


class Carrier:
    """Places calls to ``number`` at ``target`` and streams RTP on each; see the module docstring."""

    def __init__(self, target: tuple[str, int], number: str, *, law: int = 8, ptime: float = 0.02,
                 rtp_ports: tuple[int, int] = (50000, 59999)) -> None:
        self.target = target
        self.number = number
        self.payload_type = law
        self.ptime = ptime
        self.samples = round(ptime * 8000)
        self.payload_tail = _SILENCE[law] * (self.samples - 4)
        self.calls: dict[str, Call] = {}
        self.live: list[Call] = []
        self.step = -1  # measuring step stamped on sent packets (-1: not measured)
        self.steps: list[StepStats] = []
        self.failed: dict[str, int] = {}
        self.setup_times: list[float] = []
        self._loop = asyncio.get_running_loop()
        self._sip: asyncio.DatagramTransport | None = None
        self._sip_port = 0
        self._next_port = itertools.cycle(range(rtp_ports[0], rtp_ports[1] + 1))
        self._numbers = itertools.count(1)
        self._branches = itertools.count(1)
        self._ticker: asyncio.Task[None] | None = None
        self.sending = True

    async def start(self) -> None:
        self._sip, _ = await self._loop.create_datagram_endpoint(lambda: _SipProtocol(self), local_addr=(HOST, 0))
        self._sip_port = int(self._sip.get_extra_info("sockname")[1])
        self._ticker = asyncio.create_task(self._tick(), name="carrier-rtp")

    def settle_step(self, step: int) -> None:
        """Count every packet of ``step`` now: one not echoed yet is lost (call after the step plus a grace)."""
        for call in self.calls.values():
            call.settle_step(step)

    def new_step(self) -> int:
        self.steps.append(StepStats())
        return len(self.steps) - 1

    # ------------------------------------------------------------------------------------ the RTP clock
    async def _tick(self) -> None:
        """Every ptime/SLOTS, the calls of the next slot send one packet each (anchored schedule)."""
        start = self._loop.time()
        k = 0
        interval = self.ptime / SLOTS
        while True:
            k += 1
            due = start + k * interval
            delay = due - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -self.ptime:  # fell behind by a whole packet time: skip, as a real sender would
                k += int(-delay / interval)
                continue
            if not self.sending:
                continue
            now = self._loop.time()
            slot = k % SLOTS
            for call in self.live[slot::SLOTS]:
                call.send_rtp(now)

    # ------------------------------------------------------------------------------------------- SIP
    def _socket(self) -> socket.socket:
        for _ in range(200):
            port = next(self._next_port)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((HOST, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            return sock
        raise RuntimeError("no free RTP port for the carrier")

    def _via(self) -> str:
        return f"SIP/2.0/UDP {HOST}:{self._sip_port};branch=z9hG4bK-ml{next(self._branches)};rport"

    def _send(self, text: str) -> None:
        assert self._sip is not None
        self._sip.sendto(text.encode(), self.target)

    async def _transact(self, text: str, done: asyncio.Future[int], limit: float = 32.0) -> bool:
        """Send ``text`` and resend it (0.5, 1, 2, 4, 4 ... s) until ``done`` or ``limit``."""
        interval, waited = 0.5, 0.0
        while waited < limit:
            self._send(text)
            try:
                await asyncio.wait_for(asyncio.shield(done), interval)
                return True
            except TimeoutError:
                waited += interval
                interval = min(interval * 2, 4.0)
        return done.done()

    async def place_call(self) -> Call:
        """One call up to the ACK (or failed); its RTP starts with the answer."""
        n = next(self._numbers)
        call = Call(self, n, self._socket())
        self.calls[call.call_id] = call
        call.transport, _ = await self._loop.create_datagram_endpoint(lambda: _RtpProtocol(call), sock=call.sock)
        law = "PCMA" if self.payload_type == 8 else "PCMU"
        sdp = (f"v=0\r\no=carrier {n} 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
               f"m=audio {call.rtp_port} RTP/AVP {self.payload_type} 101\r\na=rtpmap:{self.payload_type} {law}/8000\r\n"
               f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:{round(self.ptime * 1000)}\r\n")
        uri = f"sip:{self.number}@{self.target[0]}:{self.target[1]}"
        call.contact = uri
        invite = (f"INVITE {uri} SIP/2.0\r\nVia: {self._via()}\r\nMax-Forwards: 70\r\n"
                  f"From: <sip:carrier{n}@{HOST}>;tag={call.tag}\r\nTo: <sip:{self.number}@{HOST}>\r\n"
                  f"Call-ID: {call.call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:carrier@{HOST}:{self._sip_port}>\r\n"
                  f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
        call.invite_at = self._loop.time()
        if not await self._transact(invite, call.provisional, limit=32.0):
            self._fail(call, "invite_timeout")
            return call
        try:
            async with asyncio.timeout(60):
                await call.final
        except TimeoutError:
            self._fail(call, "no_final")
        return call

    def _fail(self, call: Call, why: str) -> None:
        if call.state in ("ended", "failed"):
            return
        call.state = "failed"
        self.failed[why] = self.failed.get(why, 0) + 1
        self._drop(call)

    def _drop(self, call: Call) -> None:
        if call in self.live:
            self.live.remove(call)
        call.settle_all()
        if call.transport is not None:
            call.transport.close()

    async def hang_up(self, call: Call) -> None:
        if call.state != "up":
            return
        call.state = "ending"
        self._drop(call)
        bye = (f"BYE {call.contact} SIP/2.0\r\nVia: {self._via()}\r\nMax-Forwards: 70\r\n"
               f"From: <sip:carrier{call.n}@{HOST}>;tag={call.tag}\r\nTo: {call.to_header.decode()}\r\n"
               f"Call-ID: {call.call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
        if await self._transact(bye, call.bye_done, limit=16.0):
            call.state = "ended"
        else:
            self._fail(call, "bye_timeout")

    def sip_received(self, data: bytes, addr: tuple[str, int]) -> None:
        headers = {name: (m.group(1) if (m := rx.search(data)) else b"") for name, rx in _HEADER.items()}
        call = self.calls.get(headers[rb"Call-ID"].decode(errors="replace"))
        status = _STATUS.match(data)
        if status is None:  # a request from the node: a BYE (the node ended the call) or an OPTIONS
            self._answer_request(data, headers, call)
            return
        if call is None:
            return
        code, method = int(status.group(1)), headers[rb"CSeq"].split()[-1:]
        if method == [b"BYE"]:
            if code >= 200 and not call.bye_done.done():
                call.bye_done.set_result(code)
            return
        if not call.provisional.done():
            call.provisional.set_result(code)
        if code < 200:
            return
        if 200 <= code < 300:
            call.to_header = headers[rb"To"]
            contact = re.search(rb"<([^>]+)>", headers[rb"Contact"])
            if contact:
                call.contact = contact.group(1).decode()
            self._ack(call, headers)  # every 200 (a resent one too) gets an ACK
            if call.state == "calling":
                port, host = _M_AUDIO.search(data), _C_LINE.search(data)
                if port is None:
                    self._fail(call, "no_sdp")
                else:
                    call.remote = ((host.group(1) if host else HOST.encode()).decode(), int(port.group(1)))
                    call.state = "up"
                    call.setup_s = self._loop.time() - call.invite_at
                    self.setup_times.append(call.setup_s)
                    self.live.append(call)
        elif call.state == "calling":
            self._ack_error(call, headers)
            self._fail(call, f"status_{code}")
        if not call.final.done():
            call.final.set_result(code)

    def _ack(self, call: Call, headers: dict[bytes, bytes]) -> None:
        self._send(f"ACK {call.contact} SIP/2.0\r\nVia: {self._via()}\r\nMax-Forwards: 70\r\n"
                   f"From: <sip:carrier{call.n}@{HOST}>;tag={call.tag}\r\nTo: {headers[rb'To'].decode()}\r\n"
                   f"Call-ID: {call.call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")

    def _ack_error(self, call: Call, headers: dict[bytes, bytes]) -> None:
        """ACK of a non-2xx final answer (RFC 3261 §17.1.1.3: same branch as the INVITE)."""
        self._send(f"ACK sip:{self.number}@{self.target[0]}:{self.target[1]} SIP/2.0\r\n"
                   f"Via: {headers[rb'Via'].decode()}\r\nMax-Forwards: 70\r\n"
                   f"From: <sip:carrier{call.n}@{HOST}>;tag={call.tag}\r\nTo: {headers[rb'To'].decode()}\r\n"
                   f"Call-ID: {call.call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")

    def _answer_request(self, data: bytes, headers: dict[bytes, bytes], call: Call | None) -> None:
        vias = re.findall(rb"(?im)^Via\s*:\s*(.*?)\r?$", data)
        from_ = re.search(rb"(?im)^From\s*:\s*(.*?)\r?$", data)
        if not vias or from_ is None:
            return
        via_lines = "".join(f"Via: {v.decode()}\r\n" for v in vias)
        self._send(f"SIP/2.0 200 OK\r\n{via_lines}From: {from_.group(1).decode()}\r\n"
                   f"To: {headers[rb'To'].decode()}\r\nCall-ID: {headers[rb'Call-ID'].decode()}\r\n"
                   f"CSeq: {headers[rb'CSeq'].decode()}\r\nContent-Length: 0\r\n\r\n")
        if data.startswith(b"BYE ") and call is not None and call.state == "up":
            self._fail(call, "ended_by_node")

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.wait([self._ticker])
        if self._sip is not None:
            self._sip.close()
