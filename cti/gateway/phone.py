"""The browser phone's commands on the agent's WebSocket (docs/websocket.md, "Browser phone"; docs/web.md).

An agent's page drives its own web phone with four commands; the node's :class:`PhonePort` (``cti.phone``) carries
them out. They are the only gateway commands that wait for I/O (``phone_on`` answers the page's WebRTC offer once
the node's side has gathered its ICE candidates), so :class:`~cti.gateway.session.Session` does not answer them
itself: it checks them and hands a :class:`PhoneRequest` to the connection, which awaits the port in a task of its
own and sends the reply when it is done (other commands on the connection are answered meanwhile).

A web phone belongs to the connection that turned it on (``owner``): when that connection ends, the gateway
releases it (:meth:`PhonePort.release`).

Errors: refusals are :class:`~cti.errors.ControlError` with a stable ``code`` (``phone_off``, ``phone_in_call``,
``no_call``, ``bad_sdp``, ``ice_failed``, ``phones_full``), passed to the reply as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from cti.gateway.commands import CommandError

__all__ = ["PHONE_COMMANDS", "MAX_SDP_CHARS", "PhonePort", "PhoneRequest", "checked_phone_args"]

PHONE_COMMANDS: Final = frozenset({"phone_on", "phone_answer", "phone_hangup", "phone_off"})
"""Commands an agent sends about its own browser phone."""

MAX_SDP_CHARS: Final = 16_000
"""The longest WebRTC offer ``phone_on`` takes (a browser's audio offer is about 2-5 KB)."""


class PhonePort(Protocol):
    """What the gateway needs of the node's web phones (``cti.phone.WebPhones`` provides it)."""

    async def command(self, agent_id: str, owner: int, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Run phone command ``name`` for ``agent_id`` on connection ``owner``; the reply's data.

        Raises:
            ControlError: a refusal with its code.
        """
        ...

    def release(self, owner: int) -> None:
        """Connection ``owner`` ended: its web phone (if any) is turned off."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneRequest:
    """A checked phone command waiting for its connection to run it: the reply goes to ``frame_id``."""

    frame_id: str | int
    agent_id: str
    name: str
    args: dict[str, Any]


def checked_phone_args(name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of phone command ``name``, checked: ``phone_on`` takes ``sdp`` (the page's offer, a string
    of at most :data:`MAX_SDP_CHARS`) and ``auto_answer`` (bool, default false); the others take none.

    Raises:
        CommandError: ``bad_args``.
    """
    if name != "phone_on":
        return {}
    sdp = args.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise CommandError("bad_args", "argument 'sdp' must be the page's SDP offer (a non-empty string)")
    if len(sdp) > MAX_SDP_CHARS:
        raise CommandError("bad_args", f"argument 'sdp' is longer than {MAX_SDP_CHARS} characters")
    auto = args.get("auto_answer", False)
    if not isinstance(auto, bool):
        raise CommandError("bad_args", "argument 'auto_answer' must be a bool")
    return {"sdp": sdp, "auto_answer": auto}
