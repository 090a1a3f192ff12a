"""YAML text -> validated `Config`, or one located message per problem.

In: the text of a config file, its name, and optional `key=value` overrides (`--set`). Out: a
`LoadedConfig` (the validated config, the raw data it came from, and where each key sits), or a
`ConfigError` whose problems name file:line:column, the key path, what was expected, what was
found and, for misspellings, what was probably meant. Pure: the caller reads the file.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bnplace.config.checks import Issue, run_checks
from bnplace.config.overrides import UnknownKey, set_value, target_path
from bnplace.config.schema import LAYER_TYPES, Config
from bnplace.config.yamlpos import KeyPath, Parsed, dotted, parse_yaml
from bnplace.errors import ConfigError, Problem, did_you_mean


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    raw: dict[str, Any]
    file: str
    parsed: Parsed

    def problem(self, issue: Issue) -> Problem:
        return _to_problem(issue, self.parsed, self.file)


def parse_config(text: str, file: str = "<config>", sets: Sequence[str] = ()) -> LoadedConfig:
    parsed = parse_yaml(text, file)
    if not isinstance(parsed.data, dict):
        raise ConfigError(
            [
                Problem(
                    "a config is a YAML mapping",
                    file=file,
                    line=1,
                    column=1,
                    expected="keys 'experiment', 'data', 'model', ...",
                    got=type(parsed.data).__name__,
                )
            ]
        )
    raw: dict[str, Any] = parsed.data
    config = _validate(raw, parsed, file)
    if sets:
        raw = _apply_sets(raw, config, sets)
        config = _validate(raw, parsed, file)
    _check_sweep_values(raw, config, parsed, file)
    return LoadedConfig(config, raw, file, parsed)


def validate_raw(raw: dict[str, Any]) -> Config:
    """Validate data that the plan assembled from a loaded config (one variant's settings)."""
    return Config.model_validate(raw)


# --- validation and error translation -------------------------------------------------------


def _validate(raw: dict[str, Any], parsed: Parsed, file: str) -> Config:
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, raw, parsed, file)) from None
    issues = run_checks(config)
    if issues:
        raise ConfigError([_to_problem(issue, parsed, file) for issue in issues])
    return config


Remap = tuple[KeyPath, KeyPath]  # (path in the assembled data, where the value is written)


def _problems(
    exc: ValidationError,
    raw: Any,
    parsed: Parsed,
    file: str,
    remaps: Sequence[Remap] = (),
    fallback: KeyPath | None = None,
) -> list[Problem]:
    """One Problem per location; alternatives of a union at one place become one message.

    `remaps` point errors inside values that came from elsewhere (a sweep axis, an arm) back at
    where those values are written; other errors then go to `fallback`, prefixed with their key.
    """
    grouped: dict[KeyPath, list[Issue]] = {}
    for error in exc.errors(include_url=False):
        path = _realign(tuple(error["loc"]), raw, error["type"])
        grouped.setdefault(path, []).append(_issue(error, path))
    problems = []
    for path, issues in grouped.items():
        issue = issues[0]
        if len(issues) > 1:
            expected = " or ".join(dict.fromkeys(i.expected or i.message for i in issues))
            issue = Issue(path, "value does not fit", expected=expected, got=issue.got)
        problems.append(_to_problem(_moved(issue, remaps, fallback), parsed, file))
    return problems


def _moved(issue: Issue, remaps: Sequence[Remap], fallback: KeyPath | None) -> Issue:
    for target, source in remaps:
        if issue.path[: len(target)] == target:
            new_path = source + issue.path[len(target) :]
            return Issue(new_path, issue.message, issue.expected, issue.got, issue.suggestion)
    if fallback is None:
        return issue
    message = f"{dotted(issue.path)}: {issue.message}" if issue.path else issue.message
    return Issue(fallback, message, issue.expected, issue.got, issue.suggestion)


