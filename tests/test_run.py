"""`bnplace run` end to end: real processes, real tiny Keras models, a real MLflow SQLite store.

Each test runs the CLI as a subprocess (the way a user does), then reads the store back with
MLflow's own client.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.forked import start_driver
from tests.sweeps import (
    CTRL_C_CONFIG,
    bnplace,
    ctrl_c_at_every_moment,
    environment,
    press_ctrl_c_once,
    runs,
    sqlite_store,
    write_config,
)

pytestmark = pytest.mark.slow


# One grid for the pool sweep and the killed-and-resumed in-process sweep: a plain and a BN
# variant that finish, one that diverges and one that runs past its time limit; 2 seeds.
GRID = """
sweep:
  arms:
    kind:
      plain: {}
      bn: {conv.post_act: [{batch_norm: {momentum: 0.5}}]}
      huge_lr: {train.learning_rate: 1.0e+12, train.optimizer: sgd}
      slow: {train.epochs: 60, train.time_limit: 0.5}
  seeds: 2
"""
FINISHING = {"kind=plain", "kind=bn"}


@pytest.fixture(scope="module")
def pool_sweep(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess]:
    """The grid with --jobs 2 (worker processes)."""
    folder = tmp_path_factory.mktemp("pool")
    done = bnplace(folder, "run", str(write_config(folder, GRID)), "--jobs", "2", "--no-compare")
    return folder, done


@pytest.fixture(scope="module")
def resumed_sweep(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict, subprocess.CompletedProcess]:
    """The grid with --jobs 1, SIGKILLed (the whole process group) once two trials finished,
    then run again. Returns the folder, the runs seen at the kill, and the second run."""
    folder = tmp_path_factory.mktemp("killed")
    config = write_config(folder, GRID)
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    exp_id = client.create_experiment("tiny")  # the store exists before two processes open it
    process = start_driver(
        folder, ["run", str(config), "-j", "1", "--no-compare"], environment(), log=folder / "log"
    )
    deadline = time.monotonic() + 240
    finished: list = []
    while time.monotonic() < deadline and len(finished) < 2 and process.poll() is None:
        time.sleep(0.2)
        finished = client.search_runs(
            [exp_id], "tags.`bnplace.kind` = 'trial' and attributes.status = 'FINISHED'"
        )
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert len(finished) >= 2, "the sweep did not get far enough before the deadline"
    at_kill = runs(folder)
    again = bnplace(folder, "run", str(config), "-j", "1", "--no-compare")
    return folder, at_kill, again


def test_sweep_is_recorded_as_sweep_variant_trial_runs(pool_sweep) -> None:
    folder, done = pool_sweep
    assert done.returncode == 1, done.stderr + done.stdout  # some trials failed, by design
    assert "bnplace ui" in done.stdout
    found = runs(folder)
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    (sweep,) = found["sweep"]
    assert sweep.info.status == "FINISHED"
    assert sweep.data.tags["bnplace.metric"] == "test_rmse"
    assert "bnplace.lib.keras" in sweep.data.tags
    assert {a.path for a in client.list_artifacts(sweep.info.run_id)} >= {"config", "plan.json"}
    variants = {run.data.tags["bnplace.variant"]: run for run in found["variant"]}
    assert set(variants) == {"kind=plain", "kind=bn", "kind=huge_lr", "kind=slow"}
    for name, run in variants.items():
        assert run.data.tags["mlflow.parentRunId"] == sweep.info.run_id
        assert run.data.metrics["n_finished"] == (2 if name in FINISHING else 0)
    for name in FINISHING:
        metrics = variants[name].data.metrics
        assert "test_rmse_mean" in metrics and "test_rmse_sd" in metrics
    assert variants["kind=bn"].data.params["kind"] == "bn"
    assert variants["kind=bn"].data.tags["bnplace.layers"] == "Conv1D>ReLU>BN>Flatten>Dense"
    assert len(found["trial"]) == 8
    for trial in found["trial"]:
        tags = trial.data.tags
        variant = variants[tags["bnplace.variant"]]
        assert tags["mlflow.parentRunId"] == variant.info.run_id
        assert tags["bnplace.seed"] in {"0", "1"} and len(tags["bnplace.trial_key"]) == 16
        if tags["bnplace.variant"] not in FINISHING:
            continue
        assert trial.info.status == "FINISHED" and tags["bnplace.status"] == "finished"
        assert int(tags["bnplace.params"]) == int(trial.data.metrics["params"])
        assert trial.data.params["train.epochs"] == "2"
        history = client.get_metric_history(trial.info.run_id, "val_loss")
        assert sorted(m.step for m in history) == [0, 1]
        for name in ("test_rmse", "test_rmse_orig", "persistence_rmse", "time_per_epoch_s"):
            assert name in trial.data.metrics
        assert "trained_var.conv__conv1d" in trial.data.metrics  # the variance through depth
        artifacts = {a.path for a in client.list_artifacts(trial.info.run_id)}
        assert {"model_summary.txt", "history.csv"} <= artifacts
    bn_trials = [t for t in found["trial"] if t.data.tags["bnplace.variant"] == "kind=bn"]
    for trial in bn_trials:
        assert "bn_shift_max" in trial.data.metrics
        assert trial.data.metrics["infer_vs_train_loss"] > 0  # BN: training mode differs


def test_diverging_and_overtime_trials_fail_with_their_reason(pool_sweep) -> None:
    folder, done = pool_sweep
    trials = runs(folder)["trial"]
    for variant, reason in (("kind=huge_lr", "diverged"), ("kind=slow", "timeout")):
        failed = [t for t in trials if t.data.tags["bnplace.variant"] == variant]
        assert len(failed) == 2
        for trial in failed:
            assert trial.info.status == "FAILED" and trial.data.tags["bnplace.failure"] == reason
    slow = [t for t in trials if t.data.tags["bnplace.variant"] == "kind=slow"]
    assert all(t.data.metrics["epochs_run"] < 60 for t in slow)
    assert "diverged" in done.stdout and "timeout" in done.stdout


def test_a_filtered_rerun_is_recorded_and_compared_with_the_whole_plan(
    pool_sweep, tmp_path: Path
) -> None:
    """--filter trains a subset; the sweep still records every variant (plan.json, variant runs,
    aggregates from the newest finished trials) and compares against the configured baseline,
    which this sweep did not train."""
    folder = tmp_path / "copy"
    shutil.copytree(pool_sweep[0], folder)  # the fixture's store stays as the other tests see it
    config = write_config(folder, GRID + "compare: {baseline: kind=plain}\n")
    done = bnplace(folder, "run", str(config), "-j", "1", "--rerun", "--filter", "kind=bn")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 to run" in done.stdout and "baseline kind=plain" in done.stdout
    found = runs(folder)
    newest = max(found["sweep"], key=lambda run: run.info.start_time)
    sweep_id = newest.info.run_id
    variants = [v for v in found["variant"] if v.data.tags["mlflow.parentRunId"] == sweep_id]
    assert {v.data.tags["bnplace.variant"] for v in variants} == {
        "kind=plain",
        "kind=bn",
        "kind=huge_lr",
        "kind=slow",
    }
    plain = next(v for v in variants if v.data.tags["bnplace.variant"] == "kind=plain")
    assert plain.data.metrics["n_finished"] == 2  # trained by the first sweep
    retrained = [t for t in found["trial"] if t.data.tags["bnplace.sweep"] == sweep_id]
    assert sorted(t.data.tags["bnplace.variant"] for t in retrained) == ["kind=bn", "kind=bn"]


def test_killed_sweep_resumes_without_losing_or_repeating_trials(resumed_sweep) -> None:
    folder, before, done = resumed_sweep
    assert any(t.info.status == "RUNNING" for t in before["trial"] + before["sweep"])
    first_finished = {
        t.data.tags["bnplace.trial_key"] for t in before["trial"] if t.info.status == "FINISHED"
    }
    assert done.returncode == 1, done.stderr  # the diverging and slow trials fail again
    assert f"{len(first_finished)} already finished" in done.stdout
    after = runs(folder)
    assert not [r for r in after["trial"] + after["sweep"] if r.info.status == "RUNNING"]
    ended = [t for t in after["trial"] if t.info.status in ("FINISHED", "FAILED")]
    keys = [t.data.tags["bnplace.trial_key"] for t in ended]
    assert len(keys) == len(set(keys)) == 8  # none lost, none twice
    assert first_finished <= set(keys)
    killed = [t for t in after["trial"] if t.info.status == "KILLED"]
    assert all(t.data.tags["bnplace.status"] == "killed" for t in killed)
    assert len(after["trial"]) == 8 + len(killed)
    (sweep,) = after["sweep"]  # the rerun of the same plan continued the killed sweep's run
    assert sweep.info.status == "FINISHED"
    assert sweep.info.run_id == before["sweep"][0].info.run_id
    assert len(after["variant"]) == 4


def test_jobs_1_and_jobs_2_give_the_same_metrics(pool_sweep, resumed_sweep) -> None:
    """Worker processes (--jobs 2) and the driver's own process (--jobs 1, resumed after a
    SIGKILL) train the same trials to the same numbers, bit for bit: every final metric but the
    timings, whichever trials ran on a kept (reused) model and whichever on a fresh one."""
    timings = {"train_time_s", "time_per_epoch_s", "first_epoch_s"}
    metrics, reuse = [], []
    for folder in (pool_sweep[0], resumed_sweep[0]):
        finished = [t for t in runs(folder)["trial"] if t.info.status == "FINISHED"]
        metrics.append(
            {
                t.data.tags["bnplace.trial_key"]: {
                    k: v for k, v in t.data.metrics.items() if k not in timings
                }
                for t in finished
            }
        )
        reuse.append(
            {t.data.tags["bnplace.trial_key"]: t.data.tags["bnplace.reuse"] for t in finished}
        )
    assert metrics[0].keys() == metrics[1].keys() and len(metrics[0]) == 4
    for key, values in metrics[0].items():
        assert metrics[1][key] == values, key  # == : one TensorFlow thread per trial in both
    assert "reused" in set(reuse[0].values()) | set(reuse[1].values())
    # --jobs 2: the second worker starts another variant rather than the first one's (whose
    # model is warm in the first), so each variant is built once and its later seed reused
    pool = [t.data.tags for t in runs(pool_sweep[0])["trial"] if t.info.status == "FINISHED"]
    fresh = sorted(t["bnplace.variant"] for t in pool if t["bnplace.reuse"] == "fresh")
    assert fresh == sorted(FINISHING), fresh


def test_bad_config_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sweep: {sed: 3}\n", store=False)
    done = bnplace(tmp_path, "run", str(config))
    assert done.returncode == 2
    assert "did you mean: seeds" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_ctrl_c_is_acted_on_at_the_first_press_and_a_rerun_resumes(tmp_path: Path) -> None:
    """Process pool: one Ctrl-C at each moment of CTRL_C_MOMENTS (tests/sweeps.py)."""
    ctrl_c_at_every_moment(tmp_path, "-j", "2")


def test_sigterm_ends_the_sweep_as_ctrl_c_does_and_kill_9_leaves_no_worker_traceback(
    tmp_path: Path,
) -> None:
    """`kill PID` (SIGTERM to the driver alone, as a job scheduler ends a job) mid-trial: the
    sweep ends as on Ctrl-C (exit 130, its open runs KILLED, its workers stopped) rather than
    dying mid-write with its runs left RUNNING. Then `kill -9` of the resumed driver: its
    workers find its pipe closed and exit quietly, with no broken-pipe traceback."""
    config = write_config(tmp_path, CTRL_C_CONFIG)
    args = ("run", str(config), "-j", "2", "--no-compare")
    code, output = press_ctrl_c_once(tmp_path, args, "start ", signal.SIGTERM)
    assert code == 130 and "interrupted" in output, output
    assert "Traceback" not in output, output
    found = runs(tmp_path)
    assert {r.info.status for r in found["sweep"]} == {"KILLED"}
    statuses = {r.info.status for r in found["variant"] + found["trial"]}
    assert "RUNNING" not in statuses and "KILLED" in statuses, statuses
    code, output = press_ctrl_c_once(tmp_path, args, "epoch ", signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert "Traceback" not in output and "BrokenPipeError" not in output, output


def test_csv_config_trains_end_to_end(tmp_path: Path) -> None:
    """configs/csv_energy.yaml: a date column, three features and a target, 6-step horizon."""
    config = Path(__file__).resolve().parents[1] / "configs" / "csv_energy.yaml"
    sqlite_store(tmp_path)
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


def test_a_diverging_variant_ranks_worse_end_to_end(tmp_path: Path) -> None:
    """Failed seeds rank worst in the paired test: a variant that always diverges is "worse",
    not left out of the comparison (6 seeds: the fewest one comparison can decide at)."""
    config = write_config(
        tmp_path,
        """
        sweep:
          arms:
            kind:
              plain: {}
              huge_lr: {train.learning_rate: 1.0e+12, train.optimizer: sgd}
          seeds: 6
        """,
    )
    done = bnplace(tmp_path, "run", str(config), "--jobs", "1", "--no-compare")
    assert done.returncode == 1, done.stderr  # the diverging trials fail
    shown = bnplace(tmp_path, "compare", str(config), "--format", "json", "--no-log")
    assert shown.returncode == 0, shown.stderr
    result = json.loads(shown.stdout)
    by_name = {v["variant"]: v for v in result["variants"]}
    assert by_name["kind=huge_lr"]["verdict"] == "worse"
    assert by_name["kind=huge_lr"]["n_pairs"] == 6 and by_name["kind=huge_lr"]["n_failed"] == 6
    assert result["comparisons"][0]["n_failed_a"] == 6
