"""Seeds on demand end to end: `bnplace run` with `sweep.seeds: {min, max, step}` trains real
tiny models, stops each comparison at the look that decides it, records the looks in MLflow,
and a sweep killed with SIGKILL mid-design resumes to the same decisions; on two datasets each
dataset gets the seeds its own decisions ask for, its looks logged per dataset, and the
comparison has per-dataset and pooled rows."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.forked import start_driver
from tests.sweeps import (
    bnplace,
    client,
    environment,
    runs,
    sqlite_store,
    standings,
    write_config,
)

# one variant clearly worse: a learning rate 100,000x too small
WORSE = """
sweep:
  arms:
    lr:
      plain: {}
      tiny: {train.learning_rate: 1.0e-7}
  seeds: {min: 8, max: 24, step: 4}
"""
# two variants that train the same function seed by seed (a time limit nothing reaches)
SAME = """
sweep:
  arms:
    limit:
      none: {}
      far: {train.time_limit: 9999}
  seeds: {min: 8, max: 24, step: 4}
"""
FAST = ("--epochs", "1", "-j", "1")  # in this process (tests/sweeps.bnplace)
POOL = ("--epochs", "1", "-j", "2")  # worker processes


def _decisions(folder: Path, config: Path) -> dict[str, tuple[str, float, int]]:
    shown = bnplace(folder, "compare", str(config), "--format", "json", "--no-log")
    assert shown.returncode == 0, shown.stderr
    return {
        c["comparison"]: (c["verdict"], c["look"], c["look_seeds"])
        for c in json.loads(shown.stdout)["comparisons"]
    }


def _trained(folder: Path) -> Counter:
    return Counter(
        t.data.tags["bnplace.variant"] for t in runs(folder)["trial"] if t.info.status == "FINISHED"
    )


@pytest.fixture(scope="module")
def worse_sweep(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("worse")
    config = write_config(folder, WORSE)
    done = bnplace(folder, "run", str(config), *FAST, "--no-compare")
    assert done.returncode == 0, done.stdout + done.stderr
    return folder, config


def test_a_clearly_worse_variant_is_decided_by_the_16_seed_look(worse_sweep) -> None:
    folder, config = worse_sweep
    decisions = _decisions(folder, config)
    verdict, look, seeds = decisions["lr=tiny vs lr=plain"]
    assert verdict == "worse" and seeds <= 16
    trained = _trained(folder)
    assert trained == {"lr=plain": seeds, "lr=tiny": seeds}  # no seed past the deciding look
    # status: the seeds past the deciding look will never train, nothing is pending
    standing = standings(folder, config, "--set", "train.epochs=1")  # as FAST ran it
    assert Counter(standing.values()) == {"done": 2 * seeds, "not needed": 2 * (24 - seeds)}
    assert all((s == "done") == (seed < seeds) for (_, seed), s in standing.items())
    (sweep,) = runs(folder)["sweep"]
    history = client(folder).get_metric_history(sweep.info.run_id, "open_comparisons")
    assert [m.step for m in history] == list(range(1, int(look) + 1))
    assert history[-1].value == 0
    variant_id = next(v.data.tags["bnplace.variant_id"] for v in runs(folder)["variant"])
    seeds_logged = client(folder).get_metric_history(sweep.info.run_id, f"seeds.{variant_id}")
    assert seeds_logged and seeds_logged[-1].value == seeds


def _logged_looks(folder: Path) -> dict[int, dict]:
    """The sweep run's look artifacts (looks/look_<k>.json), by look, read with MLflow's client."""
    store = client(folder)
    (sweep,) = runs(folder)["sweep"]
    out = {}
    for entry in store.list_artifacts(sweep.info.run_id, "looks"):
        local = store.download_artifacts(sweep.info.run_id, entry.path, str(folder / "dl"))
        document = json.loads(Path(local).read_text())
        out[document["look"]] = document
    return out


def test_the_logged_looks_equal_a_recomputation_from_the_finished_trials(worse_sweep) -> None:
    """What compare shows is what the sweep logged: every look's decisions equal the sequential
    rule replayed on the trials the sweep finished, cut to that look's seeds (one comparison:
    the snapshot of look k is the comparison judged through look k)."""
    from bnplace.compare.frame import load_sweep
    from bnplace.stats.pairing import FamilyQuestion, judge_family
    from bnplace.stats.sequential import decision_from, decision_record
    from bnplace.stats.verdicts import family

    folder, _config = worse_sweep
    data = load_sweep(client(folder))
    design = data.design
    contrasts = family(list(data.variants["variant"]), data.sweep.baseline, design)
    looks = _logged_looks(folder)
    assert sorted(looks) == list(range(1, max(looks) + 1))
    for k, document in looks.items():
        cut = data.trials[data.trials["seed"] < design.looks[k - 1]]
        question = FamilyQuestion(data.sweep.metric, data.sweep.direction, contrasts, design)
        again = judge_family(cut, question)
        logged = {n: decision_from(r) for n, r in document["decisions"].items()}
        assert {n: decision_record(d) for n, d in logged.items()} == {
            n: decision_record(d) for n, d in again.items()
        }
    assert data.decisions is not None and data.decisions.keys() == {""}  # compare reads
    newest = {n: decision_record(d) for n, d in data.decisions[""].items()}  # the newest look
    assert newest == {n: decision_record(d) for n, d in logged.items()}
    assert not any("recomputed" in note for note in data.notes)


def test_a_sweep_without_logged_decisions_is_recomputed_and_says_so(
    worse_sweep, tmp_path: Path
) -> None:
    """A store an older bnplace wrote (no looks/ artifacts): compare recomputes the same
    decisions from the trials and says so."""
    folder, config = worse_sweep
    older = tmp_path / "older"
    shutil.copytree(folder, older, ignore=shutil.ignore_patterns("dl"))
    with sqlite3.connect(older / "mlflow.db") as db:  # the copy's runs keep their artifacts
        db.execute(
            "UPDATE runs SET artifact_uri = replace(artifact_uri, ?, ?)", (str(folder), str(older))
        )
    (looks,) = older.glob("mlartifacts/*/*/artifacts/looks")
    shutil.rmtree(looks)
    shown = bnplace(older, "compare", config.name, "--format", "json", "--no-log")
    assert shown.returncode == 0, shown.stderr
    result = json.loads(shown.stdout)
    recomputed = {
        c["comparison"]: (c["verdict"], c["look"], c["look_seeds"]) for c in result["comparisons"]
    }
    assert recomputed == _decisions(folder, config)
    notes = " ".join(result["notes"])
    assert "logged no decisions per look" in notes and "recomputed" in notes


def test_two_equivalent_variants_stop_once_equivalence_is_shown(tmp_path: Path) -> None:
    config = write_config(tmp_path, SAME)
    done = bnplace(tmp_path, "run", str(config), *FAST)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seeds on demand" in done.stdout
    verdict, look, seeds = _decisions(tmp_path, config)["limit=far vs limit=none"]
    # equal seed by seed: equivalent at the first look, 12 seeds (the configured 8-seed look
    # cannot reach a verdict at any level it could get, so the design drops it)
    assert verdict == "equivalent" and look == 1 and seeds == 12
    assert _trained(tmp_path) == {"limit=none": seeds, "limit=far": seeds}


def test_a_sweep_killed_mid_design_resumes_to_the_same_decisions(
    worse_sweep, tmp_path: Path
) -> None:
    folder, config = worse_sweep
    expected = _decisions(folder, config)
    killed = write_config(tmp_path, WORSE)
    process = start_driver(tmp_path, ["run", str(killed), *POOL, "--no-compare"], environment())
    seen: list[str] = []
    deadline = time.monotonic() + 240
    assert process.stdout is not None
    while time.monotonic() < deadline:  # kill -9 after the 10th trial ended (mid look 1)
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("done "):
            seen.append(line)
            if len(seen) >= 10:
                break
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert len(seen) >= 10, "".join(seen)
    # mid look 1 nothing is decided: every trial without a run may still train
    standing = Counter(standings(tmp_path, killed, "--set", "train.epochs=1").values())
    assert standing["done"] > 0 and standing["not needed"] == 0, standing
    again = bnplace(tmp_path, "run", str(killed), *FAST, "--no-compare")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _decisions(tmp_path, killed) == expected
    assert _trained(tmp_path) == _trained(folder)  # nothing lost, nothing trained twice
    finished = [t for t in runs(tmp_path)["trial"] if t.info.status == "FINISHED"]
    keys = [t.data.tags["bnplace.trial_key"] for t in finished]
    assert len(keys) == len(set(keys))


# seeds on demand on two datasets: each decides its comparison on its own looks
ON_TWO = """
experiment: two
datasets:
  sine: {source: synthetic, generator: sine_mix, length: 200, features: 1, window: 8}
  ar: {source: synthetic, generator: ar, length: 200, features: 1, window: 8}
