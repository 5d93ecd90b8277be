"""Errors of the media layer (prompt player, recorder, mixer, relay).

Exception tree::

    MediaError                 base of everything sip.media raises
    ├── FrameSizeError         a PCM frame is not 320 bytes (20 ms of 8 kHz 16-bit mono)
    ├── PromptLoadError        a prompt file is missing, unreadable or not a PCM WAV
    ├── RecordingError         a recording could not be opened, written or finalised
    └── SerialError            a recording serial is malformed or the site name is invalid

Every error carries a stable ``code`` string for API-facing messages. Lower-level
exceptions (``OSError``, ``wave.Error``, ``audioop.error``) are translated at the module
boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base class of every error raised by ``sip.media``."""

    code = "media_error"


class FrameSizeError(MediaError):
    """A PCM frame does not hold exactly one 20 ms frame (320 bytes)."""

    code = "media_frame_size"


class PromptLoadError(MediaError):
    """A prompt could not be loaded (missing file, not a WAV, unsupported encoding)."""

    code = "media_prompt_load_failed"


class RecordingError(MediaError):
    """A recording could not be opened, written or finalised."""

    code = "media_recording_failed"


class SerialError(MediaError):
    """A recording serial or a site name is malformed."""

    code = "media_serial_invalid"
