"""The metric catalogue: every metric name a trial produces, in one table.

In: nothing (pure data; no TensorFlow, no MLflow, no files, no other bnplace module). Out:
`METRICS` (for each name: whether lower or higher is better, the task it belongs to, its units,
where it is produced and what it measures), the name constants the producers and readers share
(`TEST_RMSE`, `VAL_LOSS`, `TIME_PER_EPOCH_S`, ...), `direction_for` (min or max for any metric
name, also a Keras history name such as `val_accuracy`), `default_metric`, `selectable` (the
names `compare.metric` accepts for a task), `aggregate_name` (a variant's `<metric>_mean`,
`_sd`, `_min`, `_max`), `on_dataset` (its twin on one of several datasets),
`POOLED_METRICS` (the pooled comparison's), `open_comparisons_on` and `seeds_given` (the
per-look metrics of seeds on demand, per dataset with several), the forecasting `BASELINES` and
`baseline_metric_for`.
A name with `<layer>` stands for a family, one metric per layer (`bn_shift.<layer>` is
`bn_shift.conv__batch_norm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["min", "max"]
Scope = Literal["forecast", "classify", "both"]  # the task(s) a metric is produced for


# Where each metric is produced (`Metric.produced`).
PRODUCERS = {
    "eval": "bnplace.trial.evaluate.evaluate: the test split after training",
    "fit": "bnplace.trial.train._train: timing and size of the fit",
    "history": "bnplace.trial.train._Watch: Keras' per-epoch logs (learning_rate logged as lr)",
    "init": "bnplace.trial.evaluate.init_variance: a fixed slice of training windows at init",
    "diagnose": "bnplace.trial.evaluate.diagnostics: a fixed slice of training windows after fit",
    "aggregate": "bnplace.store.track.Tracker.write_aggregates: per variant, over finished trials",
    "choose": "bnplace.trial.train: the candidates of a `{choose: [...]}` setting (trial.choose)",
    "look": "bnplace.store.track.Tracker.log_look: the sweep run, per look of seeds on demand",
}
# Units: "std" is the standardized target, "orig" the data's own units.


@dataclass(frozen=True)
class Metric:
    name: str
    direction: Direction  # which way is better
    scope: Scope
    units: str
    produced: str  # a key of PRODUCERS
    does: str  # one line
    selectable: bool = False  # may be `compare.metric` (for its scope's task)


_M = Metric


def _errors(prefix: str, of: str, selectable: tuple[str, ...]) -> tuple[Metric, ...]:
    """RMSE, MSE and MAE of `of` on the test windows (`<prefix>_rmse`, ...), in the
    standardized target and with `_orig` in the data's own units."""
    kinds = (("rmse", "std", "RMSE"), ("mse", "std^2", "MSE"), ("mae", "std", "MAE"))
    return tuple(
        _M(
            f"{prefix}_{kind}{suffix}",
            "min",
            "forecast",
            units.replace("std", "orig") if suffix else units,
            "eval",
            f"{label} of {of}" + (", in the data's units" if suffix else ""),
            f"{kind}{suffix}" in selectable,
        )
        for suffix in ("", "_orig")
        for kind, units, label in kinds
    )


