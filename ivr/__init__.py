"""IVR: the flow language (YAML), its validator and a pure interpreter, plus the asyncio runner.

Other packages import only the names listed in ``__all__``. See ``docs/ivr.md``.

The asyncio adapters, ``ivr.runner`` (``IvrRunner``, ``IvrChannel``, ``fetch_lookup``) and
``ivr.catalog`` (``FlowCatalog``, hot reload in a worker thread), are not imported with the package:
import them from their modules. Their names below still resolve, loading the module on first use
(for the call path's old imports, until it is rewritten).
"""

from typing import TYPE_CHECKING

from ivr.engine import Session, SessionState
from ivr.errors import IvrError, LocalIvrError, UnknownFlowError
from ivr.events import (
    CallerHungUp,
    Command,
    DigitReceived,
    EnqueueCall,
    Hangup,
    HangupReason,
    InputTaken,
    IvrCommand,
    IvrEvent,
    LookupCompleted,
    LookupFailed,
    LookupId,
    PlayPrompt,
    PromptFinished,
    RaiseAlert,
    RecordVoicemail,
    StartLookup,
    StopPrompt,
    StopVoicemail,
    TagCall,
    VoicemailRecorded,
)
from ivr.flow import Flow, FlowName, FlowSet, NodeId, PromptName
from ivr.loader import (
    load_flow_dir,
    load_flow_file,
    load_flow_files,
    load_flow_text,
    validate_flow_dir,
    validate_flow_file,
)
from ivr.record import CallRecord, InputRecord, InputResult, LookupRecord, Outcome, Tags

__all__ = [
    "CallRecord",
    "CallerHungUp",
    "Command",
    "DigitReceived",
    "EnqueueCall",
    "Flow",
    "FlowName",
    "FlowSet",
    "Hangup",
    "HangupReason",
    "InputRecord",
    "InputTaken",
    "InputResult",
    "IvrCommand",
    "IvrError",
    "IvrEvent",
    "LocalIvrError",
    "LookupCompleted",
    "LookupFailed",
    "LookupId",
    "LookupRecord",
    "NodeId",
    "Outcome",
    "PlayPrompt",
    "PromptFinished",
    "PromptName",
    "RaiseAlert",
    "RecordVoicemail",
    "Session",
    "SessionState",
    "StartLookup",
    "StopPrompt",
    "StopVoicemail",
    "TagCall",
    "VoicemailRecorded",
    "Tags",
    "UnknownFlowError",
    "load_flow_dir",
    "load_flow_file",
    "load_flow_files",
    "load_flow_text",
    "validate_flow_dir",
    "validate_flow_file",
]

if TYPE_CHECKING:
    from ivr.catalog import FlowCatalog as FlowCatalog
    from ivr.runner import IvrChannel as IvrChannel
    from ivr.runner import IvrRunner as IvrRunner
    from ivr.runner import fetch_lookup as fetch_lookup

_ADAPTERS = {"FlowCatalog": "ivr.catalog", "IvrChannel": "ivr.runner", "IvrRunner": "ivr.runner",
             "fetch_lookup": "ivr.runner"}


def __getattr__(name: str) -> object:
    """The adapter names, loaded on first use so that ``import ivr`` imports no asyncio adapter."""
    module = _ADAPTERS.get(name)
    if module is None:
        raise AttributeError(f"module 'ivr' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)

