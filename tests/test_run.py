"""`bnplace run` end to end: real processes, real tiny Keras models, a real MLflow SQLite store.

Each test runs the CLI as a subprocess (the way a user does), then reads the store back with
MLflow's own client.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.sweeps import bnplace, runs, write_config

pytestmark = pytest.mark.slow


def test_sweep_is_recorded_as_sweep_variant_trial_runs(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        """
    sweep:
      axes:
        conv.post_act: {none: [], bn: [{batch_norm: {momentum: 0.5}}]}
      seeds: 2
    """,
    )
    done = bnplace(tmp_path, "run", str(config), "--jobs", "2", "--no-compare")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "bnplace ui" in done.stdout
    found = runs(tmp_path)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (sweep,) = found["sweep"]
    assert sweep.info.status == "FINISHED"
    assert sweep.data.tags["bnplace.metric"] == "test_rmse"
    assert "bnplace.lib.keras" in sweep.data.tags
    assert {a.path for a in client.list_artifacts(sweep.info.run_id)} >= {"config", "plan.json"}
    variants = {run.data.tags["bnplace.variant"]: run for run in found["variant"]}
    assert set(variants) == {"conv.post_act=none", "conv.post_act=bn"}
    for run in variants.values():
        assert run.data.tags["mlflow.parentRunId"] == sweep.info.run_id
        assert run.data.metrics["n_finished"] == 2
        assert "test_rmse_mean" in run.data.metrics and "test_rmse_sd" in run.data.metrics
    assert variants["conv.post_act=bn"].data.params["conv.post_act"] == "bn"
    assert variants["conv.post_act=bn"].data.tags["bnplace.layers"] == "Conv1D>ReLU>BN>LSTM>Dense"
    assert len(found["trial"]) == 4
    for trial in found["trial"]:
        tags = trial.data.tags
        variant = variants[tags["bnplace.variant"]]
        assert tags["mlflow.parentRunId"] == variant.info.run_id
        assert trial.info.status == "FINISHED" and tags["bnplace.status"] == "finished"
        assert tags["bnplace.seed"] in {"0", "1"} and len(tags["bnplace.trial_key"]) == 16
        assert int(tags["bnplace.params"]) == int(trial.data.metrics["params"])
        assert trial.data.params["train.epochs"] == "2"
        history = client.get_metric_history(trial.info.run_id, "val_loss")
        assert sorted(m.step for m in history) == [0, 1]
        for name in ("test_rmse", "test_rmse_orig", "persistence_rmse", "time_per_epoch_s"):
            assert name in trial.data.metrics
        artifacts = {a.path for a in client.list_artifacts(trial.info.run_id)}
        assert {"model_summary.txt", "history.csv"} <= artifacts
    bn_trials = [t for t in found["trial"] if t.data.tags["bnplace.variant"].endswith("bn")]
    assert all("bn_shift_max" in t.data.metrics for t in bn_trials)

    again = bnplace(tmp_path, "run", str(config), "--jobs", "2", "--no-compare")
    assert again.returncode == 0
    assert "4 already finished" in again.stdout
    rerun = runs(tmp_path)
    assert len(rerun["trial"]) == 4  # nothing logged twice
    digests = {s.data.tags["bnplace.config_digest"] for s in rerun["sweep"]}
    assert len(rerun["sweep"]) == 2 and len(digests) == 1  # same config, same digest


def test_diverging_variant_fails_and_the_rest_finish(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        """
    sweep:
      arms:
        lr:
          sane: {}
          huge: {train.learning_rate: 1.0e+12, train.optimizer: sgd}
      seeds: 1
    """,
    )
    done = bnplace(tmp_path, "run", str(config), "--jobs", "1", "--no-compare")
    assert done.returncode == 1, done.stdout + done.stderr
    trials = {t.data.tags["bnplace.variant"]: t for t in runs(tmp_path)["trial"]}
    assert trials["lr=huge"].info.status == "FAILED"
    assert trials["lr=huge"].data.tags["bnplace.failure"] == "diverged"
    assert trials["lr=sane"].info.status == "FINISHED"
    assert "diverged" in done.stdout


def test_jobs_1_and_jobs_2_give_the_same_metrics(tmp_path: Path) -> None:
    extra = """
    placements: {conv.post_act: [{dropout: 0.2}]}
    sweep: {axes: {lstm.units: [3, 5]}, seeds: 2}
    """
    results = []
    for jobs in ("1", "2"):
        folder = tmp_path / f"jobs{jobs}"
        folder.mkdir()
        config = write_config(folder, extra)
        done = bnplace(folder, "run", str(config), "--jobs", jobs, "--no-compare")
        assert done.returncode == 0, done.stderr
        results.append(
            {
                t.data.tags["bnplace.trial_key"]: t.data.metrics["test_rmse"]
                for t in runs(folder)["trial"]
            }
        )
    assert results[0].keys() == results[1].keys() and len(results[0]) == 4
    # One TensorFlow thread per trial in both: equal bit for bit in every run so far, but
    # oneDNN may pick other kernels on another machine, so allow round-off.
    for key, value in results[0].items():
        assert results[1][key] == pytest.approx(value, rel=1e-5)


def test_killed_sweep_resumes_without_losing_or_repeating_trials(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        """
    sweep: {axes: {lstm.units: [2, 3, 4]}, seeds: 2}
    """,
    )
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store)
    client.create_experiment("tiny")  # the store exists before two processes open it
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bnplace",
            "run",
            str(config),
            "-j",
            "1",
            "--epochs",
            "3",
            "--no-compare",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    exp = client.get_experiment_by_name("tiny")
    deadline = time.monotonic() + 240
    finished: list = []
    while time.monotonic() < deadline and len(finished) < 2 and process.poll() is None:
        time.sleep(0.5)
        finished = client.search_runs(
            [exp.experiment_id],
            "tags.`bnplace.kind` = 'trial' and attributes.status = 'FINISHED'",
        )
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert len(finished) >= 2, "the sweep did not get far enough before the deadline"
    before = runs(tmp_path)
    assert any(t.info.status == "RUNNING" for t in before["trial"] + before["sweep"])
    first_finished = {
        t.data.tags["bnplace.trial_key"] for t in before["trial"] if t.info.status == "FINISHED"
    }

    done = bnplace(tmp_path, "run", str(config), "-j", "1", "--epochs", "3", "--no-compare")
    assert done.returncode == 0, done.stderr
    assert f"{len(first_finished)} already finished" in done.stdout
    after = runs(tmp_path)
    assert not [r for r in after["trial"] + after["sweep"] if r.info.status == "RUNNING"]
    finished_keys = [
        t.data.tags["bnplace.trial_key"] for t in after["trial"] if t.info.status == "FINISHED"
    ]
    assert len(finished_keys) == len(set(finished_keys)) == 6  # none lost, none twice
    assert first_finished <= set(finished_keys)
    killed = [t for t in after["trial"] if t.info.status == "KILLED"]
    assert all(t.data.tags["bnplace.status"] == "killed" for t in killed)
    assert len(after["trial"]) == 6 + len(killed)


def test_trial_past_its_time_limit_fails_with_timeout(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sweep: {seeds: 1}\n")
    done = bnplace(
        tmp_path,
        "run",
        str(config),
        "-j",
        "1",
        "--epochs",
        "50",
        "--set",
        "train.time_limit=0.5",
        "--no-compare",
    )
    assert done.returncode == 1
    (trial,) = runs(tmp_path)["trial"]
    assert trial.data.tags["bnplace.failure"] == "timeout"
    assert trial.data.metrics["epochs_run"] < 50


def test_bad_config_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sweep: {sed: 3}\n")
    done = bnplace(tmp_path, "run", str(config))
    assert done.returncode == 2
    assert "did you mean: seeds" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_ctrl_c_keeps_finished_trials_and_marks_the_rest_killed(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sweep: {axes: {lstm.units: [2, 3, 4, 5]}, seeds: 2}\n")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store)
    exp_id = client.create_experiment("tiny")
    process = subprocess.Popen(
        [sys.executable, "-m", "bnplace", "run", str(config), "-j", "2", "--epochs", "4"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    finished: list = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not finished and process.poll() is None:
        time.sleep(0.5)
        finished = client.search_runs(
            [exp_id], "tags.`bnplace.kind` = 'trial' and attributes.status = 'FINISHED'"
        )
    os.killpg(process.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "Traceback" not in output
    found = runs(tmp_path)
    (sweep,) = found["sweep"]
    assert sweep.info.status == "KILLED"
    statuses = {t.info.status for t in found["trial"]}
    assert statuses <= {"FINISHED", "KILLED"} and "FINISHED" in statuses
    assert len(found["trial"]) < 8  # it stopped early
    assert not [r for r in found["variant"] if r.info.status == "RUNNING"]


def test_csv_config_trains_end_to_end(tmp_path: Path) -> None:
    """configs/csv_energy.yaml: a date column, three features and a target, 6-step horizon."""
    config = Path(__file__).resolve().parents[1] / "configs" / "csv_energy.yaml"
    done = bnplace(
        tmp_path,
        "run",
        str(config),
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--filter",
        "none",
        "-j",
        "1",
        "--no-compare",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (trial,) = runs(tmp_path, "csv-energy")["trial"]
    metrics = trial.data.metrics
    assert metrics["test_rmse_orig"] > 0 and metrics["persistence_rmse_orig"] > 0
    assert trial.data.tags["bnplace.layers"] == "Conv1D>ReLU>LSTM>Dense"
