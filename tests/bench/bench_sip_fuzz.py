"""SIP fuzz benchmark: mutational SIP over UDP and TCP against a real `cti serve --demo`.

Run: ``python tests/bench/bench_sip_fuzz.py`` (a short run: 20,000 datagrams) or
``python tests/bench/bench_sip_fuzz.py --deep`` (1,000,000 UDP datagrams plus TCP streams).
Not collected by pytest; tests/interop/test_sip_fuzz.py runs a few thousand as a regression test.

* The server is started on free ports with a temporary data directory (tests/support/procs), logging
  at ``warning`` so that the log does not become the benchmark.
* Messages are mutations of valid INVITE (with SDP), REGISTER, OPTIONS, BYE, ACK, CANCEL and INFO
  requests and of responses: bytes flipped, inserted or cut, header lines dropped, doubled or
  shuffled, tokens replaced (numbers, tags, branches, methods, URIs), huge headers, bad
  Content-Length, truncated messages, and plain random bytes. Each message gets a fresh branch,
  Call-ID and tag unless a mutation reuses one (so retransmission and merged-request paths are hit).
* UDP: datagrams are sent at ``--rate`` per second from a few sockets (answers are read and thrown
  away). TCP: connections carry a few mutated messages each and then close cleanly, reset (RST) or
  stop half-way through a message.
* Every ``--probe-every`` datagrams, and at the end, the sender pauses and probes the server with an
  OPTIONS (10 s to answer, retried): a server that died or stopped answering is a **crash** (must
  be 0). At the end it also checks that a REGISTER is answered (401 challenge).
* Printed: crashes, datagrams sent and the rate, RSS (VmRSS of the server) before the traffic, at
  the end of the traffic, and ``--idle-s`` (60 s) after it, and the live SIP transactions
  (``cti_sip_transactions`` from /metrics) after the drain: they must return to 0 within the RFC
  3261 timers (64*T1 = 32 s, plus slack: ``--drain-s``, 45 s by default).

Exit status 0 when there was no crash and the transactions drained to 0, else 1.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import socket
import struct
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.procs import ServerProcess, options_request, run_server  # noqa: E402

HOST = "127.0.0.1"
METHODS = ("INVITE", "REGISTER", "OPTIONS", "BYE", "ACK", "CANCEL", "INFO")
TOKENS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "PRACK", "UPDATE", "REFER", "FOO",
          "SIP/2.0", "SIP/3.0", "0", "1", "-1", "4294967296", "99999999999999999999", "", " ", ";", ":", "@",
          "<", ">", '"', "\\", "z9hG4bK", "tag=", "%00", "\x00", "\xff", "sip:", "sips:", "tel:", "[::1]",
          "127.0.0.1", "0.0.0.0", "255.255.255.255", "65536", "\r\n", "\r\n ", "\t", ",", "*", "application/sdp")
SDP = ("v=0\r\no=fuzz 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")


# ------------------------------------------------------------------------------------------ messages
class Mutator:
    """Valid SIP messages to the server, then spoiled at random (seeded: a run can be replayed)."""

    def __init__(self, rng: random.Random, server_port: int) -> None:
        self.rng = rng
        self.port = server_port
        self.serial = 0
        self._recent: list[tuple[str, str, str]] = []  # (branch, call-id, tag) reused for retransmissions

    def _ids(self) -> tuple[str, str, str]:
        if self._recent and self.rng.random() < 0.1:
            return self.rng.choice(self._recent)
        self.serial += 1
        ids = (f"z9hG4bKfz{self.serial}x{self.rng.getrandbits(32):x}", f"fz{self.serial}@{HOST}",
               f"t{self.rng.getrandbits(24):x}")
        if len(self._recent) > 64:
            self._recent.pop(0)
        self._recent.append(ids)
        return ids

    def seed(self, method: str, transport: str, local_port: int) -> list[str]:
        """A valid request as header lines (start line first); the body is appended last ("" if none)."""
        branch, call_id, tag = self._ids()
        rng = self.rng
        if rng.random() < 0.05:
            branch = f"old{rng.getrandbits(16)}"  # an RFC 2543 branch: the fallback matching rules
        user = rng.choice(("100", "1001", "1002", "sup1", "nobody", "200"))
        uri = f"sip:{user}@{HOST}:{self.port}" if method != "REGISTER" else f"sip:{HOST}:{self.port}"
        to_tag = f";tag=s{rng.getrandbits(16):x}" if method in ("BYE", "INFO") or rng.random() < 0.1 else ""
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/{transport} {HOST}:{local_port};branch={branch};rport",
            f"Max-Forwards: {rng.choice((70, 70, 70, 1, 0))}",
            f"From: \"Fuzz\" <sip:{user if method == 'REGISTER' else 'fuzz'}@{HOST}>;tag={tag}",
            f"To: <sip:{user}@{HOST}>{to_tag}",
            f"Call-ID: {call_id}",
            f"CSeq: {rng.randint(1, 5)} {method}",
            f"Contact: <sip:{user}@{HOST}:{local_port};transport={transport.lower()}>",
            "User-Agent: cti-fuzz/1",
        ]
        body = ""
        if method == "REGISTER":
            lines.append(f"Expires: {rng.choice((0, 60, 3600, 1))}")
            if rng.random() < 0.5:
                lines.append(f'Authorization: Digest username="{user}", realm="cti.demo", nonce="{branch}", '
                             f'uri="sip:{HOST}", response="{rng.getrandbits(128):032x}", algorithm=MD5')
        if method == "INVITE":
            body = SDP
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        lines.append(body)
        return lines

    def response(self, local_port: int) -> list[str]:
        branch, call_id, tag = self._ids()
        status = self.rng.choice((100, 180, 200, 401, 486, 500, 603))
        return [f"SIP/2.0 {status} Whatever", f"Via: SIP/2.0/UDP {HOST}:{self.port};branch={branch}",
                f"From: <sip:100@{HOST}>;tag={tag}", f"To: <sip:fuzz@{HOST}>;tag=x", f"Call-ID: {call_id}",
                f"CSeq: 1 {self.rng.choice(METHODS)}", "Content-Length: 0", ""]

    def message(self, transport: str, local_port: int) -> bytes:
        """One fuzzed message (bytes)."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.04:
            return rng.randbytes(rng.randint(0, 1400))
        lines = self.response(local_port) if roll < 0.08 else self.seed(rng.choice(METHODS), transport, local_port)
        if rng.random() < 0.15:  # valid as is: the server must answer it (and keep a transaction)
            return _join(lines)
        for _ in range(rng.randint(1, 3)):
            lines = rng.choice(LINE_MUTATIONS)(rng, lines)
        data = _join(lines)
        for _ in range(rng.choice((0, 0, 1, 2, 4))):
            data = rng.choice(BYTE_MUTATIONS)(rng, data)
        return data


