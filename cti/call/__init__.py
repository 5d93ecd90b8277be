"""The call: a pure core (events in, commands out), the asyncio shell that carries it out, and its legs.

The core: :class:`CallCore` and its transition tables (``core``), the events it takes (``events``), the
commands it returns (``commands``), the roles, phases and milestones (``model``) and what is known of a call
(``detail``). The core imports ``acd`` and ``cti.call.detail`` only — no asyncio, no SIP, no store; this
``__init__`` imports the core only.

The shell and what it drives: :class:`~cti.call.shell.Call` owns the clock, the task group and the I/O and
executes the core's commands through narrow ports (``ports``: one ``CallPorts`` bundle of small Protocols —
ACD, phones, records, events, transfer targets, its owner — and plain settings); the SIP legs (``legs``), the user
agent that builds their requests from typed headers (``useragent``), the media (``media``), the IVR's view of
the call (``ivrchannel``), the pre-answer checks of an offer (``offercheck``) and supervisors joining a call
(``supervision``).

May import: ``sip``, ``acd``, ``ivr``, ``cti.events`` (the publisher), ``cti.store`` (records' types), ``cti.voicemail``
(the message model and take) and the top-level helpers. Never ``cti.node`` (the registry hands the ports in), the
HTTP side, the floor or the CLI.
"""

from cti.call.commands import AcdKind, Command
from cti.call.core import LEG_TRANSITIONS, PHASE_TRANSITIONS, CallCore, CallStateError
from cti.call.events import CallEvent
from cti.call.model import LegPhase, Milestone, Phase, Role

__all__ = [
    "LEG_TRANSITIONS", "PHASE_TRANSITIONS", "AcdKind", "CallCore", "CallEvent", "CallStateError", "Command",
    "LegPhase", "Milestone", "Phase", "Role",
]
