"""The call: a pure core (``core``: events in, commands out) and its vocabulary.

What lives here: :class:`CallCore` and its transition tables (``core``), the events it takes
(``events``), the commands it returns (``commands``), and the roles, phases and milestones
(``model``). It imports ``acd`` and ``cti.calldetail`` only — no asyncio, no SIP, no store.
The asyncio shell that carries the commands out is :mod:`cti.calls`.
"""

from cti.call.commands import AcdKind, Command
from cti.call.core import LEG_TRANSITIONS, PHASE_TRANSITIONS, CallCore, CallStateError
from cti.call.events import CallEvent
from cti.call.model import LegPhase, Milestone, Phase, Role

__all__ = [
    "LEG_TRANSITIONS", "PHASE_TRANSITIONS", "AcdKind", "CallCore", "CallEvent", "CallStateError", "Command",
    "LegPhase", "Milestone", "Phase", "Role",
]
