"""Quality assurance (质检, docs/qa.md): transparent sampling rules, scorecards, evaluations, appeals, playback
and the good-call library. The cores here are pure (time passed in); :mod:`cti.qa.store` keeps their records and
:mod:`cti.qa_routes` serves them.
"""

from cti.qa.errors import (
    ForbiddenError,
    FormInvalidError,
    NotFoundError,
    QaError,
    RuleInvalidError,
    ScoresInvalidError,
    StateError,
)
from cti.qa.rules import Rule, canonical_rule, parse_rule, rule_hash
from cti.qa.sampling import (
    INSUFFICIENT,
    CallFact,
    SampleItem,
    Selection,
    assign_evaluators,
    chosen_days,
    commitment,
    facts_from_legs,
    select,
    selection_digest,
)

__all__ = [
    "INSUFFICIENT", "CallFact", "ForbiddenError", "FormInvalidError", "NotFoundError", "QaError", "Rule",
    "RuleInvalidError", "SampleItem", "ScoresInvalidError", "Selection", "StateError", "assign_evaluators",
    "canonical_rule", "chosen_days", "commitment", "facts_from_legs", "parse_rule", "rule_hash", "select",
    "selection_digest",
]
