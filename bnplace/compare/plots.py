"""Plots of a comparison, saved as PNG files.

In: the DataFrames of a comparison (the per-variant statistics table, the trials table, the
per-epoch history table) and an output folder. Out: PNG files: learning curves (mean and a band
of one sd over seeds, train and validation loss), the final metric per variant (each seed a point,
seeds joined across variants, mean with its bootstrap CI), a heatmap of the mean metric for a
two-axis grid, and time per epoch against the metric (cost vs quality). Every function returns
the path it wrote, or None when the data do not allow that plot.

matplotlib is imported inside the functions and used through `matplotlib.figure.Figure` (Agg
canvas, no pyplot, no global backend state).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from bnplace.compare.format import rows_of
from bnplace.compare.stats import axis_column
from bnplace.names.states import FINISHED

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.container import ErrorbarContainer
    from matplotlib.figure import Figure

DPI = 110


def short_label(name: str, width: int = 18, max_lines: int = 3) -> str:
    """A variant name wrapped for labels: at spaces first, inside a long word at "," "_" "."
    "=" "-" "/" ">" "+"; cut with "…" past `max_lines`."""
    if len(name) <= width:
        return name
    pieces: list[str] = []
    for word in name.split():
        if len(word) <= width:
            pieces.append(word + " ")
            continue
        parts = re.findall(r"[^,_.=\-/>+]+[,_.=\-/>+]*|[,_.=\-/>+]+", word)
        pieces += [*parts[:-1], parts[-1] + " "]
    lines: list[str] = []
    current = ""
    for piece in pieces:
        while len(piece.rstrip()) > width:  # one over-long piece: hard-split it
            if current:
                lines.append(current)
                current = ""
            lines.append(piece[:width])
            piece = piece[width:]
        if current and len(current + piece.rstrip()) > width:
            lines.append(current)
            current = piece
        else:
            current += piece
    if current.strip():
        lines.append(current)
    lines = [line.rstrip() for line in lines]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][: width - 1] + "…"]
    return "\n".join(lines)


def direction_words(direction: str) -> str:
    return "lower is better" if direction == "min" else "higher is better"


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def color_map(variants: Sequence[str]) -> dict[str, Any]:
    """One colour per variant, by position in `variants` (config order), shared by all plots."""
    return dict(zip(variants, _colors(len(variants)), strict=True))


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_learning_curves(
    history: pd.DataFrame,
    variants: Sequence[str],
    path: Path,
    *,
    train_metric: str = "loss",
    val_metric: str = "val_loss",
    title: str = "",
    colors: Mapping[str, Any] | None = None,
) -> Path | None:
    """Train and validation curves per variant: mean over seeds, band of +-1 sd (n >= 2) kept
    within the seeds' own range, so that a skewed spread never draws a band below zero (a log
    axis would send it off the plot)."""
    from matplotlib.ticker import MaxNLocator

    if history.empty or not history["metric"].isin([train_metric, val_metric]).any():
        return None
    present = set(history["variant"])
    names = [v for v in variants if v in present]
    colors = colors or color_map(variants)
    fig = _new_figure(11, 4.6 + 0.25 * math.ceil(len(names) / 3))
    axes = fig.subplots(1, 2, sharey=True)
    positive = bool((history["value"] > 0).all())
    spread = history["value"].max() / max(history["value"].min(), 1e-12) if positive else 1.0
    handles = []
    for ax, key, label in zip(
        axes, (train_metric, val_metric), ("training", "validation"), strict=True
    ):
        lines = _curves(ax, history[history["metric"] == key], names, colors)
        if ax is axes[0]:
            handles += lines
        ax.set_title(f"{label}: {key}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if positive and spread > 20:
            _log_axis(ax)
    axes[0].set_ylabel(f"{train_metric} (lower is better)")
    fig.suptitle(title or "Learning curves: mean over seeds, band = ±1 sd within the seeds' range")
    fig.legend(
        handles,
        [short_label(h.get_label(), 30, 3) for h in handles],
        loc="outside lower center",
        ncol=min(len(handles), 3),
        fontsize="small",
        frameon=False,
    )
    return _save(fig, path)


def _curves(ax: Any, part: pd.DataFrame, names: Sequence[str], colors: Mapping[str, Any]) -> list:
    """One metric's curve per variant on `ax`: the mean over seeds, with the ±1 sd band (where
    2 or more seeds) kept within the seeds' range; returns the lines drawn."""
    lines = []
    # grouped once (a search draws 32 variants' curves over 100,000s of rows): each group's
    # rows in the same order as a per-variant filter gives them, so the same numbers
    by_variant = part.groupby(["variant", "epoch"])["value"].agg(
        ["mean", "std", "count", "min", "max"]
    )
    drawn = set(by_variant.index.get_level_values("variant"))
    for name in names:
        if name not in drawn:
            continue
        curve = by_variant.loc[name]
        x = curve.index.to_numpy() + 1  # epochs counted from 1 on the plot
        (line,) = ax.plot(x, curve["mean"], color=colors[name], lw=1.8, label=name)
        band = curve["count"] >= 2
        if band.any():
            low = (curve["mean"] - curve["std"]).clip(lower=curve["min"])
            high = (curve["mean"] + curve["std"]).clip(upper=curve["max"])
            ax.fill_between(x[band], low[band], high[band], color=colors[name], alpha=0.18, lw=0)
        lines.append(line)
    return lines


