"""Voicemail: messages callers leave at a flow's ``voicemail`` node, their store, API and CLI (docs/voicemail.md)."""

from cti.voicemail.model import BEEP, SILENCE_RMS, SilenceDetector, VoicemailMessage, mailbox_queue, message_id
from cti.voicemail.recovery import recover_messages
from cti.voicemail.store import VoicemailStore, insert_job
from cti.voicemail.take import VoicemailTake

__all__ = ["BEEP", "SILENCE_RMS", "SilenceDetector", "VoicemailMessage", "VoicemailStore", "VoicemailTake",
           "insert_job", "mailbox_queue", "message_id", "recover_messages"]
