"""The prepared data every trial trains on: scaled split series plus what is needed to undo it.

In: arrays made by `bnplace.data.prepare` (already split and scaled). Out: `Dataset`, a frozen,
picklable value that holds the split SERIES for forecasting (not materialised windows) and
hands out windows lazily as zero-copy views (`SplitData`), the baselines (persistence, seasonal
naive, a least-squares linear forecast from the window), the inverse target scaling, and a
JSON-ready `summary()`. Also `format_summary`, the text `bnplace data` shows. Nothing here reads
files or imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bnplace.config.data import Task
from bnplace.names.errors import DataError

SPLITS = ("train", "val", "test")
# The linear baseline's train design matrix is built in memory: at most this many values
# (160 MB of float64); a bigger window x features x windows goes without it.
LINEAR_MAX_VALUES = 20_000_000


@dataclass(frozen=True, eq=False)
class SplitData:
    """The windows of one split: `x` float32 (n, window, features); `y` float32 (n, outputs) for
    forecasting (horizon-major: y[:, h * n_targets + j]) or int32 class indices (n,)."""

    name: str
    x: np.ndarray
    y: np.ndarray

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True, eq=False)
class Part:
    """One split as stored. Forecasting: `inputs` (rows, features) and `targets` (rows, targets)
    scaled series. Classification: `inputs` (n, window, features) and `labels` (n,)."""

    name: str
    inputs: np.ndarray
    targets: np.ndarray | None = None
    labels: np.ndarray | None = None
    rows: tuple[int, int] = (0, 0)  # forecast: [start, stop) positions in the prepared series
    start: str = ""  # time (or row) label of the first row
    end: str = ""  # time (or row) label of the last row


@dataclass(frozen=True, eq=False)
class Dataset:
    """Prepared, split and scaled data of one data section (see the module docstring)."""

    task: Task
    window: int
    horizon: int
    stride: int
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    class_names: tuple[str, ...]
    fingerprint: str
    standardized: bool
    feature_mean: np.ndarray  # (features,) float64; zeros when not standardized
    feature_std: np.ndarray  # (features,) float64; ones when not standardized
    target_mean: np.ndarray  # (targets,) float64 (forecast)
    target_std: np.ndarray
    parts: tuple[Part, ...]  # train, val, test (`without_test`: train, val)
    origin: str = ""  # where the data came from, for messages and the summary
    warnings: tuple[str, ...] = ()  # gaps, skipped columns, filled values ...
    # mean, std, min, max of each feature over the train split (what the scaler is fitted on)
    feature_stats: tuple[tuple[float, float, float, float], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # source details for the summary
    # the series are one-step changes (`difference: true`): the baselines forecast the level
    differenced: bool = False
    # padded steps hold MASK_VALUE (`padding: mask`): the model starts with a Masking layer
    masked: bool = False

    # --- shape -----------------------------------------------------------------------------
    @property
    def features(self) -> int:
        return len(self.feature_names)

    @property
    def n_targets(self) -> int:
        return len(self.target_names)

    @property
    def outputs(self) -> int:
        if self.task == "classify":
            return len(self.class_names)
        return self.horizon * self.n_targets

    def part(self, name: str) -> Part:
        for part in self.parts:
            if part.name == name:
                return part
        if name in SPLITS:
            raise DataError(f"the {name} split is held out of this copy of the data")
        raise DataError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")

    def without_test(self) -> Dataset:
        """This data without its test split: what choosing a setting trains on
        (`bnplace.trial.choose`), so that the choice cannot read the test split."""
        return replace(self, parts=tuple(p for p in self.parts if p.name != "test"))

    # --- windows ---------------------------------------------------------------------------
    def n_windows(self, name: str) -> int:
        part = self.part(name)
        if self.task == "classify":
            return int(part.inputs.shape[0])
        return _n_windows(part.inputs.shape[0], self.window, self.horizon, self.stride)

    def split(self, name: str) -> SplitData:
        """Windows of a split: x is a strided view of the stored series (no copy)."""
        part = self.part(name)
        if self.task == "classify":
            assert part.labels is not None
            return SplitData(name, part.inputs, part.labels)
        assert part.targets is not None
        n = self.n_windows(name)
        w, h, s = self.window, self.horizon, self.stride
        if n == 0:
            empty = np.zeros((0, w, self.features), np.float32)
            return SplitData(name, empty, np.zeros((0, self.outputs), np.float32))
        # view (rows - w + 1, features, w) -> (n, w, features); the last h rows only feed targets
        x = sliding_window_view(part.inputs, w, axis=0)[: (n - 1) * s + 1 : s].transpose(0, 2, 1)
        y = sliding_window_view(part.targets[w:], h, axis=0)[: (n - 1) * s + 1 : s]
        y = y.transpose(0, 2, 1).reshape(n, h * self.n_targets)  # horizon-major
        return SplitData(name, x, np.ascontiguousarray(y, dtype=np.float32))

    def persistence(self, name: str) -> np.ndarray:
        """Last observed value of each target, repeated over the horizon (scaled, y's shape).
        Differenced: the level's last value, that is no change."""
        self._forecast_only("persistence")
        part = self.part(name)
        assert part.targets is not None
        n, w, s = self.n_windows(name), self.window, self.stride
        if self.differenced:
            return np.tile(self._scaled_change(np.zeros(self.n_targets)), (n, 1))
        last = part.targets[w - 1 : w - 1 + (n - 1) * s + 1 : s]  # (n, targets)
        return np.tile(last, (1, self.horizon)).astype(np.float32)

    def seasonal_naive(self, name: str, season: int) -> np.ndarray:
        """Each target's value one season before each forecast step (scaled, y's shape): step j
        (1-based) of window i reads row i·stride + window − 1 + j − season·⌈j/season⌉, the
        latest row of the same phase inside the window (`season` ≤ window, a config check)."""
        self._forecast_only("seasonal_naive")
        part = self.part(name)
        assert part.targets is not None
        n, w, s = self.n_windows(name), self.window, self.stride
        if self.differenced:  # level(t + 1 − season) − level(t): minus the last season − 1 changes
            changes = part.targets * self.target_std + self.target_mean
            ends = np.arange(n) * s + w  # one past each window's last row
            summed = np.cumsum(np.vstack([np.zeros((1, self.n_targets)), changes]), axis=0)
            return self._scaled_change(-(summed[ends] - summed[ends - (season - 1)]))
        steps = np.arange(1, self.horizon + 1)
        back = season * -(-steps // season)  # season · ceil(j / season)
        rows = np.arange(n)[:, None] * s + (w - 1) + (steps - back)[None, :]  # (n, horizon)
        return part.targets[rows].reshape(n, self.outputs).astype(np.float32)

    def linear_forecast(self, name: str) -> np.ndarray | None:
        """A least-squares linear forecast from the whole input window (every step of every
        feature, and an intercept), fitted on the train split's windows (scaled, y's shape).
        None where it is no baseline or too big to fit here: fewer train windows than
        coefficients, or more than LINEAR_MAX_VALUES values in the train design matrix."""
        self._forecast_only("linear_forecast")
        train = self.split("train")
        coefficients = self.window * self.features + 1
        if train.n < coefficients or train.n * coefficients > LINEAR_MAX_VALUES:
            return None

        def design(x: np.ndarray) -> np.ndarray:
            flat = x.reshape(len(x), -1).astype(np.float64)
            return np.hstack([flat, np.ones((len(x), 1))])

        try:
            fitted, *_ = np.linalg.lstsq(design(train.x), train.y.astype(np.float64), rcond=None)
        except np.linalg.LinAlgError:
            return None
        return (design(self.split(name).x) @ fitted).astype(np.float32)

    def _scaled_change(self, change: np.ndarray) -> np.ndarray:
        """A change in original units, scaled as the differenced targets are (float32)."""
        return ((change - self.target_mean) / self.target_std).astype(np.float32)

    def to_original(self, y: np.ndarray) -> np.ndarray:
        """Undo the target scaling of forecasts shaped (..., outputs) or (..., targets)."""
        self._forecast_only("to_original")
        y = np.asarray(y, dtype=np.float64)
        if y.shape and y.shape[-1] == self.outputs:
            mean, std = (
                np.tile(self.target_mean, self.horizon),
                np.tile(self.target_std, self.horizon),
            )
        elif y.shape and y.shape[-1] == self.n_targets:
            mean, std = self.target_mean, self.target_std
        else:
            raise DataError(
                f"to_original expects a last axis of {self.outputs} (horizon x targets) or "
                f"{self.n_targets} (targets), got shape {y.shape}"
            )
        return y * std + mean

    def _forecast_only(self, what: str) -> None:
        if self.task != "forecast":
            raise DataError(f"{what} is only defined for forecasting data, this is {self.task}")

    # --- report ----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Plain JSON-ready facts for `bnplace data`: splits, feature statistics, scaling."""
        out: dict[str, Any] = {
            "origin": self.origin,
            "task": self.task,
            "window": self.window,
            "features": list(self.feature_names),
            "outputs": self.outputs,
        }
        if self.task == "forecast":
            out |= {
                "horizon": self.horizon,
                "stride": self.stride,
                "targets": list(self.target_names),
            }
        else:
            out["classes"] = list(self.class_names)
            out["padding"] = "mask" if self.masked else "edge"
        stats = {
            name: dict(zip(("mean", "std", "min", "max"), map(float, row), strict=True))
            for name, row in zip(self.feature_names, self.feature_stats, strict=False)
        }
        out |= {
            "splits": self._split_summary(),
            "feature_stats": stats,
            "scaling": self._scaling_summary(),
            "fingerprint": self.fingerprint,
            "warnings": list(self.warnings),
        }
        out |= self.extra
        return out

    def _split_summary(self) -> dict[str, Any]:
        """Per split: its windows, and its rows and dates (forecast) or class counts."""
        splits: dict[str, Any] = {}
        for part in self.parts:
            entry: dict[str, Any] = {"windows": self.n_windows(part.name)}
            if self.task == "forecast":
                entry |= {"rows": int(part.inputs.shape[0]), "start": part.start, "end": part.end}
                entry["x_shape"] = [self.n_windows(part.name), self.window, self.features]
                entry["y_shape"] = [self.n_windows(part.name), self.outputs]
            else:
                assert part.labels is not None
                counts = np.bincount(part.labels, minlength=len(self.class_names))
                entry["x_shape"] = list(part.inputs.shape)
                entry["classes"] = {
                    c: int(k) for c, k in zip(self.class_names, counts, strict=True)
                }
            splits[part.name] = entry
        return splits

    def _scaling_summary(self) -> dict[str, Any]:
        """How the data were scaled (and differenced): the statistics that invert it."""
        scaling: dict[str, Any] = {"standardize": self.standardized}
        if self.differenced:
            scaling["difference"] = True
        if self.task == "forecast":
            scaling["targets"] = {
                n: {"mean": float(m), "std": float(s)}
                for n, m, s in zip(
                    self.target_names, self.target_mean, self.target_std, strict=True
                )
            }
        if self.standardized:
            scaling["features"] = {
                n: {"mean": float(m), "std": float(s)}
                for n, m, s in zip(
                    self.feature_names, self.feature_mean, self.feature_std, strict=True
                )
            }
        return scaling


def _n_windows(rows: int, window: int, horizon: int, stride: int) -> int:
    usable = rows - window - horizon
    return usable // stride + 1 if usable >= 0 else 0


def format_summary(summary: dict[str, Any]) -> str:
    """Render `Dataset.summary()` as the plain text that `bnplace data` prints."""
    lines = [f"data: {summary['origin']}", f"task: {summary['task']}"]
    if summary["task"] == "forecast":
        lines.append(
            f"window {summary['window']}, horizon {summary['horizon']}, stride {summary['stride']}"
            f"; targets: {', '.join(summary['targets'])}; outputs {summary['outputs']}"
        )
    else:
        lines.append(
            f"sequence length {summary['window']}; classes: {', '.join(summary['classes'])}"
        )
    lines.append(f"features ({len(summary['features'])}): {', '.join(summary['features'])}")
    lines.append("")
    lines.append("split   windows   x shape              y shape    range")
    for name, s in summary["splits"].items():
        if summary["task"] == "forecast":
            rng = f"{s['rows']} rows, {s['start']} .. {s['end']}"
            y_shape = str(tuple(s["y_shape"]))
        else:
            rng = ", ".join(f"{c}: {k}" for c, k in s["classes"].items())
            y_shape = f"({s['windows']},)"
        lines.append(
            f"{name:<7} {s['windows']:>7}   {tuple(s['x_shape'])!s:<20} {y_shape:<10} {rng}"
        )
    lines.append("")
    train = "train split" if summary["task"] == "forecast" else "train sequences"
    lines.append(
        f"{'feature (' + train + ')':<24} {'mean':>11} {'std':>11} {'min':>11} {'max':>11}"
    )
    for name, st in summary["feature_stats"].items():
        lines.append(
            f"{name[:24]:<24} {st['mean']:>11.4g} {st['std']:>11.4g} "
            f"{st['min']:>11.4g} {st['max']:>11.4g}"
        )
    scaling = summary["scaling"]
    lines.append("")
    if scaling.get("difference"):
        lines.append("difference: on (every column is its one-step change; the statistics above")
        lines.append("and the forecasts are of the changes, the baselines forecast the level)")
    fitted = train + (
        " (their real steps: padding: mask)" if summary.get("padding") == "mask" else ""
    )
    inputs = "on, fitted on the " + fitted if scaling["standardize"] else "off (raw values)"
    lines.append(f"standardize inputs: {inputs}")
    lines += _scaler_lines(scaling.get("features", {}) if scaling["standardize"] else {})
    targets = scaling.get("targets", {})
    if targets:
        scaled = any(t["mean"] != 0 or t["std"] != 1 for t in targets.values())
        lines.append(f"scale targets: {'on, fitted on the train split' if scaled else 'off'}")
        lines += _scaler_lines(targets if scaled else {})
    for warning in summary["warnings"]:
        lines.append(f"warning: {warning}")
    lines.append(f"fingerprint: {summary['fingerprint']}")
    return "\n".join(lines)


def _scaler_lines(fitted: dict[str, dict[str, float]]) -> list[str]:
    """The scaler's fitted values: x is fed to the model as (x - mean) / std."""
    return [
        f"  {name[:22]:<22} (x - {v['mean']:.6g}) / {v['std']:.6g}" for name, v in fitted.items()
    ]
