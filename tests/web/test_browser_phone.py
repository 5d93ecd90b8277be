"""The browser phone end to end: headless Chromium with a fake microphone playing a 440 Hz WAV, a real node, and a
SIPp carrier streaming a 1000 Hz tone (docs/web.md, "Browser phone").

Agent 1003 signs in on /agent, turns the browser phone on (no softphone anywhere), goes ready; the carrier calls 100
and presses 2; the phone panel rings with the caller's number; the test clicks Answer. Then audio both ways: the
page hears the carrier (a Web Audio analyser on the phone's <audio> stream: loud, its peak at 1000 Hz), and after the
page hangs up (the carrier gets the BYE) the node's recording of the call holds the page's 440 Hz on the agent's
channel and the carrier's 1000 Hz on the caller's. The CDR is complete. A screenshot of the panel in a call goes to
the screenshots folder (docs/web-phone.png is a copy).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import ServerProcess, run_server
from tests.support.sipp import HOST, SippRunner
from tests.support.tone import read_wav, tone_pcm, tone_share, write_tone_pcap
from tests.web.conftest import CHROMIUM, VIEWPORT, demo_config, needs_browser, needs_sipp

pytestmark = [pytest.mark.interop, needs_browser, needs_sipp, pytest.mark.timeout(90)]

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
PAGE_HZ, CALLER_HZ = 440, 1000
DTMF_2 = "/usr/share/sip-tester/dtmf_2833_2.pcap"  # the caller presses 2: queue support (agent 1003)

# The peak frequency and the level of what the phone's <audio> element plays, over about a second.
_LISTEN = """async () => {
  const stream = document.getElementById("phone-audio").srcObject;
  if (!stream) return null;
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 4096;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const bins = new Float32Array(analyser.frequencyBinCount);
  const wave = new Float32Array(analyser.fftSize);
  const peaks = [];
  let rms = 0;
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    analyser.getFloatFrequencyData(bins);
    analyser.getFloatTimeDomainData(wave);
    let best = 0;
    for (let k = 1; k < bins.length; k++) if (bins[k] > bins[best]) best = k;
    peaks.push(best * ctx.sampleRate / analyser.fftSize);
    rms = Math.max(rms, Math.sqrt(wave.reduce((s, x) => s + x * x, 0) / wave.length));
  }
  await ctx.close();
  peaks.sort((a, b) => a - b);
  return { peak: peaks[peaks.length >> 1], rms };
}"""


def write_wav48(path: Path, freq: float, seconds: float) -> Path:
    """The fake microphone: a 16-bit mono 48 kHz WAV (Chromium loops it)."""
    import wave

    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(48000)
        wav.writeframes(tone_pcm(freq, seconds, rate=48000))
    return path


@pytest.fixture(scope="module")
def phone_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("phone-server")
    with run_server(tmp, config=demo_config(tmp)) as server:
        yield server


@pytest.fixture(scope="module")
def phone_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Chromium whose microphone plays a 440 Hz tone, with the permission prompt answered yes."""
    from playwright.sync_api import sync_playwright

    mic = write_wav48(tmp_path_factory.mktemp("phone-mic") / "mic-440.wav", PAGE_HZ, 10.0)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic}", "--autoplay-policy=no-user-gesture-required"])
        try:
            yield chromium
        finally:
            chromium.close()


