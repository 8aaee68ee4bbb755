"""Loading journey definitions from YAML, with errors that point at the file and line.

Every template a journey sends is rendered once at load (every locale, every channel the step
lists, with sample variables), so a journey that cannot render fails when the worker starts, not at
2 a.m.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import ValidationError

from streams.errors import ConfigurationError, TemplateError
from streams.journeys.definitions import Journey
from streams.templates import render, resolve_locale, sample_variables, template_locales

DEFAULTS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "journeys"


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads yes/no/on/off as booleans, so a reply list ``[yes, tak]`` would be ``[True, "tak"]``:
    here only true/false are (as in YAML 1.2). Boolean fields still accept yes/no (pydantic reads them)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _line_of(node: yaml.Node, loc: Iterable[object]) -> int:
    """The 1-based line of the value at ``loc`` (a pydantic error location) in a composed YAML node."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((value for key, value in node.value if key.value == part), None)
            if found is None:
                break
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
    return node.start_mark.line + 1


def parse(text: str, source: str = "<journey>") -> Journey:
    """One journey from its YAML text; ConfigurationError naming ``source:line`` and the key path."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{source}: not valid YAML: {exc}") from None
    if node is None or not isinstance(data, dict):
        raise ConfigurationError(f"{source}: a journey is a mapping (journey:, trigger:, steps: …)")
    try:
        journey = Journey.model_validate(data)
    except ValidationError as exc:
        problems = [f"{source}:{_line_of(node, e['loc'])}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: "
                    f"{e['msg']}" for e in exc.errors()]
        raise ConfigurationError("invalid journey:\n  " + "\n  ".join(problems)) from None
    _check_templates(journey, source)
    return journey


def _check_templates(journey: Journey, source: str) -> None:
    for step in journey.steps:
        if step.send is None:
            continue
        names = {step.send} | {v.templates[step.id] for v in journey.variants if step.id in v.templates}
        for name in names:
            try:
                for locale in template_locales(name):
                    for channel in step.channels:
                        render(name, resolve_locale(name, locale), channel, sample_variables(step.variables))
            except TemplateError as exc:
                raise ConfigurationError(f"{source}: step {step.id!r}: {exc}") from None


def load_dir(directory: Path | None = None) -> dict[str, Journey]:
    """Every ``*.yaml`` journey in ``directory`` (the shipped defaults when None), by name."""
    directory = Path(directory) if directory is not None else DEFAULTS_DIR
    if not directory.is_dir():  # a misspelt path would otherwise start a worker that sends nothing
        raise ConfigurationError(f"{directory}: no such journey directory")
    journeys: dict[str, Journey] = {}
    for path in sorted(directory.glob("*.yaml")):
        journey = parse(path.read_text(encoding="utf-8"), str(path))
        if journey.journey in journeys:
            raise ConfigurationError(f"{path}: journey {journey.journey!r} is defined twice")
        journeys[journey.journey] = journey
    return journeys
