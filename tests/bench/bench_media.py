"""Media benchmark: relay packets/s over loopback UDP (default loop and uvloop), mixing and transcoding cost.

Also the bridged call's two paths between two RTP endpoints (``sip.rtp.RtpEndpoint``): the
session path (each packet through the receiving session: jitter buffer, G.711 decode, an
``AudioReceived`` event, sent again by the other session: the bridge before the relay fast path)
and the fast path (``sip.media.EndpointRelay``), without and with the recorder's tap (the tapped
payloads decoded in a worker thread every 0.5 s, as ``Recording`` does; its CPU is counted), and
the fast path with SRTP on both legs (each packet unprotected on receive and protected on send,
``sip.rtp.SrtpTransform``; the peers protect what they send).

Run: ``python tests/bench/bench_media.py`` (not collected by pytest; prints figures; ends in ~30 s).

The relay runs in a child process (one core); this process plays both fake peers with
blocking sockets, keeping a window of packets in flight (closed loop), so the figure is
the relay's forwarding capacity rather than how fast the kernel drops excess packets.
A relayed G.711 call is 100 packets/s (50 each way), so calls = packets/s / 100.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import socket
import sys
import time
import timeit
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sip.media.aio import EndpointRelay, UdpRelay  # noqa: E402
from sip.media.events import LegSide, ParticipantId  # noqa: E402
from sip.media.frames import split_frames  # noqa: E402
from sip.media.mixer import Mixer, MixMode  # noqa: E402
from sip.media.recorder import TapFrame  # noqa: E402
from sip.media.relay import LegConfig, Relay  # noqa: E402
from sip.rtp import AudioReceived, RtpEvent, SessionConfig  # noqa: E402
from sip.rtp.aio import RtpEndpoint  # noqa: E402
from sip.rtp.g711 import Codec, decode, encode, transcode  # noqa: E402
from sip.rtp.packet import RtpPacket  # noqa: E402
from sip.rtp.srtp import SrtpTransform  # noqa: E402
from sip.sdes import SrtpKeys  # noqa: E402

WINDOW = 32
MEASURE_S = 3.0
WARMUP_S = 0.5
CALL_PPS = 100
PEER_KEY, NODE_KEY_A, NODE_KEY_B, SINK_KEY = (bytes([n]) * 30 for n in range(1, 5))  # SRTP keys of the srtp path


def _relay_child(use_uvloop: bool, transcoding: bool, sink: tuple[str, int], conn: Connection) -> None:
    async def main() -> None:
        relay = Relay(LegConfig(codec=Codec.PCMU), LegConfig(codec=Codec.PCMA if transcoding else Codec.PCMU))
        udp = await UdpRelay.open(relay, local_a=("127.0.0.1", 0), local_b=("127.0.0.1", 0), remote_b=sink)
        conn.send(udp.local_addr(LegSide.A))
        cpu0 = time.process_time()
        await asyncio.to_thread(conn.recv)  # the parent says stop
        conn.send((relay.stats[LegSide.A].forwarded, time.process_time() - cpu0))
        udp.close()

    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def _decode_all(frames: list[TapFrame]) -> list[int]:
    return [len(decode(f.codec, f.payload)) for f in frames]


def _endpoints_child(use_uvloop: bool, path: str, sink: tuple[str, int], conn: Connection) -> None:
    async def main() -> None:
        config = SessionConfig(codec=Codec.PCMU, payload_type=0, rtcp_interval=None)
        relayed: list[RtpEndpoint] = []

        def on_event(event: RtpEvent) -> None:  # the session path: what the bridge did before the fast path
            if isinstance(event, AudioReceived) and relayed:
                relayed[0].send_audio(event.payload)

        a = await RtpEndpoint.open(config, host="127.0.0.1", rtcp=False, on_event=on_event)
        b = await RtpEndpoint.open(config, host="127.0.0.1", remote=sink, rtcp=False)
        relay = None
        if path == "srtp":  # both legs SRTP: what the peer sends is unprotected, what the sink gets protected
            a.secure(SrtpKeys(local=NODE_KEY_A, remote=PEER_KEY))
            b.secure(SrtpKeys(local=NODE_KEY_B, remote=SINK_KEY))
        if path == "session":
            relayed.append(b)
        else:
            relay = EndpointRelay(a, b, tap=path == "tap")
        conn.send(("127.0.0.1", a.local_port))
        cpu0 = time.process_time()
        stop = asyncio.ensure_future(asyncio.to_thread(conn.recv))  # the parent says stop
        decoded = 0
        while not stop.done():
            await asyncio.wait([stop], timeout=0.5)
            if relay is not None and path == "tap":  # the recording's flush: decode off the loop
                frames = relay.drain_tap()
                decoded += sum(await asyncio.to_thread(_decode_all, frames))
        forwarded = relay.relay.stats[LegSide.A].forwarded if relay else b.session.packets_sent
        conn.send((forwarded, time.process_time() - cpu0))
        if relay is not None:
            relay.stop()
        a.close()
        b.close()

    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def relay_pps(use_uvloop: bool, transcoding: bool = False, path: str | None = None) -> tuple[float, float]:
    """Relay in a child process, closed loop with WINDOW packets in flight.

    Returns (packets/s achieved end to end, packets forwarded per CPU-second of the relay process).
    The second figure is the relay's capacity per core even when this process (the peers) is the bottleneck.
    """
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.05)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    parent, child = mp.get_context("spawn").Pipe()
    proc = mp.get_context("spawn").Process(
        target=_relay_child if path is None else _endpoints_child,
        args=(use_uvloop, transcoding, rx.getsockname(), child) if path is None else
        (use_uvloop, path, rx.getsockname(), child), daemon=True,
    )
    proc.start()
    try:
        if not parent.poll(20):
            raise RuntimeError("relay child did not start")
        relay_addr = parent.recv()
        packet = bytearray(
            RtpPacket(payload_type=0, sequence_number=0, timestamp=0, ssrc=7, payload=b"\xff" * 160).serialize()
        )
        protect = SrtpTransform(SrtpKeys(local=PEER_KEY, remote=NODE_KEY_A)).protect if path == "srtp" else None
        seq = 0
        in_flight = 0
        received = 0
        start = time.perf_counter()
        t0 = start + WARMUP_S
        count_from = None
        while True:
            now = time.perf_counter()
            if count_from is None and now >= t0:
                count_from = received
            if now >= t0 + MEASURE_S:
                break
            while in_flight < WINDOW:
                seq = (seq + 1) & 0xFFFF
                packet[2:4] = seq.to_bytes(2, "big")
                packet[4:8] = (seq * 160 & 0xFFFFFFFF).to_bytes(4, "big")
                tx.sendto(packet if protect is None else protect(packet), relay_addr)
                in_flight += 1
            try:
                rx.recv(2048)
                received += 1
                in_flight -= 1
            except TimeoutError:
                in_flight = 0  # packets lost: refill the window
        elapsed = time.perf_counter() - t0
        parent.send("stop")
        if not parent.poll(5):
            raise RuntimeError("relay child did not report")
        forwarded, cpu = parent.recv()
        return (received - (count_from or 0)) / elapsed, forwarded / cpu
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
        rx.close()
        tx.close()


def per_call_us(stmt: object, number: int = 20000) -> float:
    timer = timeit.Timer(stmt)  # type: ignore[arg-type]
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def main() -> None:
    print(f"relay over loopback UDP, window {WINDOW}, {MEASURE_S:.0f} s each (calls = packets/s / {CALL_PPS}):")
    for label, uv, tc in (
        ("default loop, PCMU->PCMU", False, False),
        ("uvloop,       PCMU->PCMU", True, False),
        ("default loop, PCMU->PCMA", False, True),
        ("uvloop,       PCMU->PCMA", True, True),
    ):
        pps, per_cpu = relay_pps(uv, tc)
        print(
            f"  {label}: {pps:8,.0f} packets/s end to end; {per_cpu:8,.0f} packets per relay CPU-second"
            f" -> {per_cpu / CALL_PPS:6,.0f} relayed calls per core"
        )
    print("a bridged call between two RTP endpoints, PCMU both legs, uvloop:")
    for label, path in (("session path (jitter buffer, decode, resend)", "session"),
                        ("fast path (EndpointRelay)", "relay"),
                        ("fast path + recorder tap (thread decode)", "tap"),
                        ("fast path, SRTP on both legs", "srtp")):
        pps, per_cpu = relay_pps(True, path=path)
        print(
            f"  {label:46s}: {pps:8,.0f} packets/s end to end; {per_cpu:8,.0f} packets per CPU-second"
            f" -> {per_cpu / CALL_PPS:6,.0f} calls per core"
        )

    frame = split_frames(b"".join(i.to_bytes(2, "little", signed=True) for i in range(-160, 160)))[0]
    ulaw = encode(Codec.PCMU, frame)
    caller, agent, sup = ParticipantId("c"), ParticipantId("a"), ParticipantId("s")
    mixer = Mixer([caller, agent, sup])
    mixer.set_mode(MixMode.BARGE, caller=caller, agent=agent, supervisor=sup)

    def tick() -> None:
        mixer.push(caller, frame)
        mixer.push(agent, frame)
        mixer.push(sup, frame)
        mixer.mix()

    def tick_g711() -> None:  # decode 3 legs, mix, encode 3 outputs
        for pid in (caller, agent, sup):
            mixer.push(pid, decode(Codec.PCMU, ulaw))
        for out in mixer.mix().values():
            encode(Codec.PCMU, out)

    relay = Relay(LegConfig(codec=Codec.PCMU), LegConfig(codec=Codec.PCMA))
    pkt = RtpPacket(payload_type=0, sequence_number=1, timestamp=0, ssrc=7, payload=ulaw).serialize()
    same = Relay(LegConfig(codec=Codec.PCMU), LegConfig(codec=Codec.PCMU))

    srtp_a = SrtpTransform(SrtpKeys(local=PEER_KEY, remote=NODE_KEY_A))
    srtp_b = SrtpTransform(SrtpKeys(local=NODE_KEY_A, remote=PEER_KEY))
    seqs = iter(range(10**9))

    def srtp_round() -> None:  # a fresh sequence number each time (the replay check would refuse a repeat)
        n = next(seqs)
        srtp_b.unprotect(srtp_a.protect(pkt[:2] + (n & 0xFFFF).to_bytes(2, "big") + pkt[4:]))

    srtp_us = per_call_us(srtp_round)
    mix_us = per_call_us(tick)
    mix_g_us = per_call_us(tick_g711)
    tc_us = per_call_us(lambda: transcode(ulaw, Codec.PCMU, Codec.PCMA))
    fwd_us = per_call_us(lambda: same.forward(LegSide.A, pkt, 0.0))
    fwd_tc_us = per_call_us(lambda: relay.forward(LegSide.A, pkt, 0.0))
    rows = [
        ("mix 3 participants (BARGE), PCM in/out", mix_us, "tick", 1e6 / (50 * mix_us), "3-party calls/core"),
        ("same + G.711 decode x3 and encode x3", mix_g_us, "tick", 1e6 / (50 * mix_g_us), "3-party calls/core"),
        ("transcode PCMU->PCMA, 160 bytes", tc_us, "frame", 1e6 / (100 * tc_us), "calls/core (transcode only)"),
        ("Relay.forward, core only, same codec", fwd_us, "packet", 1e6 / (100 * fwd_us), "calls/core (no I/O)"),
        ("Relay.forward, core only, transcoding", fwd_tc_us, "packet", 1e6 / (100 * fwd_tc_us), "calls/core (no I/O)"),
        ("SRTP protect + unprotect, 172 bytes", srtp_us, "packet", 1e6 / (100 * srtp_us), "SRTP legs/core (crypto)"),
    ]
    print("per-frame CPU cost (best of 5):")
    for label, us, unit, calls, what in rows:
        print(f"  {label:40s} {us:6.2f} us/{unit:6s} -> {calls:8,.0f} {what}")


if __name__ == "__main__":
    main()
