"""YAML text -> validated `Config`, or one located message per problem.

In: the text of a config file, its name, and optional `key=value` overrides (`--set`). Out: a
`LoadedConfig` (the validated config, the raw data it came from, and where each key sits), or a
`ConfigError` whose problems name file:line:column (or the `--set key=value` that caused them),
the key path, what was expected, what was found and, for misspellings, what was probably meant
(worded by `bnplace.config.messages`). Pure: the caller reads the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from bnplace.config.checks import Issue, run_checks
from bnplace.config.messages import (
    Applied,
    Remap,
    in_order,
    moved,
    problems_from,
    to_problem,
    value_in_words,
)
from bnplace.config.overrides import UnknownKey, set_values, target_paths
from bnplace.config.schema import Config
from bnplace.config.yamlpos import KeyPath, Parsed, parse_yaml
from bnplace.names.errors import ConfigError, Problem


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    raw: dict[str, Any]
    file: str
    parsed: Parsed

    def problem(self, issue: Issue) -> Problem:
        return to_problem(issue, self.parsed, self.file)


def parse_config(text: str, file: str = "<config>", sets: Sequence[str] = ()) -> LoadedConfig:
    """The pipeline, in order: parse the YAML, require a mapping, validate (schema, then the
    cross-field checks), apply `--set`s and validate again, check every sweep value alone."""
    parsed = parse_yaml(text, file)
    raw = _mapping(parsed, file)
    config = _validate(raw, parsed, file)
    if sets:
        raw, applied = _apply_sets(raw, config, sets)
        config = _validate(raw, parsed, file, applied)
    _check_sweep_values(raw, config, parsed, file)
    return LoadedConfig(config, raw, file, parsed)


def _mapping(parsed: Parsed, file: str) -> dict[str, Any]:
    if isinstance(parsed.data, dict):
        return parsed.data
    line, column = parsed.positions.get((), (1, 1))
    problem = Problem(
        "a config is a YAML mapping",
        file=file,
        line=line,
        column=column,
        expected="keys 'experiment', 'data', 'model', ...",
        got=value_in_words(parsed.data),
    )
    raise ConfigError([problem])


def validate_raw(raw: dict[str, Any]) -> Config:
    """Validate data that the plan assembled from a loaded config (one variant's settings)."""
    return Config.model_validate(raw)


# --- validation (the messages are worded in bnplace.config.messages) -----------------------


def _validate(
    raw: dict[str, Any], parsed: Parsed, file: str, applied: Sequence[Applied] = ()
) -> Config:
    """`applied`: the `--set`s already in `raw`; problems they cause point at them, not the file."""
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems = problems_from(exc, raw, parsed, file, applied=applied)
        raise ConfigError(in_order(problems)) from None
    issues = run_checks(config)
    if issues:
        problems = [to_problem(issue, parsed, file, applied) for issue in issues]
        raise ConfigError(in_order(problems))
    return config


# --- sweep values and --set -----------------------------------------------------------------


def _check_sweep_values(raw: dict[str, Any], config: Config, parsed: Parsed, file: str) -> None:
    """Each axis value and each arm must give a valid config on its own."""
    problems: list[Problem] = []
    for key, values in config.sweep.axes.items():
        targets = target_paths(key, config)
        items = values.items() if isinstance(values, dict) else enumerate(values)
        for label, value in items:
            source = ("sweep", "axes", key, label)
            variant = set_values(raw, targets, value)
            problems += _try(variant, parsed, file, [(t, source) for t in targets], source)
    for arm_set, arms in config.sweep.arms.items():
        for arm, settings in arms.items():
            source = ("sweep", "arms", arm_set, arm)
            variant, remaps = raw, []
            for key, value in settings.items():
                targets = target_paths(key, config)
                variant = set_values(variant, targets, value)
                remaps += [(t, (*source, key)) for t in targets]
            problems += _try(variant, parsed, file, remaps, source)
    if problems:
        raise ConfigError(in_order(problems))


def _try(
    raw: dict[str, Any], parsed: Parsed, file: str, remaps: Sequence[Remap], fallback: KeyPath
) -> list[Problem]:
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        return problems_from(exc, raw, parsed, file, remaps, fallback)
    return [
        to_problem(moved(issue, remaps, fallback), parsed, file) for issue in run_checks(config)
    ]


def _apply_sets(
    raw: dict[str, Any], config: Config, sets: Sequence[str]
) -> tuple[dict[str, Any], list[Applied]]:
    """Apply `--set key=value` overrides (values parsed as YAML) to the raw data."""
    problems, applied = [], []
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        where = f"--set {item}"
        if not sep or not key:
            problems.append(Problem("expected key=value", file="--set", got=repr(item)))
            continue
        try:
            value = yaml.safe_load(text)
            targets = target_paths(key, config)
        except UnknownKey as exc:
            problems.append(Problem(str(exc), file=where, key=key, suggestion=exc.suggestion))
            continue
        except yaml.YAMLError as exc:
            reason = getattr(exc, "problem", None) or exc
            problems.append(Problem(f"value is not valid YAML: {reason}", file=where, key=key))
            continue
        raw = set_values(raw, targets, value)
        applied += [(t, item) for t in targets]
    if problems:
        raise ConfigError(problems)
    return raw, applied
