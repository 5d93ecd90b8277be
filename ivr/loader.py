"""Load and validate IVR flow files into an immutable :class:`~ivr.flow.FlowSet`.

YAML is read with :mod:`config.yamlsource` so every refusal is ``file:line: reason``
(:class:`config.errors.ConfigFileError` / :class:`config.errors.Problem`). Loading is
blocking (file reads, WAV headers): call it before the event loop starts or in a thread
(:class:`ivr.catalog.FlowCatalog` does the latter for hot reloads).

The format is documented in ``docs/ivr.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from config.errors import ConfigFileError, Problem
from config.yamlsource import Located, load_file, load_text
from ivr.flow import CalendarName, FlowName, FlowSet, ListName
from ivr.parse import Parsed, parse_document
from ivr.validate import check_graph, check_prompts, check_references, check_subflows, var_types

FLOW_SUFFIXES = (".yaml", ".yml")


def _merge(docs: Sequence[Parsed], problems: list[Problem]) -> None:
    """Names of flows, lists and calendars are global to the set: refuse duplicates across files."""
    seen: dict[tuple[str, str], str] = {}
    for doc in docs:
        for section, names in (("flows", doc.flows), ("lists", doc.lists), ("calendars", doc.calendars)):
            for name in names:
                key = (section, name)
                here = doc.src.problem((section, name), "")
                if key in seen:
                    reason = f"duplicate {section[:-1]} '{name}' (first defined at {seen[key]})"
                    problems.append(Problem(here.file, here.line, reason))
                else:
                    seen[key] = f"{here.file}:{here.line}"


def _build(
    docs: list[Parsed],
    prompt_dir: Path | None,
    version: int,
    extra_lists: Mapping[str, Iterable[str]] | None,
) -> tuple[FlowSet | None, list[Problem]]:
    problems = [p for doc in docs for p in doc.problems]
    if extra_lists:
        extra = Parsed(src=Located("<server config>", None))
        extra.lists = {ListName(name): frozenset(numbers) for name, numbers in extra_lists.items()}
        docs = [*docs, extra]
    _merge([d for d in docs if d.src.data is not None], problems)
    types = var_types(docs, problems)
    check_references(docs, types, problems)
    all_flows = {name for doc in docs for name in doc.flows}
    for doc in docs:
        for flow in doc.flows.values():
            check_graph(doc, flow, all_flows, problems)
    check_subflows(docs, problems)
    seconds = check_prompts(docs, prompt_dir, problems) if prompt_dir is not None else {}
    if problems:
        return None, sorted(set(problems), key=lambda p: (p.file, p.line, p.reason))
    lists: dict[ListName, frozenset[str]] = {}
    for doc in docs:
        for name, numbers in doc.lists.items():
            lists[name] = lists.get(name, frozenset()) | numbers
    flow_set = FlowSet(
        version=version,
        flows={FlowName(n): f for doc in docs for n, f in doc.flows.items()},
        lists=lists,
        calendars={CalendarName(n): c for doc in docs for n, c in doc.calendars.items()},
        var_types=types,
        prompt_seconds=seconds,
    )
    return flow_set, []


def _finish(flow_set: FlowSet | None, problems: list[Problem]) -> FlowSet:
    if flow_set is None:
        raise ConfigFileError(problems)
    return flow_set


def load_flow_text(
    text: str,
    file: str = "<string>",
    *,
    prompt_dir: Path | None = None,
    version: int = 1,
    extra_lists: Mapping[str, Iterable[str]] | None = None,
) -> FlowSet:
    """Parse and validate one flow document given as text.

    Raises:
        ConfigFileError: every problem found, each ``file:line: reason``.
    """
    return _finish(*_build([parse_document(load_text(text, file))], prompt_dir, version, extra_lists))


def load_flow_files(
    paths: Sequence[str | Path],
    prompt_dir: str | Path | None = None,
    *,
    version: int = 1,
    extra_lists: Mapping[str, Iterable[str]] | None = None,
) -> FlowSet:
    """Load several flow files as one set (flows in one file may call sub-flows in another).

    ``extra_lists`` adds number lists defined outside flow files (for example the server
    config's ``vip_numbers`` as list ``vip``); a list defined in both places is the union.

    Raises:
        ConfigFileError: every problem found in every file, each ``file:line: reason``.
    """
    problems: list[Problem] = []
    docs: list[Parsed] = []
    for path in paths:
        try:
            docs.append(parse_document(load_file(path)))
        except ConfigFileError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigFileError(problems)
    prompts = Path(prompt_dir) if prompt_dir is not None else None
    return _finish(*_build(docs, prompts, version, extra_lists))


def flow_files(flows_dir: str | Path) -> list[Path]:
    """The flow files of a folder, sorted by name (blocking)."""
    return sorted(p for p in Path(flows_dir).iterdir() if p.suffix in FLOW_SUFFIXES and p.is_file())


def load_flow_dir(
    flows_dir: str | Path,
    prompt_dir: str | Path | None = None,
    *,
    version: int = 1,
    extra_lists: Mapping[str, Iterable[str]] | None = None,
) -> FlowSet:
    """Load every ``*.yaml`` / ``*.yml`` file of a folder as one flow set.

    Raises:
        ConfigFileError: unreadable folder, or as :func:`load_flow_files`.
    """
    try:
        files = flow_files(flows_dir)
    except OSError as exc:
        raise ConfigFileError([Problem(str(flows_dir), 1, f"cannot read flow folder: {exc}")]) from exc
    return load_flow_files(files, prompt_dir, version=version, extra_lists=extra_lists)


def load_flow_file(path: str | Path, prompt_dir: str | Path | None = None, *, version: int = 1) -> FlowSet:
    """Load one flow file.

    Raises:
        ConfigFileError: every problem found, each ``file:line: reason``.
    """
    return load_flow_files([path], prompt_dir, version=version)


def validate_flow_file(path: str | Path, prompt_dir: str | Path | None) -> list[Problem]:
    """All problems of one flow file, empty when it is good (for ``cti config check``). Never raises."""
    try:
        load_flow_file(path, prompt_dir)
    except ConfigFileError as exc:
        return list(exc.problems)
    return []


def validate_flow_dir(
    flows_dir: str | Path, prompt_dir: str | Path | None, extra_lists: Mapping[str, Iterable[str]] | None = None
) -> list[Problem]:
    """All problems of a flow folder taken as one set, empty when good. Never raises."""
    try:
        load_flow_dir(flows_dir, prompt_dir, extra_lists=extra_lists)
    except ConfigFileError as exc:
        return list(exc.problems)
    return []