def _log_axis(ax: Any) -> None:
    """A log y axis labelled at 1, 2 and 5 of each decade, in plain numbers."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


@dataclass(frozen=True)
class Scored:
    """What the plots of the per-variant table read: the table (best first), its metric, which
    way is better, the baseline and a colour per variant (`color_map`)."""

    table: pd.DataFrame
    metric: str
    direction: str
    baseline: str
    colors: Mapping[str, Any]


def plot_final_metric(
    trials: pd.DataFrame, on: Scored, path: Path, *, title: str = ""
) -> Path | None:
    """Final `metric` per variant (table order, best first): seeds as points joined across
    variants (paired design), the mean with its bootstrap CI beside them, persistence dashed."""
    table, metric, direction, colors = on.table, on.metric, on.direction, on.colors
    if metric not in trials.columns:
        return None
    names = list(table["variant"])
    ok = (trials["status"] == FINISHED) & np.isfinite(
        pd.to_numeric(trials[metric], errors="coerce").astype(float)
    )
    finished = trials[ok]
    if finished.empty:
        return None
    k = len(names)
    fig = _new_figure(max(6.5, 1.6 * k + 1.5), 5.6)
    ax = fig.subplots()
    pos = {name: i for i, name in enumerate(names)}
    _seeds(ax, finished, metric, pos, colors)
    stats = table.set_index("variant")
    _means(ax, stats, pos)
    if "persistence" in stats.columns:
        pers = stats["persistence"].dropna()
        if len(pers):
            _persistence_line(ax, float(pers.mean()), finished[metric].astype(float), direction)
    labels = [_variant_label(stats.loc[name], name, on.baseline) for name in names]
    ax.set_xticks(range(k), labels, fontsize="small", rotation=30 if k > 6 else 0)
    ax.set_xlim(-0.5, k - 0.3)
    ax.set_ylabel(f"{metric} ({direction_words(direction)})")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(
        title or f"{metric} per variant: each seed joined across variants, mean ± 95% CI",
        fontsize="medium",
        wrap=True,
    )
    ax.legend(loc="best", fontsize="small")
    return _save(fig, path)


def _seeds(
    ax: Any, finished: pd.DataFrame, metric: str, pos: Mapping[str, int], colors: Mapping[str, Any]
) -> None:
    """Each seed's value per variant, joined across variants by a grey line."""
    names = list(pos)
    wide = finished.pivot_table(index="seed", columns="variant", values=metric, aggfunc="first")
    wide = wide.reindex(columns=[n for n in names if n in wide.columns])
    for _seed, row in wide.iterrows():
        xs = [pos[n] for n in row.index if pd.notna(row[n])]
        ys = [row[n] for n in row.index if pd.notna(row[n])]
        ax.plot(xs, ys, color="0.7", lw=0.7, zorder=1)
    for name in names:
        values = finished.loc[finished["variant"] == name, metric].astype(float)
        ax.scatter(
            np.full(len(values), pos[name]), values, s=22, color=colors[name], zorder=3,
            edgecolor="none",
        )  # fmt: skip