def _ended_call(server: ServerProcess, timeout: float = 10.0) -> tuple[dict[str, Any], Path]:
    """The call's CDR once closed, and its recording's WAV."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(server.data_dir / "cti.sqlite3", timeout=5) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM calls WHERE t_ended IS NOT NULL ORDER BY t_arrived DESC").fetchone()
            paths = [r[0] for r in db.execute("SELECT path FROM recordings").fetchall()]
        if row is not None and paths and Path(paths[0]).exists():
            return dict(row), Path(paths[0])
        assert time.monotonic() < deadline, "no closed CDR with a recording"
        time.sleep(0.2)


def test_agent_answers_and_talks_in_the_browser(phone_server: ServerProcess, phone_browser: Any,
                                                tmp_path: Path, shots: Path) -> None:
    from playwright.sync_api import expect

    server = phone_server
    context = phone_browser.new_context(viewport=VIEWPORT, locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sipps = SippRunner(tmp_path / "sipp")
    try:
        page.goto(f"http://{HOST}:{server.http_port}/agent")
        page.get_by_label("Agent ID").fill("1003")
        page.get_by_label("Password").fill("demo1003")
        page.get_by_role("button", name="Sign in").click()
        panel = page.get_by_role("region", name="Phone")
        expect(panel.get_by_role("status")).to_contain_text("Off")
        panel.get_by_role("button", name="Use browser phone").click()
        expect(panel.get_by_role("status")).to_contain_text("Ready", timeout=10_000)  # ICE + DTLS with the node
        page.get_by_role("button", name="Log in ready").click()
        expect(page.get_by_role("region", name="My state")).to_contain_text("Ready")

        tone = write_tone_pcap(tmp_path / "caller-1000.pcap", CALLER_HZ, 15.0)
        carrier = sipps.start("carrier", str(SCENARIOS / "carrier_tone_until_bye.xml"), "-s", "100",
                              "-key", "caller", "5551234", "-key", "dtmf_pcap", DTMF_2, "-key", "tone_pcap", str(tone),
                              remote=f"{HOST}:{server.sip_port}", timeout=60)
        expect(panel.get_by_role("alert")).to_contain_text("Incoming call from 5551234", timeout=15_000)
        expect(panel.get_by_role("status")).to_contain_text("Ringing")
        expect(page.get_by_text("Answer the call on your phone.")).to_have_count(0)  # this page is the phone
        panel.get_by_role("button", name="Answer").focus()
        page.keyboard.press("Enter")  # the keyboard answers as well as the mouse
        expect(panel.get_by_role("status")).to_contain_text("In call", timeout=5_000)
        expect(page.get_by_role("region", name="Caller details")).to_contain_text("Connected")

        heard = page.evaluate(_LISTEN)  # the page hears the carrier
        assert heard is not None and heard["rms"] > 0.02 and abs(heard["peak"] - CALLER_HZ) < 40, heard
        expect(panel.get_by_role("button", name="Mute")).to_be_visible()
        page.screenshot(path=str(shots / "phone.png"))

        panel.get_by_role("button", name="Hang up").click()
        assert carrier.wait(15) == 0, carrier.report()  # it ends only on the server's BYE
        assert "BYE sip:" in carrier.messages()
        expect(panel.get_by_role("status")).to_contain_text("Ready")
        expect(page.get_by_role("region", name="My state")).to_contain_text("Wrap-up")

        row, recording = _ended_call(server)
        assert (row["final_agent"], row["final_queue"], row["hangup_by"]) == ("1003", "support", "agent"), row
        assert row["t_answered"] is not None and row["t_ended"] > row["t_answered"], row
        assert row["recording_serial"], row
        rate, (caller_side, agent_side) = read_wav(recording)
        shares = {"caller@1000": tone_share(caller_side, rate, CALLER_HZ),
                  "agent@440": tone_share(agent_side, rate, PAGE_HZ),
                  "caller@440": tone_share(caller_side, rate, PAGE_HZ),
                  "agent@1000": tone_share(agent_side, rate, CALLER_HZ)}
        summary = f"page heard {heard}; recording {shares}"
        assert shares["caller@1000"] > 0.5 and shares["agent@440"] > 0.5, summary
        assert shares["caller@440"] < 0.5 and shares["agent@1000"] < 0.5, summary
        print(summary)

        panel.get_by_role("button", name="Use softphone instead").click()  # off: the binding goes
        expect(panel.get_by_role("status")).to_contain_text("Off")
        panel.get_by_role("button", name="Use browser phone").click()  # on again, then the page closes
        expect(panel.get_by_role("status")).to_contain_text("Ready", timeout=10_000)
        assert errors == []
    finally:
        sipps.stop_all()
        context.close()
    deadline = time.monotonic() + 5
    while True:  # the page's connection ended: its phone goes off and its binding is removed
        log = server.log_text()
        events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        bindings = [(e["event"], e.get("contact", "")) for e in events if e.get("aor") == "1003"]
        if len(bindings) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [name for name, _ in bindings] == ["sip.binding.added", "sip.binding.removed"] * 2, bindings
    assert bindings[0][1].startswith("sip:1003@127.0.0.1:"), bindings  # the node's own user agent
    offs = [e.get("reason") for e in events if e.get("event") == "webphone.state.changed" and e.get("after") == "off"]
    assert offs == ["turned_off", "disconnected"], offs
    assert "webphone.task.failed" not in log, log[-3000:]


_REFUSE_MIC = """navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));"""


def test_a_refused_microphone_is_said_in_words_in_chinese(phone_server: ServerProcess, phone_browser: Any) -> None:
    """zh-CN labels, and the microphone refusal as the browser reports it (the fake UI always allows, so the page's
    getUserMedia is made to refuse as a person's "Block" does): nothing reaches the node."""
    from playwright.sync_api import expect

    context = phone_browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    context.add_init_script(_REFUSE_MIC)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"http://{HOST}:{phone_server.http_port}/agent")
        page.get_by_label("坐席工号").fill("1004")
        page.get_by_label("密码").fill("demo1004")
        page.get_by_role("button", name="登录").click()
        panel = page.get_by_role("region", name="电话")
        expect(panel.get_by_role("status")).to_contain_text("关闭")
        panel.get_by_role("button", name="使用浏览器电话").click()
        expect(panel.get_by_role("alert")).to_contain_text("浏览器未允许使用麦克风")
        expect(panel.get_by_role("status")).to_contain_text("关闭")
        expect(panel.get_by_role("button", name="重新开启浏览器电话")).to_be_visible()
        expect(panel.get_by_role("checkbox", name="自动接听来电")).not_to_be_checked()
        assert errors == []
    finally:
        context.close()
    assert '"aor": "1004"' not in phone_server.log_text()  # no binding was made


