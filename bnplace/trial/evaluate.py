"""A trained (or just built) model measured: test metrics, the baselines, the diagnostics.

In: a compiled Keras model and its prepared `Dataset`. Out: metric dicts named by
`bnplace.names.metrics`: `evaluate` (the test split, and for forecasting the persistence,
linear and seasonal-naive baselines on the same windows), `diagnostics` (after training: the
variance through depth, BN's variance shift, the loss in both modes) and `init_variance` (at
initialisation). `bnplace.trial.train` calls them; `bnplace.trial.diagnose` holds the passes.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from bnplace.data import Dataset
from bnplace.data.feed import tf_dataset
from bnplace.names import metrics as m
from bnplace.trial.diagnose import activation_variance, layer_outputs, loss_by_mode, variance_shift

_DIAGNOSE_SAMPLES = 512


def evaluate(
    model: keras.Model, dataset: Dataset, batch_size: int, season: int | None = None
) -> dict[str, float]:
    """Test metrics of the model, and (forecasting) of the baselines on the same windows:
    persistence, a least-squares linear forecast from the window and, with a season, the
    seasonal naive forecast; a baseline's non-finite figure is left out (never a failed trial)."""
    test = dataset.split("test")
    feed = tf_dataset(dataset, "test", max(batch_size, 256), targets=False)
    predicted = np.asarray(model.predict(feed, verbose=0))
    if dataset.task == "classify":
        return classification_metrics(test.y, predicted)
    metrics = regression_metrics(test.y, predicted, "test")
    metrics |= regression_metrics(
        dataset.to_original(test.y), dataset.to_original(predicted), "test", "_orig"
    )
    baselines = {
        m.PERSISTENCE: dataset.persistence("test"),
        m.LINEAR: dataset.linear_forecast("test"),
        m.SEASONAL_NAIVE: dataset.seasonal_naive("test", season) if season else None,
    }
    for name, forecast in baselines.items():
        if forecast is None:
            continue
        figures = regression_metrics(test.y, forecast, name)
        figures |= regression_metrics(
            dataset.to_original(test.y), dataset.to_original(forecast), name, "_orig"
        )
        metrics |= {k: v for k, v in figures.items() if math.isfinite(v)}
    return metrics


def regression_metrics(
    truth: np.ndarray, predicted: np.ndarray, prefix: str, suffix: str = ""
) -> dict[str, float]:
    error = np.asarray(predicted, np.float64) - np.asarray(truth, np.float64)
    mse = float(np.mean(error**2))
    return {
        f"{prefix}_mse{suffix}": mse,
        f"{prefix}_rmse{suffix}": math.sqrt(mse),
        f"{prefix}_mae{suffix}": float(np.mean(np.abs(error))),
    }


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    labels = np.asarray(labels).astype(int).ravel()
    predicted = probabilities.argmax(axis=1)
    f1s = []
    for c in range(probabilities.shape[1]):
        tp = np.sum((predicted == c) & (labels == c))
        fp = np.sum((predicted == c) & (labels != c))
        fn = np.sum((predicted != c) & (labels == c))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    picked = np.clip(probabilities[np.arange(labels.size), labels], 1e-7, 1.0)
    return {
        m.TEST_ACCURACY: float(np.mean(predicted == labels)),
        m.TEST_MACRO_F1: float(np.mean(f1s)),
        m.TEST_LOG_LOSS: float(-np.mean(np.log(picked))),
    }


def diagnostics(
    model: keras.Model, dataset: Dataset, loss: Any, modes_differ: bool
) -> dict[str, float]:
    """The trained model on a fixed slice of its training windows: the variance through depth,
    BN's variance shift (see REFERENCE.md) and, where training mode differs, the loss in both
    modes (does the network meet at inference what it was trained on?)."""
    train = dataset.split("train")
    x = np.asarray(train.x[:_DIAGNOSE_SAMPLES])
    outputs = layer_outputs(model, x)  # one inference-mode pass serves both diagnostics
    metrics = {f"{m.TRAINED_VAR}.{k}": float(np.var(v)) for k, v in outputs.items()}
    if modes_differ:
        y = np.asarray(train.y[:_DIAGNOSE_SAMPLES])
        infer, trained = loss_by_mode(model, x, y, loss, predicted=list(outputs.values())[-1])
        metrics[m.TRAIN_LOSS_INFER] = infer
        if trained > 0:
            metrics[m.INFER_VS_TRAIN_LOSS] = infer / trained
    shifts = variance_shift(model, x)
    if not shifts:
        return metrics
    for name, shift in shifts.items():
        metrics[f"{m.BN_SHIFT}.{name}"] = shift.moving_vs_real
        metrics[f"{m.BN_TRAIN_VS_INFER}.{name}"] = shift.train_vs_infer
    metrics[m.BN_SHIFT_MAX] = max(s.moving_vs_real for s in shifts.values())
    metrics[m.BN_TRAIN_VS_INFER_MAX] = max(s.train_vs_infer for s in shifts.values())
    return metrics


def init_variance(model: keras.Model, dataset: Dataset, noisy: bool) -> dict[str, float]:
    """Activation variance through depth at initialisation (the self-normalisation check).

    Each pass costs ~0.1-0.25 s (an LSTM runs its steps eagerly), so the training-mode pass is
    made only where dropout or noise act: with BN alone it shows BN's own normalisation.
    """
    sample = np.asarray(dataset.split("train").x[:_DIAGNOSE_SAMPLES])
    metrics = {f"{m.INIT_VAR}.{k}": v for k, v in activation_variance(model, sample).items()}
    if noisy:  # dropout and noise active (and BN on batch statistics): what training sees
        trained = activation_variance(model, sample, training=True)
        metrics |= {f"{m.INIT_VAR_TRAIN}.{k}": v for k, v in trained.items()}
    return metrics
