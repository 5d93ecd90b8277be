"""Load the server configuration from YAML and refuse a bad file with ``file:line: reason``.

Paths inside the file: ``flows_dir`` and ``prompts_dir`` are relative to the config file's
folder; ``data_dir`` is relative to the working directory (the design card's ``./var``).
Reading is blocking: it happens before the event loop starts, or in a thread for reloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from config.errors import ConfigFileError, Problem
from config.schema import ServerConfig
from config.yamlsource import Located, load_file

DEMO_CONFIG = "demo.yaml"


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated configuration and where it came from."""

    config: ServerConfig
    path: Path
    source: Located

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def flows_dir(self) -> Path:
        return self.base_dir / self.config.flows_dir

    @property
    def prompts_dir(self) -> Path:
        return self.base_dir / self.config.prompts_dir


def demo_config_path() -> Path:
    """The demo configuration shipped inside the package."""
    return Path(str(resources.files("config").joinpath(DEMO_CONFIG)))


def _pydantic_problems(located: Located, exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if isinstance(part, str | int))
        where = ".".join(str(part) for part in loc)
        message = error["msg"].removeprefix("Value error, ")
        problems.append(located.problem(loc, f"{where}: {message}" if where else message))
    return problems


def _cross_references(located: Located, config: ServerConfig) -> list[Problem]:
    problems: list[Problem] = []
    queues = {q.name for q in config.queues}
    for s_index, sup in enumerate(config.supervisors):
        for q_index, queue in enumerate(sup.queues):
            if queue not in queues:
                path = ("supervisors", s_index, "queues", q_index)
                problems.append(located.problem(path, f"supervisor {sup.id!r}: unknown queue {queue!r}"))
    problems += _queue_rules(located, config)
    problems += _agent_rules(located, config)
    return problems


# The queues' built-in not-ready reasons (acd.config NO_ANSWER_REASON, REJECTED_REASON): always accepted.
_BUILT_IN_REASONS = {"no_answer_reason": "no answer", "reject_reason": "rejected"}


def _queue_rules(located: Located, config: ServerConfig) -> list[Problem]:
    """Overflow targets, rules an earlier exit makes unreachable, and the queues' not-ready reasons."""
    problems: list[Problem] = []
    queues = {q.name for q in config.queues}
    reasons = set(config.desk.codes_of(config.desk.pause_reasons))
    for q_index, queue in enumerate(config.queues):
        for key, built_in in _BUILT_IN_REASONS.items():
            value = getattr(queue, key)
            if value is not None and value != built_in and value not in reasons:
                problems.append(located.problem(("queues", q_index, key), f"queue {queue.name!r}: {key} {value!r} is "
                                                f"not one of desk.pause_reasons {sorted(reasons)} (or null: ready)"))
        exit_at: float | None = None
        for r_index, rule in queue.overflow_in_order():
            path = ("queues", q_index, "overflow", r_index)
            if exit_at is not None:
                problems.append(located.problem(path, f"queue {queue.name!r}: overflow rule at after_s "
                                                f"{rule.after_s:g} never applies: the call has left the queue by an "
                                                f"exit rule at after_s {exit_at:g}"))
            elif rule.exits:
                exit_at = rule.after_s
            if rule.action == "add_queue" and rule.queue not in queues:
                problems.append(located.problem((*path, "queue"), f"queue {queue.name!r}: overflow to unknown queue "
                                                f"{rule.queue!r}"))
            elif rule.action == "add_queue" and rule.queue == queue.name:
                problems.append(located.problem((*path, "queue"), f"queue {queue.name!r}: overflow to itself"))
    return problems


def _agent_rules(located: Located, config: ServerConfig) -> list[Problem]:
    """An agent's ``max_no_answer_reason`` must be a pause reason the desktops know."""
    problems: list[Problem] = []
    reasons = set(config.desk.codes_of(config.desk.pause_reasons))
    for a_index, agent in enumerate(config.agents):
        set_here = "max_no_answer_reason" in agent.model_fields_set
        if (agent.max_no_answer or set_here) and agent.max_no_answer_reason not in reasons:
            key = "max_no_answer_reason" if set_here else "max_no_answer"
            problems.append(located.problem(("agents", a_index, key), f"agent {agent.id!r}: max_no_answer_reason "
                                            f"{agent.max_no_answer_reason!r} is not one of desk.pause_reasons "
                                            f"{sorted(reasons)}"))
    return problems


def load_config(path: str | Path) -> LoadedConfig:
    """Read, parse and validate a configuration file.

    Raises:
        ConfigFileError: every problem found, each as ``file:line: reason``.
    """
    located = load_file(path)
    if located.data is None:
        located.data = {}
    if not isinstance(located.data, dict):
        raise ConfigFileError([located.problem((), "the configuration must be a mapping")])
    try:
        config = ServerConfig.model_validate(located.data)
    except ValidationError as exc:
        raise ConfigFileError(_pydantic_problems(located, exc)) from exc
    problems = _cross_references(located, config)
    if problems:
        raise ConfigFileError(problems)
    return LoadedConfig(config=config, path=Path(path).resolve(), source=located)


def check_config(path: str | Path) -> list[Problem]:
    """All problems of a configuration file (empty when it is good). Never raises for a bad file."""
    try:
        load_config(path)
    except ConfigFileError as exc:
        return list(exc.problems)
    return []