def _means(ax: Any, stats: pd.DataFrame, pos: Mapping[str, int]) -> None:
    """Each variant's mean with its interval, a black diamond beside its seeds."""
    names: list[Any] = list(pos)  # labels of `stats` (pandas' stubs type a label as Hashable)
    for name in names:
        mean = stats.loc[name, "mean"]
        if not np.isfinite(mean):
            continue
        low, high = stats.loc[name, "ci_low"], stats.loc[name, "ci_high"]
        yerr = None
        if np.isfinite(low) and np.isfinite(high):
            yerr = [[mean - low], [high - mean]]
        ax.errorbar(
            pos[name] + 0.22, mean, yerr=yerr, fmt="D", color="black", ms=5, capsize=4, lw=1.4,
            zorder=4, label="mean, 95% bootstrap CI" if name == names[0] else None,
        )  # fmt: skip


def _variant_label(row: pd.Series, name: str, baseline: str) -> str:
    """A variant's tick label: its name (shortened), "(baseline)", its finished and failed
    seeds."""
    label = short_label(name, 24, 4)
    if name == baseline:
        label += "\n(baseline)"
    counts = f"n={int(row['n_finished'])}"
    if int(row["n_failed"]):
        counts += f", {int(row['n_failed'])} failed"
    return f"{label}\n{counts}"


def _persistence_line(ax: Any, value: float, data: pd.Series, direction: str) -> None:
    """The persistence baseline as a dashed line, or, when it lies far outside the variants'
    values (it would squash them), as a note at the edge of the plot saying where it is."""
    lo, hi = float(data.min()), float(data.max())
    span = max(hi - lo, 1e-12)
    label = "persistence (last value)"
    if lo - span <= value <= hi + span:
        ax.axhline(value, color="tab:red", ls="--", lw=1, label=label)
        return
    below = value < lo
    y0, y1 = ax.get_ylim()  # make room for the note on its side
    ax.set_ylim(y0 - 0.12 * (y1 - y0), y1) if below else ax.set_ylim(y0, y1 + 0.12 * (y1 - y0))
    beats = (value < lo) if direction == "min" else (value > hi)
    text = f"{label} = {value:.4g} {'↓ below' if below else '↑ above'} the plot" + (
        ": better than every seed of every variant" if beats else ""
    )
    ax.annotate(
        text, xy=(0.5, 0.02 if below else 0.98), xycoords="axes fraction", ha="center",
        va="bottom" if below else "top", color="tab:red", fontsize="small",
        bbox={"boxstyle": "round", "fc": "white", "ec": "tab:red", "alpha": 0.9},
    )  # fmt: skip