def _join(lines: list[str]) -> bytes:
    head, body = lines[:-1], lines[-1]
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode("utf-8", errors="surrogateescape")


def _drop_line(rng: random.Random, lines: list[str]) -> list[str]:
    if len(lines) > 2:
        del lines[rng.randrange(1, len(lines) - 1)]
    return lines


def _double_line(rng: random.Random, lines: list[str]) -> list[str]:
    index = rng.randrange(0, len(lines) - 1)
    lines.insert(index, lines[index])
    return lines


def _shuffle_lines(rng: random.Random, lines: list[str]) -> list[str]:
    head = lines[1:-1]
    rng.shuffle(head)
    return [lines[0], *head, lines[-1]]


def _replace_token(rng: random.Random, lines: list[str]) -> list[str]:
    index = rng.randrange(0, len(lines) - 1)
    parts = re.split(r"([ :;,=<>@/])", lines[index])
    if parts:
        parts[rng.randrange(len(parts))] = rng.choice(TOKENS)
    lines[index] = "".join(parts)
    return lines


def _huge_header(rng: random.Random, lines: list[str]) -> list[str]:
    size = rng.choice((1000, 8000, 33_000, 60_000))
    lines.insert(rng.randrange(1, len(lines)), f"X-Fuzz: {'a' * size}")
    return lines


def _many_headers(rng: random.Random, lines: list[str]) -> list[str]:
    name = rng.choice(("Via", "Route", "Record-Route", "Contact", "X-H", "Require", "Authorization"))
    extra = [f"{name}: <sip:h{i}@{HOST}>;lr" if name != "Via" else f"Via: SIP/2.0/UDP h{i}.invalid;branch=z9hG4bK{i}"
             for i in range(rng.choice((10, 100, 500)))]
    return [lines[0], *extra, *lines[1:]]


def _bad_length(rng: random.Random, lines: list[str]) -> list[str]:
    value = rng.choice(("-1", "99999999", "abc", "10", "0", "1e3", "4294967297", "5, 6"))
    return [f"Content-Length: {value}" if line.startswith("Content-Length") else line for line in lines]


