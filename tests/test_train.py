"""One trial in this process (`bnplace.trial.train.run_trial`): the diagnostics each model gets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bnplace.run.sweep import plan_sweep
from bnplace.trial.train import run_trial

pytestmark = pytest.mark.slow

CONFIG = """
experiment: one-trial
data: {source: synthetic, generator: sine_mix, length: 300, features: 2, window: 12, season: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 4}
train: {epochs: 1, batch_size: 32}
sweep:
  arms:
    dropout:
      none: {}
      recurrent: {lstm.recurrent_dropout: 0.3}
  seeds: 1
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = Path(tmp_path_factory.mktemp("trial")) / "c.yaml"
    path.write_text(CONFIG)
    prepared = plan_sweep(path)
    return {
        trial.variant: run_trial(trial, prepared.datasets[trial.data_fingerprint])
        for trial in prepared.plan.trials
    }


def test_every_trial_records_the_variance_through_depth_after_training(results) -> None:
    for result in results.values():
        assert result.status == "finished", result.reason
        trained = [k for k in result.metrics if k.startswith("trained_var.")]
        assert {"trained_var.conv__conv1d", "trained_var.lstm__lstm"} <= set(trained)
        assert all(result.metrics[k] >= 0 for k in trained)


def test_every_trial_scores_the_baselines_on_its_test_windows(results) -> None:
    """Persistence, the linear forecast and (data.season: 12) the seasonal naive one: the same
    figures for every variant (they do not depend on the model), in both units."""
    names = [
        f"{baseline}_{figure}{units}"
        for baseline in ("persistence", "linear", "seasonal_naive")
        for figure in ("rmse", "mse", "mae")
        for units in ("", "_orig")
    ]
    seen = [{n: result.metrics[n] for n in names} for result in results.values()]
    assert all(np.isfinite(list(s.values())).all() for s in seen)
    assert all(s == seen[0] for s in seen)
    assert seen[0]["linear_rmse"] == pytest.approx(seen[0]["linear_mse"] ** 0.5)


def test_training_mode_diagnostics_only_where_training_mode_differs(results) -> None:
    """An LSTM's own recurrent_dropout makes training mode differ, as a Dropout layer does."""
    plain, recurrent = results["dropout=none"].metrics, results["dropout=recurrent"].metrics
    assert "infer_vs_train_loss" not in plain and "train_loss_infer" not in plain
    assert recurrent["infer_vs_train_loss"] > 0 and recurrent["train_loss_infer"] > 0
    assert any(k.startswith("init_var_train.") for k in recurrent)


STEPS_PER_EXECUTION = """
experiment: steps-per-execution
data: {source: synthetic, generator: sine_mix, length: 400, features: 2, window: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 4}
placements: {conv.post_act: [{batch_norm: {momentum: 0.9}}, {dropout: 0.2}]}
train: {epochs: 4, batch_size: 16, early_stopping: {patience: 1}}
sweep:
  axes:
    train.steps_per_execution: [1, 8]
  seeds: 1
"""


def test_steps_per_execution_changes_no_result(tmp_path: Path) -> None:
    """The studies group 16 steps per call to cut per-step overhead: the same seed must give
    the same model (BN's moving statistics, dropout masks, early stopping's best epoch)."""
    path = tmp_path / "c.yaml"
    path.write_text(STEPS_PER_EXECUTION)
    prepared = plan_sweep(path)
    one, grouped = (
        run_trial(trial, prepared.datasets[trial.data_fingerprint]).metrics
        for trial in prepared.plan.trials
    )
    timings = {k for k in one if k.endswith("_s")}
    assert set(one) == set(grouped)
    assert {k: one[k] for k in set(one) - timings} == {
        k: grouped[k] for k in set(grouped) - timings
    }


def test_a_budget_in_steps_trains_its_whole_epochs(tmp_path: Path) -> None:
    """`train.steps` gives every dataset the same updates: ceil(steps / batches) epochs; the
    share at the cap is logged only where early stopping could end a run sooner."""
    path = tmp_path / "c.yaml"
    path.write_text(
        CONFIG.replace("train: {epochs: 1, batch_size: 32}", "train: {steps: 9, batch_size: 64}")
    )
    prepared = plan_sweep(path)
    trial = prepared.plan.trials[0]
    dataset = prepared.datasets[trial.data_fingerprint]
    batches = -(-dataset.n_windows("train") // 64)
    result = run_trial(trial, dataset)
    assert result.status == "finished", result.reason
    assert result.metrics["epochs_run"] == -(-9 // batches) > 1
    assert result.metrics["steps_run"] == result.metrics["epochs_run"] * batches >= 9
    assert "hit_cap" not in result.metrics