def plot_heatmap(
    table: pd.DataFrame,
    axes: Sequence[str],
    metric: str,
    direction: str,
    path: Path,
    *,
    title: str = "",
) -> Path | None:
    """Mean `metric` over a two-axis grid (rows: axes[0], columns: axes[1]); None otherwise."""
    columns = [axis_column(a) for a in axes]
    if len(axes) != 2 or not all(c in table.columns for c in columns):
        return None
    data = table.dropna(subset=["mean"])
    if "order" in data.columns:  # rows and columns in the order the axes list their values
        data = data.sort_values("order")
    if data.empty:
        return None
    grid = data.pivot_table(
        index=columns[0], columns=columns[1], values="mean", aggfunc="mean", sort=False
    )
    if grid.shape[0] < 1 or grid.shape[1] < 1 or grid.size < 2:
        return None
    sd = data.pivot_table(
        index=columns[0], columns=columns[1], values="sd", aggfunc="mean", sort=False
    )
    sd = sd.reindex(index=grid.index, columns=grid.columns)
    fig = _new_figure(max(5.5, 1.5 * grid.shape[1] + 3), max(3.5, 0.8 * grid.shape[0] + 2))
    ax = fig.subplots()
    cmap = "viridis_r" if direction == "min" else "viridis"
    values = grid.to_numpy(dtype=float)
    sds = sd.to_numpy(dtype=float)
    im = ax.imshow(values, cmap=cmap, aspect="auto")
    lo, hi = np.nanmin(values), np.nanmax(values)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            if not np.isfinite(v):
                ax.text(j, i, "—", ha="center", va="center", color="0.5")
                continue
            frac = 0.5 if hi == lo else (v - lo) / (hi - lo)
            dark = frac > 0.5 if direction == "min" else frac < 0.5
            text = f"{v:.4g}"
            s = sds[i, j]
            if np.isfinite(s):
                text += f"\n± {s:.2g}"
            ax.text(
                j, i, text, ha="center", va="center", fontsize="small",
                color="white" if dark else "black",
            )  # fmt: skip
    ax.set_xticks(range(grid.shape[1]), [short_label(str(c), 14) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [short_label(str(r), 14) for r in grid.index])
    ax.set_xlabel(axes[1])
    ax.set_ylabel(axes[0])
    fig.colorbar(im, ax=ax, label=f"mean {metric} ({direction_words(direction)})")
    ax.set_title(title or f"mean {metric} over {axes[0]} × {axes[1]}")
    return _save(fig, path)


def plot_cost_quality(on: Scored, path: Path, *, title: str = "") -> Path | None:
    """Mean time per epoch (x) against mean `metric` with its CI (y), one point per variant;
    points carry the variant's rank, the legend below names them."""
    table, metric, direction, baseline = on.table, on.metric, on.direction, on.baseline
    if "time_per_epoch_s" not in table.columns:
        return None
    data = table.dropna(subset=["mean", "time_per_epoch_s"])
    if data.empty:
        return None
    fig = _new_figure(8, 5.2 + 0.3 * math.ceil(len(data) / 2))
    ax = fig.subplots()
    handles: list[ErrorbarContainer] = []
    labels: list[str] = []
    for row in rows_of(data):
        mean, low, high = row["mean"], row["ci_low"], row["ci_high"]
        finite = np.isfinite(low) and np.isfinite(high)
        yerr = [[mean - low], [high - mean]] if finite else None
        is_base = row["variant"] == baseline
        handle = ax.errorbar(
            row["time_per_epoch_s"], mean, yerr=yerr, fmt="*" if is_base else "o",
            ms=13 if is_base else 7, color=on.colors[row["variant"]], capsize=3, lw=1.2,
        )  # fmt: skip
        ax.annotate(
            f"#{int(row['rank'])}", (row["time_per_epoch_s"], mean), xytext=(7, 5),
            textcoords="offset points", fontsize="small", color="0.15",
        )  # fmt: skip
        handles.append(handle)
        name = short_label(row["variant"], 34, 3) + (" (baseline)" if is_base else "")
        labels.append(f"#{int(row['rank'])} {name}")
    ax.set_xlabel("time per epoch (s), mean over seeds")
    ax.set_ylabel(f"{metric} ({direction_words(direction)}), mean ± 95% CI")
    ax.grid(alpha=0.3)
    ax.margins(x=0.15, y=0.12)
    better = "lower left" if direction == "min" else "upper left"
    ax.set_title(title or f"Cost vs quality (better and cheaper: {better})")
    # matplotlib's legend takes errorbar containers (it has a handler for them); its stubs say
    # Artists only
    legend_handles = cast("list[Artist]", handles)
    fig.legend(
        legend_handles, labels, loc="outside lower center", ncol=2, fontsize="small", frameon=False
    )
    return _save(fig, path)


def make_plots(
    *,
    trials: pd.DataFrame,
    history: pd.DataFrame,
    table: pd.DataFrame,
    variants: Sequence[str],
    metric: str,
    direction: str,
    baseline: str,
    axes: Sequence[str],
    out_dir: Path,
    experiment: str = "",
) -> dict[str, Path]:
    """Every plot the data allow, as {name: path} in `out_dir` (names: learning_curves,
    final_metric, heatmap, cost_quality)."""
    where = f" — {experiment}" if experiment else ""
    colors = color_map(variants)
    on = Scored(table, metric, direction, baseline, colors)
    made = {
        "learning_curves": plot_learning_curves(
            history,
            variants,
            out_dir / "learning_curves.png",
            title=f"Learning curves{where}: mean over seeds, band = ±1 sd within the seeds' range",
            colors=colors,
        ),
        "final_metric": plot_final_metric(trials, on, out_dir / f"final_{metric}.png"),
        "heatmap": plot_heatmap(table, axes, metric, direction, out_dir / f"heatmap_{metric}.png"),
        "cost_quality": plot_cost_quality(on, out_dir / f"cost_vs_{metric}.png"),
    }
    return {name: path for name, path in made.items() if path is not None}
