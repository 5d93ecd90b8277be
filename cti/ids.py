"""The identifiers that flow through the node, as ``NewType``s, in one place.

- ``CallId``: one customer call, from its arrival to its CDR (the ACD's call id, so it crosses into
  ``acd`` unchanged; it is not the SIP Call-ID, which is ``sip.ids.CallId``).
- ``LegId``: one queue visit of a call (``<call id>-<visit>``), the key of a queue-leg record.
- ``AgentId``: an agent's login (the ACD's agent id, also the SIP user of the agent's phone).
- ``RecordingSerial``: the human-quotable serial of a recording (``YYYYMMDD-SITE-NNNN``), the one
  the media layer writes into the file name and the store allocates.

Import them from here; ``cti.store`` and the rest re-export them only for compatibility.
"""

from __future__ import annotations

from typing import NewType

from acd import AgentId, CallId
from sip.media import RecordingSerial

__all__ = ["AgentId", "CallId", "LegId", "RecordingSerial"]

LegId = NewType("LegId", str)
