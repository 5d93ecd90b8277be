"""Supervision (cti/call/supervision.py): the mixer path per mode, CallMedia with fake endpoints, the service's
refusals and events, the gateway commands and what agents see. Synthetic tones: caller 400 Hz, agent 1 kHz,
supervisor 1.8 kHz; "hears X" is decided by the Goertzel energy of X's frequency in what a listener is sent."""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from typing import Any

import pytest

from cti.call.legs import HangupCause, LegAnswered, LegEnded
from cti.call.media import CallMedia, MediaLeg
from cti.call.supervision import MixPath, Supervision, SupervisionMode, SupervisionPhase, SupervisionService
from cti.errors import ControlError
from cti.events.registry import Envelope
from cti.gateway.commands import CommandError, run_supervision_command
from cti.gateway.visibility import Scope, visible
from cti.tokens import Principal, Role
from sip import SessionDescription, negotiate
from sip.media import sine_tone
from sip.media.aio import PromptCache
from sip.rtp import AudioReceived, Codec, PortAllocator, RtpPacket, RtpSession, SessionConfig
from sip.rtp.g711 import decode, encode
from tests.cti.call.fakes import make_ports

TONES = {"caller": 400.0, "agent": 1000.0, "supervisor": 1800.0}
HEARS = {  # listener -> sources it must hear, per mode
    SupervisionMode.LISTEN: {"caller": {"agent"}, "agent": {"caller"}, "supervisor": {"caller", "agent"}},
    SupervisionMode.WHISPER: {"caller": {"agent"}, "agent": {"caller", "supervisor"},
                              "supervisor": {"caller", "agent"}},
    SupervisionMode.BARGE: {"caller": {"agent", "supervisor"}, "agent": {"caller", "supervisor"},
                            "supervisor": {"caller", "agent"}},
}


def goertzel(pcm: bytes, freq: float) -> float:
    """Amplitude (0..1 of full scale) of ``freq`` in 8 kHz 16-bit PCM."""
    samples = array("h", pcm)
    n = len(samples)
    if n == 0:
        return 0.0
    coeff = 2 * math.cos(2 * math.pi * freq / 8000)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / n / 32768


def heard(pcm: bytes) -> set[str]:
    return {who for who, f in TONES.items() if goertzel(pcm, f) > 0.02}


def tone(who: str, seconds: float) -> bytes:
    return sine_tone(TONES[who], seconds, 0.2)


