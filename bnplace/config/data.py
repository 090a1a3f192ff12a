"""Schema of the config's `data` section: where the series comes from and how it is windowed.

In: the `data:` mapping of a config file. Out: one of `SyntheticData`, `CsvData`,
`PackagedData` (a discriminated union on `source`), validated and frozen. Pure: paths are kept
as written; `bnplace.data` resolves them against the config file's folder when it loads.
Cross-field rules that need no data (a generator's task, a packaged dataset's name and task,
a label column for classification) are checked here, so they fail at `validate` time.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from bnplace.config.base import Strict
from bnplace.names.errors import did_you_mean

Task = Literal["forecast", "classify"]  # the one definition; data/ and plan/ import it

# Bounds on what a data section may ask for: far past any time-series model this tool trains,
# and small enough that the arithmetic on them (rows a split needs) stays exact and instant.
MAX_WINDOW = 100_000  # time steps per input window
MAX_HORIZON = 10_000  # steps ahead predicted
# What a padded time step holds in every feature once prepared with `padding: mask` (the
# model's first layer, Masking, looks for it). Far outside any scaled or raw value a series
# holds, so no real step is taken for padding; Masking zeroes it before any other layer sees it.
MASK_VALUE = -1.0e9

# Packaged datasets: canonical name -> (task, pip package that ships it, description).
# The loaders live in bnplace/data/packaged.py; this table only names them, so the schema can
# check a name without importing anything.
# A table: its rows share their shape by design (one row per packaged dataset).
PACKAGED_DATASETS: dict[str, tuple[str, str, str]] = {
    "taylor": ("forecast", "pmdarima", "half-hourly electricity demand, 4,032 points"),
    "sunspots": ("forecast", "pmdarima", "monthly mean sunspot numbers 1749-1983, 2,820 points"),
    # short classic series: use a small window (12-24) and read their few windows' verdicts
    # as a pooled question's datasets rather than alone
    "wineind": ("forecast", "pmdarima", "Australian wine sales, monthly 1980-1994, 176 points"),
    "lynx": ("forecast", "pmdarima", "Canadian lynx trappings, annual 1821-1934, 114 points"),
    "airpassengers": ("forecast", "pmdarima", "airline passengers, monthly 1949-1960, 144 points"),
    "heartrate": ("forecast", "pmdarima", "heart rate of one subject, 0.5 s steps, 150 points"),
    "woolyrnq": ("forecast", "pmdarima", "Australian woollen yarn, quarterly 1965-94, 119 points"),
    "austres": ("forecast", "pmdarima", "Australian residents, quarterly 1971-1993, 89 points"),
    "msft": ("forecast", "pmdarima", "Microsoft daily close 1986-2017, 7,983 points"),
    "ausbeer": ("forecast", "pmdarima", "Australian beer production, quarterly, 212 points"),
    "co2": ("forecast", "statsmodels", "Mauna Loa CO2, weekly 1958-2001, 2,284 points"),
    "elnino": ("forecast", "statsmodels", "El Nino sea surface temperature, monthly 1950-2010"),
    "us_unemployment": ("forecast", "statsmodels", "US unemployment rate, quarterly 1959-2009"),
    "us_inflation": ("forecast", "statsmodels", "US inflation rate, quarterly 1959-2009"),
    "us_tbill": ("forecast", "statsmodels", "US 3-month T-bill rate, quarterly 1959-2009"),
    "us_consumption": ("forecast", "aeon", "US consumption, % change, quarterly 1970-2016"),
    "us_production": ("forecast", "aeon", "US industrial production, % change, quarterly"),
    "us_savings": ("forecast", "aeon", "US personal savings, % change, quarterly 1970-2016"),
    "italy_power_demand": ("classify", "aeon", "UCR ItalyPowerDemand: 1,096 x 24 steps, 2 classes"),
    "gunpoint": ("classify", "aeon", "UCR GunPoint: 200 x 150 steps, 2 classes"),
    "arrow_head": ("classify", "aeon", "UCR ArrowHead: 211 x 251 steps, 3 classes"),
    "basic_motions": ("classify", "aeon", "UEA BasicMotions: 80 x 100 x 6 channels, 4 classes"),
    "japanese_vowels": (
        "classify",
        "aeon",
        "UEA JapaneseVowels: 640 x 7-29 x 12, 9 classes, padded to 29",
    ),
    "pickup_gesture": (
        "classify",
        "aeon",
        "UCR PickupGestureWiimoteZ: 100 x 29-361, 10 classes, padded",
    ),
}

FORECAST_GENERATORS = ("sine_mix", "ar", "mackey_glass", "lorenz", "distractors")
CLASSIFY_GENERATORS = ("shapes",)


def _normalise_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def split_sizes(n: int, train: float, val: float) -> tuple[int, int, int]:
    """Rows (or sequences) per split: train and val rounded half up, test takes the rest."""
    n_train = math.floor(n * train + 0.5)
    n_val = math.floor(n * val + 0.5)
    return n_train, n_val, n - n_train - n_val


def rows_needed(minimum: int, train: float, val: float) -> int:
    """The fewest rows for which every split gets at least `minimum` rows."""
    n = max(3 * minimum, math.ceil(minimum / min(train, val, 1 - train - val)) - 3)
    while min(split_sizes(n, train, val)) < minimum:
        n += 1
    return n


class Split(Strict):
    """Split fractions: chronological (train, then val, then test) for forecasting; a stratified
    random split with a fixed seed for classification."""

    train: float = Field(0.7, gt=0, lt=1)
    val: float = Field(0.15, gt=0, lt=1)
    test: float = Field(0.15, gt=0, lt=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> Split:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1, got {total:g}")
        return self


class _Windowing(Strict):
    task: Task = "forecast"
    window: int = Field(
        48,
        ge=2,
        le=MAX_WINDOW,
        description="time steps per input window (classification: the sequence length, "
        "taken from the data for csv/packaged sources)",
    )
    horizon: int = Field(1, ge=1, le=MAX_HORIZON, description="steps ahead predicted (forecasting)")
    stride: int = Field(
        1, ge=1, le=MAX_WINDOW, description="step between consecutive windows (forecasting)"
    )
    season: int | None = Field(
        None,
        ge=2,
        le=MAX_WINDOW,
        description="steps per seasonal cycle (forecasting; at most the window): trials also "
        "log the seasonal-naive baseline (each step's value one season before)",
    )
    split: Split = Split()
    standardize: bool = Field(
        True,
        description="z-score every input feature with train-split statistics",
    )
    # Forecasting targets are z-scored on their own switch, so that "raw inputs vs standardized
    # inputs" compares input normalisation alone (a raw 30,000 MW target would swamp it).
    scale_targets: bool = Field(
        True, description="z-score forecasting targets with train-split statistics"
    )

    # A trending series (prices, passengers, CO2) leaves the train split's range in val and test,
    # where a standardised LSTM saturates and loses to persistence; its changes stay in range.
    difference: bool = Field(
        False,
        description="forecast each series' next change: every column is differenced once "
        "before splitting and scaling (one step ahead; errors are then the level forecast's, "
        "last value + change, and the baselines are the level ones)",
    )

    # Sequences of unequal length (classification) are left-padded to the longest, so the last
    # step of each is real data; what the model is told about the padding is the question.
    padding: Literal["edge", "mask"] = Field(
        "edge",
        description="classification sequences of unequal length: 'edge' repeats each one's "
        "first value before it (the model sees the padding as data); 'mask' marks the padded "
        "steps and puts a Masking layer first, so LSTMs step over them and BN leaves them out "
        "of its statistics (until a layer that drops the mask, e.g. a Conv1D: `bnplace plan` "
        "says which)",
    )

    # An experiment on padding needs sequences of unequal length, and only two of the packaged
    # sets have them: this makes an equal-length set variable-length with its own measurements.
    vary_length: float | None = Field(
        None,
        ge=0.1,
        lt=1.0,
        description="classification: each sequence keeps a random ending of at least this "
        "fraction of its steps (a fixed draw; the start it loses becomes padding), so "
        "equal-length sequences become variable-length",
    )

    @model_serializer(mode="wrap")
    def _padding_only_when_asked(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Without `padding: mask` or `vary_length` the dump is what it was before they existed:
        the data's fingerprint and the trial keys of every config that uses neither stay the
        same."""
        out = handler(self)
        if isinstance(out, dict):
            if out.get("padding") == "edge":
                out.pop("padding")
            if out.get("vary_length", 0) is None:
                out.pop("vary_length")
        return out

    @model_validator(mode="after")
    def _padding_is_for_sequences(self) -> Self:
        if self.task != "classify":
            if self.padding == "mask":
                raise ValueError(
                    "padding: mask applies to classification sequences of unequal length "
                    "(task: classify); forecasting windows all have the window's length"
                )
            if self.vary_length is not None:
                raise ValueError("vary_length applies to classification sequences (task: classify)")
        return self

    @model_validator(mode="after")
    def _difference_is_one_step_forecasting(self) -> Self:
        """One step ahead, the error of a forecast change is the level forecast's error; more
        steps ahead it is not (the level's error sums the changes'), so it is not offered."""
        if self.difference and (self.task != "forecast" or self.horizon != 1):
            raise ValueError(
                "difference applies to one-step forecasting only (task: forecast, horizon: 1)"
            )
        return self

    @model_validator(mode="after")
    def _season_fits_the_window(self) -> Self:
        """The seasonal-naive baseline reads the last season from the input window."""
        if self.season is not None and self.task != "forecast":
            raise ValueError("season applies to forecasting only (the seasonal-naive baseline)")
        if self.season is not None and self.season > self.window:
            raise ValueError(
                f"season {self.season} is longer than the window {self.window}: the "
                "seasonal-naive baseline reads the last season from the input window; "
                "widen the window or drop season"
            )
        return self


