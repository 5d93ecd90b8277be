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
