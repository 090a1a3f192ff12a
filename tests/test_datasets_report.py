"""The report of a sweep over datasets of very different scales (bnplace.compare with `datasets`):
no raw-metric mean across datasets, forest bars that agree with their colours, and the HTML as
a real browser renders it (headless Chromium reads the DOM)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from bnplace.compare import Comparison, compare_frames
from bnplace.compare.datasets_report import per_dataset_grid, pooled_grid
from bnplace.compare.forest import VERDICT_COLORS, dataset_rows
from bnplace.compare.frame import SweepData
from bnplace.compare.pipeline import _relative_to_baseline, _write_outputs
from bnplace.compare.table import build_table
from bnplace.stats.pooling import MIN_PAIRS_TO_POOL
from bnplace.store.read import SweepInfo

SCALES = {"taylor": 30000.0, "sunspots": 50.0, "lynx": 0.2}  # lynx: noisy, undecided
EFFECTS = {"none": 1.0, "bn": 0.9, "layer_norm_with_a_long_name": 1.12}
SWEEP = SweepInfo(
    run_id="r", run_name="sweep", experiment="scales", experiment_id="1", task="forecast",
    metric="test_rmse", direction="min", baseline="norm=none", axes=("norm",),
    config_digest="", version="", start_time=0, tracking_uri="",
)  # fmt: skip


def _trials() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for dataset, scale in SCALES.items():
        shared = rng.normal(0, 0.03, 8)  # seed effects shared by the variants (paired)
        noise = 0.2 if dataset == "lynx" else 0.02
        for label, factor in EFFECTS.items():
            values = scale * factor * np.exp(shared + rng.normal(0, noise, 8))
            rows += [
                {"variant": f"norm={label}", "norm": label, "seed": s, "status": "finished",
                 "dataset": dataset, "test_rmse": float(v), "run_id": f"{dataset}{label}{s}"}
                for s, v in enumerate(values)
            ]  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def comparison() -> Comparison:
    return compare_frames(SweepData.of_trials(_trials(), SWEEP))


def test_forest_bars_are_the_intervals_their_colours_come_from(comparison) -> None:
    view = comparison.datasets
    verdicts = set()
    for name in view.pooled["comparison"]:
        for row in dataset_rows(view, str(name)).to_dict("records"):
            clears_zero = row["delta_pct_low"] > 0 or row["delta_pct_high"] < 0
            assert (row["verdict"] in ("better", "worse")) == clears_zero, row
            verdicts.add(row["verdict"])
    assert {"better", "worse"} <= verdicts and verdicts - set(VERDICT_COLORS)  # some grey too


def test_a_pooled_row_with_no_dataset_pooled_says_why_it_cannot_decide() -> None:
    """Five seeds a dataset: no dataset's effect enters the pool (MIN_PAIRS_TO_POOL), so each
    pooled row reads why, in the report's pooled table and the terminal's; the per-dataset rows
    keep their own reading."""

    few = _trials()
    few = few[few["seed"] < MIN_PAIRS_TO_POOL - 1]
    thin = compare_frames(SweepData.of_trials(few, SWEEP))
    why = f"inconclusive (0 datasets pooled: a dataset enters the pool with {MIN_PAIRS_TO_POOL}"
    grid = pooled_grid(thin)
    verdicts = [row[grid.headers.index("verdict")] for row in grid.rows]
    assert len(verdicts) == 2 and all(v.startswith(why) for v in verdicts), verdicts
    dataset_verdicts = per_dataset_grid(thin)
    assert not any(why in cell for row in dataset_verdicts.rows for cell in row)
    console = Console(width=400, record=True)
    console.print(build_table(thin, max_width=400))
    assert "0 datasets pooled" in console.export_text()


@pytest.mark.parametrize("noise", ["normal", "lognormal", "t3"])
def test_the_pooling_warnings_seed_boundary_holds_for_a_large_effect(noise: str) -> None:
    """What `seeds_too_few_to_pool` promises, on the rule as shipped: a 2x effect on three
    datasets is never decided pooled at MIN_PAIRS_TO_POOL - 1 seeds a dataset, and is decided
    (worse) at MIN_PAIRS_TO_POOL, for normal, skewed and heavy-tailed seed noise (seeded)."""
    rng = np.random.default_rng(["normal", "lognormal", "t3"].index(noise))
    n = MIN_PAIRS_TO_POOL
    draw = {
        "normal": lambda size: rng.normal(0, 0.05, size),
        "lognormal": lambda size: 0.05 * (rng.lognormal(0, 1, size) - np.exp(0.5)),
        "t3": lambda size: 0.05 * rng.standard_t(3, size),
    }[noise]
    rows = [
        {"variant": f"norm={label}", "norm": label, "seed": s, "status": "finished",
         "dataset": dataset, "test_rmse": float(scale * factor * np.exp(e)),
         "run_id": f"{dataset}{label}{s}"}
        for dataset, scale in SCALES.items()
        for label, factor in (("none", 1.0), ("bn", 2.0))
        for s, e in enumerate(draw(n))
    ]  # fmt: skip
    trials = pd.DataFrame(rows)
    for seeds, decided in ((n - 1, False), (n, True)):
        view = compare_frames(SweepData.of_trials(trials[trials["seed"] < seeds], SWEEP)).datasets
        verdicts = {r.verdict for r in view.pooled_rows}
        assert verdicts == ({"worse"} if decided else {"inconclusive"}), (seeds, verdicts)


def test_plots_across_datasets_are_relative_to_the_baseline_on_each_dataset(comparison) -> None:
    trials, table, metric = _relative_to_baseline(comparison)
    per_dataset = trials[trials["variant"] == "norm=none"].groupby("dataset")[metric].mean()
    assert np.allclose(per_dataset, 0.0)  # the baseline's mean is 0% on every dataset
    means = table.set_index("variant")["mean"]
    assert -16 < means["norm=bn"] < -4  # 0.9x on every dataset, whatever its scale
    assert trials.groupby(["variant", "seed"]).size().max() == 1  # seeds pair within a dataset


class _Cells(HTMLParser):
    """Table headers and (class, text) of the cells of a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[list[str]] = []
        self.cells: list[tuple[str, str]] = []
        self._in: tuple[str, str] | None = None
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.headers.append([])
        if tag in ("th", "td"):
            self._in = (tag, dict(attrs).get("class") or "")
        if tag == "img":
            self.images += 1

    def handle_data(self, data: str) -> None:
        if self._in and self._in[0] == "th":
            self.headers[-1].append(data)
        elif self._in:
            self.cells.append((self._in[1], data))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td"):
            self._in = None


@pytest.mark.slow
def test_the_rendered_report_mixes_no_scales_and_its_colours_match(
    comparison, tmp_path: Path
) -> None:
    browser = next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))),
        None,
    )
    if browser is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run does)")
    files = _write_outputs(comparison, tmp_path / "report")
    assert "plot_learning_curves" not in files  # pooled curves would mix scales and lengths
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    done = subprocess.run(
        [browser, *flags, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         files["report_html"].resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    page = _Cells()
    page.feed(done.stdout)
    top = page.headers[0]
    assert "mean rank" in top and "Δ% vs baseline [CI]" in top
    assert not any(re.search(r"test_rmse mean|median|mean 95% CI|persistence", h) for h in top)
    assert not any("test_rmse mean" in h for table in page.headers for h in table)
    judged = [(cls, text) for cls, text in page.cells if set(cls.split()) & set(VERDICT_COLORS)]
    assert judged
    for cls, text in judged:  # a cell coloured better says better, and so on
        (verdict,) = set(cls.split()) & {*VERDICT_COLORS, "inconclusive"}
        assert text.startswith(verdict), (cls, text)
    plots = [name for name in files if name.startswith("plot_")]
    assert "plot_final_metric" in plots and page.images == len(plots)  # every plot embedded
