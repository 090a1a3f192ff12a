"""Tests of prepare(): no leakage across splits, train-only scaling, window layout, persistence,
inverse scaling, fingerprint stability, pickling, and the summary `bnplace data` shows."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter

from bnplace.config.data import DataConfig, rows_needed, split_sizes
from bnplace.data import Dataset, format_summary, prepare
from bnplace.names.errors import DataError

ADAPTER = TypeAdapter(DataConfig)
REPO = Path(__file__).resolve().parent.parent
N = 200


def spec(**fields: Any) -> Any:
    return ADAPTER.validate_python({"source": "csv", "path": "s.csv", "window": 6} | fields)


@pytest.fixture
def indexed_csv(tmp_path: Path) -> Path:
    """Columns that encode their own row position: `pos` = row, `next` = row + 0.5, plus noise."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2023-01-01", periods=N, freq="D").strftime("%Y-%m-%d"),
            "pos": np.arange(N, dtype=float),
            "noise": rng.normal(5.0, 2.0, N).round(4),
            "next": np.arange(N) + 0.5,
        }
    )
    frame.to_csv(tmp_path / "s.csv", index=False)
    return tmp_path


def positions(ds: Dataset, array: np.ndarray, column: int, *, target: bool = False) -> np.ndarray:
    """Undo the scaling of one column of x (or y) to get the values it came from (to 1e-3)."""
    if target:
        values = array * ds.target_std[column] + ds.target_mean[column]
    else:
        values = array * ds.feature_std[column] + ds.feature_mean[column]
    return np.round(values, 3)  # float32 scaling is exact to ~1e-5 here


# --- leakage -----------------------------------------------------------------------------


@pytest.mark.parametrize("horizon", [1, 4])
def test_no_window_holds_a_time_step_of_a_later_or_other_split(indexed_csv, horizon):
    ds = prepare(spec(time_column="date", targets=["next"], horizon=horizon), indexed_csv)
    n_train, n_val, n_test = split_sizes(N, 0.7, 0.15)
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (N - n_test, N)}
    for name, (start, stop) in bounds.items():
        split = ds.split(name)
        x_rows = positions(ds, split.x[:, :, 0], 0)
        y_rows = positions(ds, split.y, 0, target=True) - 0.5
        assert x_rows.min() == pytest.approx(start, abs=1e-3)
        assert y_rows.max() == pytest.approx(stop - 1, abs=1e-3)  # the last row is used...
        assert x_rows.max() < stop and y_rows.max() < stop  # ...and nothing after the split
        assert x_rows.min() >= start and y_rows.min() >= start  # nor before it
        # every target lies after every input step of its own window
        assert (y_rows.min(axis=1) > x_rows.max(axis=1)).all()
        assert split.n == (stop - start) - ds.window - horizon + 1


def test_the_test_split_is_the_last_part_of_the_series(indexed_csv):
    ds = prepare(spec(time_column="date", targets=["next"]), indexed_csv)
    test = ds.split("test")
    last_target = positions(ds, test.y[-1], 0, target=True)[-1] - 0.5
    assert last_target == pytest.approx(N - 1, abs=1e-3)
    assert ds.part("test").end == "2023-07-19"  # the file's last date
    assert ds.part("train").start == "2023-01-01"
    starts = [ds.part(s).rows[0] for s in ("train", "val", "test")]
    assert starts == sorted(starts) and ds.part("test").rows[1] == N


def test_scaler_statistics_are_the_training_split_statistics(indexed_csv):
    ds = prepare(spec(time_column="date", features=["pos", "noise"], targets=["next"]), indexed_csv)
    raw = pd.read_csv(indexed_csv / "s.csv")
    train = raw.iloc[: split_sizes(N, 0.7, 0.15)[0]]
    np.testing.assert_allclose(ds.feature_mean, train[["pos", "noise"]].mean().to_numpy())
    np.testing.assert_allclose(ds.feature_std, train[["pos", "noise"]].std(ddof=0).to_numpy())
    np.testing.assert_allclose(ds.target_mean, [train["next"].mean()])
    np.testing.assert_allclose(ds.target_std, [train["next"].std(ddof=0)])
    # the stored train series is exactly z-scored; val/test use the same (train) statistics
    scaled = ds.part("train").inputs
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=0), 1, atol=1e-5)
    test_raw = raw.iloc[-ds.part("test").inputs.shape[0] :][["pos", "noise"]].to_numpy()
    expected = (test_raw - train[["pos", "noise"]].mean().to_numpy()) / train[["pos", "noise"]].std(
        ddof=0
    ).to_numpy()
    np.testing.assert_allclose(ds.part("test").inputs, expected, rtol=1e-5)


