"""Checks and repairs of a CSV file's columns, shared by forecasting and classification.

In: the file's DataFrame (as `bnplace.data.csvfile.read` gives it), its `CsvData` section, the
file's name and the file's row number of each frame row (frames may be reordered). Out: the
columns a section names (`require_column`, with "did you mean"), numeric columns as float64
(`numeric_column`), the feature columns (`feature_columns`: as written, else every numeric
column), NaN / inf repaired or reported per `fill` (`clean_missing`, `fill_missing`,
`report_missing`), and time stamps parsed, ordered and checked for gaps (`parse_time`,
`order_by_time`, `time_gaps`). Every problem raises `DataError` naming the file, the column and
the first offending row; gaps are notes, not errors.

Row numbers in messages count data rows from 1 (the first row under the header); the file line
is that number plus one (`at_row`).
"""

from __future__ import annotations

import re
import warnings
from typing import Literal

import numpy as np
import pandas as pd

from bnplace.config.data import CsvData
from bnplace.data.raw import show_time, time_unit
from bnplace.names.errors import DataError, did_you_mean

# --- columns named in the section ----------------------------------------------------------


def _delimiter_hint(frame: pd.DataFrame, section: CsvData) -> str:
    if len(frame.columns) != 1:
        return ""
    header = frame.columns[0]
    for candidate, shown in ((";", ";"), ("\t", "tab"), ("|", "|"), (",", ",")):
        if candidate != section.delimiter and candidate in header:
            return f"; the header holds {candidate!r}: set data.delimiter: '{shown}'"
    return ""


def require_column(frame: pd.DataFrame, name: str, key: str, section: CsvData, file: str) -> None:
    if name in frame.columns:
        return
    columns = list(frame.columns)
    raise DataError(
        f"no column {name!r} (named in data.{key}); the file has: "
        f"{', '.join(map(repr, columns))}{_delimiter_hint(frame, section)}",
        file=file,
        column=name,
        suggestion=did_you_mean(name, columns) or "",
    )


def at_row(row: int) -> str:
    return f"row {row} (line {row + 1})"


# --- numbers and missing values ------------------------------------------------------------


def numeric_column(frame: pd.DataFrame, name: str, file: str, rows: np.ndarray) -> pd.Series:
    """The column as float64, or a DataError that shows the first non-numeric cell.

    `rows` holds the file's row number of each row of `frame` (frames may be reordered)."""
    column = frame[name]
    if pd.api.types.is_bool_dtype(column):
        return column.astype(np.float64)
    if pd.api.types.is_numeric_dtype(column):
        return column.astype(np.float64)
    text = column.astype("string").str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    bad = numbers.isna() & text.notna() & (text != "")
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        count, row = int(bad.sum()), int(rows[first])
        shown = str(text.iloc[first])
        raise DataError(
            f"{count} non-numeric value(s), the first {shown!r} at "
            f"{at_row(row)}; every value of a feature or target must be a number"
            + _number_format_hint(shown),
            file=file,
            column=name,
            row=row,
        )
    return numbers.astype(np.float64)


def _number_format_hint(value: str) -> str:
    """'1.200,25' or '3,5': a number written with a decimal comma or thousands separators."""
    if re.fullmatch(r"[-+]?\d{1,3}(\.\d{3})+(,\d+)?", value):
        return (
            " (it looks like a number with '.' thousands and a ',' decimal mark: set "
            "data.decimal: ',' and data.thousands: '.')"
        )
    if re.fullmatch(r"[-+]?\d+,\d+", value):
        return " (it looks like a decimal comma: set data.decimal: ',')"
    if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?", value):
        return " (it looks like ',' thousands separators: set data.thousands: ',')"
    return ""


