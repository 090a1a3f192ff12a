"""From a data section to a `Dataset`: load, validate, split, scale, fingerprint.

In: a `DataConfig` (synthetic, csv or packaged) and the folder relative csv paths are read from.
Out: a `Dataset` (see dataset.py). Raises only `DataError` (bad data, with file, column and
row) and `MissingExtraError` (a packaged dataset whose package is not installed).

Forecasting: the series is cut chronologically into train | val | test (test is the last part);
each part is windowed on its own, so no window holds a time step of another split. Features and
targets are standardised per column with the mean and population std (ddof 0) of the train
part only, and these statistics are kept so forecasts can be reported in original units.
With `difference: true` every column is first replaced by its one-step change (row t holds
value(t) − value(t − 1), labelled with time t; the first row is dropped), and all of the above
applies to the changes. Classification: a stratified random split with a fixed seed (0);
channels are standardised with the train sequences' statistics (their real steps only with
`padding: mask`, whose padded steps then hold MASK_VALUE; `vary_length` first cuts a random
start off each sequence). `standardize: false` keeps raw
values (identity scaling). The statistics `bnplace data` shows per feature (mean, std, min, max)
are the train split's, the ones the scaler is fitted on.

Fingerprint: sha256 over a format version, the data section without its file location and
reading options (encoding, decimal, thousands), the column and class names and the loaded values
(after `fill`), so editing the CSV, the data section or this format changes it, and moving the
file (or re-saving it in another encoding) does not.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from bnplace.config.data import (
    MASK_VALUE,
    CsvData,
    DataConfig,
    PackagedData,
    SyntheticData,
    rows_needed,
    split_sizes,
)
from bnplace.data.dataset import Dataset, Part
from bnplace.data.raw import RawSequences, RawSeries, vary_lengths
from bnplace.names.errors import DataError

FORMAT_VERSION = "bnplace-data-1"
CLASSIFY_SPLIT_SEED = 0


def prepare(section: DataConfig, base_dir: Path | str = ".") -> Dataset:
    """Load, check, split and scale the data of `section`; see the module docstring."""
    raw = load_raw(section, Path(base_dir))
    if isinstance(raw, RawSeries):
        return _prepare_series(section, raw)
    return _prepare_sequences(section, raw)


def load_raw(section: DataConfig, base_dir: Path) -> RawSeries | RawSequences:
    """The unsplit, unscaled data of a data section, from its source."""
    if isinstance(section, SyntheticData):
        from bnplace.data import synthetic

        return synthetic.generate(section)
    if isinstance(section, CsvData):
        from bnplace.data import csvfile

        return csvfile.load(section, base_dir)
    if isinstance(section, PackagedData):
        from bnplace.data import packaged

        return packaged.load(section)
    raise DataError(f"unknown data source {type(section).__name__}")


# --- splitting -----------------------------------------------------------------------------


# --- forecasting ---------------------------------------------------------------------------


def _check_finite(values: np.ndarray, columns: tuple[str, ...], file: str, origin: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        col = int(np.flatnonzero(bad.any(axis=0))[0])
        raise DataError(
            f"{int(bad.sum())} missing or infinite value(s) in {origin}",
            file=file,
            column=columns[col],
            row=int(np.flatnonzero(bad[:, col])[0]) + 1,
        )


def _check_not_constant(
    values: np.ndarray,
    names: tuple[str, ...],
    file: str,
    what: str,
    targets: tuple[str, ...] = (),
) -> None:
    flat = values.reshape(-1, values.shape[-1])
    for j, name in enumerate(names):
        column = flat[:, j]
        if column.size and np.ptp(column) == 0:
            if name in targets:  # a target is what is forecast: leaving it out is no advice
                raise DataError(
                    f"constant target (every value is {column[0]:g}): there is nothing to "
                    "forecast, and every model would score the same; name a column that varies "
                    "in data.targets",
                    file=file,
                    column=name,
                )
            raise DataError(
                f"constant {what} (every value is {column[0]:g}): zero variance, nothing to "
                "learn from and nothing to standardise by; leave it out of data.features",
                file=file,
                column=name,
            )


def _train_stats(
    train: np.ndarray,
    names: tuple[str, ...],
    standardize: bool,
    file: str,
    where: str,
    switch: str = "standardize",
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std per column of the train split (the scaler's fitted values);
    zeros and ones with the `switch` off. `switch` names the setting in messages."""
    flat = train.reshape(-1, train.shape[-1])
    if not standardize:
        return np.zeros(flat.shape[1]), np.ones(flat.shape[1])
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    for j, name in enumerate(names):
        if std[j] == 0:
            raise DataError(
                f"constant within the train split ({where}), so it cannot be standardised; "
                f"use more data, other split fractions, or {switch}: false",
                file=file,
                column=name,
            )
    return mean, std


