"""The report's sections for a sweep over several datasets, and their terminal tables.

In: a `bnplace.compare.Comparison` whose `datasets` view is set (`compare.pooled`). Out: the
report sections (`Section`/`Grid`, rendered to Markdown and HTML by `compare.report`): the pooled
row per comparison (effect, interval, τ², I², prediction interval, verdict), the per-dataset
verdicts, the across-dataset ranks, and how to read them; the same grids as rich tables for the
terminal (`rich_tables`); the rule sentence (`rule_for`); and the JSON part (`to_dict`). Pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# the cell formatters every report page uses, as cell.<name>
import bnplace.compare.format as cell
from bnplace.compare.blocks import Grid, Section
from bnplace.names.metrics import BASELINES, PERSISTENCE
from bnplace.stats.pooling import NEW_DATASET_MAY_DIFFER

if TYPE_CHECKING:
    from bnplace.compare.comparison import Comparison
    from bnplace.compare.pooled import DatasetsView
    from bnplace.compare.rows import PooledRow


def _view(comparison: Comparison) -> DatasetsView:
    if comparison.datasets is None:
        raise ValueError("the comparison has one dataset")
    return comparison.datasets


def rule_for(comparison: Comparison) -> str:
    """The verdict rule of the comparison's main table: pooled when it has several datasets."""
    m = len(comparison.rows)
    if comparison.datasets is None:
        return cell.rule_sentence(comparison.design, m)
    d, k = comparison.design, len(comparison.datasets.datasets)
    level = 1 - d.alpha / max(m, 1)
    return (
        f"Pooled over {k} datasets: each dataset's mean paired log ratio is one observation; "
        f"the pooled effect is their mean with a t interval (k − 1 df) at {level:.2%}, "
        f"Bonferroni over the {m} pooled comparison{'s' if m != 1 else ''}, a family of its own "
        "(summary-statistics random effects): better/worse when the interval excludes 0, "
        f"equivalent when it lies within ±{d.margin:.0%}, inconclusive otherwise; better/worse "
        f"whose {level:.2%} prediction interval for a new dataset reaches past 0 reads "
        f"'{NEW_DATASET_MAY_DIFFER}'."
    )


def pooled_verdict_text(row: PooledRow, margin: float) -> str:
    text = cell.verdict_text(row, margin)
    if row.verdict in ("better", "worse") and not row.new_dataset:
        return f"{text} {NEW_DATASET_MAY_DIFFER}"
    return text


def datasets_text(row: PooledRow) -> str:
    """The per-dataset verdicts beside a pooled one: "3 better, 0 worse, 2 undecided"."""
    if cell.missing(row.n_better):
        return cell.DASH
    text = f"{int(row.n_better)} better, {int(row.n_worse)} worse"
    if int(row.n_equivalent or 0):
        text += f", {int(row.n_equivalent)} equivalent"
    return text + f", {int(row.n_undecided)} undecided"


def _tau(row: PooledRow) -> str:
    tau2 = row.tau2
    if tau2 is None or cell.missing(tau2):
        return cell.DASH
    return f"{cell.fmt_num(tau2, 3)} (τ {cell.fmt_pct(100 * math.sqrt(float(tau2))).lstrip('+')})"


def pooled_grid(comparison: Comparison) -> Grid:
    headers = [
        "comparison", "datasets", "pairs (excl.)", "Δ% [CI]", "CI level", "τ²", "I²",
        "prediction interval (same level)", "p adj.", "verdict", "per dataset", "direction",
    ]  # fmt: skip
    rows, verdicts = [], []
    for r in _view(comparison).pooled_rows:
        rows.append(
            [
                r.comparison,
                str(r.k),
                f"{r.n_pairs} ({r.n_excluded})",
                cell.effect_text(r),
                cell.level_text(r),
                _tau(r),
                cell.DASH if cell.missing(r.i2) else f"{float(r.i2):.0%}",
                cell.fmt_pct_ci(r.pi_low, r.pi_high),
                cell.fmt_p(r.p_adjusted),
                pooled_verdict_text(r, comparison.design.margin),
                datasets_text(r),
                r.direction or cell.DASH,
            ]
        )
        verdicts.append(r.verdict)
    aligns = ["left"] + ["right"] * 8 + ["left"] * 3
    return Grid(headers, rows, aligns, verdicts)


