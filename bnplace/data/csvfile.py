"""The user's own CSV file: read, check and clean it, column by column, before any training.

In: a `CsvData` data section and the folder its relative path is resolved against (the config file's
folder). Out: a `RawSeries` (forecasting: one row per time step) or `RawSequences`
(classification: one row per sequence in wide format, or one row per time step with a
`sequence_column` in long format). Every problem raises `DataError` naming the file, the
column, the first offending row and what was found:
missing file, unreadable CSV, missing column (with "did you mean"), non-numeric values,
NaN / inf (unless `fill` says how to repair them), unparseable, duplicate or unsorted time
stamps (unless `sort: true`), a label column with empty cells, sequences of unequal length.
Gaps in the time column are not errors: they are reported as warnings.

Row numbers in messages count data rows from 1 (the first row under the header); the file line
is that number plus one.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from bnplace.config.data import CsvData
from bnplace.data.raw import RawSequences, RawSeries, show_time, time_unit
from bnplace.errors import DataError, did_you_mean


def resolve(written: str, base_dir: Path) -> Path:
    path = Path(written).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


def load(section: CsvData, base_dir: Path) -> RawSeries | RawSequences:
    path = resolve(section.path, base_dir)
    frame = read(path, section)
    if section.task == "classify":
        return _sequences(frame, section, str(path))
    return _series(frame, section, str(path))


# --- reading -------------------------------------------------------------------------------


def read(path: Path, section: CsvData) -> pd.DataFrame:
    """The file as a DataFrame with stripped column names and a 0-based RangeIndex."""
    file = str(path)
    if not path.exists():
        raise DataError(
            f"file not found (data.path is {section.path!r}; relative paths are read from the "
            "config file's folder)",
            file=file,
        )
    if path.is_dir():
        raise DataError("is a folder, not a CSV file", file=file)
    try:
        frame = pd.read_csv(path, sep=section.delimiter, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", file=file) from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise DataError(
            f"cannot read it as CSV with delimiter {section.delimiter!r}: {detail}", file=file
        ) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=file) from None
    except OSError as exc:
        raise DataError(f"cannot read the file: {exc.strerror or exc}", file=file) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError("the file has a header but no data rows", file=file)
    return frame.reset_index(drop=True)


def _delimiter_hint(frame: pd.DataFrame, section: CsvData) -> str:
    if len(frame.columns) != 1:
        return ""
    header = frame.columns[0]
    for candidate, shown in ((";", ";"), ("\t", "tab"), ("|", "|"), (",", ",")):
        if candidate != section.delimiter and candidate in header:
            return f"; the header holds {candidate!r}: set data.delimiter: '{shown}'"
    return ""


def _require(frame: pd.DataFrame, name: str, key: str, section: CsvData, file: str) -> None:
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


def _where(row: int) -> str:
    return f"row {row} (line {row + 1})"


# --- checks shared by both tasks -----------------------------------------------------------


def _numeric(frame: pd.DataFrame, name: str, file: str, rows: np.ndarray) -> pd.Series:
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
        raise DataError(
            f"{count} non-numeric value(s), the first {str(text.iloc[first])!r} at "
            f"{_where(row)}; every value of a feature or target must be a number",
            file=file,
            column=name,
            row=row,
        )
    return numbers.astype(np.float64)


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
    frame: pd.DataFrame, excluded: set[str], file: str
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
    if not chosen:
        raise DataError(
            "no numeric column to use as a feature (columns: "
            f"{', '.join(map(repr, frame.columns))}); name them in data.features",
            file=file,
        )
    return chosen, skipped


def _named(*columns: str | None) -> set[str]:
    """The columns a section names, less the settings left unset."""
    return {c for c in columns if c is not None}


def _feature_columns(
    frame: pd.DataFrame, section: CsvData, excluded: set[str], file: str, notes: list[str]
) -> list[str]:
    """`data.features` as written, else every numeric column but `excluded` (noted)."""
    if section.features is not None:
        return list(section.features)
    chosen, skipped = _default_features(frame, excluded, file)
    if skipped:
        notes.append(f"skipped non-numeric or unnamed column(s): {', '.join(map(repr, skipped))}")
    return chosen


def _report_missing(values: pd.DataFrame, file: str, rows: np.ndarray) -> None:
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
        f"the first at {_where(row)}{also}; set data.fill to ffill, interpolate or drop",
        file=file,
        column=str(values.columns[col]),
        row=row,
    )


def _fill(values: pd.DataFrame, how: str, *, both_ends: bool) -> pd.DataFrame:
    """Repair NaN / inf along axis 0. Leading gaps stay NaN unless `both_ends`."""
    values = values.replace([np.inf, -np.inf], np.nan)
    if how == "ffill":
        values = values.ffill()
        return values.bfill() if both_ends else values
    if how == "interpolate":
        direction: Literal["both", "forward"] = "both" if both_ends else "forward"
        return values.interpolate(method="linear", limit_direction=direction)
    return values  # "drop" is handled by the caller


def _clean(
    values: pd.DataFrame, section: CsvData, file: str, rows: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Apply `fill` to a (rows, columns) frame; returns kept values, kept row numbers, notes."""
    bad = ~np.isfinite(values.to_numpy(dtype=np.float64))
    if not bad.any():
        return values, rows, []
    if section.fill == "none":
        _report_missing(values, file, rows)
    counts = ", ".join(
        f"{name!r}: {int(k)}" for name, k in zip(values.columns, bad.sum(axis=0), strict=True) if k
    )
    if section.fill == "drop":
        keep = ~bad.any(axis=1)
        note = f"dropped {int((~keep).sum())} row(s) with missing or infinite values ({counts})"
        return values[keep], rows[keep], [note]
    filled = _fill(values, section.fill, both_ends=False)
    keep = filled.notna().all(axis=1).to_numpy()
    notes = [f"filled missing or infinite values by {section.fill} ({counts})"]
    if not keep.all():
        notes.append(f"dropped {int((~keep).sum())} leading row(s) that {section.fill} cannot fill")
    return filled[keep], rows[keep], notes


