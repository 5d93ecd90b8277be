"""G.711 μ-law (PCMU, PT 0) and A-law (PCMA, PT 8) codecs (ITU-T G.711, RFC 3551 §4.5.14).

PCM is 8 kHz, 16-bit signed, native byte order (little-endian on our hosts), mono: the
format ``audioop`` works in. One byte of G.711 is one sample, so a 20 ms frame is 160
bytes of G.711 and 320 bytes of PCM.

The work is done by ``audioop``: the standard library module on Python 3.11/3.12 (where
importing it warns that it is deprecated) and the ``audioop-lts`` distribution, which
provides the same import name, on 3.13+.
"""

from __future__ import annotations

import enum
import warnings

from sip.rtp.errors import CodecError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = [
    "Codec",
    "alaw_to_ulaw",
    "decode",
    "decode_alaw",
    "decode_ulaw",
    "encode",
    "encode_alaw",
    "encode_ulaw",
    "transcode",
    "ulaw_to_alaw",
]

_WIDTH = 2


class Codec(enum.IntEnum):
    """The G.711 codecs by their static RTP payload type (RFC 3551 Table 4)."""

    PCMU = 0
    PCMA = 8

    @property
    def encoding_name(self) -> str:
        """The SDP ``a=rtpmap`` encoding name."""
        return self.name


def _check_pcm(pcm: bytes) -> None:
    if len(pcm) % _WIDTH:
        raise CodecError(f"PCM length {len(pcm)} is not a whole number of 16-bit samples")


def encode_ulaw(pcm: bytes) -> bytes:
    """Encode 16-bit linear PCM to μ-law.

    Raises:
        CodecError: ``pcm`` has an odd length.
    """
    _check_pcm(pcm)
    return audioop.lin2ulaw(pcm, _WIDTH)


def decode_ulaw(data: bytes) -> bytes:
    """Decode μ-law to 16-bit linear PCM (never fails: every byte is a valid sample)."""
    return audioop.ulaw2lin(data, _WIDTH)


def encode_alaw(pcm: bytes) -> bytes:
    """Encode 16-bit linear PCM to A-law.

    Raises:
        CodecError: ``pcm`` has an odd length.
    """
    _check_pcm(pcm)
    return audioop.lin2alaw(pcm, _WIDTH)


def decode_alaw(data: bytes) -> bytes:
    """Decode A-law to 16-bit linear PCM (never fails: every byte is a valid sample)."""
    return audioop.alaw2lin(data, _WIDTH)


def encode(codec: Codec, pcm: bytes) -> bytes:
    """Encode 16-bit linear PCM with ``codec``.

    Raises:
        CodecError: ``pcm`` has an odd length.
    """
    return encode_ulaw(pcm) if codec is Codec.PCMU else encode_alaw(pcm)


def decode(codec: Codec, data: bytes) -> bytes:
    """Decode ``data`` encoded with ``codec`` to 16-bit linear PCM."""
    return decode_ulaw(data) if codec is Codec.PCMU else decode_alaw(data)


def ulaw_to_alaw(data: bytes) -> bytes:
    """Transcode μ-law to A-law (through linear PCM)."""
    return audioop.lin2alaw(audioop.ulaw2lin(data, _WIDTH), _WIDTH)


def alaw_to_ulaw(data: bytes) -> bytes:
    """Transcode A-law to μ-law (through linear PCM)."""
    return audioop.lin2ulaw(audioop.alaw2lin(data, _WIDTH), _WIDTH)


def transcode(data: bytes, source: Codec, target: Codec) -> bytes:
    """Transcode G.711 ``data`` from ``source`` to ``target`` (a copy when they are equal)."""
    if source is target:
        return bytes(data)
    return ulaw_to_alaw(data) if source is Codec.PCMU else alaw_to_ulaw(data)
