"""When a call leg uses SRTP (SDES, RFC 4568): the node's ``media.srtp`` policy and the leg's SIP transport.

Pure (no I/O). SDES puts the SRTP master keys in the SDP, so a key is only worth as much as the
signalling that carries it: the node offers and accepts keys on legs whose SIP transport is TLS
(RFC 4568 §8.3: "the SDP MUST be protected"; docs/tls.md). On a plain UDP/TCP leg it never offers
a key, answers an ``RTP/AVP`` offer's keys with plain RTP (best-effort SRTP declined: the keys
already went in clear) and refuses an ``RTP/SAVP`` offer (488, Warning 302).

``media.srtp`` (config):

- ``off``: no SRTP on any leg; an ``RTP/SAVP`` offer gets 488.
- ``optional`` (default): on a TLS leg an offer with a usable ``a=crypto`` line is answered with
  SRTP, one without with plain RTP; the node's offers to phones registered over TLS carry a key as
  best-effort SRTP (``RTP/AVP`` with ``a=crypto``: a phone that ignores it answers plain RTP).
- ``mandatory``: on a TLS leg an offer without a usable ``a=crypto`` line gets 488 (Warning 302),
  and the node's offers are ``RTP/SAVP`` (a phone must answer with SRTP or refuse). Plain legs are
  unchanged: with no protected signalling there is no SDES to require.
"""

from __future__ import annotations

import enum

from sip import RTP_AVP, RTP_SAVP, CryptoAttribute, MediaParameters, SrtpRequiredError, new_crypto

__all__ = ["SECURE_TRANSPORTS", "SrtpPolicy", "leg_key", "offer_crypto", "require_srtp"]

SECURE_TRANSPORTS = frozenset({"TLS", "WSS"})
"""SIP transports whose signalling is encrypted hop by hop: the only ones SDES keys travel on."""


class SrtpPolicy(enum.Enum):
    """The ``media.srtp`` setting (see the module docstring)."""

    OFF = "off"
    OPTIONAL = "optional"
    MANDATORY = "mandatory"


def _keyed(policy: SrtpPolicy, transport: str) -> bool:
    return policy is not SrtpPolicy.OFF and transport.upper() in SECURE_TRANSPORTS


def leg_key(policy: SrtpPolicy, transport: str) -> bytes | None:
    """Our fresh 30-byte key||salt for answering an offer on a leg over ``transport``, or None (plain only)."""
    return new_crypto().key if _keyed(policy, transport) else None


def offer_crypto(policy: SrtpPolicy, transport: str) -> tuple[CryptoAttribute | None, str]:
    """The crypto attribute (None: none) and profile of the node's offer to a phone reached over ``transport``."""
    if not _keyed(policy, transport):
        return None, RTP_AVP
    return new_crypto(), RTP_SAVP if policy is SrtpPolicy.MANDATORY else RTP_AVP


def require_srtp(policy: SrtpPolicy, transport: str, params: MediaParameters) -> None:
    """Check a settled stream against the policy.

    Raises:
        SrtpRequiredError: ``mandatory`` on a TLS leg and the stream is plain RTP (answered 488).
    """
    if policy is SrtpPolicy.MANDATORY and transport.upper() in SECURE_TRANSPORTS and params.srtp is None:
        raise SrtpRequiredError("SRTP (a=crypto AES_CM_128_HMAC_SHA1_80, RFC 4568) is required on this TLS leg")
