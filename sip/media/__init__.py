"""Media: PCM frames, prompt player, recorder, mixer and RTP relay (see docs/media-mixing.md).

Other packages import only the names below: the sans-I/O cores. The asyncio adapters
(``PromptCache``, ``Recording``, ``UdpRelay``, ``EndpointRelay``, ``DatagramSender``) live in ``sip.media.aio`` and are
imported from there explicitly, so importing ``sip.media`` imports no adapter.
"""

from sip.media.errors import FrameSizeError, MediaError, PromptLoadError, RecordingError, SerialError
from sip.media.events import (
    DtmfReceived,
    LegSide,
    MediaEvent,
    ParticipantId,
    PeerLatched,
    PlaybackFinished,
    PlaybackStopped,
    RecordingSerial,
    StopReason,
)
from sip.media.frames import FRAME_BYTES, FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE, FrameClock, sine_tone
from sip.media.mixer import Mixer, MixMode, mode_rules
from sip.media.player import DueFrame, Player, PlayerState, PlayItem, Prompt, Silence, Tone
from sip.media.prompts import load_wav
from sip.media.recfiles import RecordingInfo, Recovered, RecoveryAction, recover_partials
from sip.media.recorder import Channel, LegTimeline, StereoAssembler, TapFrame, TapSource
from sip.media.relay import DtmfMode, LegConfig, Relay
from sip.media.serial import SerialAllocator, format_serial, parse_serial, scan_last_seq

__all__ = [
    "FRAME_BYTES",
    "FRAME_SAMPLES",
    "FRAME_SECONDS",
    "SAMPLE_RATE",
    "Channel",
    "DtmfMode",
    "DtmfReceived",
    "DueFrame",
    "FrameClock",
    "FrameSizeError",
    "LegConfig",
    "LegSide",
    "LegTimeline",
    "MediaError",
    "MediaEvent",
    "MixMode",
    "Mixer",
    "ParticipantId",
    "PeerLatched",
    "PlayItem",
    "PlaybackFinished",
    "PlaybackStopped",
    "Player",
    "PlayerState",
    "Prompt",
    "PromptLoadError",
    "RecordingError",
    "RecordingInfo",
    "RecordingSerial",
    "Recovered",
    "RecoveryAction",
    "Relay",
    "SerialAllocator",
    "SerialError",
    "Silence",
    "StereoAssembler",
    "StopReason",
    "TapFrame",
    "TapSource",
    "Tone",
    "format_serial",
    "load_wav",
    "mode_rules",
    "parse_serial",
    "recover_partials",
    "scan_last_seq",
    "sine_tone",
]
