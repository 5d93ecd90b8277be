"""SRTP and SRTCP (RFC 3711) for one RTP leg, over libsrtp2 through ``pylibsrtp`` (no I/O, no clock).

An :class:`SrtpTransform` holds the two libsrtp sessions of a leg keyed by SDES (RFC 4568,
:class:`sip.sdes.SrtpKeys`): the outbound one protects what we send with our key, the inbound one
unprotects what the peer sends with its key. Profile ``AES_CM_128_HMAC_SHA1_80`` (RFC 3711 §5:
AES counter mode, HMAC-SHA1 with an 80-bit tag; RFC 4568 §6.2.1). Both sessions accept any SSRC
(``SSRC_ANY_*``): a peer's new SSRC after a re-INVITE, and our relay's own SSRC, need no set-up.

:meth:`SrtpTransform.protect` / :meth:`SrtpTransform.unprotect` tell RTP from RTCP by the
second byte (RFC 5761 §4: 200-204 is RTCP), so one call serves the RTP socket (where a muxed
RTCP may arrive) and the RTCP socket alike. A packet that fails authentication or replay checks
raises :class:`SrtpError`; the caller drops it and counts (RFC 3711 §3.3: "If the authentication
check fails, the packet MUST be discarded").

A key change (a re-INVITE with a new ``a=crypto`` key) goes through :meth:`SrtpTransform.rekey`,
which keeps the same object (the adapters hold it) and renews only the side whose key changed.
"""

from __future__ import annotations

import pylibsrtp

from sip.rtp.errors import RtpError
from sip.sdes import SUITE, SrtpKeys

__all__ = ["SrtpError", "SrtpTransform"]

_PROFILES = {SUITE: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80}
_REPLAY_WINDOW = 1024  # packets (RFC 3711 §3.3.2: at least 64); a loaded loopback reorders a few


class SrtpError(RtpError):
    """A packet libsrtp refused: failed authentication, a replay, or too short to be (S)RTP."""

    code = "srtp_refused"


def _session(key: bytes, suite: str, inbound: bool) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND if inbound else pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=_PROFILES[suite])
    policy.window_size = _REPLAY_WINDOW
    policy.allow_repeat_tx = True  # a stream handed between the relay and the session may resend a sequence number
    return pylibsrtp.Session(policy=policy)


class SrtpTransform:
    """SRTP/SRTCP protect and unprotect for one leg (see the module docstring)."""

    __slots__ = ("_in", "_out", "keys", "refused", "unprotected")

    def __init__(self, keys: SrtpKeys) -> None:
        """Raises: SrtpError: libsrtp refused the keys (a suite we do not serve)."""
        if keys.suite not in _PROFILES:
            raise SrtpError(f"SRTP suite {keys.suite} is not served")
        self.keys = keys
        self._out = _session(keys.local, keys.suite, inbound=False)
        self._in = _session(keys.remote, keys.suite, inbound=True)
        self.refused = 0
        """Packets :meth:`unprotect` refused so far (failed authentication, replays, garbage)."""
        self.unprotected = 0
        """Packets :meth:`unprotect` authenticated and decrypted so far."""

    def rekey(self, keys: SrtpKeys) -> None:
        """New keys from a later offer/answer: renew the side whose key changed (its state restarts)."""
        if keys.local != self.keys.local:
            self._out = _session(keys.local, keys.suite, inbound=False)
        if keys.remote != self.keys.remote:
            self._in = _session(keys.remote, keys.suite, inbound=True)
        self.keys = keys

    def protect(self, data: bytes | bytearray) -> bytes:
        """SRTP (or SRTCP, for an RTCP packet) of one packet we send.

        Raises:
            SrtpError: not a packet libsrtp can protect (shorter than a header).
        """
        try:
            if len(data) > 1 and 200 <= data[1] <= 204:
                return self._out.protect_rtcp(bytes(data))
            return self._out.protect(bytes(data))
        except (pylibsrtp.Error, ValueError) as exc:  # ValueError: longer than libsrtp's 1500-byte buffer
            raise SrtpError(f"cannot protect: {exc}") from exc

    def unprotect(self, data: bytes) -> bytes:
        """The plain RTP (or RTCP) of one SRTP (SRTCP) packet received from the peer.

        Raises:
            SrtpError: authentication or replay check failed, or not SRTP at all (counted in ``refused``).
        """
        try:
            if len(data) > 1 and 200 <= data[1] <= 204:
                plain = self._in.unprotect_rtcp(data)
            else:
                plain = self._in.unprotect(data)
        except (pylibsrtp.Error, ValueError) as exc:  # ValueError: longer than libsrtp's 1500-byte buffer
            self.refused += 1
            raise SrtpError(f"refused: {exc}") from exc
        self.unprotected += 1
        return plain
