"""What a user reads back from a sweep without training: `status`, `export`, the UI link.

One tiny sweep (a finishing and a diverging variant, 2 of the config's 3 seeds) is run with the
CLI as a subprocess into a real SQLite store. Then: `bnplace status` says done / failed /
pending per variant x seed; `bnplace export` writes one row per trial (csv and parquet) whose
run ids are the store's; the end of `bnplace run` prints the link to the experiment's runs in
the UI's model-training view, and the experiment carries the config's description. Last, a real
`mlflow server` on that store and a real headless Chromium: the page behind the link shows the
sweep run's name (and the plain experiment link, MLflow 3's GenAI overview, does not). The
browser test skips, saying so, where no Chromium is installed (`.ci/run` installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bnplace.console.cli import app
from tests.sweeps import bnplace, client, sqlite_store

pytestmark = pytest.mark.slow

CONFIG = """
experiment: views
description: A tiny sweep that the status, export and UI tests read back.
data: {source: synthetic, generator: sine_mix, length: 360, features: 2, window: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
train: {epochs: 2, batch_size: 32, learning_rate: 0.01}
sweep:
  arms:
    kind:
      plain: {}
      huge_lr: {train.learning_rate: 1.0e+12, train.optimizer: sgd}
  seeds: 3
"""
DESCRIPTION = "A tiny sweep that the status, export and UI tests read back."


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    folder = tmp_path_factory.mktemp("views")
    (folder / "c.yaml").write_text(CONFIG)
    sqlite_store(folder)
    done = bnplace(folder, "run", "c.yaml", "--seeds", "2", "--jobs", "1")
    assert done.returncode == 1, done.stdout + done.stderr  # the huge_lr trials diverge
    return folder, done


def test_status_shows_done_failed_and_pending_per_variant_and_seed(swept) -> None:
    folder, _ = swept
    shown = bnplace(folder, "status", "c.yaml", "--json")
    assert shown.returncode == 0, shown.stderr
    trials = json.loads(shown.stdout)["trials"]
    standing = {(t["variant"], t["seed"]): t["status"] for t in trials}
    assert standing == {
        ("kind=plain", 0): "done",
        ("kind=plain", 1): "done",
        ("kind=plain", 2): "pending",  # the config's third seed never ran
        ("kind=huge_lr", 0): "failed",
        ("kind=huge_lr", 1): "failed",
        ("kind=huge_lr", 2): "pending",
    }
    assert {t["failure"] for t in trials if t["status"] == "failed"} == {"diverged"}
    # the time left: both pending trials at plain's median wall (huge_lr finished none)
    from bnplace.run.estimate import duration

    store = client(folder)
    walls = [
        r.info.end_time - r.info.start_time
        for r in store.search_runs(
            [store.get_experiment_by_name("views").experiment_id],
            "tags.`bnplace.kind` = 'trial' and attributes.status = 'FINISHED'",
        )
    ]
    left = duration(2 * sum(walls) / len(walls) / 1000)
    assert f"pending: 2 trials, ~{left} of trial time" in json.loads(shown.stdout)["note"]
    table = bnplace(folder, "status", "c.yaml")
    assert table.returncode == 0, table.stderr
    assert "2 done, 2 failed, 2 pending" in table.stdout
    assert "0-1+ 2." in table.stdout and "0-1x 2." in table.stdout  # consecutive seeds as runs


def test_status_marks_each_run_of_consecutive_seeds_with_one_standing_once() -> None:
    """A race to 20 seeds reads in a few marks; a gap in the seeds (`seeds: [0, 2, 3]`) or a
    change of standing starts a new mark."""
    from bnplace.console.render import _seed_runs

    race = {seed: "done" for seed in range(10)} | {10: "partly"}
    race |= {seed: "pending" for seed in range(11, 20)}
    assert _seed_runs(race).plain == "0-9+ 10~ 11-19. "
    gaps = {0: "done", 2: "done", 3: "done", 4: "failed", 5: "not needed"}
    assert _seed_runs(gaps).plain == "0+ 2-3+ 4x 5- "
    assert _seed_runs({}).plain == ""


def test_status_on_a_store_that_does_not_exist_says_nothing_ran(swept, tmp_path: Path) -> None:
    folder, _ = swept
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    shown = bnplace(folder, "status", "c.yaml", "--json", "--tracking-uri", missing)
    assert shown.returncode == 0, shown.stderr
    answer = json.loads(shown.stdout)
    assert {t["status"] for t in answer["trials"]} == {"pending"}
    assert "nothing has run" in answer["note"]
    assert not (tmp_path / "none.db").exists()  # looking did not create a store


def test_export_writes_one_row_per_trial_as_csv_and_parquet(swept) -> None:
    folder, _ = swept
    done = bnplace(folder, "export", "c.yaml")
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(folder / "views-trials.csv")
    assert len(frame) == 6
    assert {"variant", "seed", "status", "run_id", "sweep_run_id", "trial_key"} <= set(frame)
    assert {"metric.test_rmse", "param.train.learning_rate", "axis.kind"} <= set(frame)
    store = client(folder)
    exp = store.get_experiment_by_name("views")
    trial_runs = store.search_runs([exp.experiment_id], "tags.`bnplace.kind` = 'trial'")
    assert set(frame["run_id"].dropna()) == {r.info.run_id for r in trial_runs}
    plain = frame[(frame["variant"] == "kind=plain") & (frame["status"] == "done")]
    by_id = {r.info.run_id: r for r in trial_runs}
    for row in plain.itertuples():
        assert by_id[row.run_id].data.metrics["test_rmse"] == pytest.approx(
            frame.loc[row.Index, "metric.test_rmse"]
        )
    pytest.importorskip("pyarrow")
    done = bnplace(folder, "export", "c.yaml", "--format", "parquet", "--out", "t.parquet")
    assert done.returncode == 0, done.stderr
    parquet = pd.read_parquet(folder / "t.parquet")
    assert list(parquet["run_id"].fillna("")) == list(frame["run_id"].fillna(""))


def test_export_to_parquet_without_pyarrow_says_what_to_install(
    swept, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = swept
    monkeypatch.chdir(folder)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` raises ImportError
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = CliRunner().invoke(app, ["export", "c.yaml", "--format", "parquet"])
    assert result.exit_code == 2, result.output
    assert "pyarrow" in result.output and "Traceback" not in result.output
    assert not (folder / "views-trials.parquet").exists()


def test_plan_estimates_the_training_time_from_the_store(swept) -> None:
    folder, _ = swept
    shown = bnplace(folder, "plan", "c.yaml", "--json")
    assert shown.returncode == 0, shown.stderr
    estimate = json.loads(shown.stdout)["time_estimate"]
    # 360 rows: 252 train rows, 240 windows of 12 + 1, 8 batches of 32; 2 epochs; 6 trials
    assert (estimate["trials"], estimate["steps"]) == (6, 6 * 2 * 8)
    store = client(folder)
    exp = store.get_experiment_by_name("views")
    finished = store.search_runs(
        [exp.experiment_id], "tags.`bnplace.kind` = 'trial' and attributes.status = 'FINISHED'"
    )
    assert estimate["measured_trials"] == len(finished) == 2
    (variant_id,) = {run.data.tags["bnplace.variant_id"] for run in finished}
    per_epoch = sorted(run.data.metrics["time_per_epoch_s"] for run in finished)
    assert estimate["step_cost_s"] == {variant_id: pytest.approx(sum(per_epoch) / 2 / 8)}
    assert estimate["seconds"] > estimate["steps"] * min(per_epoch) / 8  # plus build, tracing
    # at the lengths measured: each planned trial at the median wall time of the finished ones
    walls = [(run.info.end_time - run.info.start_time) / 1000 for run in finished]
    assert estimate["typical_seconds"] == pytest.approx(6 * sum(walls) / 2)
    words = " ".join(bnplace(folder, "plan", "c.yaml").stdout.split())  # unwrapped
    assert "training time, estimated: ~" in words and "96 training steps" in words
    assert "at the trial lengths measured on 2 finished trial(s)" in words
    assert "at most ~" in words and "if every fit ran to its budget" in words


def _link(stdout: str) -> str:
    found = re.search(r"http://\S+#/experiments/\d+\?workflowType=machine_learning", stdout)
    assert found, stdout
    return found.group(0)


def test_run_prints_the_model_training_link_and_describes_the_experiment(swept) -> None:
    folder, done = swept
    exp = client(folder).get_experiment_by_name("views")
    link = _link(done.stdout)
    assert link.endswith(f"/#/experiments/{exp.experiment_id}?workflowType=machine_learning")
    assert exp.tags["mlflow.note.content"] == DESCRIPTION


# --- a real browser on a real server ------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> str:
    """A headless-capable Chromium or Chrome on PATH; the browser tests skip without one."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run does)")


