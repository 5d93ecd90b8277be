"""Errors of the IVR package.

Exception tree::

    IvrError                  base of everything the ivr package raises
    └── LocalIvrError         our own code misused a session (started twice, bad argument)
        └── UnknownFlowError  the session was asked for a flow the flow set does not hold

CRM failures are not exceptions: the runner turns them into ``LookupFailed`` events.

Flow files that are wrong are refused by :mod:`ivr.loader` with
:class:`config.errors.ConfigFileError` (``file:line: reason``), the project-wide
configuration error, not with an ``IvrError``. Each error carries a stable ``code``.
"""

from __future__ import annotations


class IvrError(Exception):
    """Base class of every error raised by the ivr package."""

    code = "ivr.error"


class LocalIvrError(IvrError):
    """A session or runner was used wrongly by our own code (a bug in the caller)."""

    code = "ivr.misuse"


class UnknownFlowError(LocalIvrError):
    """A session was asked to run a flow that the flow set does not hold."""

    code = "ivr.unknown_flow"