# A table: its rows share their shape by design (one row per metric name). The test errors
# and the forecasting baselines' (`BASELINES`) come first, made by `_errors`.
_CATALOGUE = (
    *_errors("test", "the model", ("rmse", "mse", "mae", "rmse_orig", "mae_orig")),
    *_errors("persistence", "the last value as forecast", ()),
    *_errors("linear", "a least-squares linear forecast from the window", ()),
    *_errors("seasonal_naive", "the value one season before", ()),
    _M("test_accuracy", "max", "classify", "fraction", "eval", "windows classified right", True),
    _M("test_macro_f1", "max", "classify", "fraction", "eval", "F1 averaged over classes", True),
    _M("test_log_loss", "min", "classify", "nats", "eval", "mean negative log-likelihood", True),
    _M("val_loss", "min", "both", "loss", "history", "validation loss", True),
    _M("loss", "min", "both", "loss", "history", "training loss"),
    _M("mae", "min", "forecast", "std", "history", "training MAE"),
    _M("val_mae", "min", "forecast", "std", "history", "validation MAE"),
    _M("accuracy", "max", "classify", "fraction", "history", "training accuracy"),
    _M("val_accuracy", "max", "classify", "fraction", "history", "validation accuracy"),
    _M("lr", "min", "both", "", "history", "learning rate"),
    _M("train_time_s", "min", "both", "s", "fit", "wall time of fit()"),
    _M("time_per_epoch_s", "min", "both", "s", "fit", "mean epoch time, first epoch left out"),
    _M("first_epoch_s", "min", "both", "s", "fit", "first epoch (includes tracing)"),
    _M("epochs_run", "min", "both", "epochs", "fit", "epochs trained (early stopping)"),
    _M("params", "min", "both", "count", "fit", "Keras count_params()"),
    _M("steps_run", "min", "both", "steps", "fit", "optimizer steps trained"),
    _M("hit_cap", "min", "both", "0/1", "fit", "1 when training ran to its epoch cap"),
    _M("chosen_learning_rate", "min", "both", "", "choose", "learning rate chosen on val"),
    _M("chosen_weight_decay", "min", "both", "", "choose", "weight decay chosen on val"),
    _M("select_epochs", "min", "both", "epochs", "choose", "epochs of all candidates"),
    _M("select_time_s", "min", "both", "s", "choose", "wall time of all candidates' fits"),
    _M("select_candidates", "min", "both", "count", "choose", "candidates trained"),
    _M("chosen_at_edge", "min", "both", "0/1", "choose", "1 when a choice is a list's end"),
    _M("select_val_loss.<i>", "min", "both", "loss", "choose", "candidate i's best val_loss"),
    _M("init_var.<layer>", "min", "both", "variance", "init", "activation variance, inference"),
    _M("init_var_train.<layer>", "min", "both", "variance", "init", "same, training mode"),
    _M("trained_var.<layer>", "min", "both", "variance", "diagnose", "activation variance"),
    _M("train_loss_infer", "min", "both", "loss", "diagnose", "inference-mode training loss"),
    _M("infer_vs_train_loss", "min", "both", "ratio", "diagnose", "inference / training-mode loss"),
    _M("bn_shift.<layer>", "min", "both", "ratio", "diagnose", "BN moving / real variance"),
    _M(
        "bn_train_vs_infer.<layer>", "min", "both", "ratio", "diagnose", "BN train / infer variance"
    ),
    _M("bn_shift_max", "min", "both", "ratio", "diagnose", "largest bn_shift.<layer>"),
    _M("bn_train_vs_infer_max", "min", "both", "ratio", "diagnose", "largest bn_train_vs_infer"),
    _M("n_finished", "max", "both", "count", "aggregate", "finished trials"),
    _M("n_failed", "min", "both", "count", "aggregate", "failed trials"),
    _M("open_comparisons", "min", "both", "count", "look", "comparisons undecided after a look"),
    _M("seeds.<variant>", "min", "both", "count", "look", "seeds given to a variant (by id)"),
    _M("open_comparisons.<dataset>", "min", "both", "count", "look", "the same, on one dataset"),
    _M("seeds.<dataset>.<variant>", "min", "both", "count", "look", "the same, on one dataset"),
    _M("search.survivors", "min", "both", "count", "look", "placements a search still races"),
)
METRICS: dict[str, Metric] = {metric.name: metric for metric in _CATALOGUE}

# Names shared by the modules that produce and read them.
TEST_RMSE, TEST_ACCURACY = "test_rmse", "test_accuracy"
TEST_MACRO_F1, TEST_LOG_LOSS = "test_macro_f1", "test_log_loss"
LOSS, VAL_LOSS, LR = "loss", "val_loss", "lr"
TRAIN_TIME_S, TIME_PER_EPOCH_S, FIRST_EPOCH_S = "train_time_s", "time_per_epoch_s", "first_epoch_s"
EPOCHS_RUN, PARAMS = "epochs_run", "params"
STEPS_RUN, HIT_CAP = "steps_run", "hit_cap"
SELECT_EPOCHS, SELECT_TIME_S = "select_epochs", "select_time_s"
SELECT_CANDIDATES, SELECT_VAL_LOSS = "select_candidates", "select_val_loss"  # .<i>
CHOSEN_PREFIX = "chosen_"  # + a `{choose: [...]}` train key: chosen_learning_rate
CHOSEN_AT_EDGE = "chosen_at_edge"  # a chosen value is the smallest or largest of 3+ candidates
TRAIN_LOSS_INFER, INFER_VS_TRAIN_LOSS = "train_loss_infer", "infer_vs_train_loss"
BN_SHIFT_MAX, BN_TRAIN_VS_INFER_MAX = "bn_shift_max", "bn_train_vs_infer_max"
# Prefixes of the per-layer families: f"{BN_SHIFT}.{layer}"
INIT_VAR, INIT_VAR_TRAIN, TRAINED_VAR = "init_var", "init_var_train", "trained_var"
BN_SHIFT, BN_TRAIN_VS_INFER = "bn_shift", "bn_train_vs_infer"
N_FINISHED, N_FAILED = "n_finished", "n_failed"
OPEN_COMPARISONS, SEEDS = "open_comparisons", "seeds"  # the sweep run's per-look metrics
SURVIVORS = "search.survivors"  # a search's sweep run: placements still in, step = seeds read
# The forecasting baselines each trial also scores on its test windows (prefixes of their
# metrics: persistence_rmse, ...): the last value, a least-squares linear forecast from the
# window, and (with `data.season`) the value one season before.
PERSISTENCE, LINEAR, SEASONAL_NAIVE = "persistence", "linear", "seasonal_naive"
BASELINES = (PERSISTENCE, LINEAR, SEASONAL_NAIVE)
# A variant's aggregates of the main metric over its finished trials, besides N_FINISHED and
# N_FAILED: f"{metric}_{stat}" (`aggregate_name`), e.g. test_rmse_mean. Not in METRICS: their
# direction is the metric's own (sd aside).
AggregateStat = Literal["mean", "sd", "min", "max"]
HISTORY_METRICS = (LOSS, VAL_LOSS)  # the per-epoch curves shown in progress and reports
DIAGNOSTICS = (BN_SHIFT_MAX, BN_TRAIN_VS_INFER_MAX, INFER_VS_TRAIN_LOSS)

