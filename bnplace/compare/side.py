"""The columns beside the main metric in the per-variant table: cost, baselines, diagnostics.

In: a trials table (checked by `compare.stats`: variant, seed, status, one column per metric),
the main metric and the variants in order. Out: one row per variant with the means (medians
for counts and chosen settings) of the side metrics the trials carry, and for diagnostics and
chosen settings their range over seeds (`range_labels`). Pure: pandas.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bnplace.names import metrics
from bnplace.names.metrics import BASELINES, baseline_metric_for
from bnplace.names.states import FINISHED

# Metrics shown beside the main metric when the trials carry them: (column, summary, label).
SIDE_METRICS: tuple[tuple[str, str, str], ...] = (
    (metrics.TIME_PER_EPOCH_S, "mean", metrics.TIME_PER_EPOCH_S),
    (metrics.TRAIN_TIME_S, "mean", metrics.TRAIN_TIME_S),
    (metrics.EPOCHS_RUN, "mean", metrics.EPOCHS_RUN),
    (metrics.STEPS_RUN, "mean", metrics.STEPS_RUN),
    (metrics.HIT_CAP, "mean", metrics.HIT_CAP),  # the share of runs early stopping did not stop
    (metrics.PARAMS, "median", metrics.PARAMS),
    (metrics.SELECT_EPOCHS, "mean", metrics.SELECT_EPOCHS),  # the cost of a `choose:`
)
# Settings chosen per trial (`{choose: [...]}`): the median and the range over seeds.
CHOSEN = tuple(metrics.CHOSEN_PREFIX + key for key in ("learning_rate", "weight_decay"))
# Diagnostics shown with their mean and their range over seeds ("above 1 on every seed" is a
# claim about the minimum): labels <name>, <name>_lo, <name>_hi (a "_max" suffix dropped).
DIAGNOSTICS = metrics.DIAGNOSTICS


def range_labels(column: str) -> tuple[str, str]:
    """The labels of a diagnostic's smallest and largest value over seeds."""
    stem = column.removesuffix("_max")
    return f"{stem}_lo", f"{stem}_hi"


def side_metrics(trials: pd.DataFrame, metric: str, *, variants: Sequence[str]) -> pd.DataFrame:
    """Cost, persistence and BN-diagnostic columns per variant, over finished trials.

    Columns (each only when the trials carry it): the forecasting baselines persistence, linear
    and seasonal_naive (means of the baseline's twin of `metric`, e.g. persistence_rmse for
    test_rmse), time_per_epoch_s, train_time_s, epochs_run
    (means), params (median), and the `DIAGNOSTICS` (means, and their range over seeds as
    `range_labels`). The trials table is the one `compare.stats` checked.
    """
    names = list(variants)
    finished = trials[trials["status"].astype(str) == FINISHED]
    out = pd.DataFrame({"variant": names})
    baselines = [(baseline_metric_for(metric, b), "mean", b) for b in BASELINES]
    specs = [*baselines, *SIDE_METRICS]
    for column in (*DIAGNOSTICS, *CHOSEN):
        lo, hi = range_labels(column)
        centre = "median" if column in CHOSEN else "mean"
        specs += [(column, centre, column), (column, "min", lo), (column, "max", hi)]
    for column, how, label in specs:
        if column not in trials.columns or column == metric:
            continue
        values = pd.to_numeric(finished[column], errors="coerce").astype(float)
        grouped = values.groupby(finished["variant"].astype(str))
        agg = grouped.agg(how)
        out[label] = out["variant"].map(agg).astype(float)
        if out[label].isna().all():
            out = out.drop(columns=label)
    return out
