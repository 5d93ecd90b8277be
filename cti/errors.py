"""The root of every exception the node raises (``cti``, plus the ``config`` package it reads).

``except CtiError`` catches anything the node itself refuses; the sans-I/O packages keep their own
roots (``sip.SipError``, ``acd.AcdError``, ``ivr.IvrError``, ``sip.rtp.RtpError``,
``sip.media.MediaError``) and are translated at the boundary with ``raise ... from exc``.

Exception tree (module in brackets; ``code`` strings are part of the API, never rename one)::

    CtiError                              base of everything below
    ├── SettingsError (ValueError)        a component built with impossible settings (a bug or a bad
    │                                     translation of the config)                       [cti.errors]
    ├── ConfigError                       a config or flow file is wrong                   [config.errors]
    │   └── ConfigFileError               located problems: file:line: reason
    ├── StoreError                        store.error                                      [cti.store.errors]
    │   ├── StoreOpenError                store.open_failed
    │   ├── SchemaError                   store.schema_invalid
    │   │   └── SchemaTooNewError         store.schema_too_new
    │   ├── InvalidRecordError            store.record_invalid (also a ValueError)
    │   ├── NotFoundError                 store.not_found
    │   ├── ConflictError                 store.conflict
    │   ├── OutboxStateError              store.outbox_state
    │   ├── StoreBusyError                store.busy
    │   ├── StoreClosedError              store.closed
    │   ├── StoreUsageError               store.usage
    │   ├── BackendError                  store.backend_failed
    │   └── StoreUnavailableError         the store failed past storage.fatal_after_s       [cti.app]
    ├── EventError                        event_error                                      [cti.events.registry]
    │   ├── EnvelopeError                 envelope_invalid
    │   └── SchemaError                   event_schema_mismatch
    ├── SubscriptionClosed                subscription_closed                              [cti.events.bus]
    ├── TokenError                        a token refused (``code``: token_invalid, ...)  [cti.tokens]
    ├── ApiError                          an admin-API request refused, with ``status``    [cti.http.api]
    ├── BodyError                         a request body refused, with ``status``         [cti.http.guard]
    ├── ControlError                      an operator/agent command refused              [cti.errors]
    │   └── PhoneError                    a browser phone command refused (phone_off...) [cti.phone.state]
    ├── CommandError                      a WebSocket command refused                    [cti.gateway.commands]
    ├── FrameError                        bad_frame: a WebSocket frame not decodable     [cti.gateway.frames]
    ├── NoticeError                       a notice operation refused                     [cti.floor.notices]
    ├── StaffingError (ValueError)        staffing.error                                 [cti.staffing.errors]
    │   ├── StaffingInputError            staffing.input_invalid
    │   └── ForecastFileError             staffing.forecast_invalid
    ├── CallStateError                    a transition the call's tables do not allow (a bug) [cti.call.core]
    ├── InjectedFault (RuntimeError)      the fault-injection hook, tests only            [cti.call.shell]
    ├── CallGoneError                     the IVR asked something of a call that has ended [cti.call.ivrchannel]
    ├── DocsError                         docs/events.md cannot be regenerated           [cti.events.docs]
    ├── TlsFilesError                     a certificate or key that cannot be used        [cti.tlsfiles]
    ├── QaError                           qa.* refusals, with ``code`` and ``status``      [cti.qa.errors]
    │   ├── RuleInvalidError              qa.rule_invalid (problems: path: reason)
    │   ├── FormInvalidError              qa.form_invalid
    │   ├── ScoresInvalidError            qa.scores_invalid
    │   ├── ForbiddenError                qa.forbidden (and the reviewer rules)
    │   ├── NotFoundError                 qa.not_found
    │   ├── StateError                    qa.* not allowed in this state (409)
    │   ├── RangeNotSatisfiable           416: a byte range outside the audio             [cti.qa.audio]
    │   └── BadRecording                  a recording file that cannot be served          [cti.qa.audio]
    ├── ReportError                       reports.error                                  [cti.reports.errors]
    │   └── ReportInputError (ValueError) reports.input_invalid
    ├── AdherenceError                    adherence.error                                [cti.adherence.model]
    │   ├── ScheduleError                 adherence.schedule_invalid (overlap, outside a shift)
    │   └── ImportFileError               adherence.import_invalid (file:line: reason, nothing stored)
    └── OpsError (click.ClickException)   a CLI command failed: one line on stderr, exit 1 [cti.cli.http]

Private control-flow signals (``cti.gateway.ws._Ended``, ``cti.app._Stopped``,
``cti.staffing.routes._BadRequest``, the ``_Refused`` of ``cti.qa.routes``, ``cti.adherence.routes`` and
``cti.cli.adherence``) also derive from ``CtiError`` and never leave their module.
"""

from __future__ import annotations

__all__ = ["CtiError", "SettingsError"]


class CtiError(Exception):
    """Base class of every exception raised by the node."""


class SettingsError(CtiError, ValueError):
    """A component was built with impossible settings (also a ``ValueError``)."""

class ControlError(CtiError):
    """A refused command; ``code`` is stable (e.g. ``unknown_agent``, ``acd.transition_illegal``)."""

    def __init__(self, code: str, message: str, *, status: int = 409) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
