"""What a source hands to `prepare`: unsplit, unscaled data in original units.

In: nothing (types, and the padding of sequences). Out: `RawSeries` (forecasting: one
multichannel series with named columns, which columns are inputs and which are targets,
optional time stamps) and `RawSequences` (classification: labelled sequences, those of unequal
length left-padded to the longest by `left_pad`; `vary_lengths` makes equal-length ones vary).
Sources (csv, synthetic, packaged) produce these; `prepare` validates, splits and scales them
into a `Dataset`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

VARY_LENGTH_SEED = 0  # the one draw of `vary_length`'s kept lengths


@dataclass(frozen=True, eq=False)
class RawSeries:
    """A forecasting series. `values` (rows, columns) float64; features and targets name columns."""

    values: np.ndarray
    columns: tuple[str, ...]
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    origin: str  # a file path or "synthetic sine_mix (seed 0)"
    file: str = ""  # set for files: DataError names it
    time: np.ndarray | None = None  # (rows,) datetime64 or numeric; None: row numbers
    row_numbers: np.ndarray | None = None  # (rows,) 1-based data rows in the file
    warnings: tuple[str, ...] = ()

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]

    def select(self, names: tuple[str, ...]) -> np.ndarray:
        return self.values[:, [self.columns.index(n) for n in names]]

    def time_label(self, position: int) -> str:
        """How row `position` is shown to a user: its time stamp, else its row number."""
        if self.time is None:
            row = self.row_numbers[position] if self.row_numbers is not None else position + 1
            return f"row {int(row)}"
        value = self.time[position]
        if np.issubdtype(self.time.dtype, np.datetime64):
            return show_time(value, time_unit(self.time))
        return str(value.item() if hasattr(value, "item") else value)


TimeUnit = Literal["D", "m", "s"]  # the units time stamps are shown in (numpy's names)


def time_unit(times: np.ndarray) -> TimeUnit:
    """The coarsest of 'D', 'm', 's' that shows every time stamp of `times` exactly."""
    ns = times.astype("datetime64[ns]").astype(np.int64)
    if not (ns % 86_400_000_000_000).any():
        return "D"
    if not (ns % 60_000_000_000).any():
        return "m"
    return "s"


def show_time(value: np.datetime64, unit: TimeUnit = "s") -> str:
    return str(np.datetime_as_string(value, unit=unit)).replace("T", " ")


@dataclass(frozen=True, eq=False)
class RawSequences:
    """Labelled sequences. `x` (n, length, channels) float64; `labels` (n,) as read (str/int);
    `lengths` (n,) the real steps of each, the last ones of its row (None: all `length` long)."""

    x: np.ndarray
    labels: np.ndarray
    feature_names: tuple[str, ...]
    origin: str
    file: str = ""
    label_column: str = "label"
    warnings: tuple[str, ...] = ()
    lengths: np.ndarray | None = None


def left_pad(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """(steps_i, channels) sequences -> (n, longest, channels) and each one's steps (None when
    all are equally long). Each is left-padded with its first step, so its last step stays the
    last of the row (what an LSTM's final state and `last_step` read) and a model that is not
    told about the padding sees a plausible value there (`padding: edge`); `prepare` replaces
    the padding with `MASK_VALUE` for `padding: mask`."""
    lengths = np.array([len(item) for item in sequences], dtype=np.int64)
    longest = int(lengths.max())
    if (lengths == longest).all():
        return np.stack(sequences).astype(np.float64), None
    padded = [
        np.pad(np.asarray(item, np.float64), ((longest - len(item), 0), (0, 0)), "edge")
        for item in sequences
    ]
    return np.stack(padded), lengths


def vary_lengths(raw: RawSequences, fraction: float) -> RawSequences:
    """Each sequence keeps a random ending of at least `fraction` of its (real) steps, drawn
    once with a fixed seed; the steps before it become padding (its first kept value repeated,
    as `left_pad` pads)."""
    n, length, _ = raw.x.shape
    lengths = raw.lengths if raw.lengths is not None else np.full(n, length)
    rng = np.random.default_rng(VARY_LENGTH_SEED)
    kept = np.ceil(lengths * rng.uniform(fraction, 1.0, size=n)).astype(np.int64)
    first = length - kept  # each sequence's first kept step
    steps = np.maximum(np.arange(length)[None, :], first[:, None])
    return replace(raw, x=raw.x[np.arange(n)[:, None], steps], lengths=kept)
