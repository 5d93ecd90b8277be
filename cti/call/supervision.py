"""Supervisors on live calls: silent monitoring, whisper, barge-in and take-over (docs/supervision.md).

A supervision is one extra SIP leg per call, to the supervisor's registered softphone (RFC 3261
§13 INVITE with our SDP offer, RFC 3264), owned by the :class:`~cti.call.shell.Call` as
``call.supervision``. When the phone answers, the call's media leaves the plain two-party
forwarding for the mixer path: :class:`MixPath` (pure) collects the decoded frames of the three
legs and mixes them with :class:`sip.media.Mixer`; a :class:`sip.media.FrameClock`-paced task in the
call's TaskGroup ticks it every 20 ms through :meth:`cti.call.media.CallMedia.mix_tick`. Switching mode
changes the mixer's rules only (no re-dial); ending the supervision returns to plain forwarding.

Take-over: the supervisor's leg replaces the agent's (``Call.hand_over``): the agent is released
through the normal ACD ``Hangup`` (wrap-up) and its leg gets a BYE, the caller stays connected.

Errors are :class:`~cti.floor.control.ControlError` with stable codes (``not_connected``,
``no_supervisor_phone``, ``already_supervised``, ``supervisor_busy``, ``not_supervising``,
``bad_mode``, ``unknown_supervisor``).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import structlog

from cti.call.detail import CallPhase
from cti.call.legs import LegAnswered, LegEnded, LegEvent, LegFailed, LegReinvited, OutboundLeg
from cti.call.useragent import PhoneInvite, answer_reinvite
from cti.errors import ControlError
from sip.errors import LocalSipError, RemoteSipError
from sip.ids import new_tag
from sip.media import FRAME_BYTES, FrameClock, Mixer, MixMode, ParticipantId
from sip.registrar import Binding
from sip.rtp.errors import PortsExhaustedError

if TYPE_CHECKING:
    from acd import CallId
    from cti.call.shell import Call

log = structlog.get_logger(__name__)

CALLER, AGENT, SUPERVISOR = ParticipantId("caller"), ParticipantId("agent"), ParticipantId("supervisor")
_SILENCE = bytes(FRAME_BYTES)
PRIME_FRAMES = 2  # playout delay per leg before its audio enters the mix (absorbs 30 ms packets, jitter)
MAX_FRAMES = 5  # per-leg backlog cap (100 ms): older audio is dropped so latency cannot grow


class SupervisionMode(enum.Enum):
    """The public modes (event ``mode`` values) and the mixer preset of each."""

    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"

    @property
    def mix(self) -> MixMode:
        return {"listen": MixMode.MONITOR, "whisper": MixMode.WHISPER, "barge": MixMode.BARGE}[self.value]

    @classmethod
    def parse(cls, name: str) -> SupervisionMode:
        """``monitor`` (the command name) or ``listen``, ``whisper``, ``barge``. Raises: ControlError(bad_mode)."""
        try:
            return cls("listen" if name == "monitor" else name)
        except ValueError as exc:
            raise ControlError("bad_mode", f"unknown supervision mode {name!r}", status=400) from exc


class SupervisionPhase(enum.Enum):
    DIALLING = "dialling"
    ACTIVE = "active"
    ENDED = "ended"


class MixPath:
    """The mixer path of one supervised call (pure: frames in, frames out, no clock).

    Received PCM of any packet size (SIPp plays 30 ms packets) is re-cut into 20 ms frames per leg.
    A leg's audio enters the mix once :data:`PRIME_FRAMES` frames are buffered (and again after it
    ran dry); more than :data:`MAX_FRAMES` buffered drops the oldest audio.
    """

    def __init__(self, mode: SupervisionMode) -> None:
        self.mixer = Mixer([CALLER, AGENT, SUPERVISOR])
        self.mode = mode
        self.mixer.set_mode(mode.mix, caller=CALLER, agent=AGENT, supervisor=SUPERVISOR)
        self._buffers = {pid: bytearray() for pid in (CALLER, AGENT, SUPERVISOR)}
        self._primed = {pid: False for pid in (CALLER, AGENT, SUPERVISOR)}
        self.dropped_bytes = 0

    def set_mode(self, mode: SupervisionMode) -> None:
        self.mode = mode
        self.mixer.set_mode(mode.mix, caller=CALLER, agent=AGENT, supervisor=SUPERVISOR)

    def push(self, role: str, pcm: bytes) -> None:
        buf = self._buffers.get(ParticipantId(role))
        if buf is None:
            return
        buf.extend(pcm)
        excess = len(buf) - MAX_FRAMES * FRAME_BYTES
        if excess > 0:
            del buf[:excess]
            self.dropped_bytes += excess

    def tick(self) -> tuple[Mapping[str, bytes], bytes]:
        """Mix one frame; returns each listener's frame and the caller's own frame of this tick."""
        caller_frame = _SILENCE
        for pid, buf in self._buffers.items():
            if not self._primed[pid]:
                self._primed[pid] = len(buf) >= PRIME_FRAMES * FRAME_BYTES
            if not self._primed[pid]:
                continue
            if len(buf) < FRAME_BYTES:
                self._primed[pid] = False  # ran dry: wait for a new playout delay
                continue
            frame = bytes(buf[:FRAME_BYTES])
            del buf[:FRAME_BYTES]
            self.mixer.push(pid, frame)
            if pid == CALLER:
                caller_frame = frame
        return {str(pid): frame for pid, frame in self.mixer.mix().items()}, caller_frame


class Supervision:
    """One supervisor on one call: its leg, its mode, the mixer task. Owned by ``call.supervision``."""

    def __init__(self, call: Call, supervisor_id: str, mode: SupervisionMode) -> None:
        self.call = call
        self.supervisor_id = supervisor_id
        self.mode = mode
        self.id = f"sv-{new_tag()}"
        self.phase = SupervisionPhase.DIALLING
        self.leg: OutboundLeg | None = None
        self.path: MixPath | None = None
        self.agent_id = call.detail.agent or ""
        self._announced = False

    # ------------------------------------------------------------------------------ signalling

    async def dial(self, binding: Binding) -> None:
        """Open the supervisor's endpoint and INVITE its phone (runs in the call's TaskGroup)."""
        try:
            sdp = await self.call.media.offer_supervisor(binding.transport)
        except (OSError, PortsExhaustedError) as exc:  # no media port to be had
            log.warning("call.supervision.no_media", error=str(exc))
            self.end("no_media_port")
            return
        if self.phase is not SupervisionPhase.DIALLING or self.call.supervision is not self:
            self.call.media.drop_supervisor()  # ended while the port was being opened
            return
        try:
            self.leg = _invite(self.call, self, binding, sdp)
        except (ControlError, RemoteSipError, ValueError) as exc:
            log.warning("call.supervision.unreachable", supervisor=self.supervisor_id, error=str(exc))
            self.end("unreachable")
            return
        log.info("call.supervision.dialled", supervisor=self.supervisor_id, mode=self.mode.value)

    def owns(self, leg: object) -> bool:
        return self.leg is not None and leg is self.leg

    def on_leg_event(self, event: LegEvent) -> None:
        match event:
            case LegAnswered():
                self._answered(event)
            case LegFailed():
                log.info("call.supervision.failed", supervisor=self.supervisor_id, status=event.status)
                self.end("not_answered")
            case LegEnded():
                self.end("supervisor_hung_up")
            case LegReinvited():
                self._reinvite(event)
            case _:
                pass

    def _answered(self, event: LegAnswered) -> None:
        if self.phase is not SupervisionPhase.DIALLING:
            event.leg.bye()
            return
        try:
            self.call.media.supervisor_answered(event.sdp)
        except RemoteSipError as exc:
            log.warning("call.supervision.bad_answer", error=str(exc))
            self.end("bad_answer")
            return
        self.phase = SupervisionPhase.ACTIVE
        self.path = MixPath(self.mode)
        self.call.media.start_mixing(self.path)
        self.call.spawn_task(self._run_mixer(self.path), f"supervision-{self.id}")
        self._announced = True
        self._publish("supervision.started", mode=self.mode.value)
        log.info("call.supervision.started", supervisor=self.supervisor_id, mode=self.mode.value)

    def _reinvite(self, event: LegReinvited) -> None:
        answer_reinvite(event, self.call.media.supervisor, self.call.media.host, self.call.ports.settings.rtp_timeout,
                        "supervisor")

    # ------------------------------------------------------------------------------ media

    async def _run_mixer(self, path: MixPath) -> None:
        """Tick ``path`` every 20 ms on an anchored schedule until the media stops using it."""
        loop = asyncio.get_running_loop()
        clock = FrameClock(start=loop.time())
        media = self.call.media
        while media.mixing is path:
            await asyncio.sleep(max(0.0, clock.next_due() - loop.time()))
            for index in clock.due(loop.time()):
                if media.mixing is not path:
                    return
                media.mix_tick(clock.due_time(index))

    # ------------------------------------------------------------------------------ commands

    def set_mode(self, mode: SupervisionMode) -> None:
        previous, self.mode = self.mode, mode
        if self.path is not None:
            self.path.set_mode(mode)
        if self.phase is SupervisionPhase.ACTIVE and previous is not mode:
            self._publish("supervision.changed", mode=mode.value, previous_mode=previous.value)
            log.info("call.supervision.changed", supervisor=self.supervisor_id, mode=mode.value,
                     previous=previous.value)

    def end(self, reason: str) -> None:
        """Leave the call (BYE or CANCEL to the supervisor's phone); the call goes back to the plain bridge."""
        if self.phase is SupervisionPhase.ENDED:
            return
        self.phase = SupervisionPhase.ENDED
        if self.call.supervision is self:
            self.call.supervision = None
        self.call.media.drop_supervisor()
        if self.leg is not None:
            self.leg.cancel()
        if self._announced:
            self._publish("supervision.ended", reason=reason)
        log.info("call.supervision.ended", supervisor=self.supervisor_id, reason=reason)

    def take_over(self) -> None:
        """The supervisor's leg replaces the agent's. Raises: ControlError(not_supervising)."""
        if self.phase is not SupervisionPhase.ACTIVE or self.leg is None:
            raise ControlError("not_supervising", "the supervisor's phone has not answered yet")
        self.phase = SupervisionPhase.ENDED
        self.call.supervision = None
        self.call.hand_over(self.leg, self.supervisor_id)
        self._publish("supervision.ended", reason="taken_over")
        log.info("call.supervision.taken_over", supervisor=self.supervisor_id, agent=self.agent_id)

    def _publish(self, type_: str, **extra: str) -> None:
        self.call.ports.events.publish(type_, {
            "supervision_id": self.id, "supervisor_id": self.supervisor_id, "agent_id": self.agent_id,
            "call_id": self.call.id, **extra,
        })


class LiveCalls(Protocol):
    """What supervision needs of the node (the registry, :class:`cti.node.controller.CallController`): its live
    calls and the configured supervisors. A supervisor's phone is found through the call's own phone port."""

    @property
    def calls(self) -> Mapping[CallId, Call]: ...
    @property
    def supervisors(self) -> Mapping[str, object]: ...


class SupervisionService:
    """The Control-facing operations (``NodeControl.supervise`` & co.); the state lives on the calls."""

    def __init__(self, calls: LiveCalls) -> None:
        self.c = calls

    def _call(self, call_id: str) -> Call:
        from acd import CallId

        call = self.c.calls.get(CallId(call_id))
        if call is None:
            raise ControlError("unknown_call", f"no live call {call_id!r}", status=404)
        return call

    def _own(self, supervisor_id: str, call_id: str) -> Supervision:
        current = self._call(call_id).supervision
        if current is None or current.supervisor_id != supervisor_id:
            raise ControlError("not_supervising", f"{supervisor_id!r} is not supervising call {call_id!r}")
        return current

    def supervise(self, supervisor_id: str, call_id: str, mode: str) -> None:
        """Join a connected call in ``mode``, or switch the mode of one's own supervision.

        Raises:
            ControlError: unknown_supervisor, bad_mode, unknown_call, not_connected, already_supervised,
                supervisor_busy, no_supervisor_phone.
        """
        if supervisor_id not in self.c.supervisors:
            raise ControlError("unknown_supervisor", f"no supervisor {supervisor_id!r}", status=404)
        wanted = SupervisionMode.parse(mode)
        call = self._call(call_id)
        current = call.supervision
        if current is not None:
            if current.supervisor_id != supervisor_id:
                raise ControlError("already_supervised", f"call {call_id!r} is supervised by {current.supervisor_id}")
            current.set_mode(wanted)
            return
        if call.phase is not CallPhase.CONNECTED or call.agent_leg is None or call.media.caller is None:
            raise ControlError("not_connected", "only a call connected to an agent can be supervised")
        if any(c.supervision is not None and c.supervision.supervisor_id == supervisor_id
               for c in self.c.calls.values()):
            raise ControlError("supervisor_busy", f"{supervisor_id!r} already supervises another call")
        binding = call.ports.phones.binding(supervisor_id)
        if binding is None:
            raise ControlError("no_supervisor_phone", f"{supervisor_id!r} has no registered phone")
        supervision = Supervision(call, supervisor_id, wanted)
        call.supervision = supervision
        call.spawn_task(supervision.dial(binding), f"supervision-dial-{supervision.id}")

    def end_supervision(self, supervisor_id: str, call_id: str) -> None:
        """Raises: ControlError(unknown_call, not_supervising)."""
        self._own(supervisor_id, call_id).end("supervisor_left")

    def take_over(self, supervisor_id: str, call_id: str) -> None:
        """Raises: ControlError(unknown_call, not_supervising)."""
        self._own(supervisor_id, call_id).take_over()


def _invite(call: Call, supervision: Supervision, binding: Binding, sdp: bytes) -> OutboundLeg:
    """INVITE the supervisor's registered phone (auto-answer), as the call does for agents."""
    caller = call.detail.caller or "anonymous"
    display = f"{supervision.mode.value} {supervision.agent_id}: {call.detail.caller_name or caller}"
    invite = PhoneInvite(caller=caller, display=display, callee=supervision.supervisor_id, call_id=call.id,
                         supervision=supervision.id, auto_answer=True)
    try:
        return call.ports.phones.invite(call, binding, invite, sdp)
    except LocalSipError as exc:
        raise ControlError("no_supervisor_phone", "the supervisor's binding has no usable address") from exc


__all__ = ["MixPath", "Supervision", "SupervisionMode", "SupervisionPhase", "SupervisionService"]
