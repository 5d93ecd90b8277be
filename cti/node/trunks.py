"""Inbound trunks: who may send us calls, which flow a dialled number starts, the caller's number.

Pure functions over the configuration. A trunk is recognised by its source address (``allow``)
or, for a carrier that authenticates, by the digest username of the INVITE (the controller
challenges with 401 and checks the answer). An INVITE that matches no trunk is refused 403 and
counted (toll fraud starts with strangers' INVITEs); a dialled number no trunk maps gets 404.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from config.schema import TrunkConfig
from sip.errors import RemoteSipError
from sip.headers import NameAddr
from sip.message import Request
from sip.uri import SipUri, TelUri, Uri


@dataclass(frozen=True, slots=True)
class TrunkMatch:
    trunk: TrunkConfig
    dialled: str
    flow: str | None  # None: the number is not mapped on this trunk


class TrunkTable:
    """The configured trunks, with their networks parsed once."""

    def __init__(self, trunks: tuple[TrunkConfig, ...]) -> None:
        self._trunks = [(t, [ipaddress.ip_network(n, strict=False) for n in t.allow]) for t in trunks]
        self._by_username = {t.username: t for t in trunks if t.username is not None}

    @property
    def has_credentials(self) -> bool:
        """True when some trunk authenticates with digest (strangers are then challenged, not refused)."""
        return bool(self._by_username)

    def match(self, request: Request, source_ip: str) -> TrunkMatch | None:
        """The trunk whose ``allow`` list holds the INVITE's source address, or None."""
        try:
            address = ipaddress.ip_address(source_ip)
        except ValueError:
            return None
        for trunk, networks in self._trunks:
            if any(address in net for net in networks):
                return self.matched(trunk, request)
        return None

    def by_username(self, username: str) -> TrunkConfig | None:
        return self._by_username.get(username)

    @staticmethod
    def matched(trunk: TrunkConfig, request: Request) -> TrunkMatch:
        dialled = dialled_number(request)
        return TrunkMatch(trunk, dialled, trunk.numbers.get(dialled))


def _user(uri: Uri) -> str:
    if isinstance(uri, SipUri):
        return uri.user or ""
    if isinstance(uri, TelUri):
        return uri.number
    return ""


def dialled_number(request: Request) -> str:
    """The dialled number: the Request-URI's user part (the To user when it has none)."""
    return normalise_number(_user(request.uri) or _user(request.to.uri))


def caller_identity(request: Request) -> tuple[str, str]:
    """(number, display name): P-Asserted-Identity when the trunk sends one, else From."""
    source = request.from_
    pai = request.headers.get("P-Asserted-Identity")
    if pai:
        try:
            source = NameAddr.parse(pai.split(",")[0])
        except RemoteSipError:
            pass
    return normalise_number(_user(source.uri)), source.display or ""


_SEPARATORS = re.compile(r"[\s.\-()]")
_DIALLABLE = re.compile(r"\+?[0-9*#]+")


def normalise_number(text: str) -> str:
    """Digits, with a leading ``+`` kept; visual separators dropped; anything else kept as is."""
    stripped = _SEPARATORS.sub("", text)
    if _DIALLABLE.fullmatch(stripped):
        return stripped
    return text