def test_standardize_off_keeps_raw_values(indexed_csv):
    ds = prepare(
        spec(time_column="date", targets=["next"], standardize=False, scale_targets=False),
        indexed_csv,
    )
    train = ds.split("train")
    assert train.x[0, :, 0].tolist() == list(range(6))  # pos of rows 0..5, untouched
    assert train.y[0, 0] == 6.5
    assert ds.to_original(train.y)[0, 0] == 6.5
    assert ds.summary()["scaling"] == {
        "standardize": False,
        "targets": {"next": {"mean": 0.0, "std": 1.0}},
    }


# --- windows -----------------------------------------------------------------------------


def test_multi_target_horizon_layout_is_horizon_major(indexed_csv):
    ds = prepare(
        spec(
            targets=["next", "pos"],
            features=["noise"],
            horizon=3,
            standardize=False,
            scale_targets=False,
        ),
        indexed_csv,
    )
    y = ds.split("train").y
    assert ds.outputs == 6 and y.shape[1] == 6
    for h in range(3):
        np.testing.assert_allclose(y[:, 2 * h + 0], np.arange(y.shape[0]) + 6 + h + 0.5)
        np.testing.assert_allclose(y[:, 2 * h + 1], np.arange(y.shape[0]) + 6 + h)


def test_stride_skips_windows(indexed_csv):
    ds = prepare(spec(targets=["next"], stride=4, standardize=False), indexed_csv)
    x = ds.split("train").x
    assert x[:, 0, 0].tolist() == list(range(0, 140 - 6, 4))  # train rows 0..139
    assert ds.split("train").n == ds.n_windows("train") == len(range(0, 140 - 6, 4))
    assert ds.persistence("train").shape == ds.split("train").y.shape


def test_windows_are_views_of_the_series_not_copies(indexed_csv):
    ds = prepare(spec(targets=["next"]), indexed_csv)
    train = ds.split("train")
    assert np.shares_memory(train.x, ds.part("train").inputs)
    assert train.x.nbytes > 3 * ds.part("train").inputs.nbytes  # the view is bigger than its base
    # the pickle sent to workers holds the series, not the windows
    assert len(pickle.dumps(ds)) < train.x.nbytes / 2


def test_persistence_repeats_the_last_observed_target(indexed_csv):
    ds = prepare(spec(targets=["next", "pos"], horizon=2), indexed_csv)
    split = ds.split("val")
    naive = ds.persistence("val")
    assert naive.shape == split.y.shape == (split.n, 4)
    last = ds.to_original(naive)
    pos = ds.feature_names.index("pos")
    x_pos = positions(ds, split.x[:, -1, pos], pos)  # 'pos' is a feature; last input step
    np.testing.assert_allclose(last[:, 1], x_pos, atol=1e-3)
    np.testing.assert_allclose(last[:, 3], x_pos, atol=1e-3)
    np.testing.assert_allclose(last[:, 0], x_pos + 0.5, atol=1e-3)


def _csv(folder: Path, values: dict[str, np.ndarray]) -> Path:
    pd.DataFrame(values).to_csv(folder / "s.csv", index=False)
    return folder