# --- the pure mixer path ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", list(SupervisionMode))
def test_mix_path_each_listener_hears_what_its_mode_says(mode: SupervisionMode) -> None:
    path = MixPath(mode)
    out: dict[str, bytearray] = {who: bytearray() for who in TONES}
    audio = {who: tone(who, 1.0) for who in TONES}
    for k in range(40):  # 30 ms packets in, 20 ms ticks out (what SIPp's pcaps send)
        if k % 2 == 0:
            for who in TONES:
                j = (k // 2) * 480
                path.push(who, audio[who][j:j + 480])
        frames, _ = path.tick()
        if k >= 4:
            for who in TONES:
                out[who] += frames[who]
    for listener in TONES:
        assert heard(bytes(out[listener])) == HEARS[mode][listener], (mode, listener)


def test_mix_path_primes_caps_and_switches_mode_live() -> None:
    path = MixPath(SupervisionMode.LISTEN)
    path.push("caller", tone("caller", 0.02))
    frames, caller_frame = path.tick()
    assert heard(frames["agent"]) == set() and caller_frame == bytes(320)  # not primed yet: 1 frame < 2
    path.push("caller", tone("caller", 0.2))  # 10 frames: capped at 5
    assert path.dropped_bytes == 6 * 320
    path.push("supervisor", tone("supervisor", 0.1))
    frames, caller_frame = path.tick()
    assert heard(frames["agent"]) == {"caller"} and heard(caller_frame) == {"caller"}
    path.set_mode(SupervisionMode.BARGE)
    frames, _ = path.tick()
    assert heard(frames["caller"]) == {"supervisor"} and heard(frames["agent"]) == {"caller", "supervisor"}


# --- CallMedia with fake endpoints --------------------------------------------------------------------
PEER = ("127.0.0.1", 49000)


@dataclass
class FakeEndpoint:
    """An RTP endpoint with no socket: a real session core (μ-law, the peer at PEER), relay mode, and what it
    put on the wire, decoded (``sent_pcm``)."""

    sent_pcm: list[bytes] = field(default_factory=list)
    sent_audio: list[bytes] = field(default_factory=list)
    closed: bool = False
    local_port: int = 40000
    session: RtpSession = field(default_factory=lambda: RtpSession(SessionConfig(), now=0.0, remote=PEER))
    receiver: Any = None

    def send_pcm(self, pcm: bytes) -> None:
        self.sent_pcm.append(pcm)

    def send_audio(self, payload: bytes) -> None:
        self.sent_audio.append(payload)

    def divert(self, receiver: Any, *, on_close: Any = None) -> None:
        self.receiver = receiver

    def raw_sender(self) -> Any:
        return self.sendto

    def sendto(self, data: bytes, addr: Any) -> None:
        assert addr == PEER
        packet = RtpPacket.parse(data)
        self.sent_pcm.append(decode(Codec(packet.payload_type), packet.payload))

    def close(self) -> None:
        self.closed = True
        self.receiver = None


def feed(media: CallMedia, ep: FakeEndpoint, pcm: bytes, seq: int = 0) -> None:
    """``pcm`` arriving at ``ep`` from its peer: raw to the relay in relay mode, else through the session."""
    if ep.receiver is not None:
        ep.receiver(RtpPacket(payload_type=0, sequence_number=seq, timestamp=seq * 160, ssrc=7,
                              payload=encode(Codec.PCMU, pcm)).serialize(), PEER)
    else:
        media.on_rtp_event(ep, received(pcm, seq))


def fake_media() -> tuple[CallMedia, dict[str, FakeEndpoint]]:
    media = CallMedia(host="127.0.0.1", ports=PortAllocator(30000, 30100), prompts=PromptCache(), rtp_timeout=30,
                      on_digit=lambda d: None, on_timeout=lambda w: None)
    eps = {who: FakeEndpoint() for who in TONES}
    media.caller = MediaLeg(eps["caller"], None, None)  # type: ignore[arg-type]
    media.agent = MediaLeg(eps["agent"], None, None)  # type: ignore[arg-type]
    media.supervisor = MediaLeg(eps["supervisor"], None, None)  # type: ignore[arg-type]
    media.bridge()
    return media, eps


def received(pcm: bytes, seq: int = 0) -> AudioReceived:
    return AudioReceived(payload=b"\x00" * (len(pcm) // 2), pcm=pcm, payload_type=0, timestamp=seq * 160,
                         sequence_number=seq, ssrc=1, marker=False, now=0.0)  # type: ignore[arg-type]


def run_ticks(media: CallMedia, eps: dict[str, FakeEndpoint], ticks: int) -> dict[str, bytes]:
    audio = {who: tone(who, ticks * 0.02) for who in TONES}
    for ep in eps.values():
        ep.sent_pcm.clear()
    for k in range(ticks):
        for who, ep in eps.items():
            feed(media, ep, audio[who][k * 320:(k + 1) * 320], k)
        media.mix_tick(k * 0.02)
    return {who: b"".join(ep.sent_pcm[3:]) for who, ep in eps.items()}


async def test_call_media_mixes_per_mode_then_returns_to_plain_forwarding() -> None:
    media, eps = fake_media()
    feed(media, eps["caller"], tone("caller", 0.02))
    assert len(eps["agent"].sent_pcm) == 1 and not eps["supervisor"].sent_pcm  # the plain bridge (relayed)
    assert eps["caller"].receiver is not None and eps["agent"].receiver is not None
    path = MixPath(SupervisionMode.LISTEN)
    media.start_mixing(path)
    assert eps["caller"].receiver is None and eps["agent"].receiver is None  # the sessions decode for the mixer
    for mode in SupervisionMode:
        path.set_mode(mode)
        sent = run_ticks(media, eps, 20)
        for listener in TONES:
            assert heard(sent[listener]) == HEARS[mode][listener], (mode, listener)
    media.drop_supervisor()
    assert eps["supervisor"].closed and media.supervisor is None and media.mixing is None
    eps["agent"].sent_pcm.clear()
    feed(media, eps["caller"], tone("caller", 0.02), 100)
    assert len(eps["agent"].sent_pcm) == 1  # forwarded at once, as before


async def test_take_over_turns_the_supervisor_endpoint_into_the_agent() -> None:
    media, eps = fake_media()
    media.start_mixing(MixPath(SupervisionMode.BARGE))
    media.take_over()
    assert eps["agent"].closed and media.agent is not None and media.agent.endpoint is eps["supervisor"]
    assert media.mixing is None and media.bridged and media.role_of(eps["supervisor"]) == "agent"
    feed(media, eps["caller"], tone("caller", 0.02))
    feed(media, eps["supervisor"], tone("supervisor", 0.02))
    feed(media, eps["agent"], tone("agent", 0.02))  # the old agent: closed, ignored
    assert heard(b"".join(eps["supervisor"].sent_pcm)) == {"caller"}
    assert heard(b"".join(eps["caller"].sent_pcm)) == {"supervisor"}
    assert eps["agent"].sent_pcm == []


# --- the service and a supervision's life, with a fake call and a real CallMedia -----------------------
@dataclass
class FakePublisher:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def publish(self, type_: str, data: dict[str, Any]) -> None:
        self.events.append((type_, dict(data)))


@dataclass
class FakeDetail:
    agent: str | None = "1003"
    caller: str = "5551234"
    caller_name: str = ""


class FakeController:
    def __init__(self) -> None:
        self.supervisors = {"sup1": object(), "sup2": object()}
        self.calls: dict[str, Any] = {}
        self.publisher = FakePublisher()
        self.rtp_timeout = 30.0
        self.bindings: dict[str, list[object]] = {"sup1": [object()], "sup2": [object()]}
        self.registration = self

    def lookup(self, user: str) -> list[object]:
        return self.bindings.get(user, [])

    def binding(self, user: str) -> object | None:  # the calls' phone port
        bindings = self.lookup(user)
        return bindings[0] if bindings else None


class FakeCall:
    def __init__(self, controller: FakeController, call_id: str, media: CallMedia, connected: bool = True) -> None:
        from cti.call.shell import CallPhase

        self.id, self.media = call_id, media
        self.ports = make_ports(events=controller.publisher, phones=controller)
        self.phase = CallPhase.CONNECTED if connected else CallPhase.QUEUED
        self.agent_leg: object | None = object() if connected else None
        self.detail = FakeDetail()
        self.supervision: Supervision | None = None
        self.spawned: list[str] = []
        self.handed_over: tuple[object, str] | None = None
        controller.calls[call_id] = self

    def spawn_task(self, coro: Any, name: str) -> None:
        coro.close()
        self.spawned.append(name)

    def hand_over(self, leg: object, new_agent: str) -> None:
        self.handed_over = (leg, new_agent)
        self.media.take_over()


class FakeLeg:
    def __init__(self) -> None:
        self.cancelled = 0

    def cancel(self) -> None:
        self.cancelled += 1

    def bye(self) -> None:
        self.cancelled += 1


def code_of(call: Any) -> str:
    with pytest.raises(ControlError) as err:
        call()
    return err.value.code


async def test_service_refusals_have_stable_codes() -> None:
    c = FakeController()
    media, _ = fake_media()
    FakeCall(c, "c1", media)
    FakeCall(c, "c2", media, connected=False)
    svc = SupervisionService(c)  # type: ignore[arg-type]
    assert code_of(lambda: svc.supervise("nobody", "c1", "monitor")) == "unknown_supervisor"
    assert code_of(lambda: svc.supervise("sup1", "c1", "shout")) == "bad_mode"
    assert code_of(lambda: svc.supervise("sup1", "c9", "monitor")) == "unknown_call"
    assert code_of(lambda: svc.supervise("sup1", "c2", "monitor")) == "not_connected"
    c.bindings["sup1"] = []
    assert code_of(lambda: svc.supervise("sup1", "c1", "monitor")) == "no_supervisor_phone"
    c.bindings["sup1"] = [object()]
    svc.supervise("sup1", "c1", "monitor")
    assert c.calls["c1"].spawned and c.calls["c1"].supervision.phase is SupervisionPhase.DIALLING
    assert code_of(lambda: svc.supervise("sup2", "c1", "barge")) == "already_supervised"
    FakeCall(c, "c3", media)
    assert code_of(lambda: svc.supervise("sup1", "c3", "barge")) == "supervisor_busy"
    assert code_of(lambda: svc.end_supervision("sup2", "c1")) == "not_supervising"
    assert code_of(lambda: svc.take_over("sup1", "c1")) == "not_supervising"  # not answered yet
    svc.end_supervision("sup1", "c1")
    assert c.calls["c1"].supervision is None and c.publisher.events == []  # never started: nothing to announce


async def test_supervision_life_answered_mode_switch_hangup_and_take_over() -> None:
    c = FakeController()
    media = CallMedia(host="127.0.0.1", ports=PortAllocator(31000, 31100), prompts=PromptCache(), rtp_timeout=30,
                      on_digit=lambda d: None, on_timeout=lambda w: None)
    media.caller = MediaLeg(FakeEndpoint(), None, None)  # type: ignore[arg-type]
    media.agent = MediaLeg(FakeEndpoint(), None, None)  # type: ignore[arg-type]
    media.bridge()
    call = FakeCall(c, "c1", media)
    try:
        for round_ in ("hangup", "take_over"):
            sup = Supervision(call, "sup1", SupervisionMode.LISTEN)  # type: ignore[arg-type]
            call.supervision = sup
            offer = await media.offer_supervisor()
            answer = negotiate(SessionDescription.parse(offer), (Codec.PCMA,), "127.0.0.1", 45000).sdp
            sup.leg = FakeLeg()  # type: ignore[assignment]
            sup.on_leg_event(LegAnswered(leg=sup.leg, sdp=answer.serialize().encode()))  # type: ignore[arg-type]
            assert sup.phase is SupervisionPhase.ACTIVE and media.mixing is sup.path
            assert media.supervisor is not None and media.supervisor.codec is Codec.PCMA
            sup.set_mode(SupervisionMode.BARGE)
            if round_ == "hangup":
                sup.on_leg_event(LegEnded(leg=sup.leg, cause=HangupCause.REMOTE_BYE))  # type: ignore[arg-type]
                assert media.mixing is None and media.supervisor is None and call.supervision is None
            else:
                supervisor_endpoint = media.supervisor.endpoint
                sup.take_over()
                assert call.handed_over == (sup.leg, "sup1") and media.agent is not None
                assert media.agent.endpoint is supervisor_endpoint and media.mixing is None
        types = [(t, d.get("mode") or d.get("reason")) for t, d in c.publisher.events]
        assert types == [("supervision.started", "listen"), ("supervision.changed", "barge"),
                         ("supervision.ended", "supervisor_hung_up"),
                         ("supervision.started", "listen"), ("supervision.changed", "barge"),
                         ("supervision.ended", "taken_over")]
        assert all(d["agent_id"] == "1003" and d["supervisor_id"] == "sup1" for _, d in c.publisher.events)
    finally:
        await media.close()


# --- gateway commands and visibility ------------------------------------------------------------------
class CommandControl:
    def __init__(self) -> None:
        self.actions: list[tuple[str, ...]] = []

    def call_snapshot(self, call_id: str) -> dict[str, Any]:
        if call_id != "c1":
            raise ControlError("unknown_call", call_id, status=404)
        return {"call_id": "c1", "queue": "sales", "agent_id": "a1"}

    def supervise(self, supervisor_id: str, call_id: str, mode: str) -> None:
        if supervisor_id == "busy":
            raise ControlError("already_supervised", "taken")
        self.actions.append(("supervise", supervisor_id, call_id, mode))

    def end_supervision(self, supervisor_id: str, call_id: str) -> None:
        self.actions.append(("end", supervisor_id, call_id))

    def take_over(self, supervisor_id: str, call_id: str) -> None:
        self.actions.append(("take_over", supervisor_id, call_id))


SUP = Principal(role=Role.SUPERVISOR, subject="s1", expires_at=1e12)
SUP_SCOPE = Scope(agents=frozenset({"a1"}), queues=frozenset({"sales"}))


def command_error(*args: Any) -> str:
    with pytest.raises(CommandError) as err:
        run_supervision_command(*args)
    return err.value.code


def test_supervision_commands_are_role_and_queue_checked() -> None:
    control = CommandControl()
    for name in ("monitor", "whisper", "barge", "take_over", "end_supervision"):
        snapshot = run_supervision_command(control, SUP, SUP_SCOPE, name, {"call_id": "c1"})  # type: ignore[arg-type]
        assert snapshot["call_id"] == "c1"
    assert control.actions == [("supervise", "s1", "c1", "monitor"), ("supervise", "s1", "c1", "whisper"),
                               ("supervise", "s1", "c1", "barge"), ("take_over", "s1", "c1"), ("end", "s1", "c1")]
    agent = Principal(role=Role.AGENT, subject="a1", expires_at=1e12)
    assert command_error(control, agent, SUP_SCOPE, "monitor", {"call_id": "c1"}) == "forbidden"
    other = Scope(agents=frozenset(), queues=frozenset({"support"}))
    assert command_error(control, SUP, other, "barge", {"call_id": "c1"}) == "forbidden"
    assert command_error(control, SUP, SUP_SCOPE, "barge", {"call_id": "c1", "supervisor_id": "s2"}) == "forbidden"
    assert command_error(control, SUP, SUP_SCOPE, "barge", {}) == "bad_args"
    assert command_error(control, SUP, SUP_SCOPE, "barge", {"call_id": "c9"}) == "unknown_call"
    assert command_error(control, SUP, SUP_SCOPE, "shout", {"call_id": "c1"}) == "unknown_command"
    operator = Principal(role=Role.OPERATOR, subject="op", expires_at=1e12)
    everything = Scope(agents=None, queues=None)
    assert command_error(control, operator, everything, "monitor", {"call_id": "c1"}) == "bad_args"
    assert command_error(control, operator, everything, "monitor", {"call_id": "c1", "supervisor_id": "busy"}) \
        == "already_supervised"
    run_supervision_command(control, operator, everything, "whisper", {"call_id": "c1", "supervisor_id": "sup1"})  # type: ignore[arg-type]
    assert control.actions[-1] == ("supervise", "sup1", "c1", "whisper")


@pytest.mark.parametrize(
    ("type_", "extra", "agent_sees"),
    [
        ("supervision.started", {"mode": "listen"}, False),
        ("supervision.started", {"mode": "whisper"}, True),
        ("supervision.started", {"mode": "barge"}, True),
        ("supervision.changed", {"mode": "listen", "previous_mode": "barge"}, True),
        ("supervision.changed", {"mode": "whisper", "previous_mode": "listen"}, True),
        ("supervision.ended", {"reason": "taken_over"}, True),
    ],
)
def test_agent_is_told_when_it_can_hear_the_supervisor(type_: str, extra: dict[str, str], agent_sees: bool) -> None:
    data = {"supervision_id": "sv-1", "supervisor_id": "s1", "agent_id": "a1", "call_id": "c1", **extra}
    envelope = Envelope.new(type_, data, node="n", now=0.0)
    scope = Scope(agents=frozenset({"a1"}), queues=frozenset({"sales"}))
    assert visible(Principal(role=Role.AGENT, subject="a1", expires_at=1e12), scope, envelope) is agent_sees
    assert visible(Principal(role=Role.AGENT, subject="a2", expires_at=1e12), scope, envelope) is False
    assert visible(SUP, SUP_SCOPE, envelope) is True
