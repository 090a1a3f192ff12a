"""The user's own CSV file: read, check and clean it, column by column, before any training.

In: a `CsvData` data section and the folder its relative path is resolved against (the config file's
folder). Out: a `RawSeries` (forecasting: one row per time step) or `RawSequences`
(classification: one row per sequence in wide format, or one row per time step with a
`sequence_column` in long format). Every problem raises `DataError` naming the file, the
column, the first offending row and what was found:
missing file, unreadable CSV, missing column (with "did you mean"), non-numeric values,
NaN / inf (unless `fill` says how to repair them), unparseable, duplicate or unsorted time
stamps (unless `sort: true`), a label column with empty cells, sequences of unequal length
(unless `padding` says how to pad them).
Gaps in the time column are not errors: they are reported as warnings.

This module reads the file and assembles the series or sequences; the checks and repairs of
single columns (numbers, missing values, time stamps) are `bnplace.data.csvcolumns`. Row numbers
in messages count data rows from 1 (the first row under the header); the file line is that
number plus one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bnplace.config.data import CsvData
from bnplace.data.csvcolumns import (
    at_row,
    clean_missing,
    feature_columns,
    fill_missing,
    named,
    numeric_column,
    order_by_time,
    parse_time,
    report_missing,
    require_column,
    time_gaps,
)
from bnplace.data.raw import RawSequences, RawSeries, left_pad
from bnplace.names.errors import DataError


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
        frame = pd.read_csv(
            path,
            sep=section.delimiter,
            skipinitialspace=True,
            encoding=section.encoding,
            decimal=section.decimal,
            thousands=section.thousands,
        )
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", file=file) from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise DataError(
            f"cannot read it as CSV with delimiter {section.delimiter!r}: {detail}", file=file
        ) from None
    except UnicodeDecodeError:
        raise DataError(_not_text(path, section.encoding), file=file) from None
    except OSError as exc:
        raise DataError(f"cannot read the file: {exc.strerror or exc}", file=file) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError("the file has a header but no data rows", file=file)
    return frame.reset_index(drop=True)


def _not_text(path: Path, encoding: str) -> str:
    """Where the file stops being `encoding` text, in the file's own byte offset and line (pandas
    decodes in chunks: the offset in its exception is within a chunk), and what to set."""
    data = path.read_bytes()
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        start, bad = exc.start, data[exc.start : exc.start + 1]
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1
        where = f"byte {start} (line {line}, column {column}): 0x{bad.hex()} is {exc.reason}"
    else:  # pandas failed where a whole-file decode does not (a BOM or a split sequence)
        where = "somewhere pandas decodes it in pieces"
    hint = (
        "set data.encoding to the file's encoding: cp1252 (or latin-1) for files saved by Excel "
        "on Windows, utf-16 for 'Unicode text'"
        if encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        else "set data.encoding to the file's encoding (e.g. utf-8, cp1252, latin-1)"
    )
    return f"not {encoding} text at {where}; {hint}"


# --- forecasting ---------------------------------------------------------------------------


def _series(frame: pd.DataFrame, section: CsvData, file: str) -> RawSeries:
    notes: list[str] = []
    rows = np.arange(1, len(frame) + 1)
    time = None
    if section.time_column is not None:
        require_column(frame, section.time_column, "time_column", section, file)
    for key in ("features", "targets"):
        for name in getattr(section, key) or ():
            require_column(frame, name, key, section, file)
    if section.time_column is not None:
        time = parse_time(frame, section.time_column, file)
        order = order_by_time(time, section, file, rows)
        if section.sort and not np.array_equal(order, np.arange(len(order))):
            notes.append(f"sorted the rows by {section.time_column!r}")
            frame, time, rows = frame.iloc[order], time[order], rows[order]
    excluded = named(section.time_column)
    targets_named = list(section.targets or ())
    features = feature_columns(
        frame, section, excluded | set(targets_named), file, notes, allow_none=bool(targets_named)
    )
    if section.features is None:  # the targets' own history is an input too
        if not features:
            notes.append(
                f"no numeric column besides the target(s) {', '.join(map(repr, targets_named))}: "
                "the model forecasts from their own history"
            )
        features += [t for t in targets_named if t not in features]
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
    values = pd.DataFrame(
        {name: numeric_column(frame, name, file, rows).to_numpy() for name in columns}
    )
    values, kept_rows, fill_notes = clean_missing(values, section, file, rows)
    notes += fill_notes
    if time is not None:
        keep = np.isin(rows, kept_rows)
        time = time[keep]
        notes += time_gaps(time, section.time_column or "", kept_rows)
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
    require_column(frame, section.label_column, "label_column", section, file)
    labels = frame[section.label_column]
    empty = labels.isna() | (labels.astype("string").str.strip() == "")
    if empty.any():
        first = int(np.flatnonzero(empty.to_numpy())[0]) + 1
        raise DataError(
            f"{int(empty.sum())} empty label(s), the first at {at_row(first)}",
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
        require_column(frame, name, "features", section, file)
    if section.sequence_column is None:
        return _wide(frame, labels, section, file)
    return _long(frame, labels, section, file)


def _wide(frame: pd.DataFrame, labels: pd.Series, section: CsvData, file: str) -> RawSequences:
    """One row per sequence: the value columns are its time steps (one channel)."""
    excluded = named(section.label_column, section.time_column)
    notes: list[str] = []
    steps = feature_columns(frame, section, excluded, file, notes)
    rows = np.arange(1, len(frame) + 1)
    values = pd.DataFrame(
        {name: numeric_column(frame, name, file, rows).to_numpy() for name in steps}
    )
    x = values.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        if section.fill == "none":
            report_missing(values, file, rows)
        if section.fill == "drop":
            keep = ~bad.any(axis=1)
            notes.append(f"dropped {int((~keep).sum())} sequence(s) with missing values")
            x, labels = x[keep], labels[keep]
        else:  # along each row's time axis
            x = fill_missing(pd.DataFrame(x.T), section.fill, both_ends=True).to_numpy().T
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
    require_column(frame, section.sequence_column, "sequence_column", section, file)
    if section.time_column is not None:
        require_column(frame, section.time_column, "time_column", section, file)
    excluded = named(section.label_column, section.time_column, section.sequence_column)
    notes: list[str] = []
    features = feature_columns(frame, section, excluded, file, notes)
    all_rows = np.arange(1, len(frame) + 1)
    values = pd.DataFrame(
        {name: numeric_column(frame, name, file, all_rows).to_numpy() for name in features}
    )
    time = parse_time(frame, section.time_column, file) if section.time_column else None
    ids = _sequence_ids(frame, section.sequence_column, file)
    groups = pd.Series(np.arange(len(frame))).groupby(ids.to_numpy(), sort=False)
    sequences: list[np.ndarray] = []
    seq_labels: list[Any] = []
    lengths: dict[Any, int] = {}
    dropped = 0
    for key, positions in groups:
        kept = _one_sequence(key, positions.to_numpy(), labels, values, time, section, file)
        if kept is None:
            dropped += 1
            continue
        sequences.append(kept[0])
        seq_labels.append(kept[1])
        lengths[key] = len(positions)
    if dropped:
        notes.append(f"dropped {dropped} sequence(s) with missing values")
    if "padding" not in section.model_fields_set:  # unequal lengths are padded when asked to
        _check_lengths(lengths, section.sequence_column, file)
    if not sequences:
        raise DataError("no sequence left after dropping missing values", file=file)
    padded, real_steps = left_pad(sequences)
    return RawSequences(
        x=padded,
        labels=np.asarray(seq_labels),
        feature_names=tuple(features),
        origin=file,
        file=file,
        label_column=section.label_column,
        warnings=tuple(notes),
        lengths=real_steps,
    )


def _sequence_ids(frame: pd.DataFrame, column: str, file: str) -> pd.Series:
    """The sequence id of every row; an empty one is an error at its row."""
    ids = frame[column]
    if ids.isna().any():
        first = int(np.flatnonzero(ids.isna().to_numpy())[0]) + 1
        raise DataError(
            f"empty sequence id at {at_row(first)}", file=file, column=column, row=first
        )
    return ids


def _one_sequence(
    key: Any,
    pos: np.ndarray,
    labels: pd.Series,
    values: pd.DataFrame,
    time: np.ndarray | None,
    section: CsvData,
    file: str,
) -> tuple[np.ndarray, Any] | None:
    """The values (time steps x features, in time order) and label of the sequence at
    positions `pos`; None when `fill: drop` drops it for missing values."""
    assert section.label_column is not None
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
        order = order_by_time(time[pos], section, file, rows, f" in sequence {key!r}")
        pos, rows = pos[order], rows[order]
    block = values.iloc[pos].reset_index(drop=True)
    block_values = block.to_numpy(dtype=np.float64)
    if not np.isfinite(block_values).all():
        if section.fill == "none":
            report_missing(block, file, rows)
        if section.fill == "drop":
            return None
        block_values = fill_missing(block, section.fill, both_ends=True).to_numpy(dtype=np.float64)
    return block_values, found[0]


def _check_lengths(lengths: dict[Any, int], sequence_column: str, file: str) -> None:
    """Sequences of one length, unless the config says how to pad them: else name one sequence
    of each length."""
    distinct = sorted(set(lengths.values()))
    if len(distinct) > 1:
        by_length = {n: next(k for k, v in lengths.items() if v == n) for n in distinct}
        shown = ", ".join(f"{by_length[n]!r} has {n} rows" for n in distinct[:4])
        raise DataError(
            f"sequences differ in length ({shown}); set data.padding: mask (the padded steps "
            "are masked: LSTMs step over them, BN leaves them out) or padding: edge (each "
            "sequence's first value repeated, seen as data), or pad or cut them in the file",
            file=file,
            column=sequence_column,
        )
