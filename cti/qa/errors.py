"""Errors of the QA package (docs/qa.md). Each carries a stable ``code`` and an HTTP ``status_hint``::

    QaError                      (code, status_hint)
     ├── RuleInvalidError        400 qa.rule_invalid: the rule JSON was refused; ``problems`` lists path: reason
     ├── FormInvalidError        400 qa.form_invalid: the scorecard form was refused; ``problems`` as above
     ├── ScoresInvalidError      400 qa.scores_invalid: scores that do not fit the form version
     ├── ForbiddenError          403 qa.forbidden: this principal may not do this (own recording only, ...)
     ├── NotFoundError           404 qa.not_found
     └── StateError              409 qa.<what>: the action is not allowed in the current state (published rule
                                 edited, appeal out of its window, reviewer is the first evaluator, ...)
"""

from __future__ import annotations

from collections.abc import Sequence

from cti.errors import CtiError

__all__ = ["ForbiddenError", "FormInvalidError", "NotFoundError", "QaError", "RuleInvalidError",
           "ScoresInvalidError", "StateError"]


class QaError(CtiError):
    """Base of the QA errors: ``code`` is stable, ``status_hint`` the HTTP status to answer with."""

    code = "qa.error"
    status_hint = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class _ProblemsError(QaError):
    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class RuleInvalidError(_ProblemsError):
    """The sampling rule was refused: each problem is ``path: reason``."""

    code = "qa.rule_invalid"


class FormInvalidError(_ProblemsError):
    """The scorecard form was refused: each problem is ``path: reason``."""

    code = "qa.form_invalid"


class ScoresInvalidError(_ProblemsError):
    """Scores that do not fit the form version."""

    code = "qa.scores_invalid"


class ForbiddenError(QaError):
    code = "qa.forbidden"
    status_hint = 403


class NotFoundError(QaError):
    code = "qa.not_found"
    status_hint = 404


class StateError(QaError):
    code = "qa.conflict"
    status_hint = 409
