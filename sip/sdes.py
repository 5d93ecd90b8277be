"""SDES key exchange in SDP (RFC 4568): the ``a=crypto`` attribute, parsed and generated (pure).

Syntax (RFC 4568 §9.1)::

    a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]
    key-params = "inline:" <base64 of key || salt> ["|" lifetime] ["|" MKI ":" length]

The node serves one suite, ``AES_CM_128_HMAC_SHA1_80`` (§6.2.1: a 128-bit key and a 112-bit salt,
30 bytes before base64), with one key, no MKI and no session parameters. Lines of other suites are
skipped (§7.1.1: the answerer picks one crypto attribute it supports), and so are lines of our suite
that carry what we cannot honour (an MKI, several keys, session parameters such as
``UNENCRYPTED_SRTP`` or ``KDR``): §7.1.1 "If the answerer does not support ... it MUST NOT accept
that crypto attribute". A line of our suite that breaks the grammar (a tag that is not 1-9 digits,
no ``inline:``, a key that is not base64 of 30 bytes, a lifetime that is not a number or power of
two) is an error: :class:`SdesError`, answered 488 like the node's other SDP refusals.

Keys must never travel in clear: the node offers and accepts ``a=crypto`` only on legs whose SIP
transport is TLS (RFC 4568 §8.3: "the SDP MUST be protected by some security mechanism"); that
policy is the caller's (``cti.call.media``), this module only reads and writes the lines.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass

from sip.sdp import Attribute, MediaDescription, SdpNegotiationError

__all__ = [
    "KEY_LENGTH", "SUITE", "CryptoAttribute", "SdesError", "SrtpKeys", "SrtpRequiredError", "crypto_attributes",
    "new_crypto", "select_crypto",
]

SUITE = "AES_CM_128_HMAC_SHA1_80"
KEY_LENGTH = 30  # 16-byte master key || 14-byte master salt (RFC 4568 §6.2.1, RFC 3711 §8.2)
_TAG = re.compile(r"[0-9]{1,9}")
_LIFETIME = re.compile(r"(2\^[0-9]{1,2}|[0-9]{1,20})")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class SdesError(SdpNegotiationError):
    """An ``a=crypto`` line of our suite that is not valid RFC 4568 (answered 488)."""


class SrtpRequiredError(SdesError):
    """Plain RTP where the local policy requires SRTP (``media.srtp: mandatory`` on a TLS leg; 488)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CryptoAttribute:
    """One usable ``a=crypto`` line: its tag, suite and 30-byte key||salt (``key``)."""

    tag: int
    key: bytes
    suite: str = SUITE

    def __post_init__(self) -> None:
        if not 0 <= self.tag <= 999_999_999 or len(self.key) != KEY_LENGTH or self.suite != SUITE:
            raise SdesError(f"not a usable crypto attribute: tag {self.tag}, {len(self.key)}-byte key, {self.suite}")

    def attribute(self) -> Attribute:
        """The SDP attribute (``a=crypto:<tag> AES_CM_128_HMAC_SHA1_80 inline:<base64>``)."""
        return Attribute(name="crypto", value=f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}")

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute | None:
        """Read the value of an ``a=crypto`` attribute.

        Returns None for a line we skip: another suite, or our suite with an MKI, several keys or
        session parameters.

        Raises:
            SdesError: the line is not RFC 4568 §9.1 grammar, or our suite with a key that is not
                base64 of 30 bytes.
        """
        parts = value.split()
        if len(parts) < 3 or not _TAG.fullmatch(parts[0]):
            raise SdesError("an a=crypto line needs <tag> <suite> <key-params> (RFC 4568 §9.1)")
        if parts[1] != SUITE:
            return None
        if len(parts) > 3 or ";" in parts[2]:
            return None  # session parameters, or several keys: not supported, so not accepted
        method, colon, info = parts[2].partition(":")
        if not colon or method != "inline":
            raise SdesError("the a=crypto key must be inline:<key||salt> (RFC 4568 §6.1)")
        key_text, *extras = info.split("|")
        if len(extras) > 2:
            raise SdesError("too many |-separated fields in the a=crypto key")
        for extra in extras:
            if ":" in extra:
                return None  # an MKI (RFC 4568 §6.1): not supported
            if not _LIFETIME.fullmatch(extra):
                raise SdesError("bad key lifetime in the a=crypto line")
        if not _B64.fullmatch(key_text):
            raise SdesError("the a=crypto key is not base64")
        try:
            key = base64.b64decode(key_text, validate=True)
        except binascii.Error as exc:
            raise SdesError("the a=crypto key is not base64") from exc
        if len(key) != KEY_LENGTH:
            raise SdesError(f"the {SUITE} key||salt must be {KEY_LENGTH} bytes, not {len(key)}")
        return cls(tag=int(parts[0]), key=key)


@dataclass(frozen=True, slots=True, kw_only=True)
class SrtpKeys:
    """What an SDES exchange settled for one stream: the key we send with, the key the peer sends with."""

    local: bytes
    remote: bytes
    suite: str = SUITE

    def __repr__(self) -> str:  # keys never reach a log line
        return f"SrtpKeys(suite={self.suite!r})"


def crypto_attributes(m: MediaDescription) -> list[CryptoAttribute]:
    """The usable ``a=crypto`` lines of one stream, in their order (the offerer's preference).

    Raises:
        SdesError: a line of our suite is malformed (see :meth:`CryptoAttribute.parse`).
    """
    found = []
    for attr in m.attributes:
        if attr.name == "crypto":
            parsed = CryptoAttribute.parse(attr.value or "")
            if parsed is not None:
                found.append(parsed)
    return found


def select_crypto(m: MediaDescription) -> CryptoAttribute | None:
    """The offered crypto line the answer takes (the first usable one), or None when none is usable.

    Raises:
        SdesError: a line of our suite is malformed, or two lines share a tag (§9.1: "the tag MUST be unique").
    """
    usable = crypto_attributes(m)
    tags = [a.value.split(" ", 1)[0] for a in m.attributes if a.name == "crypto" and a.value]
    if len(set(tags)) != len(tags):
        raise SdesError("two a=crypto lines share a tag")
    return usable[0] if usable else None


def new_crypto(tag: int = 1) -> CryptoAttribute:
    """A crypto attribute with a fresh random key||salt (``secrets``: RFC 4568 §10.4 wants random keys)."""
    return CryptoAttribute(tag=tag, key=secrets.token_bytes(KEY_LENGTH))
