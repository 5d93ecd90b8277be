"""Events emitted by the media cores (player, relay).

All are frozen, slotted, keyword-only dataclasses under :class:`MediaEvent`; timestamps
are the ``now`` the caller passed in. Dispatch on them with ``match`` and end with
``assert_never``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NewType

ParticipantId = NewType("ParticipantId", str)
"""A participant of a mixer (usually one call leg, e.g. the dialog id of that leg)."""

RecordingSerial = NewType("RecordingSerial", str)
"""A recording serial ``YYYYMMDD-<site>-<seq>``, see :mod:`sip.media.serial`."""


class StopReason(Enum):
    """Why a playback ended before its last frame."""

    REQUESTED = "requested"
    BARGE_IN = "barge_in"
    REPLACED = "replaced"


class LegSide(Enum):
    """The two legs of a relay. By convention A is the caller (trunk) leg, B the agent leg."""

    A = "a"
    B = "b"

    @property
    def other(self) -> LegSide:
        """The opposite leg."""
        return LegSide.B if self is LegSide.A else LegSide.A


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaEvent:
    """Base class of every media event."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackFinished(MediaEvent):
    """Every item was played; ``at`` is the end time of the last frame."""

    at: float
    frames_played: int
    frames_skipped: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackStopped(MediaEvent):
    """Playback was cut short (barge-in, explicit stop, or a new play replacing it)."""

    at: float
    reason: StopReason
    frames_played: int
    frames_skipped: int
    digit: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived(MediaEvent):
    """An RFC 4733 telephone-event ended on a relayed leg (reported once per event)."""

    at: float
    side: LegSide
    digit: str
    duration: int
    """Event duration in RTP timestamp units (1/8000 s for G.711 streams)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerLatched(MediaEvent):
    """The relay learned (or changed) a leg's remote address from its first packet."""

    at: float
    side: LegSide
    addr: tuple[str, int]