@pytest.mark.parametrize(("horizon", "stride"), [(1, 1), (5, 2), (14, 3)])
def test_seasonal_naive_is_exact_on_a_periodic_series_and_reads_only_the_window(
    tmp_path: Path, horizon: int, stride: int
) -> None:
    rows = np.arange(400)
    periodic = np.sin(2 * np.pi * rows / 12) + 0.3 * np.cos(2 * np.pi * rows / 4)
    folder = _csv(tmp_path, {"y": periodic.round(6), "pos": rows.astype(float)})
    ds = prepare(spec(window=12, horizon=horizon, stride=stride, targets=["y"]), folder)
    for name in ("train", "test"):
        split = ds.split(name)
        naive = ds.seasonal_naive(name, 12)
        assert naive.shape == split.y.shape
        np.testing.assert_allclose(naive, split.y, atol=1e-5)  # a season back is the same value
    # on the row index the forecast of step j is the row j - 12·ceil(j/12) before the next one:
    # never past the window's last row, never before its first
    index = prepare(spec(window=12, horizon=horizon, stride=stride, targets=["pos"]), folder)
    split = index.split("val")
    read = np.round(index.to_original(index.seasonal_naive("val", 12)))
    first = positions(index, split.x[:, 0, 1], 1)[:, None]
    last = positions(index, split.x[:, -1, 1], 1)[:, None]
    assert (read >= first).all() and (read <= last).all()
    steps = np.arange(1, horizon + 1)
    np.testing.assert_allclose(read, last + steps - 12 * np.ceil(steps / 12))


def test_the_linear_baseline_recovers_a_linear_recursion_and_goes_where_it_cannot_fit(
    tmp_path: Path,
) -> None:
    rows = np.arange(600)
    # two sinusoids follow a linear recursion of order 4 exactly: a linear forecast from a
    # window of 6 nails them (up to the noise); the last value does not
    series = np.sin(rows / 5) + 0.5 * np.sin(rows / 2.3)
    series += np.random.default_rng(0).normal(0, 1e-3, rows.size)
    folder = _csv(tmp_path, {"y": series.round(8)})
    ds = prepare(spec(window=6, targets=["y"]), folder)
    test = ds.split("test")
    fitted = ds.linear_forecast("test")
    assert fitted is not None and fitted.shape == test.y.shape
    linear_rmse = float(np.sqrt(np.mean((fitted - test.y) ** 2)))
    persistence_rmse = float(np.sqrt(np.mean((ds.persistence("test") - test.y) ** 2)))
    assert linear_rmse < 0.1 * persistence_rmse
    # more coefficients (window x features + 1 = 361) than train windows (420 - 60): none
    extra = {f"x{i}": np.random.default_rng(i).normal(size=rows.size) for i in range(5)}
    wide = prepare(spec(window=60, targets=["y"]), _csv(tmp_path, {"y": series, **extra}))
    assert wide.features == 6 and wide.split("train").n == 360
    assert wide.linear_forecast("test") is None


def test_season_is_checked_against_the_window_and_kept_out_of_the_fingerprint(
    tmp_path: Path,
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="season 24 is longer than the window 12"):
        spec(window=12, season=24)
    with pytest.raises(ValidationError, match="season applies to forecasting only"):
        ADAPTER.validate_python(
            {"source": "synthetic", "generator": "shapes", "length": 40, "season": 4}
        )
    folder = _csv(tmp_path, {"y": np.arange(100.0)})
    plain = prepare(spec(window=12, targets=["y"]), folder)
    seasonal = prepare(spec(window=12, season=12, targets=["y"]), folder)
    assert plain.fingerprint == seasonal.fingerprint  # a season set later retrains nothing