def _scale(
    values: np.ndarray, mean: np.ndarray, std: np.ndarray, padded: np.ndarray | None = None
) -> np.ndarray:
    """Scaled float32 values; steps marked in `padded` (n, length) hold MASK_VALUE instead."""
    scaled = ((values - mean) / std).astype(np.float32)
    if padded is not None:
        scaled[padded] = MASK_VALUE
    return scaled


def _prepare_series(section: DataConfig, raw: RawSeries) -> Dataset:
    file = raw.file
    _check_finite(raw.values, raw.columns, file, raw.origin)
    _check_not_constant(raw.values, raw.columns, file, "column", raw.target_names)
    w, h = section.window, section.horizon
    skip = int(section.difference)  # rows before the first one kept: a change needs its past
    sizes = _series_sizes(section, raw.values.shape[0] - skip, file)
    inputs = raw.select(raw.feature_names)
    targets = raw.select(raw.target_names)
    if section.difference:
        inputs, targets = np.diff(inputs, axis=0), np.diff(targets, axis=0)
    n_train = sizes[0]
    where = f"rows {raw.time_label(skip)} .. {raw.time_label(skip + n_train - 1)}"
    f_mean, f_std = _train_stats(
        inputs[:n_train], raw.feature_names, section.standardize, file, where
    )
    t_mean, t_std = _train_stats(
        targets[:n_train], raw.target_names, section.scale_targets, file, where, "scale_targets"
    )
    parts = [
        Part(
            name=name,
            inputs=_scale(inputs[start:stop], f_mean, f_std),
            targets=_scale(targets[start:stop], t_mean, t_std),
            rows=(start, stop),
            start=raw.time_label(skip + start),
            end=raw.time_label(skip + stop - 1),
        )
        for name, (start, stop) in zip(("train", "val", "test"), _bounds(sizes), strict=True)
    ]
    content = [raw.values, np.array(raw.columns)]
    if raw.time is not None:
        content.append(raw.time)
    return Dataset(
        task="forecast",
        window=w,
        horizon=h,
        stride=section.stride,
        feature_names=raw.feature_names,
        target_names=raw.target_names,
        class_names=(),
        fingerprint=fingerprint(section, (raw.feature_names, raw.target_names), content),
        standardized=section.standardize,
        differenced=section.difference,
        feature_mean=f_mean,
        feature_std=f_std,
        target_mean=t_mean,
        target_std=t_std,
        parts=(parts[0], parts[1], parts[2]),
        origin=raw.origin,
        warnings=(*raw.warnings, *_out_of_range(parts[0], parts[2], raw.target_names)),
        feature_stats=_stats(inputs[:n_train]),
        extra={"source": section.source},
    )


# Past this share of test rows outside the train split's range, a target is called trending.
OUT_OF_RANGE_SHARE = 0.25


def _out_of_range(train: Part, test: Part, names: tuple[str, ...]) -> list[str]:
    """A warning per target whose test rows mostly lie outside the train split's range: a
    standardised network saturates there (measured on msft, airpassengers: 5-13x the error of
    persistence or a linear forecast), while its one-step changes stay in range."""
    assert train.targets is not None and test.targets is not None
    low, high = train.targets.min(0), train.targets.max(0)
    share = ((test.targets < low) | (test.targets > high)).mean(0)
    return [
        f"target {name!r}: {s:.0%} of the test split lies outside the train split's range "
        "(a trend?): a network forecasting the level extrapolates there; `difference: true` "
        "forecasts the one-step change instead"
        for name, s in zip(names, share, strict=True)
        if s > OUT_OF_RANGE_SHARE
    ]


