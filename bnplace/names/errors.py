"""The one error family of bnplace.

Library code raises `BnplaceError` subclasses that carry what a user needs to act (file, line,
column, key path, what was expected, what was found, a suggestion). Only the CLI renders them
and chooses the exit code. Every error pickles, because errors cross process and Ray
boundaries: each class keeps its constructor arguments in `self.args`-compatible form.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


def did_you_mean(got: str, choices: Iterable[str]) -> str | None:
    """The closest of `choices` to a misspelled `got`, or None when nothing is close."""
    matches = difflib.get_close_matches(str(got), [str(c) for c in choices], n=1, cutoff=0.6)
    return matches[0] if matches else None


class BnplaceError(Exception):
    """Base class: anything bnplace reports to the user as a clean message."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(
        self,
    ) -> tuple[Any, ...]:  # keep pickling exact for subclasses with other constructors
        return (self.__class__, (self.message,))

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Problem:
    """One located problem in a config file."""

    message: str
    key: str = ""  # dotted key path, e.g. "model[0].conv1d.filters"
    file: str = ""
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    expected: str = ""
    got: str = ""
    suggestion: str = ""

    def location(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def render(self) -> str:
        parts = [f"{self.location()}: {self.key + ': ' if self.key else ''}{self.message}"]
        if self.expected:
            parts.append(f"  expected: {self.expected}")
        if self.got:
            parts.append(f"  got: {self.got}")
        if self.suggestion:
            parts.append(f"  did you mean: {self.suggestion}")
        return "\n".join(parts)


class ConfigError(BnplaceError):
    """A config file that cannot be used; carries one `Problem` per mistake found."""

    exit_code = 2

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(p.render() for p in self.problems))

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.problems,))


class DataError(BnplaceError):
    """Data that cannot be used: names the file, the column and the problem."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str = "",
        column: str = "",
        row: int | None = None,
        suggestion: str = "",
    ) -> None:
        self.file, self.column, self.row, self.suggestion = file, column, row, suggestion
        where = file or "data"
        if column:
            where += f", column {column!r}"
        if row is not None:
            where += f", row {row}"
        text = f"{where}: {message}"
        if suggestion:
            text += f"\n  did you mean: {suggestion}"
        super().__init__(text)
        self.problem = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_data_error,
            (self.problem, self.file, self.column, self.row, self.suggestion),
        )


def _rebuild_data_error(
    message: str, file: str, column: str, row: int | None, suggestion: str
) -> DataError:
    return DataError(message, file=file, column=column, row=row, suggestion=suggestion)


class PlanError(BnplaceError):
    """A config that is valid on its own but yields an unusable variant (lint errors)."""

    exit_code = 2


class UnknownVariant(PlanError):
    """A variant named in the config (`compare.baseline`, a contrast) that picks no variant, or
    several; the plan locates it in the file (as a `ConfigError`) when it knows the file."""

    def __init__(
        self, key: str, wanted: str, matches: int, names: Sequence[str], suggestion: str = ""
    ) -> None:
        self.key, self.wanted, self.matches = key, wanted, matches
        self.names, self.suggestion = tuple(names), suggestion
        super().__init__(
            f"{key} '{wanted}' matches {matches} variants; name one of: "
            + "; ".join(self.names)
            + (f"\n  did you mean: {suggestion}" if suggestion else "")
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            self.__class__,
            (self.key, self.wanted, self.matches, self.names, self.suggestion),
        )


class PlanTooLarge(PlanError):
    """A sweep of more trials than a plan takes (`bnplace.plan.make.MAX_TRIALS`), refused before
    any variant is resolved; the message names the config file and the keys that multiply."""


class BuildError(BnplaceError):
    """A spec that cannot be turned into a Keras model."""


class TrackingError(BnplaceError):
    """The MLflow store cannot be reached or holds something unexpected."""


class StoreNotFound(TrackingError):
    """A store named on the command line (or by default) that does not exist: an input error
    (exit 2, like a missing config), not a failure of the store."""

    exit_code = 2


class MissingExtraError(BnplaceError):
    """An optional dependency is needed: says which extra installs it."""

    exit_code = 2

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package, self.extra, self.purpose = package, extra, purpose
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed.\n"
            f"  install it with: pip install 'bnplace[{extra}]'  (or: pip install {package})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.package, self.extra, self.purpose))
