"""Errors of the reports package.

    ReportError (code ``reports.error``)
    └── ReportInputError (``reports.input_invalid``): a bad range, interval or kind; ``field`` names it
"""

from __future__ import annotations

from cti.errors import CtiError

__all__ = ["ReportError", "ReportInputError"]


class ReportError(CtiError):
    """Base class of the reports package's errors."""

    code = "reports.error"


class ReportInputError(ReportError, ValueError):
    """A report request that cannot be answered as asked (from after to, a range over the maximum...)."""

    code = "reports.input_invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