@pytest.fixture(scope="module")
def served(swept, browser: str) -> Iterator[str]:
    """`bnplace ui` on the swept store, started once for the module's browser tests (they only
    read it; a start is ~7 s of imports and migrations checks), and not at all without a
    browser."""
    from tests.servers import free_port, stop

    folder, _ = swept
    port = free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "bnplace", "ui", "--port", str(port)],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (folder / "server.log").read_text()
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "bnplace ui did not answer /health in 90 s"
            time.sleep(0.5)
        yield url
    finally:
        stop(process)
        log.close()


def _dom(browser: str, url: str, profile: Path) -> str:
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=30000",  # let the single-page app fetch and render the runs
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_printed_link_shows_the_sweep_in_a_real_browser(
    swept, browser: str, served: str, tmp_path: Path
) -> None:
    folder, done = swept
    store = client(folder)
    exp = store.get_experiment_by_name("views")
    (sweep,) = store.search_runs([exp.experiment_id], "tags.`bnplace.kind` = 'sweep'")
    name = sweep.info.run_name
    port = served.rsplit(":", 1)[1]
    link = _link(done.stdout).replace(":5000/", f":{port}/")  # the test's server, not 5000
    page = _dom(browser, link, tmp_path / "profile")
    assert name in page, page[-3000:]
    assert DESCRIPTION in page
    overview = _dom(browser, f"{served}/#/experiments/{exp.experiment_id}", tmp_path / "p2")
    assert name not in overview  # without the view, MLflow 3 opens its GenAI overview