def _looks_numeric(column: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return True
    text = column.astype("string").str.strip()
    present = text.notna() & (text != "")
    if not present.any():
        return False
    parsed = pd.to_numeric(text[present], errors="coerce").notna()
    return bool(parsed.mean() >= 0.5)


def _default_features(
    frame: pd.DataFrame, excluded: set[str], file: str, allow_none: bool = False
) -> tuple[list[str], list[str]]:
    """Every column that holds numbers, except `excluded`; and the skipped columns.

    Columns without a header ("Unnamed: 0", typically a saved DataFrame index) are skipped too:
    a row counter as a feature would leak the position in the series."""
    chosen: list[str] = []
    skipped: list[str] = []
    for name in frame.columns:
        if name in excluded:
            continue
        usable = _looks_numeric(frame[name]) and not name.startswith("Unnamed: ")
        (chosen if usable else skipped).append(name)
    if not chosen and not allow_none:
        raise DataError(
            "no numeric column to use as a feature (columns: "
            f"{', '.join(map(repr, frame.columns))}); name them in data.features",
            file=file,
        )
    return chosen, skipped


def named(*columns: str | None) -> set[str]:
    """The columns a section names, less the settings left unset."""
    return {c for c in columns if c is not None}


def feature_columns(
    frame: pd.DataFrame,
    section: CsvData,
    excluded: set[str],
    file: str,
    notes: list[str],
    *,
    allow_none: bool = False,
) -> list[str]:
    """`data.features` as written, else every numeric column but `excluded` (noted); none is
    an error unless `allow_none` (forecasting from the targets' own history)."""
    if section.features is not None:
        return list(section.features)
    chosen, skipped = _default_features(frame, excluded, file, allow_none)
    if skipped:
        notes.append(f"skipped non-numeric or unnamed column(s): {', '.join(map(repr, skipped))}")
    return chosen


def report_missing(values: pd.DataFrame, file: str, rows: np.ndarray) -> None:
    """Raise for NaN / inf cells (used when fill is 'none')."""
    arr = values.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    per_column = bad.sum(axis=0)
    first = int(np.flatnonzero(bad.any(axis=1))[0])  # the earliest bad row, then its column
    col = int(np.flatnonzero(bad[first])[0])
    n_inf = int(np.isinf(arr[:, col]).sum())
    n_nan = int(per_column[col]) - n_inf
    others = [
        f"{name!r}: {int(k)}"
        for name, k in zip(values.columns, per_column, strict=True)
        if k and name != values.columns[col]
    ]
    also = f"; also in {', '.join(others)}" if others else ""
    row = int(rows[first])
    raise DataError(
        f"{int(per_column[col])} missing or infinite value(s) ({n_nan} NaN/empty, {n_inf} inf), "
        f"the first at {at_row(row)}{also}; set data.fill to ffill, interpolate or drop",
        file=file,
        column=str(values.columns[col]),
        row=row,
    )


def fill_missing(values: pd.DataFrame, how: str, *, both_ends: bool) -> pd.DataFrame:
    """Repair NaN / inf along axis 0. Leading gaps stay NaN unless `both_ends`."""
    values = values.replace([np.inf, -np.inf], np.nan)
    if how == "ffill":
        values = values.ffill()
        return values.bfill() if both_ends else values
    if how == "interpolate":
        direction: Literal["both", "forward"] = "both" if both_ends else "forward"
        return values.interpolate(method="linear", limit_direction=direction)
    return values  # "drop" is handled by the caller


def clean_missing(
    values: pd.DataFrame, section: CsvData, file: str, rows: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Apply `fill` to a (rows, columns) frame; returns kept values, kept row numbers, notes."""
    bad = ~np.isfinite(values.to_numpy(dtype=np.float64))
    if not bad.any():
        return values, rows, []
    if section.fill == "none":
        report_missing(values, file, rows)
    counts = ", ".join(
        f"{name!r}: {int(k)}" for name, k in zip(values.columns, bad.sum(axis=0), strict=True) if k
    )
    if section.fill == "drop":
        keep = ~bad.any(axis=1)
        note = f"dropped {int((~keep).sum())} row(s) with missing or infinite values ({counts})"
        return values[keep], rows[keep], [note]
    filled = fill_missing(values, section.fill, both_ends=False)
    keep = filled.notna().all(axis=1).to_numpy()
    notes = [f"filled missing or infinite values by {section.fill} ({counts})"]
    if not keep.all():
        notes.append(f"dropped {int((~keep).sum())} leading row(s) that {section.fill} cannot fill")
    return filled[keep], rows[keep], notes


# --- time ----------------------------------------------------------------------------------


def parse_time(frame: pd.DataFrame, name: str, file: str) -> np.ndarray:
    column = frame[name]
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64)
        missing = ~np.isfinite(values)
        if missing.any():
            first = int(np.flatnonzero(missing)[0]) + 1
            raise DataError(
                f"{int(missing.sum())} empty time stamp(s), the first at {at_row(first)}",
                file=file,
                column=name,
                row=first,
            )
        return column.to_numpy()
    text = column.astype("string").str.strip()
    empty = text.isna() | (text == "")
    if empty.any():
        first = int(np.flatnonzero(empty.to_numpy())[0]) + 1
        raise DataError(
            f"{int(empty.sum())} empty time stamp(s), the first at {at_row(first)}",
            file=file,
            column=name,
            row=first,
        )
    parsed = None
    for fmt in (None, "mixed"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                candidate = pd.to_datetime(text, errors="coerce", format=fmt)
        except (ValueError, TypeError, OverflowError):
            continue
        parsed = candidate
        if candidate.notna().all():
            break
    if parsed is None:
        raise DataError("cannot parse the time stamps as dates/times", file=file, column=name)
    failed = parsed.isna().to_numpy()
    if failed.any():
        first = int(np.flatnonzero(failed)[0])
        raise DataError(
            f"{int(failed.sum())} value(s) that are not dates/times, the first "
            f"{str(text.iloc[first])!r} at {at_row(first + 1)}",
            file=file,
            column=name,
            row=first + 1,
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.to_numpy().astype("datetime64[ns]")


def _show_time(value: object) -> str:
    if isinstance(value, np.datetime64):
        return show_time(value, time_unit(np.array([value])))
    return str(value.item() if isinstance(value, np.generic) else value)


def order_by_time(
    time: np.ndarray, section: CsvData, file: str, rows: np.ndarray, context: str = ""
) -> np.ndarray:
    """Positions that put the rows in time order; raises on duplicates and on disorder."""
    assert section.time_column is not None
    name = section.time_column
    order = np.argsort(time, kind="stable")
    ordered = time[order]
    same = np.flatnonzero(ordered[1:] == ordered[:-1])
    if same.size:
        a, b = sorted((int(rows[order[same[0]]]), int(rows[order[same[0] + 1]])))
        raise DataError(
            f"duplicate time stamp {_show_time(ordered[same[0]])!r}{context} at rows {a} and {b} "
            f"({int(same.size)} duplicate(s) in all); every time stamp must be unique",
            file=file,
            column=name,
            row=b,
        )
    back = np.flatnonzero(time[1:] < time[:-1])
    if back.size and not section.sort:
        i = int(back[0]) + 1
        raise DataError(
            f"time stamps are not in order{context}: {_show_time(time[i])!r} at "
            f"{at_row(int(rows[i]))} comes after {_show_time(time[i - 1])!r} "
            f"({int(back.size)} step(s) backwards in all); sort the file or set data.sort: true",
            file=file,
            column=name,
            row=int(rows[i]),
        )
    return order


def time_gaps(time: np.ndarray, name: str, rows: np.ndarray) -> list[str]:
    if time.size < 3:
        return []
    steps = np.diff(time)
    is_dt = np.issubdtype(time.dtype, np.datetime64)
    numeric_steps = steps.astype(np.int64) if is_dt else steps.astype(np.float64)
    usual = float(np.median(numeric_steps))
    if usual <= 0:
        return []
    gaps = np.flatnonzero(numeric_steps > 1.5 * usual)
    if not gaps.size:
        return []
    widest = int(gaps[np.argmax(numeric_steps[gaps])])

    def show(step: float) -> str:
        return str(pd.Timedelta(int(step), unit="ns")) if is_dt else f"{step:g}"

    return [
        f"{gaps.size} gap(s) in {name!r} longer than the usual step of {show(usual)}; the "
        f"widest, {show(float(numeric_steps[widest]))}, after {_show_time(time[widest])} "
        f"(row {int(rows[widest])}); windows run across gaps as if the rows were consecutive"
    ]