class SyntheticData(_Windowing):
    source: Literal["synthetic"]
    generator: Literal["sine_mix", "ar", "mackey_glass", "lorenz", "distractors", "shapes"] = (
        "sine_mix"
    )
    length: int = Field(3000, ge=10, description="time steps (forecast) or sequences (classify)")
    features: int = Field(1, ge=1, description="input channels")
    noise: float = Field(0.1, ge=0, description="noise std, relative to the signal's std")
    seed: int = Field(0, ge=0, description="seed of the generator (numpy takes no negative seed)")
    classes: int = Field(3, ge=2, le=12, description="number of classes (shapes generator)")
    ar_order: int = Field(3, ge=1, le=10, description="p of the AR(p) generator")
    tau: int = Field(17, ge=1, le=200, description="delay of the Mackey-Glass generator")
    informative: int = Field(
        2, ge=1, description="channels that drive the target (distractors generator)"
    )

    @model_validator(mode="before")
    @classmethod
    def _task_from_generator(cls, data: Any) -> Any:
        if isinstance(data, dict) and "task" not in data and data.get("generator") == "shapes":
            return {**data, "task": "classify"}
        return data

    @model_validator(mode="after")
    def _windows_fit_the_length(self) -> SyntheticData:
        """A forecasting series of `length` steps must hold one window (window + horizon
        rows) in each split; said here, at `validate`, rather than when the data is made."""
        need = self.window + self.horizon
        sizes = split_sizes(self.length - int(self.difference), self.split.train, self.split.val)
        if self.task == "forecast" and min(sizes) < need:
            raise ValueError(
                f"length {self.length} split {self.split.train:g}/{self.split.val:g}/"
                f"{self.split.test:g} gives train/val/test = {sizes[0]}/{sizes[1]}/{sizes[2]} "
                f"steps, but each split needs window + horizon = {need} steps for one window: "
                f"length at least {rows_needed(need, self.split.train, self.split.val)}, or a "
                "shorter window"
            )
        return self

    @model_validator(mode="after")
    def _generator_fits(self) -> SyntheticData:
        if self.task == "classify" and self.generator not in CLASSIFY_GENERATORS:
            raise ValueError(
                f"generator '{self.generator}' makes a forecasting series; for task: classify "
                f"use generator: {' or '.join(CLASSIFY_GENERATORS)}"
            )
        if self.task == "forecast" and self.generator in CLASSIFY_GENERATORS:
            raise ValueError(
                f"generator '{self.generator}' makes labelled sequences: set task: classify, "
                f"or use one of {', '.join(FORECAST_GENERATORS)} for forecasting"
            )
        if self.generator == "mackey_glass" and self.features != 1:
            raise ValueError(
                f"generator 'mackey_glass' is univariate: features must be 1, got "
                f"{self.features} (use generator: distractors for extra noise channels)"
            )
        if self.generator == "lorenz" and self.features > 3:
            raise ValueError(
                f"generator 'lorenz' has 3 channels (x, y, z): features must be 1..3, got "
                f"{self.features}"
            )
        if self.generator == "distractors" and self.features < self.informative + 2:
            raise ValueError(
                f"generator 'distractors' needs the target, {self.informative} informative "
                f"channel(s) and at least one distractor: features must be >= "
                f"{self.informative + 2}, got {self.features}"
            )
        return self


