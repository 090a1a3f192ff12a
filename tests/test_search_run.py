"""A search end to end: `bnplace run` races real tiny models; killed with SIGKILL mid-race and
run again, it trains nothing twice, eliminates a planted clearly worse placement after the first
stage, records the eliminations and the selection in MLflow and the terminal, and `compare`
reports them with a plot of the survivors."""

from __future__ import annotations

import json
import os
import signal
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
    trained_once,
)

# dropout 0.99 right before the output: the head trains on 1% of its inputs, scaled 100x, and
# predicts far off at inference; the other two placements are within noise of each other
SEARCH = """
experiment: tiny
data: {source: synthetic, generator: sine_mix, length: 600, features: 2, window: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
train: {epochs: 3, batch_size: 32, learning_rate: 0.01}
search:
  sites:
    pre_output: [none, {dropout: 0.99}, {dropout: 0.1}]
  seeds: {min: 5, max: 7, step: 1}
"""
WORSE = "pre_output=dropout(0.99)"


@pytest.mark.slow
def test_a_search_killed_mid_race_resumes_eliminates_the_planted_worse_early(
    tmp_path: Path,
) -> None:
    config = tmp_path / "search.yaml"
    config.write_text(SEARCH)
    process = start_driver(
        tmp_path, ["run", str(config), "--jobs", "2", "--no-compare"], environment()
    )
    ended = 0
    assert process.stdout is not None
    for line in process.stdout:  # kill -9 after the 9th trial ended (mid first stage)
        ended += line.startswith("done ")
        if ended >= 9:
            break
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert ended >= 9
    # mid first stage nothing is eliminated yet: every trial without a run may still train
    standing = Counter(standings(tmp_path, config).values())
    assert standing["done"] > 0 and standing["not needed"] == 0, standing
    # compare mid-race: still a search of 3 placements; the seeds the race has not dealt yet
    # (5 and 6 of each placement) are left out, not reported as trials that failed to run
    shown = bnplace(tmp_path, "compare", str(config), "--no-log", "--out", "mid")
    assert shown.returncode == 0, shown.stderr
    assert "search: 6 planned trial(s) the race has not dealt" in " ".join(shown.stdout.split())
    mid = (tmp_path / "mid" / "report.md").read_text()
    assert "Not over yet: 0 of 3 placements eliminated so far." in mid

    done = bnplace(tmp_path, "run", str(config), "-j", "1", "--no-compare")
    assert done.returncode == 0, done.stderr + done.stdout
    text = " ".join(done.stdout.split())  # rich wraps lines
    assert "search: 2 placements selected:" in text
    assert "with probability >= 95% the selected set holds the best placement" in text
    assert f"eliminated: {WORSE}: after 5 seeds, worse than" in text

    found = runs(tmp_path)
    variants = {r.data.tags["bnplace.variant"]: r.data.tags for r in found["variant"]}
    assert variants[WORSE]["bnplace.search"] == "eliminated"
    assert variants[WORSE]["bnplace.eliminated_at"] == "5"
    assert variants[WORSE]["bnplace.eliminated_by"] in (
        "pre_output=none",
        "pre_output=dropout(0.1)",
    )
    assert {n for n, t in variants.items() if t.get("bnplace.search") == "selected"} == {
        "pre_output=none",
        "pre_output=dropout(0.1)",
    }
    trials = trained_once(client(tmp_path), "tiny")  # nothing trained twice
    finished = Counter(
        t.data.tags["bnplace.variant"] for t in trials if t.info.status == "FINISHED"
    )
    assert finished == {WORSE: 5, "pre_output=none": 7, "pre_output=dropout(0.1)": 7}
    # status: the eliminated placement's seeds 5 and 6 will never train, nothing is pending
    standing = standings(tmp_path, config)
    assert {key for key, s in standing.items() if s == "not needed"} == {(WORSE, 5), (WORSE, 6)}
    assert Counter(standing.values()) == {"done": 19, "not needed": 2}
    table = bnplace(tmp_path, "status", str(config))  # and where the race stands, in words
    text = " ".join(table.stdout.split())
    assert "the race: 2 of 3 placements still in, 7 seeds read (of at most 7)" in text
    assert f"eliminated: {WORSE}, after 5 seeds, worse than" in text

    shown = bnplace(tmp_path, "compare", str(config), "--no-log", "--out", "report")
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "search: 2 placements selected: pre_output=none; pre_output=dropout(0.1)" in text
    assert f"search: eliminated {WORSE}: after 5 seeds" in text
    assert "not run" not in text  # seeds past an elimination were never meant to run
    assert (tmp_path / "report" / "plots" / "search_survivors.png").stat().st_size > 0
    search = json.loads((tmp_path / "report" / "comparison.json").read_text())["search"]
    assert search["placements"] == 3 and search["alpha"] == 0.05 and search["seeds"] == [5, 7]
    assert set(search["selected"]) == {"pre_output=none", "pre_output=dropout(0.1)"}
    assert list(search["eliminated"]) == [WORSE]
    assert search["eliminated"][WORSE]["after_seeds"] == 5
    assert search["eliminated"][WORSE]["why"].startswith("after 5 seeds, worse than")
    assert "holds the best placement" in search["guarantee"]
    # the elimination plot's points: every look to the seeds read, not only the eliminations
    assert search["survivors"] == [[5, 2], [6, 2], [7, 2]]
    (sweep,) = found["sweep"]
    logged = client(tmp_path).get_metric_history(sweep.info.run_id, "search.survivors")
    assert len({m.timestamp for m in logged}) >= 2  # logged look by look, not at the end
    ranking = search["ranking"]
    assert ranking[0]["low_pct"] is None and ranking[-1]["name"] == WORSE
    assert ranking[-1]["low_pct"] > 5  # shown worse than the best by more than the margin
    report = (tmp_path / "report" / "report.md").read_text()
    assert report.index("## Search: every placement against the best") < report.index("## Results")
    assert "2 of 3 placements selected, 1 eliminated: with probability >= 95%" in report
    assert f"| 3 | {WORSE} | +" in report and "| eliminated after 5 seeds |" in report
    # the site's options against none, on the first stage's 5 seeds, recomputed from the store
    import math

    import numpy as np
    from scipy import stats

    sites = {e["option"]: e for e in search["site_effects"]}
    assert list(sites) == ["dropout(0.99)", "dropout(0.1)"]  # the menu's order
    worse = sites["dropout(0.99)"]
    assert (worse["site"], worse["baseline"], worse["pairs"], worse["seeds"]) == (
        "pre_output",
        "none",
        1,
        5,
    )
    rmse = {
        (t.data.tags["bnplace.variant"], int(t.data.params["seed"])): t.data.metrics["test_rmse"]
        for t in trials
        if t.info.status == "FINISHED"
    }
    d = np.array([math.log(rmse[WORSE, s] / rmse["pre_output=none", s]) for s in range(5)])
    half = stats.t.isf(0.05 / 2 / 2, 4) * d.std(ddof=1) / math.sqrt(5)  # Bonferroni over 2
    assert worse["delta_pct"] == pytest.approx(100 * math.expm1(d.mean()))
    assert worse["low_pct"] == pytest.approx(100 * math.expm1(d.mean() - half))
    assert worse["verdict"] == "worse" and worse["low_pct"] > 0
    assert "| pre_output | dropout(0.99) | none | worse |" in report
    assert (tmp_path / "report" / "plots" / "search_sites.png").stat().st_size > 0
    assert "![search_sites](plots/search_sites.png)" in report and "averaged over the" in report
    assert "search: each site's options against its baseline" in text


