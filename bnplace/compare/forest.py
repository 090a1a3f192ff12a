"""Plots of a sweep over several datasets: a forest plot per comparison, the CD diagram.

In: the `DatasetsView` of a comparison (`compare.pooled`), the margin and an output folder.
Out: PNG files: per comparison a forest plot (each dataset's Hodges–Lehmann Δ% with the
interval its own verdict was read from, coloured by that verdict, so colour and bar agree; the
pooled effect as a diamond spanning its interval at the family's level, the
prediction interval for a new dataset as a line through it, 0 and ±margin marked), and, when
the view has ranks (4 or more datasets), a critical-difference diagram of the mean ranks over
datasets (Demšar 2006, drawn as aeon draws it: a rank axis, variants hung off it to either
side, thick bars joining the variants whose mean ranks are within Nemenyi's CD). Returns
{name: path}. matplotlib through `Figure` (Agg), as `compare.plots`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bnplace.compare.format import rows_of
from bnplace.compare.plots import DPI, short_label
from bnplace.names.tags import FOREST_ARTIFACT_PREFIX

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bnplace.compare.pooled import DatasetsView, RankView

VERDICT_COLORS = {"better": "#17803d", "worse": "#b42318", "equivalent": "#1d4ed8"}


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def plot_forest(view: DatasetsView, index: int, margin: float, path: Path) -> Path | None:
    """The forest plot of comparison `index` of the pooled family; None without effects."""
    row = view.pooled_rows[index]
    effects = dataset_rows(view, row.comparison)
    if effects.empty or not np.isfinite(effects["delta_pct"].to_numpy(float)).any():
        return None
    n = len(effects)
    fig = _figure(7.0, 1.2 + 0.45 * (n + 2))
    ax = fig.add_subplot()
    ys = np.arange(n, 0, -1) + 1.0
    for y, e in zip(ys, rows_of(effects), strict=True):
        color = VERDICT_COLORS.get(str(e["verdict"]), "#444444")
        if math.isfinite(e["delta_pct"]):
            low, high = e["delta_pct_low"], e["delta_pct_high"]
            if math.isfinite(low) and math.isfinite(high):
                ax.plot([low, high], [y, y], color=color, lw=1.6)
            size = 4 + 2 * math.sqrt(max(1, int(e["n_pairs"])))
            ax.plot([e["delta_pct"]], [y], "s", color=color, ms=size)
    est, low, high = row.delta_pct, row.delta_pct_low, row.delta_pct_high
    if math.isfinite(est):
        if math.isfinite(row.pi_low):
            ax.plot([row.pi_low, row.pi_high], [0.7, 0.7], color="#555555", lw=1.2)
            ax.plot([row.pi_low] * 2 + [row.pi_high] * 2, [0.6, 0.8, 0.6, 0.8], "|",
                    color="#555555")  # fmt: skip
        if math.isfinite(low):
            diamond = [(low, 0.7), (est, 0.95), (high, 0.7), (est, 0.45)]
            color = VERDICT_COLORS.get(row.verdict, "#8a6d00")
            ax.fill(*zip(*diamond, strict=True), color=color, alpha=0.8)
    ax.axvline(0, color="black", lw=0.8)
    for bound in (100 * math.expm1(math.log1p(-margin)), 100 * margin):
        ax.axvline(bound, color="#999999", lw=0.8, ls="--")
    shown = f"{float(row.pi_level):.1%} " if math.isfinite(float(row.pi_level)) else ""
    labels = [str(d) for d in effects["dataset"]] + [f"pooled ({shown}PI: line)"]
    ax.set_yticks([*ys, 0.7], labels)
    ax.set_ylim(0.2, n + 1.6)
    ax.set_xlabel("effect, % (a relative to b; dashed: ±margin)")
    ax.set_title(
        f"{short_label(row.comparison, 60, 2)}\n{row.reading}: τ² {row.tau2:.3g}, I² {row.i2:.0%}"
        if math.isfinite(row.tau2)
        else row.comparison,
        fontsize=9,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def dataset_rows(view: DatasetsView, comparison: str) -> pd.DataFrame:
    """Each dataset's row of `comparison` in its own family: the Hodges–Lehmann Δ% with the
    interval its verdict was read from, so a bar that clears 0 is coloured better or worse."""
    rows = [
        {"dataset": dataset, **r.record()}
        for dataset, stats in view.per.items()
        for r in stats.rows
        if r.comparison == comparison
    ]
    columns = ["dataset", "delta_pct", "delta_pct_low", "delta_pct_high", "n_pairs", "verdict"]
    return pd.DataFrame(rows, columns=columns).astype({"delta_pct": float}, errors="ignore")


def _cliques(ranks: list[float], cd: float) -> list[tuple[int, int]]:
    """Maximal runs i..j of the sorted mean ranks that lie within `cd` of each other."""
    runs: list[tuple[int, int]] = []
    for i in range(len(ranks)):
        j = max(k for k in range(i, len(ranks)) if ranks[k] - ranks[i] <= cd)
        if j > i and not any(a <= i and j <= b for a, b in runs):
            runs.append((i, j))
    return runs


def plot_critical_difference(ranks: RankView, path: Path) -> Path:
    """Mean ranks over datasets with Nemenyi's CD (Demšar 2006), in aeon's layout."""
    names = [str(v) for v in ranks.ranks["variant"]]
    values = [float(r) for r in ranks.ranks["mean_rank"]]
    k = len(names)
    half = math.ceil(k / 2)
    fig = _figure(8.0, 1.6 + 0.5 * half)  # room for labels of up to 3 lines
    ax = fig.add_subplot()
    ax.set_xlim(0.5, k + 0.5)
    ax.invert_xaxis()  # rank 1 (best) on the right, as in Demšar's figures
    ax.set_ylim(-(half + 1.5), 1.2)
    ax.axis("off")
    ax.plot([1, k], [0, 0], color="black", lw=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.12], color="black", lw=1)
        ax.text(r, 0.2, str(r), ha="center", va="bottom", fontsize=8)
    cd = ranks.critical_difference
    if math.isfinite(cd) and cd < k:
        ax.plot([k, k - cd], [0.8, 0.8], color="black", lw=2)
        ax.text(k - cd / 2, 0.9, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
    for i, (name, value) in enumerate(zip(names, values, strict=True)):
        right = i < half  # the best half hangs to the right (low ranks)
        level = -(i + 1) if right else -(k - i)
        edge = 0.5 if right else k + 0.5
        ax.plot([value, value, edge], [0, level, level], color="#333333", lw=0.8)
        label = short_label(name, 26, 3).replace("\n", " \n ")  # whole names, wrapped
        ax.text(edge, level, f" {label} ({value:.2f}) ",
                ha="left" if right else "right", va="center", fontsize=8)  # fmt: skip
    for n, (i, j) in enumerate(_cliques(values, cd) if math.isfinite(cd) else []):
        y = -0.35 - 0.18 * n
        ax.plot([values[i] - 0.03, values[j] + 0.03], [y, y], color="black", lw=3)
    friedman = (
        f"Friedman p = {ranks.pvalue:.3g}, " if math.isfinite(ranks.pvalue) else ""
    ) + f"{ranks.datasets} datasets"
    ax.set_title(f"Mean rank over datasets ({friedman})", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def make_dataset_plots(view: DatasetsView, margin: float, out_dir: Path) -> dict[str, Path]:
    """forest_<i> for comparison i (1-based) of the pooled family, critical_difference."""
    names = [f"{FOREST_ARTIFACT_PREFIX}{i + 1}" for i in range(len(view.pooled_rows))]
    made: dict[str, Path | None] = {
        name: plot_forest(view, i, margin, out_dir / f"{name}.png") for i, name in enumerate(names)
    }
    if view.ranks is not None:
        made["critical_difference"] = plot_critical_difference(
            view.ranks, out_dir / "critical_difference.png"
        )
    return {name: path for name, path in made.items() if path is not None}