_DEFAULT = {"forecast": TEST_RMSE, "classify": TEST_ACCURACY}
# Better when higher, for `direction_for`: a trial's own metrics (not aggregates) and any name
# they start (val_ dropped first).
_HIGHER = tuple(
    m.name
    for m in _CATALOGUE
    if m.direction == "max" and m.produced in ("eval", "history") and not m.name.startswith("val_")
)


def direction_for(metric: str) -> Direction:
    """Whether lower ("min") or higher ("max") is better: accuracy and F1 are "max"."""
    name = metric.removeprefix("val_")
    return "max" if name.startswith(_HIGHER) else "min"


def default_metric(task: str) -> str:
    """The metric compared when `compare.metric` is not set: test_rmse / test_accuracy."""
    return _DEFAULT.get(task, TEST_ACCURACY)


def selectable(task: str) -> tuple[str, ...]:
    """The names `compare.metric` accepts for `task`, in catalogue order."""
    return tuple(m.name for m in _CATALOGUE if m.selectable and m.scope in (task, "both"))


def aggregate_name(metric: str, stat: AggregateStat) -> str:
    """The name a variant's aggregate of `metric` is logged under: test_rmse_mean."""
    return f"{metric}_{stat}"


# Several datasets: a variant run's numbers on one dataset are `<dataset>/<name>`
# (`on_dataset`; the MLflow UI groups them by the prefix); the pooled comparison's numbers
# are `pooled/<name>` (`pooled`) with these names (written by `bnplace.compare.record`).
POOLED_METRICS = (
    "delta_pct", "delta_pct_low", "delta_pct_high", "pi_low", "pi_high", "tau2", "i2",
    "p_value", "p_adjusted", "k",
)  # fmt: skip


def on_dataset(name: str, dataset: str) -> str:
    """A variant run's metric `name` on one dataset: test_rmse_mean on taylor ->
    taylor/test_rmse_mean."""
    return f"{dataset}/{name}"


def pooled(name: str) -> str:
    """A variant run's pooled-comparison number: tau2 -> pooled/tau2."""
    return f"pooled/{name}"


def open_comparisons_on(dataset: str = "") -> str:
    """The sweep run's per-look count of undecided comparisons: open_comparisons, or with
    several datasets open_comparisons.<dataset> (each dataset decides its own)."""
    return f"{OPEN_COMPARISONS}.{dataset}" if dataset else OPEN_COMPARISONS


def seeds_given(variant_id: str, dataset: str = "") -> str:
    """The sweep run's per-look seeds of a variant: seeds.<variant id>, or with several
    datasets seeds.<dataset>.<variant id>."""
    return f"{SEEDS}.{dataset}.{variant_id}" if dataset else f"{SEEDS}.{variant_id}"


def baseline_metric_for(metric: str, baseline: str = "persistence") -> str:
    """A baseline's column matching a forecast metric (`BASELINES`): test_rmse ->
    persistence_rmse, linear_rmse or seasonal_naive_rmse."""
    return f"{baseline}_" + metric.removeprefix("test_")
