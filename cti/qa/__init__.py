"""Quality assurance (质检, docs/qa.md): transparent sampling rules, scorecards, evaluations, appeals, playback
and the good-call library. The cores here are pure (time passed in); :mod:`cti.qa.store` keeps their records and
:mod:`cti.qa.routes` serves them.
"""

from cti.qa.appeals import Action, Actor, AppealState, EvaluationState, appeal_deadline
from cti.qa.errors import (
    ForbiddenError,
    FormInvalidError,
    NotFoundError,
    QaError,
    RuleInvalidError,
    ScoresInvalidError,
    StateError,
)
from cti.qa.evaluations import DEFAULT_APPEAL_WORKING_DAYS, DEFAULT_CALIBRATION_TOLERANCE, EvaluationService
from cti.qa.library import Library, Playback, read_layout, wav_playback
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
from cti.qa.scoring import Form, calibration_report, parse_form, rescore, score
from cti.qa.service import Directory, QaService, item_json

__all__ = [
    "DEFAULT_APPEAL_WORKING_DAYS", "DEFAULT_CALIBRATION_TOLERANCE", "INSUFFICIENT", "Action", "Actor", "AppealState",
    "CallFact", "Directory", "EvaluationService", "EvaluationState", "ForbiddenError", "Form", "FormInvalidError",
    "Library", "NotFoundError", "QaError", "QaService", "Rule", "RuleInvalidError", "SampleItem",
    "ScoresInvalidError", "Selection", "StateError", "appeal_deadline", "assign_evaluators", "calibration_report",
    "canonical_rule", "chosen_days", "commitment", "facts_from_legs", "item_json", "parse_form", "parse_rule",
    "rescore", "rule_hash", "score", "select", "selection_digest",
    "Playback", "read_layout", "wav_playback",
]