def per_dataset_grid(comparison: Comparison) -> Grid:
    view = _view(comparison)
    mean_of = {
        (str(r["comparison"]), str(r["dataset"])): r for r in cell.rows_of(view.effects)
    }  # the pooled (mean) effect beside the verdict's Hodges–Lehmann one
    headers = ["dataset", "comparison", "pairs", "failed (a / b)", "Δ% [CI]", "p adj.",
               "verdict", "mean Δ% ± SE (pooled)"]  # fmt: skip
    rows, verdicts = [], []
    for dataset, stats in view.per.items():
        for r in stats.rows:
            e = mean_of.get((r.comparison, dataset), {})
            pooled = (
                cell.DASH
                if cell.missing(e.get("effect"))
                else f"{cell.fmt_pct(e['delta_pct'])} ± "
                f"{cell.fmt_pct(100 * float(e['se'])).lstrip('+')}"
            )
            rows.append(
                [
                    dataset,
                    r.comparison,
                    str(r.n_pairs),
                    cell.failed_text(r),
                    cell.effect_text(r),
                    cell.fmt_p(r.p_adjusted),
                    cell.verdict_text(r, comparison.design.margin),
                    pooled,
                ]
            )
            verdicts.append(r.verdict)
    aligns = ["left", "left"] + ["right"] * 4 + ["left", "right"]
    return Grid(headers, rows, aligns, verdicts)


def baseline_ratios(comparison: Comparison) -> dict[str, dict[str, float]]:
    """Per dataset, each variant's and each forecasting baseline's mean metric over the
    persistence forecast's (persistence = 1; below 1 beats it), where the trials carry the
    baselines' twins of an error metric (`names.metrics.BASELINES`); means, not tests."""
    out: dict[str, dict[str, float]] = {}
    if comparison.direction != "min":
        return out
    for dataset, stats in _view(comparison).per.items():
        table = stats.table
        if PERSISTENCE not in table.columns:
            continue
        known = table[PERSISTENCE].dropna()  # the same test windows for every variant
        scale = float(known.iloc[0]) if len(known) else 0.0
        if not scale > 0:
            continue
        ratios = {
            name: float(table[name].dropna().iloc[0]) / scale
            for name in BASELINES
            if name in table.columns and table[name].notna().any()
        }
        ratios |= {
            str(v): float(mean) / scale
            for v, mean in zip(table["variant"], table["mean"], strict=True)
            if not cell.missing(mean)
        }
        out[dataset] = ratios
    return out


def _baselines_section(comparison: Comparison) -> Section | None:
    ratios = baseline_ratios(comparison)
    if not ratios:
        return None
    variants = [str(v) for v in comparison.table["variant"]]
    baselines = [b for b in BASELINES if any(b in r for r in ratios.values())]
    rows = [
        [
            dataset,
            *(cell.fmt_num(r[n], 3) if n in r else cell.DASH for n in (*baselines, *variants)),
        ]
        for dataset, r in ratios.items()
    ]
    counts = []
    for name in baselines:
        held = [r for r in ratios.values() if name in r and any(v in r for v in variants)]
        beaten = sum(min(r[v] for v in variants if v in r) < r[name] for r in held)
        counts.append(f"{name.replace('_', ' ')} on {beaten} of {len(held)}")
    return Section(
        "Against the baselines, per dataset",
        [
            f"Mean {comparison.metric} over the persistence forecast's on the same test windows "
            "(persistence = 1; below 1 is better). Means, not tests: they say whether the "
            "networks learnt more than a naive or linear forecast, not which variant is "
            f"better. The best variant beats {', '.join(counts)} datasets.",
            Grid(
                ["dataset", *(cell.BASELINE_LABELS.get(b, b) for b in baselines), *variants],
                rows,
                ["left"] + ["right"] * (len(baselines) + len(variants)),
            ),
        ],
    )