def _method_swap(rng: random.Random, lines: list[str]) -> list[str]:
    method = rng.choice(TOKENS[:11])
    first = lines[0].split(" ", 1)
    lines[0] = f"{method} {first[1]}" if len(first) == 2 else method
    if rng.random() < 0.5:
        lines = [re.sub(r"^CSeq: (\d+) \S+", rf"CSeq: \1 {method}", line) for line in lines]
    return lines


def _uri_mutate(rng: random.Random, lines: list[str]) -> list[str]:
    first = lines[0].split(" ")
    if len(first) >= 2:
        first[1] = rng.choice((f"sip:{rng.getrandbits(20)}@{HOST}", "sip:", "tel:+1555", "sip:[::1", "*",
                               f"sip:a@{HOST}:{rng.randint(0, 70000)};transport=tcp", "sip:%zz@x", "<sip:x>"))
    lines[0] = " ".join(first)
    return lines


LINE_MUTATIONS: tuple[Callable[[random.Random, list[str]], list[str]], ...] = (
    _drop_line, _double_line, _shuffle_lines, _replace_token, _replace_token, _huge_header, _many_headers,
    _bad_length, _method_swap, _uri_mutate, _uri_mutate,
)


def _flip(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    index = rng.randrange(len(data))
    return data[:index] + bytes([data[index] ^ (1 << rng.randrange(8))]) + data[index + 1:]


def _insert_bytes(rng: random.Random, data: bytes) -> bytes:
    index = rng.randrange(len(data) + 1)
    return data[:index] + rng.randbytes(rng.randint(1, 16)) + data[index:]


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _cut(rng: random.Random, data: bytes) -> bytes:
    if len(data) < 2:
        return data
    a = rng.randrange(len(data))
    return data[:a] + data[a + rng.randint(1, 32):]


BYTE_MUTATIONS: tuple[Callable[[random.Random, bytes], bytes], ...] = (_flip, _flip, _insert_bytes, _truncate, _cut)


# ------------------------------------------------------------------------------------------- senders
@dataclass
class Counts:
    udp: int = 0
    tcp_messages: int = 0
    tcp_connections: int = 0
    tcp_refused: int = 0
    answers: int = 0
    seconds: float = 0.0
    crashes: list[str] = field(default_factory=list)


class UdpFuzzer:
    def __init__(self, mutator: Mutator, port: int, sockets: int = 4) -> None:
        self.mutator = mutator
        self.port = port
        self.socks = []
        for _ in range(sockets):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((HOST, 0))
            sock.setblocking(False)
            self.socks.append(sock)

    def send(self, count: int, rate: float, counts: Counts) -> None:
        start = time.monotonic()
        for n in range(count):
            sock = self.socks[n % len(self.socks)]
            data = self.mutator.message("UDP", sock.getsockname()[1])[:65_000]
            with contextlib.suppress(BlockingIOError, OSError):
                sock.sendto(data, (HOST, self.port))
            counts.udp += 1
            if n % 64 == 63:
                counts.answers += self.drain()
                ahead = (n + 1) / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)

    def drain(self) -> int:
        got = 0
        for sock in self.socks:
            while True:
                try:
                    sock.recv(65535)
                except (BlockingIOError, OSError):
                    break
                got += 1
        return got

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def tcp_fuzz(mutator: Mutator, port: int, connections: int, counts: Counts) -> None:
    """Connections carrying a few mutated messages each, then a clean close, an RST or a half message."""
    rng = mutator.rng
    for _ in range(connections):
        try:
            sock = socket.create_connection((HOST, port), timeout=2)
        except OSError:
            counts.tcp_refused += 1
            continue
        counts.tcp_connections += 1
        local = sock.getsockname()[1]
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            for _ in range(rng.randint(1, 8)):
                data = mutator.message("TCP", local)
                if rng.random() < 0.05:
                    data = b"\r\n\r\n"  # a keep-alive ping
                with contextlib.suppress(BlockingIOError):
                    sock.send(data)
                counts.tcp_messages += 1
                with contextlib.suppress(BlockingIOError):
                    while sock.recv(65535):
                        counts.answers += 1
        ending = rng.random()
        if ending < 0.4:  # reset: the server's answers find the connection gone
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif ending < 0.5:
            with contextlib.suppress(OSError):
                sock.send(b"INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1")  # half a message
        sock.close()