def test_the_printed_answer_link_shows_every_variant_with_its_verdict(
    swept, browser: str, served: str, tmp_path: Path
) -> None:
    """The sweep run's page (the link `run` prints first) has the comparison as its
    description: each variant's name, Δ% and verdict, without a click."""
    folder, done = swept
    found = re.search(
        r"the answer in the UI: (http://\S+#/experiments/\d+/runs/\w+\?\S+)", done.stdout
    )
    assert found, done.stdout
    port = served.rsplit(":", 1)[1]
    page = _dom(browser, found.group(1).replace(":5000/", f":{port}/"), tmp_path / "profile")
    store = client(folder)
    exp = store.get_experiment_by_name("views")
    variants = store.search_runs([exp.experiment_id], "tags.`bnplace.kind` = 'variant'")
    assert len(variants) == 2
    for run in variants:
        assert run.data.tags["bnplace.variant"] in page, page[-3000:]
        assert "baseline" in page or run.data.tags.get("bnplace.verdict", "") in page
    assert "inconclusive" in page  # huge_lr against plain at 2 seeds
    assert "Δ% vs baseline" in page


def test_ui_lists_each_experiment_with_its_answer_page(swept) -> None:
    """`bnplace ui` prints the runs table and, beside it, the newest sweep run's page."""
    from bnplace.console.ui import experiment_links

    folder, done = swept
    store = client(folder)
    exp = store.get_experiment_by_name("views")
    (sweep,) = store.search_runs([exp.experiment_id], "tags.`bnplace.kind` = 'sweep'")
    links = dict(experiment_links(f"sqlite:///{folder / 'mlflow.db'}", "127.0.0.1", 5000))
    page = (
        f"http://127.0.0.1:5000/#/experiments/{exp.experiment_id}/runs/{sweep.info.run_id}"
        "?workflowType=machine_learning"
    )
    assert links["views (answer)"] == page
    assert page in done.stdout.replace("\n", "")  # the link `run` printed
    assert "inconclusive" in sweep.data.tags["mlflow.note.content"]  # the answer is its description


