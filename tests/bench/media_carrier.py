"""The carrier of the media load benchmark: SIP calls that stream G.711 the whole call and count what comes back.

The trunk is two parts. :class:`Carrier` (asyncio, in the calling process) does the SIP: per call
an INVITE (SDP: one G.711 law and telephone-event, the RTP socket of the worker), the ACK, then BYE.
:func:`rtp_worker` (its own process, a plain loop on one non-blocking UDP socket: no asyncio per
packet, so the load generator costs as little as Python allows) sends RTP every ``ptime`` to each
answered call's node address until the hang-up and counts what comes back. Every packet carries
the call's number and its own index in the first eight payload bytes (the rest is A-law/μ-law
silence); the agent side (SIPp ``-rtp_echo``) sends it back through the node, so the worker sees
each packet's round trip. All calls share the worker's one socket: the node sends each call's
stream to the address in that call's SDP, and the payload says which call a packet belongs to.

Counted per call, by measuring step (stamped on each packet when it is sent):
* **loss by index**: a packet is lost when its index has not come back by the time its slot in a
  256-packet ring is reused (5 s at 20 ms) or when its step is settled (a second after it ends);
* **loss by sequence number** (RFC 3550 A.3 on the echoed stream as received: extended highest
  minus first plus one, minus received), whatever the node did to the payload;
* **round trip** (send to echo received) in a 0.1 ms histogram.

Sending is spread over the packet time: call ``i`` sends in slot ``i mod 10`` of the ``ptime``, so
the node gets a steady stream rather than one burst per ``ptime``; a worker that falls a whole
``ptime`` behind skips (and counts) the packets it missed rather than bursting them. SIP requests are resent on
RFC 3261 timer A/E doubling from 0.5 s (UDP); responses are read with regular expressions (this is
a load generator, not a SIP stack).
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing as mp
import random
import re
import select
import socket
import struct
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

HOST = "127.0.0.1"
RING = 256
RTT_BINS = 20_000  # 0.1 ms each: up to 2 s, the last bin holds the rest
SLOTS = 10
_RTP = struct.Struct("!BBHIIII")  # header + call number + packet index (the first 8 payload bytes)
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
    skipped: int = 0  # packets the worker did not send in time (it fell a ptime behind)
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

    def highest(self) -> float | None:
        top = max((k for k, n in enumerate(self.rtt) if n), default=None)
        return None if top is None else (top + 1) / 10


# ------------------------------------------------------------------------------------------ RTP worker
class _Stream:
    """One call's RTP in the worker: what it sends, the ring of packets awaiting their echo."""

    __slots__ = ("back", "index", "n", "remote", "rx_base", "rx_cycles", "rx_done_expected", "rx_done_received",
                 "rx_max", "rx_received", "rx_ssrc", "sent_at", "sent_index", "seq", "ssrc", "step_of", "ts")

    def __init__(self, n: int, remote: tuple[str, int]) -> None:
        self.n = n
        self.remote = remote
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        self.index = 0
        self.sent_at = array("d", bytes(8 * RING))
        self.sent_index = array("q", [-1] * RING)
        self.step_of = array("b", bytes(RING))
        self.back = bytearray(RING)
        self.rx_ssrc: int | None = None
        self.rx_base = self.rx_max = self.rx_cycles = self.rx_received = 0
        self.rx_done_expected = self.rx_done_received = 0

    def seq_loss(self) -> tuple[int, int]:
        expected = self.rx_done_expected
        received = self.rx_done_received + self.rx_received
        if self.rx_ssrc is not None:
            expected += self.rx_cycles + self.rx_max - self.rx_base + 1
        return expected, expected - received


def _settle(stream: _Stream, slot: int, steps: list[StepStats]) -> None:
    step = stream.step_of[slot]
    if step >= 0:
        steps[step].sent += 1
        if not stream.back[slot]:
            steps[step].lost += 1
    stream.sent_index[slot] = -1