def _series_sizes(section: DataConfig, n: int, file: str) -> tuple[int, int, int]:
    """Rows of train / val / test; each must hold one window (window + horizon rows)."""
    w, h = section.window, section.horizon
    sizes = split_sizes(n, section.split.train, section.split.val)
    if min(sizes) < w + h:
        need = rows_needed(w + h, section.split.train, section.split.val)
        raise DataError(
            f"too few rows: {n} rows split {section.split.train:g}/{section.split.val:g}/"
            f"{section.split.test:g} give train/val/test = {sizes[0]}/{sizes[1]}/{sizes[2]} rows, "
            f"but each split needs at least window + horizon = {w} + {h} = {w + h} rows for one "
            f"window; these fractions need at least {need} rows (or use a shorter window)",
            file=file,
        )
    return sizes


def _bounds(sizes: tuple[int, int, int]) -> list[tuple[int, int]]:
    """(start, stop) rows of each split, in order: consecutive slices of the series."""
    n_train, n_val, n_test = sizes
    return [(0, n_train), (n_train, n_train + n_val), (n_train + n_val, n_train + n_val + n_test)]


def _stats(values: np.ndarray) -> tuple[tuple[float, float, float, float], ...]:
    flat = values.reshape(-1, values.shape[-1])
    return tuple((float(c.mean()), float(c.std()), float(c.min()), float(c.max())) for c in flat.T)


# --- classification ------------------------------------------------------------------------


def class_order(labels: np.ndarray) -> tuple[str, ...]:
    """Distinct labels as strings, in numeric order when every label is a number."""
    distinct = {str(v) for v in labels.tolist()}
    try:
        return tuple(sorted(distinct, key=float))
    except ValueError:
        return tuple(sorted(distinct))


def stratified_split(
    index: np.ndarray, train: float, val: float, seed: int = CLASSIFY_SPLIT_SEED
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[str]]:
    """Positions of train / val / test per class; a class of 3 or more is in every split."""
    rng = np.random.default_rng(seed)
    out: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    small = []
    for c in np.unique(index):
        members = rng.permutation(np.flatnonzero(index == c))
        n_c = members.size
        _, n_val, n_test = split_sizes(n_c, train, val)
        if n_c >= 3:
            n_val, n_test = max(1, n_val), max(1, n_test)
            while n_c - n_val - n_test < 1:
                if n_val >= n_test:
                    n_val -= 1
                else:
                    n_test -= 1
        else:
            small.append(int(c))
            n_val, n_test = 0, 0
        n_train = n_c - n_val - n_test
        out[0].append(members[:n_train])
        out[1].append(members[n_train : n_train + n_val])
        out[2].append(members[n_train + n_val :])
    parts = tuple(np.sort(np.concatenate(p)) for p in out)
    return (parts[0], parts[1], parts[2]), [str(s) for s in small]


def _prepare_sequences(section: DataConfig, loaded: RawSequences) -> Dataset:
    file, label_column = loaded.file, loaded.label_column
    n, length, _ = loaded.x.shape
    notes = list(loaded.warnings)
    _check_window(section, length, file)
    raw = loaded if section.vary_length is None else vary_lengths(loaded, section.vary_length)
    flat = raw.x.reshape(-1, raw.x.shape[-1])
    _check_finite(flat, raw.feature_names, file, raw.origin)
    _check_not_constant(raw.x, raw.feature_names, file, "channel")
    classes = class_order(raw.labels)
    if len(classes) < 2:
        raise DataError(
            f"only one class ({classes[0] if classes else 'none'!r}) among the {n} sequences: "
            "classification needs at least two classes",
            file=file,
            column=label_column,
        )
    lookup = {c: i for i, c in enumerate(classes)}
    index = np.array([lookup[str(v)] for v in raw.labels.tolist()], dtype=np.int32)
    train_pos, val_pos, test_pos = _split_classes(section, index, classes, file, notes)
    masked = section.padding == "mask"
    real = _real_steps(raw, notes, masked)
    # the scaler is fitted on real steps only where the padding is masked (edge padding is
    # data the model sees, so it is scaled as data)
    train_values = raw.x[train_pos][real[train_pos]] if masked else raw.x[train_pos]
    mean, std = _train_stats(
        train_values, raw.feature_names, section.standardize, file, "train sequences"
    )
    parts = [
        Part(
            name=name,
            inputs=_scale(raw.x[pos], mean, std, padded=~real[pos] if masked else None),
            labels=index[pos],
        )
        for name, pos in zip(("train", "val", "test"), (train_pos, val_pos, test_pos), strict=True)
    ]
    content = [loaded.x, np.array([str(v) for v in raw.labels.tolist()])]
    return Dataset(
        task="classify",
        window=length,
        horizon=1,
        stride=1,
        feature_names=raw.feature_names,
        target_names=(),
        class_names=classes,
        fingerprint=fingerprint(section, (raw.feature_names, classes), content),
        standardized=section.standardize,
        feature_mean=mean,
        feature_std=std,
        target_mean=np.zeros(0),
        target_std=np.ones(0),
        parts=(parts[0], parts[1], parts[2]),
        origin=raw.origin,
        warnings=tuple(notes),
        feature_stats=_stats(train_values),
        extra={"source": section.source},
        masked=masked,
    )


