"""Errors raised by the staffing core.

Exception tree::

    StaffingError (CtiError, ValueError)  base of everything the staffing core raises; carries a stable ``code``
    ├── StaffingInputError          staffing.input_invalid    an input is out of range (``field`` names it)
    └── ForecastFileError           staffing.forecast_invalid a volume file was refused (``problems``)

Both are ``ValueError``s, as domain spec §2.4 asks ("AHT <= 0 or shrinkage >= 1 -> ValueError"). ``code``
strings are part of the API (``GET /api/v1/staffing`` returns them); never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass

from cti.errors import CtiError

__all__ = ["ForecastFileError", "ForecastProblem", "StaffingError", "StaffingInputError"]


class StaffingError(CtiError, ValueError):
    """Base class of every staffing error."""

    code: str = "staffing.error"


class StaffingInputError(StaffingError):
    """An input is out of range; ``field`` is its name (``aht_s``, ``shrinkage``...)."""

    code = "staffing.input_invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True, kw_only=True)
class ForecastProblem:
    """One reason a volume file was refused: ``file:line: reason`` (line 0 means the whole file)."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class ForecastFileError(StaffingError):
    """A volume file was refused; ``problems`` lists every line that is wrong (nothing was planned)."""

    code = "staffing.forecast_invalid"

    def __init__(self, problems: list[ForecastProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems
