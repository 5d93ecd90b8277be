"""Staffing: how many agents an interval needs (Erlang C and Erlang A, shrinkage, occupancy cap), domain spec §2.

Sans-I/O: plain arithmetic on the inputs, no files, sockets or clock. ``cti staffing`` (cti/cli/staffing.py)
and ``GET /api/v1/staffing`` (cti/staffing/routes.py) are its adapters; docs/staffing.md describes both.

- :func:`required_agents` answers "how many agents for this target", :func:`plan` "what do N agents give";
  both return a :class:`StaffingResult` with a what-if curve around the answer;
- :func:`parse_forecast` and :func:`plan_forecast` do the same for each interval of a volume file.
"""

from cti.staffing.erlang import QueueFigures, erlang_a_figures, erlang_b, erlang_c_figures
from cti.staffing.errors import ForecastFileError, ForecastProblem, StaffingError, StaffingInputError
from cti.staffing.forecast import (
    COLUMNS,
    MAX_FORECAST_ROWS,
    ForecastRow,
    forecast_to_json,
    parse_forecast,
    plan_forecast,
)
from cti.staffing.plan import (
    MAX_AGENTS,
    MAX_TRAFFIC_ERLANGS,
    SL_FORMULAS,
    WHAT_IF_SPAN,
    Model,
    StaffingInput,
    StaffingResult,
    figures,
    plan,
    required_agents,
    scheduled,
)

__all__ = [
    "COLUMNS", "MAX_AGENTS", "MAX_FORECAST_ROWS", "MAX_TRAFFIC_ERLANGS", "SL_FORMULAS", "WHAT_IF_SPAN",
    "ForecastFileError", "ForecastProblem", "ForecastRow", "Model", "QueueFigures", "StaffingError",
    "StaffingInput", "StaffingInputError", "StaffingResult", "erlang_a_figures", "erlang_b", "erlang_c_figures",
    "figures", "forecast_to_json", "parse_forecast", "plan", "plan_forecast", "required_agents", "scheduled",
]