def test_differenced_data_forecasts_changes_and_scores_the_level_baselines(tmp_path: Path) -> None:
    """`difference: true`: windows and targets are one-step changes; one step ahead a change's
    error is the level forecast's, so the baselines' errors (in original units) are the level
    baselines' own: persistence (no change) and seasonal naive (the value a season back)."""
    rows = np.arange(300)
    rng = np.random.default_rng(5)
    # a trend with a season of 12 and noise: the level leaves the train split's range
    level = 0.5 * rows + 3 * np.sin(2 * np.pi * rows / 12) + rng.normal(0, 0.5, rows.size)
    folder = _csv(tmp_path, {"y": level.round(6), "x": rng.normal(size=rows.size).round(6)})
    ds = prepare(spec(window=12, season=12, targets=["y"], difference=True), folder)
    level_ds = prepare(spec(window=12, season=12, targets=["y"]), folder)
    assert ds.differenced and ds.fingerprint != level_ds.fingerprint
    # the level's test split lies above the train split's range, and `bnplace data` says so;
    # its changes do not
    (trending,) = level_ds.warnings
    assert trending.startswith("target 'y': 100% of the test split lies outside") and (
        "difference: true" in trending
    )
    assert ds.warnings == ()
    assert ds.part("train").start == "row 2"  # the first row has no change
    for name in ("train", "test"):
        split, start = ds.split(name), ds.part(name).rows[0]
        t = start + 1 + np.arange(split.n) + 12 - 1  # each window's last row, in `level`
        changes = ds.to_original(split.y)[:, 0]
        np.testing.assert_allclose(changes, level[t + 1] - level[t], atol=1e-4)
        persistence = ds.to_original(ds.persistence(name))[:, 0]
        np.testing.assert_allclose(persistence, 0.0, atol=1e-5)  # the last value again
        seasonal = ds.to_original(ds.seasonal_naive(name, 12))[:, 0]
        np.testing.assert_allclose(seasonal, level[t + 1 - 12] - level[t], atol=1e-4)
        # the change forecast's error is the level forecast's: level(t) + change − level(t + 1)
        np.testing.assert_allclose(seasonal - changes, level[t + 1 - 12] - level[t + 1], atol=1e-4)
    assert "difference: on" in format_summary(ds.summary())
    # a section that leaves `difference` out keeps the fingerprint it had before the key existed
    assert (
        level_ds.fingerprint
        == prepare(spec(window=12, season=12, targets=["y"], difference=False), folder).fingerprint
    )
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="difference applies to one-step forecasting"):
        spec(horizon=2, difference=True)


def test_to_original_inverts_the_target_scaling(indexed_csv):
    ds = prepare(spec(targets=["next"], horizon=2), indexed_csv)
    y = ds.to_original(ds.split("train").y)
    np.testing.assert_allclose(y[:, 0], np.arange(y.shape[0]) + 6.5, atol=1e-3)
    np.testing.assert_allclose(ds.to_original(ds.split("train").y[:, :1])[:, 0], y[:, 0])
    with pytest.raises(DataError, match="last axis of 2"):
        ds.to_original(np.zeros((3, 5)))


def test_pickled_dataset_gives_the_same_windows(indexed_csv):
    ds = prepare(spec(time_column="date", targets=["next"]), indexed_csv)
    back = pickle.loads(pickle.dumps(ds))
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(back.split(name).x, ds.split(name).x)
        np.testing.assert_array_equal(back.split(name).y, ds.split(name).y)
    assert back.fingerprint == ds.fingerprint


def test_split_size_helpers():
    assert split_sizes(100, 0.7, 0.15) == (70, 15, 15)
    assert split_sizes(101, 0.7, 0.15) == (71, 15, 15)
    need = rows_needed(10, 0.8, 0.1)
    assert min(split_sizes(need, 0.8, 0.1)) >= 10 > min(split_sizes(need - 1, 0.8, 0.1))


# --- fingerprint -------------------------------------------------------------------------


def test_fingerprint_follows_content_and_spec_not_location(indexed_csv, tmp_path_factory):
    base = prepare(spec(time_column="date"), indexed_csv).fingerprint
    assert len(base) == 16 and int(base, 16) >= 0
    assert prepare(spec(time_column="date"), indexed_csv).fingerprint == base
    # moved to another folder and another name: same data, same fingerprint
    other = tmp_path_factory.mktemp("elsewhere")
    (other / "moved.csv").write_bytes((indexed_csv / "s.csv").read_bytes())
    assert prepare(spec(time_column="date", path="moved.csv"), other).fingerprint == base
    # a changed value, a changed spec: a new fingerprint
    assert prepare(spec(time_column="date", window=7), indexed_csv).fingerprint != base
    frame = pd.read_csv(indexed_csv / "s.csv")
    frame.loc[150, "noise"] += 0.001
    frame.to_csv(other / "moved.csv", index=False)
    assert prepare(spec(time_column="date", path="moved.csv"), other).fingerprint != base