# ------------------------------------------------------------------------------------------ probes
def probe_options(port: int, timeout: float = 10.0) -> bool:
    """True when the server answers an OPTIONS 200 within ``timeout`` (retried every 0.5 s)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(0.5)
        local = sock.getsockname()[1]
        n = 0
        while time.monotonic() < deadline:
            n += 1
            call_id = f"fuzz-probe-{time.monotonic_ns()}-{n}"
            sock.sendto(options_request(HOST, port, local, call_id).encode(), (HOST, port))
            with contextlib.suppress(TimeoutError):
                while True:
                    data = sock.recv(65535)
                    if data.startswith(b"SIP/2.0 200") and call_id.encode() in data:
                        return True
    return False


def probe_register(port: int, timeout: float = 10.0) -> int | None:
    """The status the server answers an unauthenticated REGISTER for agent 1001 with (401 expected)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(0.5)
        local = sock.getsockname()[1]
        n = 0
        while time.monotonic() < deadline:
            n += 1
            call_id = f"fuzz-reg-{time.monotonic_ns()}-{n}"
            request = (f"REGISTER sip:{HOST}:{port} SIP/2.0\r\n"
                       f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{call_id};rport\r\nMax-Forwards: 70\r\n"
                       f"From: <sip:1001@{HOST}>;tag=r{n}\r\nTo: <sip:1001@{HOST}>\r\nCall-ID: {call_id}\r\n"
                       f"CSeq: 1 REGISTER\r\nContact: <sip:1001@{HOST}:{local}>\r\nExpires: 60\r\n"
                       "Content-Length: 0\r\n\r\n")
            sock.sendto(request.encode(), (HOST, port))
            with contextlib.suppress(TimeoutError):
                while True:
                    data = sock.recv(65535)
                    if call_id.encode() in data and data.startswith(b"SIP/2.0 "):
                        status = int(data[8:11])
                        if status >= 200:
                            return status
    return None


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def metrics(http_port: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    return {name: float(value) for name, value in re.findall(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


def live_transactions(http_port: int) -> int | None:
    value = metrics(http_port).get("cti_sip_transactions")
    return None if value is None else int(value)


def wait_drained(http_port: int, timeout: float) -> tuple[int | None, float]:
    """Poll ``cti_sip_transactions`` until 0 or ``timeout``: (last value, seconds waited)."""
    start = time.monotonic()
    value = live_transactions(http_port)
    while (value is None or value > 0) and time.monotonic() - start < timeout:
        time.sleep(1.0)
        value = live_transactions(http_port)
    return value, time.monotonic() - start


def alive(server: ServerProcess, counts: Counts, when: str) -> bool:
    if server.proc.poll() is not None:
        counts.crashes.append(f"{when}: the server exited with status {server.proc.returncode}")
        return False
    if not probe_options(server.sip_port):
        counts.crashes.append(f"{when}: the server stopped answering OPTIONS")
        return False
    return True


# -------------------------------------------------------------------------------------------- run
@dataclass
class Report:
    counts: Counts
    rss_before: float
    rss_end: float
    rss_idle: float | None
    transactions_end: int | None
    transactions_drained: int | None
    drain_seconds: float
    register_status: int | None
    tcp_connections_peak: int = 0

    @property
    def ok(self) -> bool:
        return not self.counts.crashes and self.transactions_drained == 0

    def lines(self) -> list[str]:
        c = self.counts
        rate = (c.udp + c.tcp_messages) / c.seconds if c.seconds else 0.0
        out = [
            f"crashes                         {len(c.crashes)}",
            *(f"  {text}" for text in c.crashes),
            f"UDP datagrams sent              {c.udp}",
            f"TCP messages sent               {c.tcp_messages} on {c.tcp_connections} connections"
            f" ({c.tcp_refused} refused)",
            f"answers read                    {c.answers}",
            f"traffic time                    {c.seconds:.1f} s ({rate:.0f} messages/s)",
            f"RSS before                      {self.rss_before:.1f} MB",
            f"RSS at the end of the traffic   {self.rss_end:.1f} MB",
            f"RSS after the idle wait         {'-' if self.rss_idle is None else f'{self.rss_idle:.1f} MB'}",
            f"live transactions at the end    {self.transactions_end}",
            f"live transactions after drain   {self.transactions_drained} (after {self.drain_seconds:.0f} s)",
            f"REGISTER answered with          {self.register_status}",
        ]
        return out


def fuzz(server: ServerProcess, *, datagrams: int, tcp_connections: int, rate: float, probe_every: int,
         drain_s: float, idle_s: float, seed: int, progress: Callable[[str], None] = lambda _: None) -> Report:
    """Run the fuzz traffic against a started server and measure (see the module docstring)."""
    rng = random.Random(seed)
    mutator = Mutator(rng, server.sip_port)
    counts = Counts()
    pid = server.proc.pid
    rss_before = rss_mb(pid)
    udp = UdpFuzzer(mutator, server.sip_port)
    start = time.monotonic()
    try:
        sent = 0
        tcp_per_round = max(1, tcp_connections * probe_every // max(1, datagrams)) if tcp_connections else 0
        tcp_done = 0
        while sent < datagrams:
            batch = min(probe_every, datagrams - sent)
            udp.send(batch, rate, counts)
            sent += batch
            if tcp_done < tcp_connections:
                n = min(tcp_per_round, tcp_connections - tcp_done)
                tcp_fuzz(mutator, server.sip_port, n, counts)
                tcp_done += n
            counts.seconds = time.monotonic() - start
            progress(f"  {sent} datagrams, {counts.tcp_messages} TCP messages, {counts.seconds:.0f} s, "
                     f"RSS {rss_mb(pid) if server.proc.poll() is None else float('nan'):.0f} MB, "
                     f"transactions {live_transactions(server.http_port)}")
            if not alive(server, counts, f"after {sent} datagrams"):
                break
        if tcp_done < tcp_connections and not counts.crashes:
            tcp_fuzz(mutator, server.sip_port, tcp_connections - tcp_done, counts)
        counts.seconds = time.monotonic() - start
        udp.drain()
    finally:
        udp.close()
    if not counts.crashes:
        alive(server, counts, "at the end of the traffic")
    if server.proc.poll() is not None:
        return Report(counts, rss_before, float("nan"), None, None, None, 0.0, None)
    rss_end = rss_mb(pid)
    transactions_end = live_transactions(server.http_port)
    idle_start = time.monotonic()
    drained, waited = wait_drained(server.http_port, drain_s)
    register_status = probe_register(server.sip_port)
    alive(server, counts, "after the drain")
    rss_idle = None
    if idle_s > 0 and server.proc.poll() is None:
        time.sleep(max(0.0, idle_s - (time.monotonic() - idle_start)))
        rss_idle = rss_mb(pid)
        # The probes above made transactions of their own: they drain again within 32 s.
    return Report(counts, rss_before, rss_end, rss_idle, transactions_end, drained, waited, register_status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deep", action="store_true", help="1,000,000 UDP datagrams and 20,000 TCP connections")
    parser.add_argument("--datagrams", type=int, default=None, help="UDP datagrams (default 20,000; deep 10^6)")
    parser.add_argument("--tcp-connections", type=int, default=None, help="TCP connections (default 400)")
    parser.add_argument("--rate", type=float, default=4000.0, help="UDP datagrams per second to aim at")
    parser.add_argument("--probe-every", type=int, default=5000, help="datagrams between liveness probes")
    parser.add_argument("--drain-s", type=float, default=45.0, help="wait this long for transactions to drain")
    parser.add_argument("--idle-s", type=float, default=60.0, help="measure RSS this long after the traffic")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    args = parser.parse_args()
    datagrams = args.datagrams or (1_000_000 if args.deep else 20_000)
    tcp_connections = args.tcp_connections if args.tcp_connections is not None else (20_000 if args.deep else 400)
    with tempfile.TemporaryDirectory(prefix="cti-fuzz-") as tmp, \
            run_server(Path(tmp), "--log-level", "warning", "--loop", args.loop) as server:
        print(f"server pid {server.proc.pid}, SIP port {server.sip_port}, HTTP port {server.http_port}; "
              f"{datagrams} UDP datagrams at up to {args.rate:.0f}/s, {tcp_connections} TCP connections, "
              f"seed {args.seed}", flush=True)
        report = fuzz(server, datagrams=datagrams, tcp_connections=tcp_connections, rate=args.rate,
                      probe_every=args.probe_every, drain_s=args.drain_s, idle_s=args.idle_s, seed=args.seed,
                      progress=lambda text: print(text, flush=True))
        errors = [line for line in server.log_text().splitlines() if '"level": "error"' in line]
        for line in report.lines():
            print(line)
        print(f"error lines in the server log     {len(errors)}")
        for line in errors[:5]:
            print(f"  {line[:300]}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)

