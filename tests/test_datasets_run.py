"""Several datasets end to end: `bnplace run` then `bnplace compare` on three datasets (two
synthetic, one CSV), then a fourth dataset added and the sweep run again.

In: a config with `datasets:` and two variants, 6 seeds (the fewest one comparison can decide
at), tiny models, 1 epoch; the CLI as a subprocess in a temp dir with a SQLite store. Out:
assertions on the store (trial runs carry the dataset's name as param and tag, variant runs
per-dataset and pooled aggregates and verdicts, the forest plot among the sweep run's
artifacts), on what `compare` prints (per-dataset verdicts and a pooled row with τ², I² and
the prediction interval), and on the resume (only the new dataset's trials are trained).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.sweeps import bnplace, client, runs, sqlite_store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
experiment: multi
datasets:
  sine: {source: synthetic, generator: sine_mix, length: 260, features: 2, window: 12}
  ar: {source: synthetic, generator: ar, length: 260, features: 1, window: 12}
  energy:
    source: csv
    path: energy.csv
    time_column: date
    features: [temperature_c, load_kw]
    targets: [load_kw]
    window: 12
%s
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
sweep:
  arms:
    kind:
      plain: {}
      tiny_lr: {train.learning_rate: 1.0e-7}
  seeds: 6
train: {epochs: 2, batch_size: 32, learning_rate: 0.01}
"""
VERDICTS = {"better", "worse", "equivalent", "inconclusive"}
FOURTH = "  mg: {source: synthetic, generator: mackey_glass, length: 260, window: 12}"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    folder = tmp_path_factory.mktemp("multi")
    shutil.copy(ROOT / "configs" / "data" / "energy.csv", folder / "energy.csv")
    (folder / "m.yaml").write_text(CONFIG % "")
    sqlite_store(folder)
    done = bnplace(folder, "run", "m.yaml", "-j", "1", "--no-compare")
    assert done.returncode == 0, done.stdout + done.stderr
    shown = bnplace(folder, "compare", "m.yaml", "--out", "report")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return folder, runs(folder, "multi"), shown.stdout


def test_every_variant_and_seed_is_trained_on_every_dataset(sweep) -> None:
    _folder, found, _shown = sweep
    trials = found["trial"]
    assert len(trials) == 2 * 3 * 6
    seen = {(t.data.tags["bnplace.variant"], t.data.tags["bnplace.dataset"]) for t in trials}
    assert len(seen) == 6
    assert all(t.data.params["dataset"] == t.data.tags["bnplace.dataset"] for t in trials)
    assert len({t.data.tags["bnplace.data"] for t in trials}) == 3  # prepared per dataset


def test_variant_runs_carry_per_dataset_and_pooled_numbers(sweep) -> None:
    _folder, found, _shown = sweep
    by_name = {v.data.tags["bnplace.variant"]: v for v in found["variant"]}
    slow = by_name["kind=tiny_lr"]
    for dataset in ("sine", "ar", "energy"):
        assert slow.data.metrics[f"{dataset}/n_finished"] == 6
        assert f"{dataset}/test_rmse_mean" in slow.data.metrics
        assert slow.data.tags[f"bnplace.verdict_on.{dataset}"] in VERDICTS
    assert slow.data.metrics["n_finished"] == 18
    assert {"pooled/tau2", "pooled/i2", "pooled/k"} <= set(slow.data.metrics)
    assert slow.data.metrics["pooled/k"] == 3