# --- time ----------------------------------------------------------------------------------


def _parse_time(frame: pd.DataFrame, name: str, file: str) -> np.ndarray:
    column = frame[name]
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64)
        missing = ~np.isfinite(values)
        if missing.any():
            first = int(np.flatnonzero(missing)[0]) + 1
            raise DataError(
                f"{int(missing.sum())} empty time stamp(s), the first at {_where(first)}",
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
            f"{int(empty.sum())} empty time stamp(s), the first at {_where(first)}",
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
            f"{str(text.iloc[first])!r} at {_where(first + 1)}",
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


def _order_by_time(
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
            f"{_where(int(rows[i]))} comes after {_show_time(time[i - 1])!r} "
            f"({int(back.size)} step(s) backwards in all); sort the file or set data.sort: true",
            file=file,
            column=name,
            row=int(rows[i]),
        )
    return order


def _gaps(time: np.ndarray, name: str, rows: np.ndarray) -> list[str]:
    if time.size < 3:
        return []
    steps = np.diff(time)
    is_dt = np.issubdtype(time.dtype, np.datetime64)
    numeric_steps = steps.astype(np.int64) if is_dt else steps.astype(np.float64)
    usual = np.median(numeric_steps)
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
        f"widest, {show(numeric_steps[widest])}, after {_show_time(time[widest])} "
        f"(row {int(rows[widest])}); windows run across gaps as if the rows were consecutive"
    ]


# --- forecasting ---------------------------------------------------------------------------


def _series(frame: pd.DataFrame, section: CsvData, file: str) -> RawSeries:
    notes: list[str] = []
    rows = np.arange(1, len(frame) + 1)
    time = None
    if section.time_column is not None:
        _require(frame, section.time_column, "time_column", section, file)
    for key in ("features", "targets"):
        for name in getattr(section, key) or ():
            _require(frame, name, key, section, file)
    if section.time_column is not None:
        time = _parse_time(frame, section.time_column, file)
        order = _order_by_time(time, section, file, rows)
        if section.sort and not np.array_equal(order, np.arange(len(order))):
            notes.append(f"sorted the rows by {section.time_column!r}")
            frame, time, rows = frame.iloc[order], time[order], rows[order]
    excluded = _named(section.time_column)
    features = _feature_columns(frame, section, excluded | set(section.targets or ()), file, notes)
    if section.features is None:  # the targets' own history is an input too
        features += [t for t in section.targets or () if t not in features]
    targets = list(section.targets) if section.targets is not None else [features[-1]]
    for name in targets:
        if name == section.time_column:
            raise DataError("the time column cannot be a target", file=file, column=name)
    columns = features + [t for t in targets if t not in features]
    if section.time_column in columns:
        raise DataError(
            "the time column cannot also be a feature; leave it out of data.features",
            file=file,
            column=section.time_column,
        )
    values = pd.DataFrame({name: _numeric(frame, name, file, rows).to_numpy() for name in columns})
    values, kept_rows, fill_notes = _clean(values, section, file, rows)
    notes += fill_notes
    if time is not None:
        keep = np.isin(rows, kept_rows)
        time = time[keep]
        notes += _gaps(time, section.time_column or "", kept_rows)
    return RawSeries(
        values=values.to_numpy(dtype=np.float64),
        columns=tuple(columns),
        feature_names=tuple(features),
        target_names=tuple(targets),
        origin=file,
        file=file,
        time=time,
        row_numbers=kept_rows,
        warnings=tuple(notes),
    )


# --- classification ------------------------------------------------------------------------


def _labels(frame: pd.DataFrame, section: CsvData, file: str) -> pd.Series:
    assert section.label_column is not None
    _require(frame, section.label_column, "label_column", section, file)
    labels = frame[section.label_column]
    empty = labels.isna() | (labels.astype("string").str.strip() == "")
    if empty.any():
        first = int(np.flatnonzero(empty.to_numpy())[0]) + 1
        raise DataError(
            f"{int(empty.sum())} empty label(s), the first at {_where(first)}",
            file=file,
            column=section.label_column,
            row=first,
        )
    if pd.api.types.is_float_dtype(labels) and (labels == labels.round()).all():
        labels = labels.astype(np.int64)
    if not pd.api.types.is_numeric_dtype(labels):
        labels = labels.astype("string").str.strip()
    return labels


