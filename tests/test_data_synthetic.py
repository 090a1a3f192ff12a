"""Tests of the synthetic generators: deterministic (same seed, same array), right shapes, basic
statistics of each process, and the schema rules that tie generators to tasks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from bnplace.config.data import DataConfig, SyntheticData
from bnplace.data import prepare
from bnplace.data.raw import RawSequences, RawSeries
from bnplace.data.synthetic import ar_coefficients, generate

ADAPTER = TypeAdapter(DataConfig)


def spec(**fields: Any) -> SyntheticData:
    return ADAPTER.validate_python({"source": "synthetic"} | fields)  # type: ignore[return-value]


CASES = [
    {"generator": "sine_mix", "features": 3},
    {"generator": "ar", "features": 2, "ar_order": 4},
    {"generator": "mackey_glass"},
    {"generator": "lorenz", "features": 3},
    {"generator": "distractors", "features": 6},
    {"generator": "shapes", "features": 2, "classes": 4},
]


@pytest.mark.parametrize("fields", CASES, ids=lambda c: c["generator"])
def test_same_seed_same_array_other_seed_other_array(fields):
    a = generate(spec(length=600, seed=5, **fields))
    b = generate(spec(length=600, seed=5, **fields))
    c = generate(spec(length=600, seed=6, **fields))
    values = (lambda r: r.values) if isinstance(a, RawSeries) else (lambda r: r.x)
    np.testing.assert_array_equal(values(a), values(b))
    assert not np.allclose(values(a), values(c))
    assert prepare(spec(length=600, seed=5, **fields)).fingerprint == (
        prepare(spec(length=600, seed=5, **fields)).fingerprint
    )


@pytest.mark.parametrize("fields", CASES[:5], ids=lambda c: c["generator"])
def test_forecast_generators_shape_and_finite(fields):
    raw = generate(spec(length=700, **fields))
    assert isinstance(raw, RawSeries)
    assert raw.values.shape == (700, fields.get("features", 1))
    assert np.isfinite(raw.values).all()
    assert raw.target_names == raw.columns[:1]
    assert (raw.values.std(axis=0) > 0).all()


def test_sine_mix_is_periodic_with_noise():
    clean = generate(spec(length=2000, features=2, noise=0.0)).values
    noisy = generate(spec(length=2000, features=2, noise=0.5)).values
    assert abs(clean.mean()) < 0.2
    residual = noisy - clean
    assert residual.std(axis=0) == pytest.approx(0.5 * clean.std(axis=0), rel=0.1)
    # channels share the latent periods: strongly related through a linear fit on lags
    assert np.abs(np.corrcoef(clean[:-1, 0], clean[1:, 0])[0, 1]) > 0.9


def test_ar_coefficients_are_stationary_and_series_persistent():
    for order in (1, 3, 8):
        phi = ar_coefficients(np.random.default_rng(order), order)
        roots = np.roots(np.concatenate([[1.0], -phi]))
        assert phi.shape == (order,) and (np.abs(roots) < 1).all()
    values = generate(spec(generator="ar", length=3000, features=1, noise=0.0)).values[:, 0]
    assert np.isfinite(values).all() and values.std() < 50
    assert np.corrcoef(values[:-1], values[1:])[0, 1] > 0.3


def test_mackey_glass_stays_in_its_attractor_range():
    values = generate(spec(generator="mackey_glass", length=1500, noise=0.0)).values[:, 0]
    assert values.min() > 0.2 and values.max() < 1.5
    assert values.std() > 0.1  # chaotic, not settled to a fixed point


def test_lorenz_statistics():
    values = generate(spec(generator="lorenz", length=3000, features=3, noise=0.0)).values
    assert abs(values[:, 0].mean()) < 3 and 18 < values[:, 2].mean() < 28
    assert values[:, 0].min() < -10 < 10 < values[:, 0].max()  # visits both wings
    assert generate(spec(generator="lorenz", length=100, features=2, window=8)).columns == (
        "x",
        "y",
    )


def test_distractors_target_depends_on_the_drivers_only():
    raw = generate(spec(generator="distractors", length=4000, features=8, noise=0.0, horizon=2))
    assert raw.columns[0] == "y"
    assert sum(c.startswith("driver") for c in raw.columns) == 2
    y = raw.values[:, 0]

    def best_lag_corr(col: int) -> float:
        x = raw.values[:, col]
        return max(abs(np.corrcoef(y[lag:], x[: len(x) - lag])[0, 1]) for lag in range(1, 12))

    drivers = [best_lag_corr(i) for i, c in enumerate(raw.columns) if c.startswith("driver")]
    noise = [best_lag_corr(i) for i, c in enumerate(raw.columns) if c.startswith("noise")]
    assert min(drivers) > 0.3 > 0.15 > max(noise)
    # distractors and drivers look alike on their own
    stds = raw.values[:, 1:].std(axis=0)
    assert stds.max() / stds.min() < 1.6


def test_shapes_are_balanced_labelled_sequences():
    raw = generate(spec(generator="shapes", length=120, window=32, features=2, classes=4))
    assert isinstance(raw, RawSequences)
    assert raw.x.shape == (120, 32, 2)
    names, counts = np.unique(raw.labels, return_counts=True)
    assert names.tolist() == ["sawtooth1", "sine1", "sine2", "square1"]
    assert counts.tolist() == [30, 30, 30, 30]
    ds = prepare(spec(generator="shapes", length=120, window=32, features=2, classes=4))
    assert ds.task == "classify" and ds.outputs == 4 and ds.window == 32
    assert sum(ds.split(s).n for s in ("train", "val", "test")) == 120


def test_schema_ties_generators_to_tasks():
    assert spec(generator="shapes").task == "classify"
    with pytest.raises(ValidationError, match="set task: classify"):
        spec(generator="shapes", task="forecast")
    with pytest.raises(ValidationError, match="makes a forecasting series"):
        spec(generator="ar", task="classify")
    with pytest.raises(ValidationError, match="features must be >= 4"):
        spec(generator="distractors", features=3)
    with pytest.raises(ValidationError, match=r"features must be 1\.\.3"):
        spec(generator="lorenz", features=4)
    with pytest.raises(ValidationError, match="univariate"):
        spec(generator="mackey_glass", features=2)