def _how_to_read(comparison: Comparison) -> list[str]:
    m = len(comparison.rows)
    return [
        rule_for(comparison),
        "Per dataset, each comparison is judged as in a single-dataset sweep "
        f"({cell.interval_words(comparison.design)}, Bonferroni over the {m} comparisons of that "
        "dataset). Per-dataset and pooled verdicts are separate multiplicity families: each "
        "holds with its stated confidence, not all of them together.",
        "The pooled effect of a dataset is the mean of its finite paired log ratios; seeds "
        "where one side failed are left out of it and counted in *pairs (excl.)*.",
        "**τ²** is the between-dataset variance of the true effect (DerSimonian–Laird; "
        "log-ratio scale; τ is shown as a relative effect), **I²** the share of the spread of "
        "the per-dataset effects that is between datasets rather than seed noise. The "
        "**prediction interval**, at the same level as the pooled interval, is where the effect "
        "a new, similar dataset shows with as many seeds should fall (needs 3 or more "
        "datasets); it says nothing about the datasets measured.",
        "*per dataset* counts the per-dataset verdicts; *direction* counts the datasets whose "
        "mean effect points each way, with an exact sign test over them at the family's level "
        "(the median dataset's effect; it needs 2^(1−k) ≤ alpha/m, e.g. 6 datasets for one "
        "comparison at 0.05).",
    ]


def sections(comparison: Comparison) -> list[Section]:
    """The sections a sweep over several datasets adds to the report."""
    view = _view(comparison)
    out = [
        Section(
            f"Pooled over {len(view.datasets)} datasets (random effects; one family)",
            [pooled_grid(comparison)],
        ),
        Section("How to read the pooled row", [_how_to_read(comparison)], level=3),
        Section(
            "Per dataset (one family per dataset)",
            [per_dataset_grid(comparison)],
        ),
    ]
    against = _baselines_section(comparison)
    if against is not None:
        out.append(against)
    ranks = view.ranks
    if ranks is not None:
        friedman = (
            f"Friedman χ² = {cell.fmt_num(ranks.statistic, 4)}, "
            f"p = {cell.fmt_p(ranks.pvalue)} over {ranks.datasets} datasets"
            if not cell.missing(ranks.statistic)
            else "Friedman's test needs 3 or more variants"
        )
        out.append(
            Section(
                "Across datasets: mean ranks (omnibus view)",
                [
                    f"{friedman}. Variants are ranked on each dataset by their mean "
                    f"{comparison.metric} (1 = best); Nemenyi's critical difference is CD = "
                    f"{cell.fmt_num(ranks.critical_difference, 3)} "
                    f"(α = {comparison.design.alpha:g}; "
                    "Demšar 2006): mean ranks closer than CD are not told apart.",
                    Grid(
                        ["variant", "mean rank over datasets"],
                        [[str(v), cell.fmt_num(r, 3)] for v, r in ranks.ranks.to_numpy()],
                        ["left", "right"],
                    ),
                ],
            )
        )
    return out


def rich_tables(comparison: Comparison) -> list[Any]:
    """The pooled and per-dataset grids as rich tables for the terminal."""
    from rich.table import Table
    from rich.text import Text

    from bnplace.compare.format import VERDICT_STYLES

    out = []
    titles = ("pooled over datasets (random effects)", "per dataset")
    grids = (pooled_grid(comparison), per_dataset_grid(comparison))
    for title, grid in zip(titles, grids, strict=True):
        table = Table(title=title, title_justify="left")
        for header, align in zip(grid.headers, grid.aligns, strict=True):
            table.add_column(  # folded, not cut: every figure is shown whole
                header, justify="right" if align == "right" else "left", overflow="fold"
            )
        for i, row in enumerate(grid.rows):
            cells: list[Any] = list(row)
            at = grid.headers.index("verdict")
            verdict = Text(str(cells[at]))
            verdict.stylize(VERDICT_STYLES.get(grid.verdicts[i], ""))
            cells[at] = verdict
            table.add_row(*cells)
        out.append(table)
    return out


def to_dict(comparison: Comparison, scalar: Callable[[Any], Any]) -> dict[str, Any]:
    """The datasets part of the JSON output, every number passed through `scalar` (empty for
    a single dataset)."""
    view = comparison.datasets
    if view is None:
        return {}

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return scalar(value)

    return plain(
        {
            "datasets": list(view.datasets),
            "pooled": [r.record() for r in view.pooled_rows],
            "dataset_effects": cell.rows_of(view.effects),
            "per_dataset": {d: [r.record() for r in s.rows] for d, s in view.per.items()},
            "baseline_ratios": baseline_ratios(comparison),
            "dataset_ranks": None
            if view.ranks is None
            else {
                "datasets": view.ranks.datasets,
                "statistic": view.ranks.statistic,
                "pvalue": view.ranks.pvalue,
                "critical_difference": view.ranks.critical_difference,
                "mean_ranks": dict(view.ranks.ranks.to_numpy()),
            },
        }
    )
