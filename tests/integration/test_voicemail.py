"""Voicemail through a real `cti serve` (docs/voicemail.md): two SIPp callers leave messages at once.

* Number 300 (a trunk with early media): the flow's voicemail node answers the call (200 after the 183),
  beeps, records; the caller talks ~2.5 s (SIPp's g711a.pcap) and presses # (RFC 4733), the flow goes on to
  its goodbye prompt and hangs up (the scenario waits for our BYE).
* Number 301: the caller presses 1 (not the stop key) while recording, talks ~2 s and hangs up: the message
  is kept all the same.
* A message a crash cut short (its part files planted in the data directory before the start) is finalised and
  stored at start-up.

Then: each WAV exists under <data_dir>/voicemail with about the right length and the caller's speech on it,
each row is listed by the API and the CLI (`cti voicemail list|fetch|heard`), the audio route answers range
requests, the CDRs end with ``voicemail``, and ``voicemail.left`` reached a webhook (every event the server
published was checked against its schema: ``run_server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
import sqlite3
import struct
import time
import urllib.request
import warnings
import wave
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from cti.cli import main as cli_main
from cti.voicemail import VoicemailTake
from sip.rtp import AudioReceived, Codec, Ssrc
from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import OPERATOR_TOKEN, SippRunner, dtmf_pcap, sipp_ready
from tests.support.webhook_receiver import WebhookReceiver

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

pytestmark = [pytest.mark.interop, pytest.mark.skipif(not sipp_ready(), reason="sipp is not installed")]

REPO = Path(__file__).resolve().parents[2]
SECRET = "voicemail-hook-secret"
FLOWS = {
    "flows": {
        "leave_message": {"start": "vm", "nodes": {
            "vm": {"type": "voicemail", "mailbox": "support", "max_seconds": 20, "silence_seconds": 8,
                   "next": "thanks"},
            "thanks": {"type": "hangup", "prompts": ["goodbye"]},
        }},
        "other_box": {"start": "vm", "nodes": {
            "vm": {"type": "voicemail", "mailbox": "after_hours", "max_seconds": 20, "silence_seconds": 8},
        }},
    },
}


def _config(tmp: Path, receiver: WebhookReceiver) -> Path:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    flows = tmp / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text((REPO / "config" / "flows" / "main.yaml").read_text())
    (flows / "voicemail.yaml").write_text(yaml.safe_dump(FLOWS))
    config["flows_dir"] = str(flows)
    config["prompts_dir"] = str(REPO / "config" / "prompts")
    trunk = config["trunks"][0]
    trunk["numbers"].update({"300": "leave_message", "301": "other_box"})
    trunk["early_media"] = True
    config["webhooks"] = [{"name": "crm", "url": receiver.url, "secret": SECRET, "events": ["voicemail.*"]}]
    config["webhook_retry"] = {"base_delay_s": 0.1, "max_delay_s": 0.3}
    path = tmp / "cti.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _api(server: ServerProcess, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.http_port}{path}", method=method,
                                     headers={"Authorization": f"Bearer {OPERATOR_TOKEN}", **(headers or {})})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, dict(answer.headers), answer.read()


def _cti(server: ServerProcess, *args: str, cwd: Path) -> str:
    """`cti voicemail ARGS` in this process (click's runner: no interpreter start-up per command)."""
    env = {"CTI_URL": f"http://127.0.0.1:{server.http_port}", "CTI_TOKEN": OPERATOR_TOKEN}
    with contextlib.chdir(cwd):
        done = CliRunner().invoke(cli_main, ["voicemail", *args], env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return done.output


def _messages(server: ServerProcess, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        found: list[dict[str, Any]] = json.loads(_api(server, "/api/v1/voicemail")[2])["voicemail"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _caller_audio(data: bytes) -> tuple[float, int]:
    """Seconds and RMS of the caller's audio in a WAV (mono, or the left channel of a stereo one)."""
    with wave.open(io.BytesIO(data)) as wav:
        frames = wav.readframes(wav.getnframes())
        mono = frames if wav.getnchannels() == 1 else audioop.tomono(frames, 2, 1, 0)
        return wav.getnframes() / wav.getframerate(), audioop.rms(mono, 2)


async def _crashed_message(scratch: Path, voicemail_dir: Path) -> None:
    """The part files of a message being recorded when the node died (0.5 s of SIPp-like speech)."""
    take = await VoicemailTake.open(scratch, message_id="vm-20261206-0000000000cc", call_id="crashed-call",
                                    mailbox="support", queue="support", caller="5559999", started=1_796_601_000.0,
                                    silence_seconds=5.0)
    speech = struct.pack("<160h", *([3000, -3000] * 80))
    for n in range(40):
        take.push(AudioReceived(now=0.0, payload=audioop.lin2alaw(speech, 2), pcm=speech, payload_type=8,
                                timestamp=160 * n, sequence_number=n, ssrc=Ssrc(1), marker=False), Codec.PCMA)
    await take.recording.flush()
    await asyncio.to_thread(shutil.copytree, scratch, voicemail_dir)
    await take.recording.abort()


def test_callers_leave_messages_by_pound_and_by_hanging_up(tmp_path: Path) -> None:
    sipps = SippRunner(tmp_path / "sipp")
    asyncio.run(_crashed_message(tmp_path / "scratch", tmp_path / "var" / "voicemail"))
    with WebhookReceiver(SECRET) as receiver:
        try:
            with run_server(tmp_path, config=_config(tmp_path, receiver)) as server:
                target = f"127.0.0.1:{server.sip_port}"
                pound = sipps.start("pound", "carrier_voicemail.xml", "-s", "300", "-key", "caller", "5550300",
                                    "-key", "dtmf_pcap", dtmf_pcap("#"), "-set", "greeting_ms", "1000",
                                    "-set", "talk_ms", "2500", remote=target, timeout=30)
                hangup = sipps.carrier(target, digit="1", dialled="301", caller="5550301", greeting_ms=1000,
                                       talk_ms=2000, name="hangup")
                for sipp in (pound, hangup):
                    assert sipp.wait(30) == 0, sipp.report()
                messages = {m["caller_number"]: m for m in _messages(server, 3)}
                assert set(messages) == {"5550300", "5550301", "5559999"}, messages
                recovered = messages.pop("5559999")  # finalised and stored at start-up
                assert (recovered["id"], recovered["call_id"]) == ("vm-20261206-0000000000cc", "crashed-call")
                assert 0.4 < recovered["duration_s"] <= 0.8
                by_pound, by_hangup = messages["5550300"], messages["5550301"]
                assert (by_pound["mailbox"], by_pound["queue"]) == ("support", "support")
                assert (by_hangup["mailbox"], by_hangup["queue"]) == ("after_hours", None)  # no such queue
                assert 2.0 <= by_pound["duration_s"] <= 3.6, by_pound  # 2.5 s of talk, cut by the #
                assert 1.6 <= by_hangup["duration_s"] <= 3.4, by_hangup  # 0.3 + 2 s of talk, then BYE
                for message in (by_pound, by_hangup):
                    assert not message["heard"]
                    path = server.data_dir / "voicemail" / f"{message['id']}.wav"
                    seconds, rms = _caller_audio(path.read_bytes())
                    assert abs(seconds - message["duration_s"]) < 0.01
                    assert rms > 300, f"the message {message['id']} is silent (rms {rms})"

                # The audio route: the caller's channel as mono WAV, with ranges (as the QA recording route).
                status, headers, body = _api(server, f"/api/v1/voicemail/{by_pound['id']}/audio")
                assert status == 200 and headers["Content-Type"] == "audio/wav"
                assert abs(_caller_audio(body)[0] - by_pound["duration_s"]) < 0.01
                status, headers, part = _api(server, f"/api/v1/voicemail/{by_pound['id']}/audio",
                                             headers={"Range": "bytes=0-99"})
                assert (status, len(part), part) == (206, 100, body[:100])
                assert headers["Content-Range"] == f"bytes 0-99/{len(body)}"

                # The CLI: list, fetch, heard; then only one message is unheard.
                listed = _cti(server, "list", cwd=tmp_path)
                assert by_pound["id"] in listed and by_hangup["id"] in listed
                assert "saved.wav" in _cti(server, "fetch", by_hangup["id"], "-o", "saved.wav", cwd=tmp_path)
                assert _caller_audio((tmp_path / "saved.wav").read_bytes())[1] > 300
                assert "heard by operator" in _cti(server, "heard", by_hangup["id"], cwd=tmp_path)
                unheard = json.loads(_cti(server, "list", "--unheard", "--json", cwd=tmp_path))["voicemail"]
                assert [m["id"] for m in unheard] == [by_pound["id"], recovered["id"]]

                # The CDRs end with `voicemail`; the event reached the webhook, once per message.
                with contextlib.closing(sqlite3.connect(server.data_dir / "cti.sqlite3")) as db:
                    ends = dict(db.execute("SELECT caller_number, end_reason FROM calls").fetchall())
                    answered = db.execute("SELECT t_ivr_answered FROM calls WHERE caller_number = '5550300'"
                                          ).fetchone()[0]
                assert ends == {"5550300": "voicemail", "5550301": "voicemail"}
                assert answered is not None  # early media: the voicemail node answered the call
                deadline = time.monotonic() + 10
                while len(receiver.counts("voicemail.left")) < 3 and time.monotonic() < deadline:
                    time.sleep(0.1)
                calls = {d.call_id for d in receiver.deliveries() if d.event_type == "voicemail.left"}
                assert calls == {by_pound["call_id"], by_hangup["call_id"], "crashed-call"}
        finally:
            sipps.stop_all()
