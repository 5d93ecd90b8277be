"""SRTP/SRTCP protect and unprotect (sip.rtp.srtp over libsrtp2), and an RTP endpoint pair over loopback
with SDES keys: what the session hears is the plaintext, what travels is not."""

from __future__ import annotations

import asyncio

import pytest

from sip.rtp import AudioReceived, Codec, RtpPacket, SessionConfig, SrtpError, SrtpTransform
from sip.rtp.aio import RtpEndpoint
from sip.rtp.g711 import encode
from sip.sdes import SrtpKeys, new_crypto

A, B = new_crypto().key, new_crypto().key
HOST = "127.0.0.1"


def _pair() -> tuple[SrtpTransform, SrtpTransform]:
    return SrtpTransform(SrtpKeys(local=A, remote=B)), SrtpTransform(SrtpKeys(local=B, remote=A))


def _rtp(seq: int, payload: bytes = b"\x55" * 160, ssrc: int = 0x1234) -> bytes:
    return RtpPacket(payload_type=0, sequence_number=seq, timestamp=160 * seq, ssrc=ssrc, payload=payload).serialize()


def test_rtp_round_trip_adds_the_80_bit_tag_and_hides_the_payload() -> None:
    alice, bob = _pair()
    plain = _rtp(1)
    wire = alice.protect(plain)
    assert len(wire) == len(plain) + 10 and wire[:12] == plain[:12] and wire[12:172] != plain[12:]
    assert bob.unprotect(wire) == plain
    assert (bob.unprotected, bob.refused) == (1, 0)


def test_rtcp_round_trip() -> None:
    alice, bob = _pair()
    report = bytes([0x80, 201, 0, 1]) + (0x1234).to_bytes(4, "big")  # an empty receiver report
    wire = alice.protect(report)
    assert len(wire) == len(report) + 4 + 10  # E-flag + SRTCP index, then the tag (RFC 3711 §3.4)
    assert bob.unprotect(wire) == report


def test_tampered_replayed_wrongly_keyed_and_plain_packets_are_refused() -> None:
    alice, bob = _pair()
    wire = alice.protect(_rtp(1))
    assert bob.unprotect(wire)
    with pytest.raises(SrtpError):
        bob.unprotect(wire)  # replay (RFC 3711 §3.3.2)
    tampered = bytearray(alice.protect(_rtp(2)))
    tampered[20] ^= 1
    with pytest.raises(SrtpError):
        bob.unprotect(bytes(tampered))
    with pytest.raises(SrtpError):
        alice.unprotect(alice.protect(_rtp(3)))  # our own key is not the peer's
    with pytest.raises(SrtpError):
        bob.unprotect(_rtp(4))  # plaintext RTP
    with pytest.raises(SrtpError):
        bob.unprotect(b"\x80\x00" + bytes(4000))  # past libsrtp's buffer: refused, not a ValueError
    with pytest.raises(SrtpError):
        alice.protect(_rtp(5, payload=bytes(1500)))
    assert (bob.refused, bob.unprotected, alice.refused) == (4, 1, 1)


def test_a_new_ssrc_needs_no_set_up_and_a_rekey_takes_the_new_remote_key() -> None:
    alice, bob = _pair()
    assert bob.unprotect(alice.protect(_rtp(1, ssrc=7))) == _rtp(1, ssrc=7)
    assert bob.unprotect(alice.protect(_rtp(900, ssrc=8))) == _rtp(900, ssrc=8)
    fresh = new_crypto().key
    carol = SrtpTransform(SrtpKeys(local=fresh, remote=B))
    bob.rekey(SrtpKeys(local=B, remote=fresh))
    assert bob.unprotect(carol.protect(_rtp(5))) == _rtp(5)
    with pytest.raises(SrtpError):
        bob.unprotect(alice.protect(_rtp(6)))  # the old key no longer works


def test_an_unknown_suite_is_refused() -> None:
    with pytest.raises(SrtpError):
        SrtpTransform(SrtpKeys(local=A, remote=B, suite="AES_CM_128_HMAC_SHA1_32"))


class _Wire(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.seen: list[bytes] = []
        self.three = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not 200 <= data[1] <= 204:
            self.seen.append(data)
        if len(self.seen) >= 3:
            self.three.set()


async def test_two_srtp_endpoints_hear_each_others_audio_and_the_wire_carries_none() -> None:
    """A sends PCM to B through a sniffing forwarder: B's session decodes it; the forwarded bytes do not."""
    loop = asyncio.get_running_loop()
    config = SessionConfig(codec=Codec.PCMU, payload_type=0)
    a = await RtpEndpoint.open(config, host=HOST)
    b = await RtpEndpoint.open(config, host=HOST)
    wire = _Wire()
    tap, _ = await loop.create_datagram_endpoint(lambda: wire, local_addr=(HOST, 0))
    try:
        a.secure(SrtpKeys(local=A, remote=B))
        b.secure(SrtpKeys(local=B, remote=A))
        a.session.remote = tap.get_extra_info("sockname")[:2]
        pcm = b"\x10\x20" * 160
        for _ in range(3):
            a.send_pcm(pcm)
        async with asyncio.timeout(2):
            await wire.three.wait()
        assert all(len(d) == 12 + 160 + 10 and encode(Codec.PCMU, pcm) not in d for d in wire.seen)
        for data in wire.seen:
            b._datagram_received(data, a.local_address)  # as the loop would hand them over
        got = []
        async with asyncio.timeout(2):
            while len(got) < 3:
                event = await b.events.get()
                if isinstance(event, AudioReceived):
                    got.append(event.payload)
        assert got == [encode(Codec.PCMU, pcm)] * 3
        b._datagram_received(wire.seen[0], a.local_address)  # a replay is dropped and counted
        assert b.srtp is not None and b.srtp.refused == 1
        with pytest.raises(SrtpError):
            b.secure(None)  # an SRTP leg never falls back to plain RTP
    finally:
        a.close()
        b.close()
        tap.close()
