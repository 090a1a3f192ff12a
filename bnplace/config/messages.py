"""Pydantic's validation errors and the checks' issues -> located, worded `Problem`s.

In: a pydantic `ValidationError` (or `Issue`s from `bnplace.config.checks`), the raw data that
was validated, the parsed YAML (positions of keys and values), the file name, and the `--set`s
and sweep values that changed the data. Out: `Problem`s that name file:line:column (or the
`--set key=value` responsible), the key path, what was expected, what was found and, for
misspellings, what was probably meant: one per location, alternatives of a union merged, union
member tags dropped from paths, short forms (`dropout: 0.3`) explained. Pure.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bnplace.config.checks import Issue
from bnplace.config.layers import LAYER_TYPES
from bnplace.config.schema import Config
from bnplace.config.yamlpos import KeyPath, Parsed, dotted
from bnplace.names.errors import Problem, did_you_mean

__all__ = ["Applied", "Remap", "in_order", "moved", "problems_from", "to_problem", "value_in_words"]

Applied = tuple[KeyPath, str]  # (path a `--set` wrote, the `key=value` text as given)


def in_order(problems: list[Problem]) -> list[Problem]:
    """Problems in file order (those without a line, such as `--set` ones, last)."""
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.column or 0))


Remap = tuple[KeyPath, KeyPath]  # (path in the assembled data, where the value is written)


def problems_from(
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
        problems.append(to_problem(moved(issue, remaps, fallback), parsed, file, applied))
    return problems


def moved(issue: Issue, remaps: Sequence[Remap], fallback: KeyPath | None) -> Issue:
    for target, source in remaps:
        if issue.path[: len(target)] == target:
            new_path = source + issue.path[len(target) :]
            return Issue(new_path, issue.message, issue.expected, issue.got, issue.suggestion)
    if fallback is None:
        return issue
    message = f"{dotted(issue.path)}: {issue.message}" if issue.path else issue.message
    return Issue(fallback, message, issue.expected, issue.got, issue.suggestion)


def _issue(error: ErrorDetails, path: KeyPath) -> Issue:
    """One pydantic error at `path` (already realigned to the file) -> an `Issue` in words."""
    error_type, message = error["type"], error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    got = "" if isinstance(value, dict | list) else _show(value)
    if error_type == "extra_forbidden":
        return _unknown_key(path)
    if error_type == "missing":
        return Issue(path, f"missing required key '{error['loc'][-1]}'")
    if error_type in ("union_tag_invalid", "union_tag_not_found"):  # `data.source`
        return _union_tag(error, path)
    if error_type == "too_short":
        return _too_short(error, path)
    if error_type == "string_too_short":
        least = error["ctx"]["min_length"]
        expected = f"at least {least} character{'s' if least != 1 else ''}"
        return Issue(path, "the value is empty", expected=expected, got=got)
    if error_type == "string_pattern_mismatch":
        pattern = error["ctx"]["pattern"]
        return Issue(path, "not a valid name", expected=_PATTERNS.get(pattern, pattern), got=got)
    if error_type in ("model_type", "model_attributes_type", "dict_type", "list_type"):
        # `key:` with nothing after it: the key is the place to show
        expected = "a list (`[a, b]` or `- a` lines)" if error_type == "list_type" else _MAPPING
        return Issue(
            path, "wrong type", expected=expected, got=value_in_words(value), on_key=value is None
        )
    if error_type == "literal_error":
        return _not_a_choice(error, path, got)
    if error_type == "value_error":
        return Issue(path, message, got=got)
    # pydantic says "Input should be less than 1": keep the constraint as the expectation
    expected = message.removeprefix("Input should be ").split(", unable to parse")[0]
    problem = "value out of range" if "than" in expected else "wrong type or format"
    return Issue(path, problem, expected=expected, got=got)


def _unknown_key(path: KeyPath) -> Issue:
    """A key the schema does not have; a layer written where a block goes says where it goes."""
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


def _union_tag(error: ErrorDetails, path: KeyPath) -> Issue:
    """A missing or unknown tag of a tagged union (`data.source`), with the tags there are."""
    key = error["ctx"]["discriminator"].strip("'")
    tags = [t for m in _models_at(Config, path) for t in typing.get_args(_field(m, key))]
    if error["type"] == "union_tag_not_found":
        return Issue((*path, key), f"missing required key '{key}'", expected=", ".join(tags))
    tag = str(error["ctx"]["tag"])
    return Issue(
        (*path, key),
        f"unknown {key} '{tag}'",
        expected=", ".join(tags),
        got=_show(tag),
        suggestion=did_you_mean(tag, tags) or "",
    )


def _too_short(error: ErrorDetails, path: KeyPath) -> Issue:
    least, count = error["ctx"]["min_length"], error["ctx"]["actual_length"]
    return Issue(
        path,
        "the list is empty" if count == 0 else "the list is too short",
        expected=f"at least {least} item{'s' if least != 1 else ''}",
        got=f"{count} item{'s' if count != 1 else ''}",
    )


def _not_a_choice(error: ErrorDetails, path: KeyPath, got: str) -> Issue:
    choices = re.findall(r"'([^']*)'", error.get("ctx", {}).get("expected", ""))
    return Issue(
        path,
        "value is not one of the allowed choices",
        expected=", ".join(choices),
        got=got,
        suggestion=did_you_mean(str(error.get("input")), choices) or "",
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def value_in_words(value: Any) -> str:
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


def _realign(loc: KeyPath, raw: Any, error_type: str) -> tuple[KeyPath, str]:
    """Drop the parts of a pydantic location that are not in the file (union member tags).

    Also returns the argument a short form's scalar stands for (`rate` of `dropout: 0.3`).
    """
    out: list[str | int | float] = []
    node = raw
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        in_mapping = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_mapping or in_list:
            out.append(part)
            node = node[part]
        elif isinstance(node, str) and node == part:  # a bare name: `- se`, `- batch_norm`
            out.append(part)
            node = None
        elif last and error_type in ("extra_forbidden", "missing"):
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


def to_problem(issue: Issue, parsed: Parsed, file: str, applied: Sequence[Applied] = ()) -> Problem:
    """Locate an issue in the file, or at the `--set` that wrote (or changed above) its key."""
    problem = functools.partial(
        Problem, expected=issue.expected, got=issue.got, suggestion=issue.suggestion
    )
    for target, item in applied:
        n = min(len(target), len(issue.path))
        if issue.path[:n] == target[:n]:  # at or below the key set, or above it (a whole section)
            key = item.partition("=")[0].strip()  # as the user wrote it: `conv.filters`
            shown = dotted((key, *issue.path[n:])) if n == len(target) else dotted(issue.path)
            return problem(issue.message, key=shown, file=f"--set {item}")
    message = issue.message
    if applied:  # the file alone was valid: a --set changed what this value must be
        message += f" (with --set {', '.join(item for _, item in applied)})"
    line: int | None
    column: int | None
    if issue.on_key and issue.path in parsed.key_positions:
        line, column = parsed.key_positions[issue.path]
    else:
        position = parsed.positions.get(issue.path) or parsed.locate(issue.path)
        line, column = position if position else (None, None)
    return problem(message, key=dotted(issue.path), file=file, line=line, column=column)