def test_fingerprint_is_stable_across_processes(indexed_csv):
    here = prepare(spec(time_column="date"), indexed_csv).fingerprint
    code = (
        "import sys, json; from pydantic import TypeAdapter;"
        "from bnplace.config.data import DataConfig; from bnplace.data import prepare;"
        "s = TypeAdapter(DataConfig).validate_python(json.loads(sys.argv[1]));"
        "print(prepare(s, sys.argv[2]).fingerprint)"
    )
    fields = {"source": "csv", "path": "s.csv", "window": 6, "time_column": "date"}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(fields), str(indexed_csv)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"PYTHONHASHSEED": "123", "PATH": "", "PYTHONPATH": str(REPO)},
    )
    assert out.stdout.strip() == here


# --- summary -----------------------------------------------------------------------------


def test_summary_reports_splits_statistics_scaling_and_fingerprint(indexed_csv):
    ds = prepare(spec(time_column="date", targets=["next"]), indexed_csv)
    summary = ds.summary()
    json.dumps(summary)  # plain data
    assert summary["splits"]["train"] == {
        "windows": 140 - 7 + 1,
        "rows": 140,
        "start": "2023-01-01",
        "end": "2023-05-20",
        "x_shape": [134, 6, 3],
        "y_shape": [134, 1],
    }
    # the statistics shown are the train split's (rows 0..139), the ones the scaler is fitted on
    assert summary["feature_stats"]["pos"] == {
        "mean": pytest.approx(69.5),
        "std": pytest.approx(np.arange(140).std()),
        "min": 0.0,
        "max": 139.0,
    }
    assert summary["scaling"]["features"]["pos"]["mean"] == pytest.approx(69.5)
    assert summary["scaling"]["targets"]["next"]["mean"] == pytest.approx(70.0)
    assert summary["fingerprint"] == ds.fingerprint
    text = format_summary(summary)
    assert ds.fingerprint in text and "2023-07-19" in text and "windows" in text
    assert "feature (train split)" in text
    std = np.arange(140).std()
    # the scaler's fitted values, for the inputs and the targets
    assert f"pos                    (x - 69.5) / {std:.6g}" in text
    assert f"next                   (x - 70) / {np.arange(1, 141).std():.6g}" in text


def test_example_csv_and_config_data_section(tmp_path):
    """The committed example: configs/data/energy.csv read through the example's data section."""
    data = {
        "source": "csv",
        "path": "data/energy.csv",
        "time_column": "date",
        "features": ["temperature_c", "humidity_pct", "solar_wm2", "load_kw"],
        "targets": ["load_kw"],
        "window": 48,
        "horizon": 6,
    }
    ds = prepare(ADAPTER.validate_python(data), REPO / "configs")
    assert ds.features == 4 and ds.outputs == 6
    assert [ds.split(s).n for s in ("train", "val", "test")] == [1963, 379, 379]
    assert ds.part("train").start == "2024-01-01 00:00"
    assert ds.part("test").end == "2024-04-29 23:00"
    assert ds.warnings == ()
    # regenerating it with the committed script gives the same bytes
    script = REPO / "scripts" / "make_example_csv.py"
    subprocess.run([sys.executable, str(script), str(tmp_path / "energy.csv")], check=True)
    assert (tmp_path / "energy.csv").read_bytes() == (REPO / "configs/data/energy.csv").read_bytes()


def test_raw_inputs_still_get_scaled_targets_by_default(indexed_csv):
    """standardize: false compares input normalisation alone; targets keep their scaling."""
    ds = prepare(spec(time_column="date", targets=["next"], standardize=False), indexed_csv)
    train = ds.split("train")
    assert train.x[0, :, 0].tolist() == list(range(6))
    assert abs(float(train.y.mean())) < 0.2 and train.y[0, 0] != 6.5
    np.testing.assert_allclose(ds.to_original(train.y[:1]), [[6.5]], rtol=1e-5)