def rtp_worker(conn: Connection, law: int, ptime: float) -> None:
    """The RTP side of the carrier (a process): commands and results over ``conn``; see the module docstring.

    Commands: ``("add", n, (host, port))``, ``("remove", n)``, ``("step", k)`` (stamp packets sent from
    now with step k, -1 for none), ``("settle", k)``, ``("pause",)``, ``("stop",)``. It answers
    ``stop`` with ``(steps, seq_expected, seq_lost, sent, received)``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    conn.send(int(sock.getsockname()[1]))
    samples = round(ptime * 8000)
    tail = _SILENCE[law] * (samples - 8)
    pack, unpack = _RTP.pack, _RTP.unpack_from
    streams: dict[int, _Stream] = {}
    slots: list[list[_Stream]] = [[] for _ in range(SLOTS)]
    steps: list[StepStats] = []
    step = -1
    sending = True
    sent = received = 0
    interval = ptime / SLOTS
    clock = time.monotonic
    start = clock()
    k = 0
    buf = bytearray(2048)
    recv_into = sock.recv_into
    sendto = sock.sendto
    fileno = conn.fileno()

    def receive(now: float) -> int:
        got = 0
        while True:
            try:
                size = recv_into(buf)
            except BlockingIOError:
                return got
            if size < 20:
                continue
            got += 1
            _, _, seq, _, ssrc, n, index = unpack(buf)
            stream = streams.get(n)
            if stream is None:
                continue
            if ssrc != stream.rx_ssrc:
                if stream.rx_ssrc is not None:
                    stream.rx_done_expected += stream.rx_cycles + stream.rx_max - stream.rx_base + 1
                    stream.rx_done_received += stream.rx_received
                stream.rx_ssrc, stream.rx_base, stream.rx_max, stream.rx_cycles = ssrc, seq, seq, 0
                stream.rx_received = 0
            elif (seq - stream.rx_max) & 0xFFFF < 0x8000:
                if seq < stream.rx_max:
                    stream.rx_cycles += 0x10000
                stream.rx_max = seq
            stream.rx_received += 1
            slot = index % RING
            if stream.sent_index[slot] == index and not stream.back[slot]:
                stream.back[slot] = 1
                s = stream.step_of[slot]
                if s >= 0:
                    steps[s].add_rtt(now - stream.sent_at[slot])

    while True:
        now = clock()
        received += receive(now)
        due = start + (k + 1) * interval
        if now < due:
            ready, _, _ = select.select([sock, fileno], [], [], due - now)
            if fileno not in ready:
                continue
            message = conn.recv()
            match message[0]:
                case "add":
                    stream = streams[message[1]] = _Stream(message[1], message[2])
                    slots[message[1] % SLOTS].append(stream)
                case "remove":
                    stream = streams.pop(message[1])
                    slots[message[1] % SLOTS].remove(stream)
                    for slot in range(RING):
                        if stream.sent_index[slot] >= 0:
                            _settle(stream, slot, steps)
                    streams[-message[1]] = stream  # kept for the totals, no longer sending
                case "step":
                    step = message[1]
                    while len(steps) <= step:
                        steps.append(StepStats())
                case "settle":
                    for stream in streams.values():
                        for slot in range(RING):
                            if stream.sent_index[slot] >= 0 and stream.step_of[slot] == message[1]:
                                _settle(stream, slot, steps)
                case "pause":
                    sending = False
                case "stop":
                    received += receive(clock())
                    expected = lost = 0
                    for stream in streams.values():
                        for slot in range(RING):
                            if stream.sent_index[slot] >= 0:
                                _settle(stream, slot, steps)
                        e, lo = stream.seq_loss()
                        expected, lost = expected + e, lost + lo
                    conn.send((steps, expected, lost, sent, received))
                    sock.close()
                    return
            continue
        k += 1
        if now - due > ptime:  # a whole ptime behind: skip what was missed (a real sender's clock moves on)
            missed = int((now - due) / interval)
            if step >= 0:
                steps[step].skipped += sum(len(slots[(k + j) % SLOTS]) for j in range(missed))
            k += missed
            continue
        if not sending:
            continue
        for stream in slots[k % SLOTS]:
            slot = stream.index % RING
            if stream.sent_index[slot] >= 0:
                _settle(stream, slot, steps)
            stream.sent_index[slot] = stream.index
            stream.sent_at[slot] = now
            stream.step_of[slot] = step
            stream.back[slot] = 0
            sendto(pack(0x80, law, stream.seq, stream.ts & 0xFFFFFFFF, stream.ssrc, stream.n, stream.index) + tail,
                   stream.remote)
            sent += 1
            stream.index += 1
            stream.seq = (stream.seq + 1) & 0xFFFF
            stream.ts += samples


# ------------------------------------------------------------------------------------------ SIP side
class Call:
    """One call's SIP state."""

    def __init__(self, n: int, target: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        self.n = n
        self.target = target
        self.call_id = f"ml-{n}-{random.getrandbits(40):x}"
        self.tag = f"c{n}"
        self.to_header = b""
        self.contact = ""
        self.state = "calling"  # calling, up, ending, ended, failed
        self.invite_at = 0.0
        self.setup_s: float | None = None
        self.provisional: asyncio.Future[int] = loop.create_future()
        self.final: asyncio.Future[int] = loop.create_future()
        self.bye_done: asyncio.Future[int] = loop.create_future()


class _SipProtocol(asyncio.DatagramProtocol):
    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.carrier.sip_received(data, addr)


@dataclass
class Results:
    """The worker's counts at the end of a run."""

    steps: list[StepStats]
    seq_expected: int
    seq_lost: int
    sent: int
    received: int


class Carrier:
    """Places calls to ``number`` at ``target``; their RTP is the worker's (see the module docstring)."""

    def __init__(self, target: tuple[str, int] | list[tuple[str, int]], number: str, *, law: int = 8,
                 ptime: float = 0.02) -> None:
        self.targets = target if isinstance(target, list) else [target]
        self.target = self.targets[0]  # where requests go (a call's own target: Call.target)
        self.number = number
        self.payload_type = law
        self.ptime = ptime
        self.calls: dict[str, Call] = {}
        self.live: list[Call] = []
        self.failed: dict[str, int] = {}
        self.setup_times: list[float] = []
        self.steps = 0
        self._loop = asyncio.get_running_loop()
        self._sip: asyncio.DatagramTransport | None = None
        self._sip_port = 0
        self._rtp_port = 0
        self._numbers = itertools.count(1)
        self._branches = itertools.count(1)
        self._conn: Connection | None = None
        self._worker: Any = None
        self.worker_pid = 0

    async def start(self) -> None:
        self._sip, _ = await self._loop.create_datagram_endpoint(lambda: _SipProtocol(self), local_addr=(HOST, 0))
        self._sip_port = int(self._sip.get_extra_info("sockname")[1])
        context = mp.get_context("spawn")
        self._conn, child = context.Pipe()
        self._worker = context.Process(target=rtp_worker, args=(child, self.payload_type, self.ptime),
                                       name="carrier-rtp", daemon=True)
        self._worker.start()
        self.worker_pid = int(self._worker.pid)
        self._rtp_port = await asyncio.to_thread(self._conn.recv)

    def _command(self, *message: object) -> None:
        assert self._conn is not None
        self._conn.send(message)

    def measure(self) -> int:
        """Stamp the packets sent from now with a new step; returns its number."""
        self.steps += 1
        self._command("step", self.steps - 1)
        return self.steps - 1

    def unmeasured(self) -> None:
        self._command("step", -1)

    def settle(self, step: int) -> None:
        self._command("settle", step)

    def pause(self) -> None:
        self._command("pause")

    async def finish(self) -> Results:
        """Stop the worker and return its counts (every packet settled)."""
        self._command("stop")
        assert self._conn is not None
        steps, expected, lost, sent, received = await asyncio.to_thread(self._conn.recv)
        await asyncio.to_thread(self._worker.join, 5)
        if self._sip is not None:
            self._sip.close()
        return Results(steps, expected, lost, sent, received)

    def _via(self) -> str:
        return f"SIP/2.0/UDP {HOST}:{self._sip_port};branch=z9hG4bK-ml{next(self._branches)};rport"

    def _send(self, text: str, target: tuple[str, int] | None = None) -> None:
        assert self._sip is not None
        self._sip.sendto(text.encode(), target or self.target)

    async def _transact(self, text: str, done: asyncio.Future[int], target: tuple[str, int],
                        limit: float = 32.0) -> bool:
        """Send ``text`` and resend it (0.5, 1, 2, 4, 4 ... s) until ``done`` or ``limit``."""
        interval, waited = 0.5, 0.0
        while waited < limit:
            self._send(text, target)
            try:
                await asyncio.wait_for(asyncio.shield(done), interval)
                return True
            except TimeoutError:
                waited += interval
                interval = min(interval * 2, 4.0)
        return done.done()

    async def place_call(self) -> Call:
        """One call up to the ACK (or failed); the worker streams from the answer on."""
        n = next(self._numbers)
        call = Call(n, self.targets[n % len(self.targets)])
        self.calls[call.call_id] = call
        law = "PCMA" if self.payload_type == 8 else "PCMU"
        sdp = (f"v=0\r\no=carrier {n} 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
               f"m=audio {self._rtp_port} RTP/AVP {self.payload_type} 101\r\n"
               f"a=rtpmap:{self.payload_type} {law}/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
               f"a=fmtp:101 0-15\r\na=ptime:{round(self.ptime * 1000)}\r\n")
        uri = f"sip:{self.number}@{call.target[0]}:{call.target[1]}"
        call.contact = uri
        invite = (f"INVITE {uri} SIP/2.0\r\nVia: {self._via()}\r\nMax-Forwards: 70\r\n"
                  f"From: <sip:carrier{n}@{HOST}>;tag={call.tag}\r\nTo: <sip:{self.number}@{HOST}>\r\n"
                  f"Call-ID: {call.call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:carrier@{HOST}:{self._sip_port}>\r\n"
                  f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
        call.invite_at = self._loop.time()
        if not await self._transact(invite, call.provisional, call.target, limit=32.0):
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
        if call.state in ("up", "ending"):
            self._drop(call)
        call.state = "failed"
        self.failed[why] = self.failed.get(why, 0) + 1

    def _drop(self, call: Call) -> None:
        if call in self.live:
            self.live.remove(call)
            self._command("remove", call.n)

    async def hang_up(self, call: Call) -> None:
        if call.state != "up":
            return
        call.state = "ending"
        self._drop(call)
        bye = (f"BYE {call.contact} SIP/2.0\r\nVia: {self._via()}\r\nMax-Forwards: 70\r\n"
               f"From: <sip:carrier{call.n}@{HOST}>;tag={call.tag}\r\nTo: {call.to_header.decode()}\r\n"
               f"Call-ID: {call.call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
        if await self._transact(bye, call.bye_done, call.target, limit=16.0):
            call.state = "ended"
        else:
            self._fail(call, "bye_timeout")

    def sip_received(self, data: bytes, addr: tuple[str, int]) -> None:
        headers = {name: (m.group(1) if (m := rx.search(data)) else b"") for name, rx in _HEADER.items()}
        call = self.calls.get(headers[rb"Call-ID"].decode(errors="replace"))
        status = _STATUS.match(data)
        if status is None:  # a request from the node: a BYE (the node ended the call) or an OPTIONS
            self._answer_request(data, headers, call, addr)
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
                    remote = ((host.group(1) if host else HOST.encode()).decode(), int(port.group(1)))
                    call.state = "up"
                    call.setup_s = self._loop.time() - call.invite_at
                    self.setup_times.append(call.setup_s)
                    self.live.append(call)
                    self._command("add", call.n, remote)
        elif call.state == "calling":
            self._ack_error(call, headers)
            self._fail(call, f"status_{code}")
        if not call.final.done():
            call.final.set_result(code)

    def _ack(self, call: Call, headers: dict[bytes, bytes]) -> None:
        self._send(f"ACK {call.contact} SIP/2.0\r\nVia: {self._via()}\r\nMax-Forwards: 70\r\n"
                   f"From: <sip:carrier{call.n}@{HOST}>;tag={call.tag}\r\nTo: {headers[rb'To'].decode()}\r\n"
                   f"Call-ID: {call.call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", call.target)

    def _ack_error(self, call: Call, headers: dict[bytes, bytes]) -> None:
        """ACK of a non-2xx final answer (RFC 3261 §17.1.1.3: same branch as the INVITE)."""
        self._send(f"ACK sip:{self.number}@{call.target[0]}:{call.target[1]} SIP/2.0\r\n"
                   f"Via: {headers[rb'Via'].decode()}\r\nMax-Forwards: 70\r\n"
                   f"From: <sip:carrier{call.n}@{HOST}>;tag={call.tag}\r\nTo: {headers[rb'To'].decode()}\r\n"
                   f"Call-ID: {call.call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", call.target)

    def _answer_request(self, data: bytes, headers: dict[bytes, bytes], call: Call | None,
                        addr: tuple[str, int]) -> None:
        vias = re.findall(rb"(?im)^Via\s*:\s*(.*?)\r?$", data)
        from_ = re.search(rb"(?im)^From\s*:\s*(.*?)\r?$", data)
        if not vias or from_ is None:
            return
        via_lines = "".join(f"Via: {v.decode()}\r\n" for v in vias)
        self._send(f"SIP/2.0 200 OK\r\n{via_lines}From: {from_.group(1).decode()}\r\n"
                   f"To: {headers[rb'To'].decode()}\r\nCall-ID: {headers[rb'Call-ID'].decode()}\r\n"
                   f"CSeq: {headers[rb'CSeq'].decode()}\r\nContent-Length: 0\r\n\r\n", addr)
        if data.startswith(b"BYE ") and call is not None and call.state == "up":
            self._fail(call, "ended_by_node")
