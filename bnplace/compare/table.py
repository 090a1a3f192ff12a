"""The comparison as a table in the terminal: best first, verdicts coloured, fitted to its width.

In: a `bnplace.compare.Comparison`. Out: the columns people see (`display_columns`, also the
Markdown summary's) and a rich renderable that builds the table for the console's width,
dropping the least important columns first when it is narrow. rich is imported when a table
is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from bnplace.compare.datasets_report import rule_for
from bnplace.compare.format import (
    BASELINE_LABELS,
    BASELINE_NOTES,
    DASH,
    VERDICT_STYLES,
    effect_text,
    fmt_ci,
    fmt_num,
    fmt_p,
    fmt_pct,
    missing,
    rows_of,
    verdict_text,
)
from bnplace.compare.rows import ComparisonRow, of_origin
from bnplace.names.metrics import BASELINES

if TYPE_CHECKING:
    from rich.console import JustifyMethod
    from rich.table import Table

    from bnplace.compare.comparison import Comparison


def _col(
    header: str, fn: Callable[[Mapping[str, Any]], str], align: JustifyMethod = "right"
) -> tuple[str, Callable[[Mapping[str, Any]], str], JustifyMethod]:
    return (header, fn, align)


def display_columns(comparison: Comparison, *, compact: bool = False) -> list[Column]:
    """(header, cell function, alignment) of the summary table shown to people. `compact` (the
    terminal) shows the failure count instead of the reasons (they go to the caption) and
    leaves out the mean's CI, median/IQR, mean rank and persistence (in the caption)."""
    table = comparison.table
    several = comparison.datasets is not None  # no raw-metric mean across datasets' scales
    cols = [
        _col("#", lambda r: str(int(r["rank"]))),
        _col(
            "variant",
            lambda r: str(r["variant"]) + (" (baseline)" if r["is_baseline"] else ""),
            "left",
        ),
        _col("n", lambda r: f"{int(r['n_finished'])}/{int(r['n_trials'])}"),
        _col("failed", lambda r: str(int(r["n_failed"])) if r["n_failed"] else "")
        if compact
        else _col("failed", lambda r: str(r["failures"]) if r["n_failed"] else "", "left"),
        _col(
            MEAN if compact else f"{comparison.metric} mean ± sd",
            lambda r: DASH if missing(r["mean"]) else f"{fmt_num(r['mean'])} ± {fmt_num(r['sd'])}",
        ),
        _col(DELTA, lambda r: "" if r["is_baseline"] else effect_text(r)),
        _col("p (adj.)", lambda r: "" if r["is_baseline"] else fmt_p(r["p_adjusted"])),
        _col("verdict", lambda r: verdict_text(r, comparison.design.margin), "left"),
    ]
    if several:  # the metric's scale differs by dataset: the description is the mean rank
        cols = [c for c in cols if c[0] not in (MEAN, f"{comparison.metric} mean ± sd")]
        if "mean_rank" in table.columns:
            cols.insert(4, _col("mean rank", lambda r: fmt_num(r["mean_rank"], 3)))
    elif not compact:
        cols[5:5] = [
            _col("median [IQR]", lambda r: f"{fmt_num(r['median'])} {fmt_ci(r['q1'], r['q3'])}"),
            _col("mean 95% CI", lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
        ]
        if "mean_rank" in table.columns:
            cols.append(_col("mean rank", lambda r: fmt_num(r["mean_rank"], 3)))
        for baseline in BASELINES:  # forecasting baselines on the same test windows
            if baseline in table.columns:
                cols.append(_col(BASELINE_LABELS[baseline], _baseline_text(baseline)))
        if "skill" in table.columns:
            cols.append(_col("skill vs persistence", skill_text))
    if "chosen_learning_rate" in table.columns:  # `learning_rate: {choose: [...]}`
        cols.append(_col("lr (chosen)", _chosen_text))
    if "time_per_epoch_s" in table.columns:
        cols.append(_col("s/epoch", lambda r: fmt_num(r["time_per_epoch_s"], 3)))
    if "params" in table.columns:
        cols.append(_col("params", lambda r: fmt_num(r["params"], 6)))
    if "bn_shift_max" in table.columns:
        cols.append(_col("BN shift", lambda r: fmt_num(r["bn_shift_max"], 3)))
    return cols


def _chosen_text(row: Mapping[str, Any]) -> str:
    """The chosen learning rate's median over seeds, with its range where seeds differ."""
    lo, hi = row.get("chosen_learning_rate_lo"), row.get("chosen_learning_rate_hi")
    median = fmt_num(row["chosen_learning_rate"], 3)
    if missing(lo) or lo == hi:
        return median
    return f"{median} [{fmt_num(lo, 3)}, {fmt_num(hi, 3)}]"


DELTA = "Δ% vs baseline [CI]"
MEAN = "mean ± sd"
# Columns given up, in this order, while the table is wider than the terminal.
_DROP_ORDER = ("BN shift", "params", "p (adj.)", "s/epoch", "failed", "n")
Column = tuple[str, Callable[..., str], "JustifyMethod"]


def _fit_columns(comparison: Comparison, max_width: int) -> tuple[list[Column], dict[str, int]]:
    """The compact columns and the widths of the wrapping ones (variant, verdict, Δ; the others
    are as wide as their text), giving up the least important columns, then detail, until the table
    fits `max_width` characters."""
    columns = display_columns(comparison, compact=True)
    rows = rows_of(comparison.table)
    longest = max((len(str(v)) for v in comparison.table["variant"]), default=8)
    wrap = {"variant": min(longest, 24), "verdict": 15, DELTA: 12}

    def natural(column: Column) -> int:
        header, fn, _a = column
        return max([len(header), *(len(fn(r)) for r in rows)])

    def need(minimum: bool = True) -> int:
        return 1 + sum(
            3 + (min(natural(c), wrap[c[0]]) if minimum and c[0] in wrap else natural(c))
            for c in columns
        )

    if need(minimum=False) <= max_width:
        return columns, {}
    shorter: dict[str, Column] = {
        DELTA: _col("Δ%", lambda r: "" if r["is_baseline"] else fmt_pct(r["delta_pct"])),
        MEAN: _col("mean", lambda r: fmt_num(r["mean"])),
    }
    steps = [*_DROP_ORDER, *shorter, "narrow"]
    for step in steps:
        if need() <= max_width:
            break
        if step in shorter:
            columns = [shorter[step] if c[0] == step else c for c in columns]
        elif step == "narrow":
            wrap = {"variant": min(longest, 14), "verdict": 11, DELTA: 12}
            columns = [c for c in columns if c[0] != "#"]
        else:
            columns = [c for c in columns if c[0] != step]
    # Share what is left between the wrapping columns, beyond their minimum widths.
    wrapping = [c for c in columns if c[0] in wrap]
    widths = {c[0]: min(natural(c), wrap[c[0]]) for c in wrapping}
    spare = max_width - need()
    wants = {c[0]: natural(c) - widths[c[0]] for c in wrapping}
    total_want = sum(wants.values())
    if spare > 0 and total_want > 0:
        for name, want in wants.items():
            widths[name] = widths[name] + min(want, spare * want // total_want)
    return columns, widths


def build_table(comparison: Comparison, max_width: int = 200) -> Table:
    """A rich table of the comparison for a terminal `max_width` characters wide: best first,
    verdict column coloured, notes in the caption; less important columns are left out when
    the terminal is narrow (BN shift, params, p, s/epoch, failed, n, the CI of Δ, the sd); the
    declared contrasts follow in a second table."""
    from rich.table import Table
    from rich.text import Text

    styles = VERDICT_STYLES
    words = "lower" if comparison.direction == "min" else "higher"
    table = Table(
        title=f"{comparison.sweep.experiment}: {comparison.metric} ({words} is better), "
        f"baseline {comparison.baseline}",
        caption=_caption(comparison),
        caption_justify="left",
    )
    columns, widths = _fit_columns(comparison, max_width)
    at = [h for h, _f, _a in columns].index("verdict")
    for header, _fn, align in columns:
        if header in widths:  # wraps inside the width it was given
            table.add_column(header, justify=align, overflow="fold", width=widths[header])
        else:
            table.add_column(header, justify=align, no_wrap=True)
    for row in rows_of(comparison.table):
        cells = [Text(fn(row)) for _h, fn, _a in columns]  # Text: no markup parsing
        verdict = str(row["verdict"])
        cells[at].stylize(styles.get(verdict, ""))
        table.add_row(*cells)
    return table


def skill_text(row: Mapping[str, Any]) -> str:
    """Skill against persistence with its interval; "beats" only when the interval says so."""
    if missing(row.get("skill")):
        return DASH
    shown = f"{fmt_num(row['skill'], 3)} {fmt_ci(row['skill_low'], row['skill_high'])}"
    beats = row.get("beats_persistence")
    if not isinstance(beats, bool | np.bool_):
        return shown  # undecided
    return shown + (" beats" if beats else " loses")


def contrast_rows(comparison: Comparison) -> list[ComparisonRow]:
    """The declared contrasts and interactions (the family beyond the baseline comparisons)."""
    return of_origin(comparison.rows, baseline=False)


def build_contrast_table(comparison: Comparison) -> Table | None:
    """The declared contrasts as a second terminal table (None when there are none)."""
    from rich.table import Table
    from rich.text import Text

    rows = contrast_rows(comparison)
    if not rows:
        return None
    table = Table(title="declared contrasts (same family)", title_justify="left")
    for header in ("contrast", "pairs", "Δ% [CI]", "p (adj.)", "verdict"):
        table.add_column(header, overflow="fold")
    for r in rows:
        verdict = Text(verdict_text(r, comparison.design.margin))
        verdict.stylize(VERDICT_STYLES.get(r.verdict, ""))
        table.add_row(
            Text(r.comparison), str(r.n_pairs), effect_text(r), fmt_p(r.p_adjusted), verdict
        )
    return table


class ComparisonTable:
    """A rich renderable that builds the table for the width of the console it is printed to."""

    def __init__(self, comparison: Comparison) -> None:
        self.comparison = comparison

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield build_table(self.comparison, options.max_width)
        if self.comparison.datasets is not None:  # pooled and per-dataset verdicts
            from bnplace.compare.datasets_report import rich_tables

            yield from rich_tables(self.comparison)
            return
        contrasts = build_contrast_table(self.comparison)
        if contrasts is not None:
            yield contrasts


def render_table(comparison: Comparison) -> ComparisonTable:
    """The comparison as a rich renderable (`console.print(render_table(c))`): best first,
    verdict column coloured, fitted to the console's width."""
    return ComparisonTable(comparison)


def _baseline_text(column: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda r: fmt_num(r[column])


def _caption(comparison: Comparison) -> str:
    lines = [rule_for(comparison) + " Δ% = variant relative to baseline, paired by seed."]
    for baseline in BASELINES:
        if baseline in comparison.table.columns:
            values = comparison.table[baseline].dropna()
            if len(values):
                lines.append(
                    f"{BASELINE_NOTES[baseline]}: {comparison.metric} {fmt_num(values.mean())}"
                )
    fr = comparison.friedman
    if fr is not None:
        lines.append(
            f"Friedman over {fr.n_seeds} seeds x {fr.n_variants} variants: chi2 = "
            f"{fmt_num(fr.statistic, 3)}, p = {fmt_p(fr.pvalue)}; mean ranks differ when apart by "
            f"more than CD = {fmt_num(fr.critical_difference, 3)}"
        )
    for r in rows_of(comparison.failures):
        lines.append(f"failed: {r['variant']}: {r['reason']} x{int(r['n'])}")
    lines.extend(comparison.notes)
    return "\n".join(lines)
