"""The browser phone (docs/web.md, "Browser phone"): an agent's page answers and talks over WebRTC, no softphone.

The node runs a small SIP user agent of its own whose phones are real bindings in the registrar, so the call path
rings them as it rings a softphone; each phone bridges the call's RTP (G.711) to the page's WebRTC peer connection
(aiortc). The page drives it with the ``phone_*`` commands of its WebSocket (``cti.gateway.phone``).

- ``state.py``: the pure parts (states and transitions, hang-up meaning, caller, 20 ms reframing).
- ``media.py``: the audio bridge between RTP frames and aiortc tracks.
- ``line.py``: what the service hands a phone (its SIP line, the publish and spawn callables).
- ``phone.py``: one agent's web phone (its SIP line and its peer connection); imports aiortc, so the service
  imports it on the first phone turned on, not at the node's start.
- ``service.py``: all of them and the user agent they share (``WebPhones``).

May import: ``sip`` and ``cti.call`` (the SIP legs it answers with), ``cti.errors``.
"""

from cti.phone.service import Bindings, PhoneSettings, WebPhones, local_host
from cti.phone.state import PhoneError, PhoneState

__all__ = ["Bindings", "PhoneError", "PhoneSettings", "PhoneState", "WebPhones", "local_host"]
