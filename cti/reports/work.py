"""A report job and its answer: what the server sends a report worker and gets back (:mod:`cti.reports.worker`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cti.reports.report import ReportSpec

__all__ = ["ReportJob", "ReportOutput"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportJob:
    """One report to compute: the store to read, what to compute and how to serialise it."""

    target: str  # an SQLite file path or a PostgreSQL URL (the server's ``storage.url``)
    kind: str  # a key of JOB_KINDS
    spec: ReportSpec
    fmt: str = "json"  # json, csv or svg
    figure: str | None = None  # svg: the figure drawn
    groups: tuple[str, ...] = ()  # svg: the groups drawn (all when empty)
    visible: frozenset[str] | None = None  # a supervisor's groups; None: every group
    options: Mapping[str, Any] = field(default_factory=dict)  # what a kind needs besides the spec


@dataclass(frozen=True, slots=True)
class ReportOutput:
    """The HTTP answer of a job."""

    status: int
    content_type: str
    body: bytes

    @classmethod
    def json(cls, data: Any, status: int = 200) -> ReportOutput:
        return cls(status, "application/json", json.dumps(data).encode())

    @classmethod
    def error(cls, status: int, code: str, message: str, fieldname: str | None = None) -> ReportOutput:
        return cls.json({"error": {"code": code, "message": message, "field": fieldname}}, status)
