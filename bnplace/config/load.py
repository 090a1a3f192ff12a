"""YAML text -> validated `Config`, or one located message per problem.

In: the text of a config file, its name, and optional `key=value` overrides (`--set`). Out: a
`LoadedConfig` (the validated config, the raw data it came from, and where each key sits), or a
`ConfigError` whose problems name file:line:column (or the `--set key=value` that caused them),
the key path, what was expected, what was found and, for misspellings, what was probably meant.
Pure: the caller reads the file.
"""

from __future__ import annotations

import dataclasses
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
        line, column = parsed.positions.get((), (1, 1))
        raise ConfigError(
            [
                Problem(
                    "a config is a YAML mapping",
                    file=file,
                    line=line,
                    column=column,
                    expected="keys 'experiment', 'data', 'model', ...",
                    got=_kind(parsed.data),
                )
            ]
        )
    raw: dict[str, Any] = parsed.data
    config = _validate(raw, parsed, file)
    if sets:
        raw, applied = _apply_sets(raw, config, sets)
        config = _validate(raw, parsed, file, applied)
    _check_sweep_values(raw, config, parsed, file)
    return LoadedConfig(config, raw, file, parsed)


def validate_raw(raw: dict[str, Any]) -> Config:
    """Validate data that the plan assembled from a loaded config (one variant's settings)."""
    return Config.model_validate(raw)


# --- validation and error translation -------------------------------------------------------


Applied = tuple[KeyPath, str]  # (path a `--set` wrote, the `key=value` text as given)


def _validate(
    raw: dict[str, Any], parsed: Parsed, file: str, applied: Sequence[Applied] = ()
) -> Config:
    """`applied`: the `--set`s already in `raw`; problems they cause point at them, not the file."""
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems = _problems(exc, raw, parsed, file, applied=applied)
        raise ConfigError(_in_order(problems)) from None
    issues = run_checks(config)
    if issues:
        problems = [_to_problem(issue, parsed, file, applied) for issue in issues]
        raise ConfigError(_in_order(problems))
    return config


def _in_order(problems: list[Problem]) -> list[Problem]:
    """Problems in file order (those without a line, such as `--set` ones, last)."""
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.column or 0))


Remap = tuple[KeyPath, KeyPath]  # (path in the assembled data, where the value is written)