def _issue(error: dict[str, Any], path: KeyPath) -> Issue:
    kind, message = error["type"], error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    got = "" if isinstance(value, dict | list) else _show(value)
    if kind == "extra_forbidden":
        key = str(path[-1])
        allowed = _fields_at(Config, path[:-1])
        layer = key if key in LAYER_TYPES else did_you_mean(key, LAYER_TYPES)
        if len(path) == 3 and path[0] == "model" and layer:
            return Issue(
                path,
                f"'{key}' is not a block; {layer} is a layer, which goes at a site",
                expected=f"a block ({', '.join(allowed)}); place layers under `placements:`, "
                f"e.g. `placements: {{<block id>.post_act: [{layer}]}}`",
                on_key=True,
            )
        return Issue(
            path,
            f"unknown key '{key}'",
            expected=", ".join(allowed) if allowed else "",
            suggestion=did_you_mean(key, allowed) or "",
            on_key=True,
        )
    if kind == "missing":
        return Issue(path, f"missing required key '{path[-1]}'")
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", error.get("ctx", {}).get("expected", ""))
        return Issue(
            path,
            "value is not one of the allowed choices",
            expected=", ".join(choices),
            got=got,
            suggestion=did_you_mean(str(error.get("input")), choices) or "",
        )
    if kind == "value_error":
        return Issue(path, message, got=got)
    # pydantic says "Input should be less than 1": keep the constraint as the expectation
    expected = message.removeprefix("Input should be ")
    problem = "value out of range" if "than" in expected else "wrong type or format"
    return Issue(path, problem, expected=expected, got=got)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _realign(loc: KeyPath, raw: Any, kind: str) -> KeyPath:
    """Drop the parts of a pydantic location that are not in the file (union member tags)."""
    out: list[str | int] = []
    node = raw
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        elif last and kind in ("extra_forbidden", "missing"):
            out.append(part)
        elif isinstance(node, dict | list):
            continue  # a union tag such as 'synthetic' or 'list[int]'
        else:
            break  # below a scalar: the scalar itself is the place
    return tuple(out)


def _fields_at(model: Any, path: KeyPath) -> list[str]:
    """Field names of the model found at `path` under `model` (unions: all members' fields)."""
    candidates: list[Any] = [model]
    for part in path:
        nxt: list[Any] = []
        for cand in _members(candidates):
            if isinstance(part, int):
                args = typing.get_args(cand)
                if typing.get_origin(cand) is list and args:
                    nxt.append(args[0])
            elif isinstance(cand, type) and issubclass(cand, BaseModel):
                if part in cand.model_fields:
                    nxt.append(cand.model_fields[part].annotation)
            elif typing.get_origin(cand) is dict:
                nxt.append(typing.get_args(cand)[1])
        candidates = nxt
    names: list[str] = []
    for cand in _members(candidates):
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            names += [n for n in cand.model_fields if n not in names]
    return names


def _members(types_: list[Any]) -> list[Any]:
    out = []
    for tp in types_:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            out += _members([typing.get_args(tp)[0]])
        elif origin in (typing.Union, types.UnionType):
            out += _members(list(typing.get_args(tp)))
        elif tp is not type(None):
            out.append(tp)
    return out


def _to_problem(issue: Issue, parsed: Parsed, file: str) -> Problem:
    if issue.on_key and issue.path in parsed.key_positions:
        line, column = parsed.key_positions[issue.path]
    else:
        position = parsed.positions.get(issue.path) or parsed.locate(issue.path)
        line, column = position if position else (None, None)
    return Problem(
        issue.message,
        key=dotted(issue.path),
        file=file,
        line=line,
        column=column,
        expected=issue.expected,
        got=issue.got,
        suggestion=issue.suggestion,
    )


# --- sweep values and --set -----------------------------------------------------------------


def _check_sweep_values(raw: dict[str, Any], config: Config, parsed: Parsed, file: str) -> None:
    """Each axis value and each arm must give a valid config on its own."""
    problems: list[Problem] = []
    for key, values in config.sweep.axes.items():
        target = target_path(key, config)
        items = values.items() if isinstance(values, dict) else enumerate(values)
        for label, value in items:
            source = ("sweep", "axes", key, label)
            variant = set_value(raw, target, value)
            problems += _try(variant, parsed, file, [(target, source)], source)
    for arm_set, arms in config.sweep.arms.items():
        for arm, settings in arms.items():
            source = ("sweep", "arms", arm_set, arm)
            variant, remaps = raw, []
            for key, value in settings.items():
                target = target_path(key, config)
                variant = set_value(variant, target, value)
                remaps.append((target, (*source, key)))
            problems += _try(variant, parsed, file, remaps, source)
    if problems:
        raise ConfigError(problems)


def _try(
    raw: dict[str, Any], parsed: Parsed, file: str, remaps: Sequence[Remap], fallback: KeyPath
) -> list[Problem]:
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        return _problems(exc, raw, parsed, file, remaps, fallback)
    return [_to_problem(_moved(issue, remaps, fallback), parsed, file) for issue in run_checks(config)]


def _apply_sets(raw: dict[str, Any], config: Config, sets: Sequence[str]) -> dict[str, Any]:
    """Apply `--set key=value` overrides (values parsed as YAML) to the raw data."""
    problems = []
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(Problem("expected key=value", file="--set", got=item))
            continue
        try:
            value = yaml.safe_load(text)
            raw = set_value(raw, target_path(key, config), value)
        except UnknownKey as exc:
            problems.append(Problem(str(exc), file="--set", key=key, suggestion=exc.suggestion))
        except yaml.YAMLError as exc:
            problems.append(Problem(f"value is not valid YAML: {exc}", file="--set", key=key))
    if problems:
        raise ConfigError(problems)
    return raw
