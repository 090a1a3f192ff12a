"""A search end to end: `bnplace run` races real tiny models, eliminates a planted clearly worse
placement after the first stage, records the eliminations and the selection in MLflow, and a
rerun trains nothing and reaches the same eliminations."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.sweeps import bnplace, runs

# dropout 0.99 right before the output: the head trains on 1% of its inputs, scaled 100x, and
# predicts far off at inference; the other two placements are within noise of each other
SEARCH = """
experiment: tiny
data: {source: synthetic, generator: sine_mix, length: 600, features: 2, window: 12}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 4}
train: {epochs: 3, batch_size: 32, learning_rate: 0.01}
search:
  sites:
    pre_output: [none, {dropout: 0.99}, {dropout: 0.1}]
  seeds: {min: 5, max: 7, step: 1}
"""
WORSE = "pre_output=dropout(0.99)"


@pytest.mark.slow
def test_search_eliminates_the_planted_worse_early_and_resumes_to_the_same(tmp_path: Path) -> None:
    config = tmp_path / "search.yaml"
    config.write_text(SEARCH)
    done = bnplace(tmp_path, "run", str(config), "--jobs", "2", "--no-compare")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "search: 2 placements selected:" in done.stdout
    assert "with probability >= 95% the selected set holds the best placement" in done.stdout
    assert f"eliminated: {WORSE}: after 5 seeds, worse than" in done.stdout

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
    trained = Counter(t.data.tags["bnplace.variant"] for t in found["trial"])
    assert trained == {WORSE: 5, "pre_output=none": 7, "pre_output=dropout(0.1)": 7}

    again = bnplace(tmp_path, "run", str(config), "--jobs", "2", "--no-compare")
    assert again.returncode == 0, again.stderr
    assert f"eliminated: {WORSE}: after 5 seeds" in again.stdout
    assert len(runs(tmp_path)["trial"]) == sum(trained.values())  # nothing trained twice

    shown = bnplace(tmp_path, "compare", str(config), "--no-log", "--out", "report")
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())  # rich wraps lines
    assert "search: 2 placements selected: pre_output=none; pre_output=dropout(0.1)" in text
    assert f"search: eliminated {WORSE}: after 5 seeds" in text
    assert "not run" not in text  # seeds past an elimination were never meant to run
    assert (tmp_path / "report" / "plots" / "search_survivors.png").stat().st_size > 0