def _problems(
    exc: ValidationError,
    raw: Any,
    parsed: Parsed,
    file: str,
    remaps: Sequence[Remap] = (),
    fallback: KeyPath | None = None,
    applied: Sequence[Applied] = (),
) -> list[Problem]:
    """One Problem per location; alternatives of a union at one place become one message.

    `remaps` point errors inside values that came from elsewhere (a sweep axis, an arm) back at
    where those values are written; other errors then go to `fallback`, prefixed with their key.
    """
    grouped: dict[KeyPath, list[Issue]] = {}
    missing: set[KeyPath] = set()
    for error in exc.errors(include_url=False):
        path, part = _realign(tuple(error["loc"]), raw, error["type"])
        issue = _issue(error, path)
        if part:  # a short form such as `dropout: 0.3`: the value is the layer's `rate`
            issue = dataclasses.replace(
                issue, message=f"{issue.message} (this value is its {part})"
            )
        if error["type"] == "missing":
            missing.add(issue.path)
        grouped.setdefault(issue.path, []).append(issue)
    # `filtres: 16` also makes `filters` missing: the "did you mean" already says so
    meant = {(*i.path[:-1], i.suggestion) for issues in grouped.values() for i in issues}
    problems = []
    for path, issues in grouped.items():
        if path in missing and path in meant:
            continue
        issue = issues[0]
        if len(issues) > 1:
            expected = " or ".join(dict.fromkeys(i.expected or i.message for i in issues))
            issue = Issue(path, "value does not fit", expected=expected, got=issue.got)
        problems.append(_to_problem(_moved(issue, remaps, fallback), parsed, file, applied))
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
        return Issue(path, f"missing required key '{error['loc'][-1]}'")
    if kind in ("union_tag_invalid", "union_tag_not_found"):  # `data.source`
        key = error["ctx"]["discriminator"].strip("'")
        tags = [t for m in _models_at(Config, path) for t in typing.get_args(_field(m, key))]
        if kind == "union_tag_not_found":
            return Issue((*path, key), f"missing required key '{key}'", expected=", ".join(tags))
        tag = str(error["ctx"]["tag"])
        return Issue(
            (*path, key),
            f"unknown {key} '{tag}'",
            expected=", ".join(tags),
            got=_show(tag),
            suggestion=did_you_mean(tag, tags) or "",
        )
    if kind == "too_short":
        least, count = error["ctx"]["min_length"], error["ctx"]["actual_length"]
        return Issue(
            path,
            "the list is empty" if count == 0 else "the list is too short",
            expected=f"at least {least} item{'s' if least != 1 else ''}",
            got=f"{count} item{'s' if count != 1 else ''}",
        )
    if kind == "string_too_short":
        least = error["ctx"]["min_length"]
        expected = f"at least {least} character{'s' if least != 1 else ''}"
        return Issue(path, "the value is empty", expected=expected, got=got)
    if kind == "string_pattern_mismatch":
        pattern = error["ctx"]["pattern"]
        return Issue(path, "not a valid name", expected=_PATTERNS.get(pattern, pattern), got=got)
    if kind in ("model_type", "model_attributes_type", "dict_type", "list_type"):
        # `key:` with nothing after it: the key is the place to show
        expected = "a list (`[a, b]` or `- a` lines)" if kind == "list_type" else _MAPPING
        return Issue(path, "wrong type", expected=expected, got=_kind(value), on_key=value is None)
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
    expected = message.removeprefix("Input should be ").split(", unable to parse")[0]
    problem = "value out of range" if "than" in expected else "wrong type or format"
    return Issue(path, problem, expected=expected, got=got)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value: Any) -> str:
    """A value as a YAML user would call it: 'a list', 'a mapping', 'nothing', or the value."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing (the key has no value)"
    return _show(value)


_MAPPING = "a mapping (`key: value` lines or `{key: value}`)"

# Field patterns of the schema, in words
_PATTERNS = {
    r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$": "letters, digits, '_', '.' and '-' (no spaces), "
    "starting with a letter or digit",
    r"^[A-Za-z][A-Za-z0-9_]*$": "letters, digits and '_' (no spaces, no '.'), "
    "starting with a letter",
}


def _realign(loc: KeyPath, raw: Any, kind: str) -> tuple[KeyPath, str]:
    """Drop the parts of a pydantic location that are not in the file (union member tags).

    Also returns the argument a short form's scalar stands for (`rate` of `dropout: 0.3`).
    """
    out: list[str | int] = []
    node = raw
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            out.append(part)
            node = node[part]
        elif isinstance(node, str) and node == part:  # a bare name: `- se`, `- batch_norm`
            out.append(part)
            node = None
        elif last and kind in ("extra_forbidden", "missing"):
            out.append(part)
        elif isinstance(node, dict | list):
            continue  # a union tag such as 'synthetic' or 'list[int]'
        else:  # below a scalar: the scalar itself is the place
            layer = LAYER_TYPES.get(str(out[-1])) if out else None
            return tuple(out), (part if layer and part == layer.shorthand else "")
    return tuple(out), ""


def _fields_at(model: Any, path: KeyPath) -> list[str]:
    """Field names of the model found at `path` under `model` (unions: all members' fields)."""
    names: list[str] = []
    for cand in _models_at(model, path):
        names += [n for n in cand.model_fields if n not in names]
    return names


def _field(model: type[BaseModel], name: str) -> Any:
    field = model.model_fields.get(name)
    return field.annotation if field else None


def _models_at(model: Any, path: KeyPath) -> list[type[BaseModel]]:
    """The pydantic models that can sit at `path` under `model` (a union gives several)."""
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
    return [c for c in _members(candidates) if isinstance(c, type) and issubclass(c, BaseModel)]


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


def _to_problem(
    issue: Issue, parsed: Parsed, file: str, applied: Sequence[Applied] = ()
) -> Problem:
    """Locate an issue in the file, or at the `--set` that wrote (or changed above) its key."""
    details = {"expected": issue.expected, "got": issue.got, "suggestion": issue.suggestion}
    for target, item in applied:
        n = min(len(target), len(issue.path))
        if issue.path[:n] == target[:n]:  # at or below the key set, or above it (a whole section)
            key = item.partition("=")[0].strip()  # as the user wrote it: `conv.filters`
            shown = dotted((key, *issue.path[n:])) if n == len(target) else dotted(issue.path)
            return Problem(issue.message, key=shown, file=f"--set {item}", **details)
    message = issue.message
    if applied:  # the file alone was valid: a --set changed what this value must be
        message += f" (with --set {', '.join(item for _, item in applied)})"
    if issue.on_key and issue.path in parsed.key_positions:
        line, column = parsed.key_positions[issue.path]
    else:
        position = parsed.positions.get(issue.path) or parsed.locate(issue.path)
        line, column = position if position else (None, None)
    return Problem(message, key=dotted(issue.path), file=file, line=line, column=column, **details)


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
        raise ConfigError(_in_order(problems))


def _try(
    raw: dict[str, Any], parsed: Parsed, file: str, remaps: Sequence[Remap], fallback: KeyPath
) -> list[Problem]:
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        return _problems(exc, raw, parsed, file, remaps, fallback)
    return [
        _to_problem(_moved(issue, remaps, fallback), parsed, file) for issue in run_checks(config)
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
            target = target_path(key, config)
        except UnknownKey as exc:
            problems.append(Problem(str(exc), file=where, key=key, suggestion=exc.suggestion))
            continue
        except yaml.YAMLError as exc:
            reason = getattr(exc, "problem", None) or exc
            problems.append(Problem(f"value is not valid YAML: {reason}", file=where, key=key))
            continue
        raw = set_value(raw, target, value)
        applied.append((target, item))
    if problems:
        raise ConfigError(problems)
    return raw, applied