model:
  - conv1d: {id: conv, filters: 2, kernel_size: 3, padding: causal}
train: {epochs: 1, batch_size: 32, learning_rate: 0.01}
sweep:
  arms:
    lr:
      plain: {}
      tiny: {train.learning_rate: 1.0e-7}
  seeds: {min: 6, max: 10, step: 2}
"""


@pytest.mark.slow
def test_several_datasets_each_get_the_seeds_their_own_decisions_ask_for(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(ON_TWO)
    sqlite_store(tmp_path)
    done = bnplace(tmp_path, "run", "c.yaml", *POOL, "--no-compare")
    assert done.returncode == 0, done.stdout + done.stderr
    shown = bnplace(tmp_path, "compare", "c.yaml", "--out", "report", "--no-log")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    result = json.loads((tmp_path / "report" / "comparison.json").read_text())
    found = runs(tmp_path, "two")
    trained = Counter(
        (t.data.tags["bnplace.dataset"], t.data.tags["bnplace.variant"])
        for t in found["trial"]
        if t.info.status == "FINISHED"
    )
    (sweep,) = found["sweep"]
    store = client(tmp_path)
    tiny_id = next(
        v.data.tags["bnplace.variant_id"]
        for v in found["variant"]
        if v.data.tags["bnplace.variant"] == "lr=tiny"
    )
    for dataset in ("sine", "ar"):
        (row,) = result["per_dataset"][dataset]  # one comparison, judged on this dataset
        seeds = row["look_seeds"]
        assert trained[(dataset, "lr=plain")] == trained[(dataset, "lr=tiny")] == seeds
        assert 6 <= seeds <= 10 and (row["decided"] or seeds == 10)
        opened = store.get_metric_history(sweep.info.run_id, f"open_comparisons.{dataset}")
        assert [m.step for m in opened] == list(range(1, int(row["look"]) + 1))  # 1-based
        assert opened[-1].value == (0 if row["decided"] else 1)
        given = store.get_metric_history(sweep.info.run_id, f"seeds.{dataset}.{tiny_id}")
        assert given and given[-1].value == seeds
        assert f"{dataset}: seeds on demand" in " ".join(shown.stdout.split())
    print("\ntrained per (dataset, variant):", dict(trained))
    assert not store.get_metric_history(sweep.info.run_id, "open_comparisons")
    (pooled,) = result["pooled"]
    assert pooled["k"] == 2  # every dataset entered the pool (min 6 = MIN_PAIRS_TO_POOL)
    assert pooled["n_pairs"] == sum(trained[(d, "lr=tiny")] for d in ("sine", "ar"))
    assert sum(trained.values()) < 2 * 2 * 10 or not any(
        r[0]["decided"] for r in result["per_dataset"].values()
    )
