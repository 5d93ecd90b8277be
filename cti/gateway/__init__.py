"""The WebSocket gateway: agents, supervisors and operators follow events and send commands (docs/websocket.md).

Mount it with :func:`add_gateway_routes`; the rest is exported for tests, metrics and tools.
"""

from cti.gateway.frames import EncodedCache, Encoding, FrameError, decode_frame, encode_frame
from cti.gateway.limits import LoginThrottle
from cti.gateway.mailbox import Mailbox
from cti.gateway.routes import GATEWAY_KEY, add_gateway_routes
from cti.gateway.session import Session, initial_scope
from cti.gateway.visibility import Scope, visible
from cti.gateway.ws import PROTOCOLS, Gateway, GatewaySettings, GatewayStats

__all__ = [
    "GATEWAY_KEY", "PROTOCOLS", "EncodedCache", "Encoding", "FrameError", "Gateway", "GatewaySettings",
    "GatewayStats", "LoginThrottle", "Mailbox", "Scope", "Session", "add_gateway_routes", "decode_frame",
    "encode_frame", "initial_scope", "visible",
]
