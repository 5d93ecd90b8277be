"""WebSocket frame encoding: JSON text frames (``cti.json``, the default) or msgpack binary frames (``cti.msgpack``).

Outgoing frames are plain mappings (``hello``, ``reply``, ``error``) or event envelopes (docs/events.md). Incoming
frames are decoded by their WebSocket kind, whatever the negotiated subprotocol: text is JSON, binary is msgpack.
:class:`EncodedCache` keeps the encoding of the last few envelopes so that fanning one event out to thousands of
connections encodes it once per encoding.

Errors::

    FrameError   code: bad_frame (not decodable, or not an object)
"""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

import msgpack

from cti import jsonbytes
from cti.errors import CtiError
from cti.events.registry import Envelope, EnvelopeError

__all__ = ["EncodedCache", "Encoding", "FrameError", "OutFrame", "decode_frame", "encode_frame"]

OutFrame = str | bytes
"""A frame ready to send: ``str`` goes as a text frame, ``bytes`` as a binary frame."""

_MAX_FRAME: Final = 64 * 1024


class Encoding(enum.Enum):
    """Frame encoding, named after its WebSocket subprotocol."""

    JSON = "cti.json"
    MSGPACK = "cti.msgpack"

    @classmethod
    def from_protocol(cls, protocol: str | None) -> Encoding:
        """The encoding for the negotiated subprotocol (JSON when none was negotiated)."""
        return cls.MSGPACK if protocol == cls.MSGPACK.value else cls.JSON

    # Members are singletons and compare by identity: hash them so too (Enum's own __hash__ is Python code, run
    # for every frame cached per encoding).
    __hash__ = object.__hash__


class FrameError(CtiError):
    """An incoming frame could not be decoded into an object."""

    code = "bad_frame"


def encode_frame(message: Mapping[str, Any], encoding: Encoding) -> OutFrame:
    """Encode a control frame (``hello``, ``reply``, ``error``).

    Raises:
        TypeError, ValueError: ``message`` holds a value the encoding cannot carry (a programming error).
    """
    if encoding is Encoding.MSGPACK:
        return bytes(msgpack.packb(message, use_bin_type=True))
    return jsonbytes.dumps(message).decode()


def decode_frame(raw: str | bytes) -> dict[str, Any]:
    """Decode an incoming frame: ``str`` as JSON, ``bytes`` as msgpack.

    Raises:
        FrameError: too large, not decodable, or not an object with string keys.
    """
    if len(raw) > _MAX_FRAME:
        raise FrameError(f"frame larger than {_MAX_FRAME} bytes")
    try:
        decoded = json.loads(raw) if isinstance(raw, str) else msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except Exception as exc:  # json and msgpack raise several unrelated exception types on garbage
        kind = "JSON" if isinstance(raw, str) else "msgpack"
        raise FrameError(f"frame is not valid {kind}") from exc
    if not isinstance(decoded, dict):
        raise FrameError(f"frame must be an object, got {type(decoded).__name__}")
    return decoded


class EncodedCache:
    """The encoded form of recently sent envelopes, keyed by (event id, encoding); at most ``size`` entries."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, Encoding], OutFrame] = OrderedDict()

    def json_frame(self, envelope: Envelope) -> bytes:
        """``envelope`` as compact UTF-8 JSON (what the replay window keeps), its text frame cached for the live
        fan-out; empty bytes when ``data`` cannot be encoded (each session then logs and skips it)."""
        try:
            raw = envelope.to_json()
        except EnvelopeError:
            return b""
        self.put(envelope, Encoding.JSON, raw.decode())
        return raw

    def put(self, envelope: Envelope, encoding: Encoding, frame: OutFrame) -> None:
        """Remember ``frame`` as the encoding of ``envelope``."""
        self._entries[(envelope.id, encoding)] = frame
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def encode(self, envelope: Envelope, encoding: Encoding) -> OutFrame:
        """The frame for ``envelope``.

        Raises:
            EnvelopeError: ``data`` cannot be encoded.
        """
        key = (envelope.id, encoding)
        frame = self._entries.get(key)
        if frame is None:
            frame = envelope.to_msgpack() if encoding is Encoding.MSGPACK else envelope.to_json().decode()
            self.put(envelope, encoding, frame)
        return frame
