"""The root of cti's exceptions.

::

    CtiError
     └── cti.call.core.CallStateError   a transition the call's tables do not allow (a bug)
"""


class CtiError(Exception):
    """Base class of every error raised by the cti package."""