def test_compare_prints_per_dataset_verdicts_and_the_pooled_row(sweep) -> None:
    folder, _found, shown = sweep
    flat = " ".join(shown.split())
    for word in ("per dataset", "pooled over datasets", "τ²", "I²", "prediction interval"):
        assert word in flat.replace("│", " "), word
    result = json.loads((folder / "report" / "comparison.json").read_text())
    (pooled,) = result["pooled"]
    assert pooled["k"] == 3 and pooled["tau2"] is not None and pooled["i2"] is not None
    assert pooled["pi_low"] is not None and pooled["pi_high"] is not None
    assert pooled["verdict"] in ("worse", "inconclusive")  # 3 datasets: a wide interval
    verdicts = {d: rows[0]["verdict"] for d, rows in result["per_dataset"].items()}
    assert set(verdicts) == {"sine", "ar", "energy"} and "worse" in verdicts.values()
    (slow,) = [v for v in runs(folder, "multi")["variant"] if v.info.run_name == "kind=tiny_lr"]
    assert {d: slow.data.tags[f"bnplace.verdict_on.{d}"] for d in verdicts} == verdicts
    assert slow.data.tags["bnplace.verdict"] == pooled["verdict"]  # the table's is the pooled
    html = (folder / "report" / "report.html").read_text()
    assert "Pooled over 3 datasets" in html and "alt='forest_1'" in html


def test_the_report_sets_each_dataset_against_its_baselines(sweep) -> None:
    """Per dataset, every variant's mean error over persistence's beside the linear
    forecast's: whether the networks learnt more than the baselines at all."""
    folder, _found, _shown = sweep
    result = json.loads((folder / "report" / "comparison.json").read_text())
    ratios = result["baseline_ratios"]
    assert set(ratios) == {"sine", "ar", "energy"}
    for dataset, row in ratios.items():
        assert row["persistence"] == 1.0 and "linear" in row, dataset
        # a learning rate of 1e-7 leaves the network untrained: no better than the trained one
        assert row["kind=tiny_lr"] > row["kind=plain"] > 0, dataset
    report = (folder / "report" / "report.md").read_text()
    assert "## Against the baselines, per dataset" in report
    assert "The best variant beats persistence on " in report


def test_the_forest_plot_is_logged_to_the_sweep_run(sweep) -> None:
    folder, found, _shown = sweep
    (sweep_run,) = found["sweep"]
    store = client(folder)
    logged = {f.path for f in store.list_artifacts(sweep_run.info.run_id, "compare/plots")}
    assert "compare/plots/forest_1.png" in logged
    # each dataset's own learning curves (its series' loss scale, not mixed with the others')
    assert {f"compare/plots/learning_curves.{d}.png" for d in ("sine", "ar", "energy")} <= logged


def test_status_names_each_trials_dataset_and_marks_each_seed_once(sweep) -> None:
    """`bnplace status` with several datasets: --json has one row per trial with its dataset;
    the table marks each seed once over the datasets (not once per trial: a search over 15
    series and 20 seeds made 300 marks a placement), consecutive seeds of one standing in one
    mark."""
    folder, _found, _shown = sweep
    shown = bnplace(folder, "status", "m.yaml", "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    rows = json.loads(shown.stdout)["trials"]
    assert len({(r["variant"], r["dataset"], r["seed"]) for r in rows}) == len(rows) == 36
    assert {r["dataset"] for r in rows} == {"sine", "ar", "energy"}
    table = bnplace(folder, "status", "m.yaml")
    assert table.returncode == 0, table.stdout + table.stderr
    assert "36 trials on 3 datasets" in table.stdout and "36 done" in table.stdout
    assert table.stdout.count("0-5+") == 2  # seeds 0 to 5 in one mark, once per variant


def test_adding_a_dataset_trains_only_its_trials(sweep) -> None:
    folder, found, _shown = sweep
    before = {t.data.tags["bnplace.trial_key"] for t in found["trial"]}
    (folder / "m.yaml").write_text(CONFIG % FOURTH)
    partly = bnplace(folder, "status", "m.yaml")  # every seed done on 3 datasets of 4
    assert partly.stdout.count("0-5~") == 2 and "36 done, 0 failed, 12 pending" in partly.stdout
    again = bnplace(folder, "run", "m.yaml", "-j", "1", "--no-compare")
    assert again.returncode == 0, again.stdout + again.stderr
    trials = runs(folder, "multi")["trial"]
    new = [t for t in trials if t.data.tags["bnplace.trial_key"] not in before]
    assert len(trials) == 36 + 12 and len(new) == 12
    assert {t.data.tags["bnplace.dataset"] for t in new} == {"mg"}
    assert "36 already finished" in " ".join(again.stdout.split())
