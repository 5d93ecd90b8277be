"""Errors of the SIP stack, after h11's split between our mistakes and the peer's.

Exception tree::

    SipError                      base of everything the SIP stack raises
    ├── LocalSipError             we misused the stack (a bug or a bad call from our own code)
    ├── RemoteSipError            the peer sent something we cannot accept
    │   ├── MessageTooLargeError  a message (or its headers) exceeds our limits
    │   ├── SdpParseError         an SDP body we cannot parse                  [sip.sdp]
    │   └── SdpNegotiationError   no common media in an offer                  [sip.sdp]
    ├── AuthError                 a malformed Digest header, or a misuse       [sip.digest]
    └── RegistrarError            a misuse of the registrar core (500)         [sip.registrar]

Every one carries ``status_hint``: the response status the RFC asks for when this error is
answered (400, 416, 420, 483, 505, 513, ...). ``RemoteSipError.partial`` holds the
headers the parser managed to read, so an error response can still copy Via, From, To,
Call-ID and CSeq (RFC 3261 §8.2.6.2). An error with ``partial is None`` cannot be
answered and is dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sip.message import Headers


class SipError(Exception):
    """Base class of every error raised by the SIP stack."""

    def __init__(self, message: str, *, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class LocalSipError(SipError):
    """Our own code used the stack wrongly (sending an impossible message, a bad transition)."""

    def __init__(self, message: str, *, status_hint: int = 500) -> None:
        super().__init__(message, status_hint=status_hint)


class RemoteSipError(SipError):
    """The peer sent a message we refuse; answer it with ``status_hint`` if ``partial`` allows."""

    def __init__(
        self,
        message: str,
        *,
        status_hint: int = 400,
        partial: Headers | None = None,
        is_request: bool | None = None,
    ) -> None:
        super().__init__(message, status_hint=status_hint)
        self.partial = partial
        self.is_request = is_request


class MessageTooLargeError(RemoteSipError):
    """Headers or body over our limits (513 Message Too Large, RFC 3261 §21.5.11)."""

    def __init__(self, message: str, *, partial: Headers | None = None, is_request: bool | None = None) -> None:
        super().__init__(message, status_hint=513, partial=partial, is_request=is_request)