class CsvData(_Windowing):
    source: Literal["csv"]
    path: str = Field(description="the CSV file, relative to the config file's folder")
    time_column: str | None = None
    sort: bool = Field(False, description="sort rows by time_column instead of rejecting disorder")
    features: list[str] | None = None  # default: every numeric column except time and label
    targets: list[str] | None = None  # forecasting; default: the last feature
    label_column: str | None = None  # classification
    sequence_column: str | None = None  # classification in long format: rows -> sequences
    delimiter: str = ","
    fill: Literal["none", "ffill", "interpolate", "drop"] = "none"
    # how the file is written: its text encoding (cp1252 / latin-1 for files saved by Excel on
    # Windows), the decimal mark ("," in much of Europe) and a thousands separator ("." or ",")
    encoding: str = "utf-8"
    decimal: str = "."
    thousands: str | None = None

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown text encoding {value!r}; e.g. utf-8, utf-8-sig, cp1252, latin-1"
            ) from None
        return value

    @field_validator("decimal", "thousands")
    @classmethod
    def _one_mark(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError(f"must be a single character, got {value!r}")
        return value

    @field_validator("features", "targets")
    @classmethod
    def _non_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("must name at least one column (or be left out for the default)")
        if value is not None and len(set(value)) != len(value):
            dupes = sorted({v for v in value if value.count(v) > 1})
            raise ValueError(f"names a column twice: {', '.join(dupes)}")
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str) -> str:
        value = "\t" if value in ("\\t", "tab") else value
        if len(value) != 1:
            raise ValueError(f"must be a single character (or 'tab'), got {value!r}")
        return value

    @model_validator(mode="after")
    def _columns_fit_task(self) -> CsvData:
        if self.task == "classify":
            if self.label_column is None:
                raise ValueError("task: classify needs label_column (the column with the labels)")
            if self.targets is not None:
                raise ValueError("targets is for forecasting; classification uses label_column")
        else:
            for key in ("label_column", "sequence_column"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} is for task: classify (this data is task: forecast)")
        if self.sort and self.time_column is None:
            raise ValueError("sort: true needs time_column")
        marks = {"delimiter": self.delimiter, "decimal": self.decimal, "thousands": self.thousands}
        for a, b in (
            ("decimal", "delimiter"),
            ("thousands", "delimiter"),
            ("thousands", "decimal"),
        ):
            if marks[a] is not None and marks[a] == marks[b]:
                raise ValueError(
                    f"{a} and {b} are both {marks[a]!r}: a number could not be told from the "
                    "next field (a file with decimal commas is usually delimited by ';')"
                )
        return self