def _real_steps(raw: RawSequences, notes: list[str], masked: bool) -> np.ndarray:
    """(n, length) True where a step is the sequence's own (padding sits before it); a note
    on the padding when the sequences differ in length."""
    n, length, _ = raw.x.shape
    if raw.lengths is None:
        return np.ones((n, length), dtype=bool)
    shorter = int((raw.lengths < length).sum())
    how = (
        "masked (padding: mask)"
        if masked
        else "with each one's first value, which the model sees as data (padding: mask masks it)"
    )
    notes.append(
        f"{shorter} of {n} sequences are shorter than {length} steps (the shortest "
        f"{int(raw.lengths.min())}): left-padded, {how}"
    )
    return np.arange(length)[None, :] >= (length - raw.lengths)[:, None]


def _check_window(section: DataConfig, length: int, file: str) -> None:
    """A window written in the config must be the sequence length (classification)."""
    explicit = not isinstance(section, SyntheticData) and "window" in section.model_fields_set
    if explicit and section.window != length:
        raise DataError(
            f"the sequences have {length} steps but data.window is {section.window}; for "
            f"classification the window is the sequence length: set window: {length} or "
            "leave it out",
            file=file,
        )


def _split_classes(
    section: DataConfig, index: np.ndarray, classes: tuple[str, ...], file: str, notes: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train / val / test positions; every split must get a sequence. Appends a note
    on classes too small to be in every split to `notes`."""
    (train_pos, val_pos, test_pos), small = stratified_split(
        index, section.split.train, section.split.val
    )
    if small:
        names = ", ".join(repr(classes[int(s)]) for s in small)
        notes.append(f"class(es) {names} have fewer than 3 sequences: not in every split")
    if min(train_pos.size, val_pos.size, test_pos.size) == 0:
        sizes = f"{train_pos.size}/{val_pos.size}/{test_pos.size}"
        raise DataError(
            f"too few sequences: {index.size} sequences give train/val/test = {sizes}; every "
            "split needs at least one (at least 3 sequences per class)",
            file=file,
        )
    return train_pos, val_pos, test_pos


# --- fingerprint ---------------------------------------------------------------------------


def fingerprint(section: DataConfig, names: object, arrays: list[np.ndarray]) -> str:
    """Hex digest of the data section (without its file location), names and the loaded values."""
    digest = hashlib.sha256(FORMAT_VERSION.encode())
    # how the file is read (not what it holds) stays out: the loaded values are hashed below,
    # and existing stores keep their fingerprints; so does `season`, which only adds a baseline
    # metric (a season set later does not retrain finished trials)
    described = section.model_dump(
        mode="json", exclude={"path", "encoding", "decimal", "thousands", "season"}
    )
    if not described.get("difference"):  # added later: data without it keeps its fingerprint
        described.pop("difference", None)
    digest.update(json.dumps(described, sort_keys=True).encode())
    digest.update(json.dumps(names).encode())
    for array in arrays:
        array = np.ascontiguousarray(array)
        if array.dtype.kind in "OUS":
            digest.update("\x1f".join(map(str, array.tolist())).encode())
        else:
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()[:16]
