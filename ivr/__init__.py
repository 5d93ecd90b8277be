"""IVR: the flow language (YAML), its validator and a pure interpreter, plus the asyncio runner.

Other packages import only the names listed in ``__all__``. See ``docs/ivr.md``.
"""

from ivr.catalog import FlowCatalog
from ivr.engine import Session, SessionState
from ivr.errors import IvrError, LocalIvrError, UnknownFlowError
from ivr.events import (
    CallerHungUp,
    Command,
    DigitReceived,
    EnqueueCall,
    Hangup,
    HangupReason,
    IvrCommand,
    IvrEvent,
    LookupCompleted,
    LookupFailed,
    LookupId,
    PlayPrompt,
    PromptFinished,
    RaiseAlert,
    RecordVoicemail,
    RequestCallback,
    StartLookup,
    StopPrompt,
    TagCall,
    TransferCall,
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
from ivr.runner import IvrChannel, IvrRunner, fetch_lookup

__all__ = [
    "CallRecord",
    "CallerHungUp",
    "Command",
    "DigitReceived",
    "EnqueueCall",
    "Flow",
    "FlowCatalog",
    "FlowName",
    "FlowSet",
    "Hangup",
    "HangupReason",
    "InputRecord",
    "InputResult",
    "IvrChannel",
    "IvrCommand",
    "IvrError",
    "IvrEvent",
    "IvrRunner",
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
    "RequestCallback",
    "Session",
    "SessionState",
    "StartLookup",
    "StopPrompt",
    "TagCall",
    "Tags",
    "TransferCall",
    "UnknownFlowError",
    "fetch_lookup",
    "load_flow_dir",
    "load_flow_file",
    "load_flow_files",
    "load_flow_text",
    "validate_flow_dir",
    "validate_flow_file",
]