class PackagedData(_Windowing):
    source: Literal["packaged"]
    name: str = Field(description=f"one of: {', '.join(PACKAGED_DATASETS)}")

    @model_validator(mode="before")
    @classmethod
    def _task_from_dataset(cls, data: Any) -> Any:
        if isinstance(data, dict) and "task" not in data and isinstance(data.get("name"), str):
            canonical = _canonical_packaged(data["name"])
            if canonical is not None:
                return {**data, "task": PACKAGED_DATASETS[canonical][0]}
        return data

    @field_validator("name")
    @classmethod
    def _known_name(cls, value: str) -> str:
        canonical = _canonical_packaged(value)
        if canonical is None:
            close = did_you_mean(value, PACKAGED_DATASETS)
            hint = f" (did you mean '{close}'?)" if close else ""
            raise ValueError(
                f"unknown packaged dataset {value!r}{hint}; known: {', '.join(PACKAGED_DATASETS)}"
            )
        return canonical

    @model_validator(mode="after")
    def _task_fits(self) -> PackagedData:
        task = PACKAGED_DATASETS[self.name][0]
        if self.task != task:
            raise ValueError(
                f"packaged dataset '{self.name}' is a {task} dataset; set task: {task}"
            )
        return self


def _canonical_packaged(name: str) -> str | None:
    wanted = _normalise_name(name)
    for canonical in PACKAGED_DATASETS:
        if _normalise_name(canonical) == wanted:
            return canonical
    return None


DataConfig = Annotated[SyntheticData | CsvData | PackagedData, Field(discriminator="source")]
