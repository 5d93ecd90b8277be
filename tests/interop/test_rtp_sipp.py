"""Real peer: SIPp plays G.711 A-law and RFC 4733 digits from its pcaps to our RtpEndpoint.

Two SIPp processes on loopback: ``media_uac.xml`` sends an INVITE whose SDP advertises OUR
endpoint's address and port (``-key rtp_ip/rtp_port``); ``media_uas.xml`` answers and runs
``<exec play_pcap_audio=...>``, which sends towards the media address of the SDP it
*received*, i.e. to us. The UAS plays ``-d`` ms of ``g711a.pcap`` (30 ms
packets at 8 kHz, PT 8) and then the digits 1, 5, # and 0.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sip.rtp import (
    AudioReceived,
    Codec,
    DtmfReceived,
    PeerAddressLearned,
    RtpEvent,
    SessionConfig,
    SsrcChanged,
)
from sip.rtp.aio import RtpEndpoint

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) is not installed"),
    pytest.mark.skipif(not Path("/usr/share/sip-tester/g711a.pcap").exists(), reason="SIPp pcaps missing"),
]

SCENARIOS = Path(__file__).parent / "scenarios"
AUDIO_MS = 1500
EXPECTED_DIGITS = ["1", "5", "#", "0"]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rms(pcm: bytes) -> float:
    samples = memoryview(pcm).cast("h")
    return math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


@pytest.fixture
def sipp_uas(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """The playing UAS; always stopped (and its error trace shown) at teardown."""
    port = _free_udp_port()
    cmd = [
        "sipp",
        "-sf",
        str(SCENARIOS / "media_uas.xml"),
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(_free_udp_port()),
        "-d",
        str(AUDIO_MS),
        "-m",
        "1",
        "-timeout",
        "20s",
        "-timeout_error",
        "-trace_err",
        "-nostdin",
    ]
    with open(tmp_path / "uas.out", "wb") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        for log in tmp_path.glob("*errors.log"):
            print(log.read_text(errors="replace"))


async def test_sipp_plays_g711_audio_and_rfc4733_digits_to_our_endpoint(
    sipp_uas: tuple[int, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    uas_port, uas = sipp_uas
    events: list[RtpEvent] = []
    config = SessionConfig(codec=Codec.PCMA, payload_type=8, telephone_event_pt=101, timeout=None, rtcp_interval=None)
    async with await RtpEndpoint.open(config, host="127.0.0.1", on_event=events.append) as endpoint:
        cmd = [
            "sipp",
            "-sf",
            str(SCENARIOS / "media_uac.xml"),
            f"127.0.0.1:{uas_port}",
            "-i",
            "127.0.0.1",
            "-p",
            str(_free_udp_port()),
            "-key",
            "rtp_ip",
            "127.0.0.1",
            "-key",
            "rtp_port",
            str(endpoint.local_port),
            "-d",
            str(AUDIO_MS + 1700),
            "-m",
            "1",
            "-timeout",
            "20s",
            "-timeout_error",
            "-trace_err",
            "-nostdin",
        ]
        uac = await asyncio.create_subprocess_exec(
            *cmd, cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            async with asyncio.timeout(30):
                assert await uac.wait() == 0, "SIPp UAC failed (see its *errors.log)"
        finally:
            if uac.returncode is None:
                uac.kill()
                await uac.wait()
    assert await asyncio.to_thread(uas.wait, 10) == 0

    audio = [e for e in events if isinstance(e, AudioReceived)]
    digits = [e.digit for e in events if isinstance(e, DtmfReceived)]
    learned = [e for e in events if isinstance(e, PeerAddressLearned)]
    assert digits == EXPECTED_DIGITS
    # g711a.pcap is 30 ms A-law packets (PT 8); AUDIO_MS of it is about 50 packets.
    assert AUDIO_MS / 30 * 0.6 <= len(audio) <= AUDIO_MS / 30 * 1.4
    assert {e.payload_type for e in audio} == {8}
    pcm = b"".join(e.pcm or b"" for e in audio)
    assert len(pcm) == 2 * sum(len(e.payload) for e in audio)
    assert _rms(pcm) > 100, "decoded audio is silent"
    assert learned and learned[0].addr[0] == "127.0.0.1"
    # The digit pcaps were captured from another source than g711a.pcap: one SSRC change.
    assert [(e.old, e.new) for e in events if isinstance(e, SsrcChanged)] == [(audio[0].ssrc, 0x0E05384E)]