def test_the_time_at_measured_lengths_falls_back_to_the_dataset_then_to_all() -> None:
    """Each planned trial counts the median wall time of its variant on its dataset, else of
    its dataset's finished trials, else of every finished trial."""
    from types import SimpleNamespace

    from bnplace.run.estimate import run_walls, typical_seconds
    from tests.test_schedule_search import _two_dataset_plan

    plan = _two_dataset_plan()  # 3 placements x 12 seeds on 'sine' and 'ar'
    measured, other = plan.variants[0].id, plan.variants[1].id

    def run(variant: str, dataset: str, seconds: float) -> SimpleNamespace:
        tags = {"bnplace.variant_id": variant, "bnplace.dataset": dataset}
        info = SimpleNamespace(start_time=1_000, end_time=1_000 + int(seconds * 1000))
        return SimpleNamespace(info=info, data=SimpleNamespace(tags=tags))

    runs = [run(measured, "sine", 10), run(measured, "sine", 30), run(other, "sine", 50)]
    runs.append(run(measured, "ar", 100))
    n = len(plan.trials) // 6  # trials of one variant on one dataset
    # sine: the two measured variants at their medians 20 and 50, the third at the dataset's
    # median 30; ar: the measured one at 100, the two others at the dataset's median, 100
    walls = run_walls(runs)
    assert typical_seconds(plan.trials, walls) == pytest.approx(n * (20 + 50 + 30 + 3 * 100))
    # a dataset with nothing measured: the median of every finished trial (here 40)
    elsewhere = [run(measured, "gone", 10), run(measured, "gone", 70), run(other, "gone", 40)]
    assert typical_seconds(plan.trials, run_walls(elsewhere)) == pytest.approx(
        len(plan.trials) * 40
    )
    assert typical_seconds(plan.trials, []) is None
    running = SimpleNamespace(info=SimpleNamespace(start_time=1_000, end_time=None))
    assert run_walls([running]) == []  # no end yet: no wall time


def test_status_says_the_pending_trials_time_at_the_lengths_measured() -> None:
    """Pending trials at their variant's median finished wall time (`typical_seconds`); a
    sequential design's figure is a bound; nothing pending or nothing measured: no line."""
    from bnplace.run.status import time_left
    from bnplace.store.inventory import Standing, TrialRecord

    def record(variant: str, seed: int, status: Standing, wall: float | None = None) -> TrialRecord:
        return TrialRecord(variant, variant, seed, f"{variant}-{seed}", status, wall_s=wall)

    done = [
        record("a", 0, "done", 30.0),
        record("a", 1, "done", 90.0),
        record("b", 0, "done", 600.0),
    ]
    failed = record("b", 1, "failed", 1.0)  # a failed trial's time is not a trial length
    pending = [record("a", 2, "pending"), record("a", 3, "pending"), record("b", 2, "pending")]
    # a: 2 x 60 s, b: 600 s = 12 min
    line = time_left([*done, failed, *pending], "the race may end sooner")
    assert line == (
        "pending: 3 trials, ~12 min of trial time at the lengths measured on 3 finished "
        "trials, shared among the --jobs workers (at most: the race may end sooner)"
    )
    assert time_left([*done, *pending], "").endswith("--jobs workers")  # a grid: no bound
    assert time_left(done, "") == ""  # nothing pending
    assert time_left(pending, "") == ""  # nothing measured yet
