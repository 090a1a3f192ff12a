"""The metric catalogue and the MLflow tag table: one home each, matching what is produced."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

import bnplace.store.track
from bnplace.config.checks import CLASSIFY_METRICS, FORECAST_METRICS
from bnplace.names import metrics, tags
from bnplace.names.metrics import METRICS, default_metric, direction_for


def _old_direction(metric: str) -> str:
    name = metric.removeprefix("val_")
    return "max" if name.startswith(("test_accuracy", "test_macro_f1", "accuracy")) else "min"


@pytest.mark.parametrize(
    "name", [*METRICS, "val_accuracy", "val_test_accuracy", "accuracy_top5", "bn_shift.x", "nope"]
)
def test_direction_for_keeps_its_rule(name: str) -> None:
    assert direction_for(name) == _old_direction(name)


def test_catalogue_directions_agree_with_direction_for() -> None:
    for name, metric in METRICS.items():
        if metric.produced != "aggregate":
            assert direction_for(name) == metric.direction, name


def test_selectable_metrics_per_task() -> None:
    assert FORECAST_METRICS == (
        "test_rmse",
        "test_mse",
        "test_mae",
        "test_rmse_orig",
        "test_mae_orig",
        "val_loss",
    )
    assert CLASSIFY_METRICS == ("test_accuracy", "test_macro_f1", "test_log_loss", "val_loss")
    assert default_metric("forecast") == "test_rmse"
    assert default_metric("classify") == "test_accuracy"
    assert metrics.baseline_metric_for("test_rmse") == "persistence_rmse"
    assert metrics.baseline_metric_for("test_mae_orig", metrics.LINEAR) == "linear_mae_orig"
    for baseline in metrics.BASELINES:  # every baseline's twin of every forecast metric exists
        for metric in ("test_rmse", "test_mse", "test_mae", "test_rmse_orig"):
            assert metrics.baseline_metric_for(metric, baseline) in metrics.METRICS


def test_every_catalogue_entry_is_complete() -> None:
    for name, metric in METRICS.items():
        assert metric.direction in ("min", "max") and metric.does, name
        assert metric.produced in metrics.PRODUCERS, name
        assert metric.scope in ("forecast", "classify", "both"), name


def test_evaluation_produces_catalogued_names() -> None:
    pytest.importorskip("keras")
    from bnplace.trial.evaluate import classification_metrics, regression_metrics

    truth = np.zeros((4, 1))
    made = set(regression_metrics(truth, truth + 1, "test"))
    made |= set(regression_metrics(truth, truth + 1, "test", "_orig"))
    made |= set(regression_metrics(truth, truth, "persistence"))
    made |= set(regression_metrics(truth, truth, "persistence", "_orig"))
    made |= set(classification_metrics(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]])))
    assert made <= set(METRICS)


def test_constants_name_catalogue_entries() -> None:
    for attr in dir(metrics):
        value = getattr(metrics, attr)
        if attr.isupper() and isinstance(value, str) and attr not in ("LR",):
            families = (f"{value}.<layer>", f"{value}.<variant>", f"{value}.<i>")
            prefix = value.endswith("_") and any(name.startswith(value) for name in METRICS)
            baseline = f"{value}_rmse" in METRICS  # a forecasting baseline's metric prefix
            assert value in METRICS or prefix or baseline or any(f in METRICS for f in families), (
                attr
            )


def test_every_tag_constant_is_in_the_table() -> None:
    names = {
        value
        for attr, value in vars(tags).items()
        if attr.isupper() and isinstance(value, str) and value.startswith("bnplace.")
    }
    listed = {name.split("<")[0] for name in tags.TAGS}
    assert names <= listed


def test_track_spells_no_tag_itself() -> None:
    source = inspect.getsource(bnplace.store.track)
    body = source.split('"""', 2)[2]  # past the module docstring
    assert not re.findall(r"[\"']bnplace\.[a-z_]", body)
    assert bnplace.store.track.KIND == tags.ROLE == "bnplace.kind"