TWO_DATASETS = """
experiment: tiny
datasets:
  sine: {source: synthetic, generator: sine_mix, length: 400, features: 2, window: 12}
  ar: {source: synthetic, generator: ar, length: 400, features: 1, window: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
train: {epochs: 2, batch_size: 32, learning_rate: 0.01}
search:
  sites:
    pre_output: [none, {dropout: 0.99}]
  seeds: {min: 5, max: 5}
"""


@pytest.mark.slow
def test_a_search_on_two_datasets_races_on_the_mean_and_says_so(tmp_path: Path) -> None:
    config = tmp_path / "search.yaml"
    config.write_text(TWO_DATASETS)
    sqlite_store(tmp_path)
    done = bnplace(tmp_path, "run", str(config), "-j", "1")
    assert done.returncode == 0, done.stderr + done.stdout
    text = " ".join(done.stdout.split())
    assert "(by mean log metric over the 2 datasets, each weighing the same)" in text
    assert "at most 20 trials (a race); up to 20 to run" in text  # the race may need fewer
    assert f"eliminated: {WORSE}: after 5 seeds, worse than 'pre_output=none'" in text
    assert "search ranking vs the best (test_rmse, race bounds): pre_output=none: the best" in text

    found = runs(tmp_path)
    variants = {r.data.tags["bnplace.variant"]: r.data.tags for r in found["variant"]}
    assert variants[WORSE]["bnplace.search"] == "eliminated"
    assert variants["pre_output=none"]["bnplace.search"] == "selected"
    # the MLflow UI's description of the sweep run leads with the search's answer
    (sweep,) = found["sweep"]
    note = sweep.data.tags["mlflow.note.content"]
    answer = "**1 of 2 placements selected** · site effects: pre_output=dropout(0.99) vs none: "
    assert note.split("\n\n")[1].startswith(answer + "**worse** +"), note
    # and each dataset's point estimate, counted (both series: the planted worse is worse)
    assert "5 seeds; worse on 2 and better on 0 of 2 datasets' point estimates" in note
    trials = trained_once(client(tmp_path), "tiny")
    per_dataset = Counter(
        (t.data.tags["bnplace.variant"], t.data.tags["bnplace.dataset"]) for t in trials
    )
    assert per_dataset == {(v, d): 5 for v in ("pre_output=none", WORSE) for d in ("sine", "ar")}
    # each placement is built once per dataset; its later seeds reuse the traced model
    assert Counter(t.data.tags["bnplace.reuse"] for t in trials) == {"fresh": 4, "reused": 16}
    # plan's estimate: a race of 5 seeds at most, so its first stage is the whole of it
    shown = bnplace(tmp_path, "plan", str(config), "--json")
    assert shown.returncode == 0, shown.stderr
    estimate = json.loads(shown.stdout)["time_estimate"]
    assert estimate["first_stage"] == [5, pytest.approx(estimate["typical_seconds"])]
    assert estimate["typical_seconds"] > 0