def _bindings(server: ServerProcess, agent: str) -> list[str]:
    events = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
    return [e["event"] for e in events if e.get("aor") == agent and e["event"].startswith("sip.binding.")]


def test_a_dropped_connection_takes_the_phone_down_and_the_page_brings_it_back(phone_server: ServerProcess,
                                                                               phone_browser: Any) -> None:
    """The page's WebSocket drops (Playwright's WebSocket routing closes it): the node turns the phone off and removes
    its binding at once; the page reconnects and turns its phone on again by itself."""
    from playwright.sync_api import expect

    context = phone_browser.new_context(viewport=VIEWPORT, locale="en-GB")
    page = context.new_page()
    routes: list[Any] = []
    sent: list[list[str]] = []

    def route(ws: Any) -> None:
        routes.append(ws)
        commands: list[str] = []
        sent.append(commands)
        server = ws.connect_to_server()

        def up(message: Any) -> None:
            frame = json.loads(message)
            commands.append(frame.get("command", ""))
            server.send(message)

        ws.on_message(up)
        server.on_message(lambda message: ws.send(message))

    page.route_web_socket(re.compile(r"/ws\?"), route)
    try:
        page.goto(f"http://{HOST}:{phone_server.http_port}/agent")
        page.get_by_label("Agent ID").fill("1001")
        page.get_by_label("Password").fill("demo1001")
        page.get_by_role("button", name="Sign in").click()
        panel = page.get_by_role("region", name="Phone")
        panel.get_by_role("button", name="Use browser phone").click()
        expect(panel.get_by_role("status")).to_contain_text("Ready", timeout=10_000)
        assert _bindings(phone_server, "1001") == ["sip.binding.added"]

        routes[0].close()  # the connection drops
        deadline = time.monotonic() + 10
        while len(_bindings(phone_server, "1001")) < 3 and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert _bindings(phone_server, "1001") == ["sip.binding.added", "sip.binding.removed", "sip.binding.added"]
        assert len(sent) >= 2 and "phone_on" in sent[-1]  # the page's new connection turned it on again
        expect(panel.get_by_role("status")).to_contain_text("Ready")
        expect(panel.get_by_role("alert")).to_have_count(0)  # a blink is not an error to show
    finally:
        context.close()
