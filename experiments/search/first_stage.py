"""Two checks of the search study's first stage (the seeds every placement trained) beside its
race: is any placement worth more than a simple forecast, and does the 2,000-step cap drive the
site effects?

In: the study's trials as `bnplace export` writes them (one row per trial: `dataset`, `seed`,
`status`, `variant`, the `axis.<site>` labels, `metric.test_rmse`, `metric.linear_rmse`,
`metric.persistence_rmse`, `metric.hit_cap`) and the study's config (first-stage seeds, alpha,
margin). Out, on stdout: (1) on how many series each placement's test RMSE (geometric mean over
the seeds) is below the linear forecast's from the same window and below persistence's, and
per series the best placement's RMSE against the linear forecast's (picked after the fact on
the test split: a bound on what choosing a placement can buy, not an estimate); (2) each
series' share of trials that ran to the cap, then the site effects (each option against none at
its site, averaged over the other sites) on all series, on those under `--split` and on those
at or above it.

The effects are `bnplace compare`'s own (`bnplace.compare.search.seed_losses`, then
`bnplace.stats.site_effects`: the race's first-stage seeds, a seed's loss its mean log RMSE over
the series read, Student t at the Bonferroni level
over the options, alpha and margin from the config); only the series read change. A split
chosen by how training went is a sensitivity check, not a verdict of its own: each subset's
family holds its own level, and nothing here tests the split itself.

    bnplace export search/study.yaml --tracking-uri sqlite:///$PWD/mlflow.db --out t.csv
    python search/first_stage.py t.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bnplace.compare.search import seed_losses
from bnplace.stats.site_effects import SiteEffect, site_effects

STUDY = Path(__file__).resolve().parent / "study.yaml"


def effects(trials: pd.DataFrame, first: int, alpha: float, margin: float) -> list[SiteEffect]:
    """Site effects on `trials` (finished first-stage trials of the series to read)."""
    sites = [c for c in trials.columns if c.startswith("axis.")]
    losses = trials[["variant", "seed", "dataset"]].assign(loss=np.log(trials["metric.test_rmse"]))
    table = seed_losses(losses, trials["dataset"].nunique())  # as compare reads a search
    labels = trials.drop_duplicates("variant").set_index("variant")[sites]
    options = [{c.removeprefix("axis."): str(labels.at[v, c]) for c in sites} for v in table.index]
    return site_effects(
        table.to_numpy(dtype=float),
        options,
        preferred="none",
        seeds=first,
        alpha=alpha,
        margin=margin,
    )


def against_baselines(trials: pd.DataFrame) -> None:
    """(1): each placement's series below the linear forecast and persistence; the best
    placement of each series against the linear forecast."""
    by_cell = trials.groupby(["variant", "dataset"])
    rmse = np.exp(by_cell["metric.test_rmse"].apply(lambda x: np.log(x).mean()))
    linear = by_cell["metric.linear_rmse"].first()
    persistence = by_cell["metric.persistence_rmse"].first()
    counts = pd.DataFrame({"linear": rmse < linear, "persistence": rmse < persistence})
    per_placement = counts.groupby(level="variant").sum().sort_values("linear")
    series = trials["dataset"].nunique()
    print(f"series (of {series}) where a placement beats the linear forecast and persistence:")
    for name, row in per_placement.iterrows():
        print(f"  {row['linear']:2d} {row['persistence']:2d}  {name}")
    best = (rmse / linear).groupby(level="dataset").min().sort_values()
    print("the best placement of each series (after the fact) against the linear forecast:")
    print(", ".join(f"{name} {ratio - 1:+.1%}" for name, ratio in best.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trials", type=Path, help="the study's `bnplace export` CSV")
    parser.add_argument("--split", type=float, default=0.10, help="share of trials at the cap")
    args = parser.parse_args()
    config = yaml.safe_load(STUDY.read_text())
    first = config["search"]["seeds"]["min"]
    alpha, margin = config["compare"]["alpha"], config["compare"]["margin"]
    trials = pd.read_csv(args.trials, low_memory=False)
    trials = trials[(trials["status"] == "done") & (trials["seed"] < first)]
    against_baselines(trials)
    capped = trials.groupby("dataset")["metric.hit_cap"].mean().sort_values()
    print(f"\nshare of the first stage's trials that ran to the cap ({len(trials)} trials):")
    print(", ".join(f"{name} {share:.0%}" for name, share in capped.items()))
    under = list(capped[capped < args.split].index)
    over = list(capped[capped >= args.split].index)
    groups = {
        f"all {len(capped)} series": list(capped.index),
        f"{len(under)} series under {args.split:.0%} at the cap": under,
        f"{len(over)} series at or above": over,
    }
    found = {
        label: effects(trials[trials["dataset"].isin(names)], first, alpha, margin)
        for label, names in groups.items()
        if names
    }
    print("\n| site | option | " + " | ".join(found) + " |")
    print("| :--- | :--- |" + " :--- |" * len(found))
    for rows in zip(*found.values(), strict=True):
        cells = [f"{e.verdict} {e.delta_pct:+.1f}% [{e.low_pct:+.1f}%, {e.high_pct:+.1f}%]"
                 for e in rows]  # fmt: skip
        print(f"| {rows[0].site} | {rows[0].option} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