def _sequences(frame: pd.DataFrame, section: CsvData, file: str) -> RawSequences:
    labels = _labels(frame, section, file)
    assert section.label_column is not None
    for name in section.features or ():
        _require(frame, name, "features", section, file)
    if section.sequence_column is None:
        return _wide(frame, labels, section, file)
    return _long(frame, labels, section, file)


def _wide(frame: pd.DataFrame, labels: pd.Series, section: CsvData, file: str) -> RawSequences:
    """One row per sequence: the value columns are its time steps (one channel)."""
    excluded = _named(section.label_column, section.time_column)
    notes: list[str] = []
    steps = _feature_columns(frame, section, excluded, file, notes)
    rows = np.arange(1, len(frame) + 1)
    values = pd.DataFrame({name: _numeric(frame, name, file, rows).to_numpy() for name in steps})
    x = values.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        if section.fill == "none":
            _report_missing(values, file, rows)
        if section.fill == "drop":
            keep = ~bad.any(axis=1)
            notes.append(f"dropped {int((~keep).sum())} sequence(s) with missing values")
            x, labels = x[keep], labels[keep]
        else:  # along each row's time axis
            x = _fill(pd.DataFrame(x.T), section.fill, both_ends=True).to_numpy().T
            notes.append(f"filled {int(bad.sum())} missing value(s) by {section.fill}")
    return RawSequences(
        x=x[:, :, None],
        labels=labels.to_numpy(),
        feature_names=("value",),
        origin=file,
        file=file,
        label_column=section.label_column or "",
        warnings=tuple(notes),
    )


def _long(frame: pd.DataFrame, labels: pd.Series, section: CsvData, file: str) -> RawSequences:
    """One row per time step; `sequence_column` says which sequence a row belongs to."""
    assert section.sequence_column is not None and section.label_column is not None
    _require(frame, section.sequence_column, "sequence_column", section, file)
    if section.time_column is not None:
        _require(frame, section.time_column, "time_column", section, file)
    excluded = _named(section.label_column, section.time_column, section.sequence_column)
    notes: list[str] = []
    features = _feature_columns(frame, section, excluded, file, notes)
    all_rows = np.arange(1, len(frame) + 1)
    values = pd.DataFrame(
        {name: _numeric(frame, name, file, all_rows).to_numpy() for name in features}
    )
    time = _parse_time(frame, section.time_column, file) if section.time_column else None
    ids = frame[section.sequence_column]
    if ids.isna().any():
        first = int(np.flatnonzero(ids.isna().to_numpy())[0]) + 1
        raise DataError(
            f"empty sequence id at {_where(first)}",
            file=file,
            column=section.sequence_column,
            row=first,
        )
    groups = pd.Series(np.arange(len(frame))).groupby(ids.to_numpy(), sort=False)
    sequences, seq_labels, lengths, dropped = [], [], {}, 0
    for key, positions in groups:
        pos = positions.to_numpy()
        rows = pos + 1
        found = pd.unique(labels.iloc[pos])
        if len(found) > 1:
            raise DataError(
                f"sequence {key!r} has {len(found)} different labels "
                f"({', '.join(map(repr, map(str, found[:3])))}); a sequence has one label",
                file=file,
                column=section.label_column,
                row=int(rows[0]),
            )
        if time is not None:
            order = _order_by_time(time[pos], section, file, rows, f" in sequence {key!r}")
            pos, rows = pos[order], rows[order]
        block = values.iloc[pos].reset_index(drop=True)
        block_values = block.to_numpy(dtype=np.float64)
        if not np.isfinite(block_values).all():
            if section.fill == "none":
                _report_missing(block, file, rows)
            if section.fill == "drop":
                dropped += 1
                continue
            block_values = _fill(block, section.fill, both_ends=True).to_numpy(dtype=np.float64)
        sequences.append(block_values)
        seq_labels.append(found[0])
        lengths[key] = len(pos)
    if dropped:
        notes.append(f"dropped {dropped} sequence(s) with missing values")
    distinct = sorted(set(lengths.values()))
    if len(distinct) > 1:
        by_length = {n: next(k for k, v in lengths.items() if v == n) for n in distinct}
        shown = ", ".join(f"{by_length[n]!r} has {n} rows" for n in distinct[:4])
        raise DataError(
            f"sequences differ in length ({shown}); classification needs sequences of one "
            "length: pad or cut them in the file",
            file=file,
            column=section.sequence_column,
        )
    if not sequences:
        raise DataError("no sequence left after dropping missing values", file=file)
    return RawSequences(
        x=np.stack(sequences),
        labels=np.asarray(seq_labels),
        feature_names=tuple(features),
        origin=file,
        file=file,
        label_column=section.label_column,
        warnings=tuple(notes),
    )
