"""The comparison as a table in the terminal: best first, verdicts coloured, fitted to its width.

In: a `bnplace.compare.Comparison`. Out: the columns people see (`display_columns`, also the
Markdown summary's) and a rich renderable that builds the table for the console's width,
dropping the least important columns first when it is narrow. rich is imported when a table
is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bnplace.compare.format import (
    DASH,
    fmt_ci,
    fmt_num,
    fmt_p,
    missing,
    records,
    signed,
    verdict_text,
)

if TYPE_CHECKING:
    from rich.table import Table

    from bnplace.compare import Comparison


def _col(
    header: str, fn: Callable[[Mapping[str, Any]], str], align: str = "right"
) -> tuple[str, Callable[[Mapping[str, Any]], str], str]:
    return (header, fn, align)


def display_columns(
    comparison: Comparison, *, compact: bool = False
) -> list[tuple[str, Callable[..., str], str]]:
    """(header, cell function, alignment) of the summary table shown to people. `compact` (the
    terminal) shows the failure count instead of the reasons (they go to the caption) and
    leaves out the mean's CI, median/IQR, mean rank and persistence (in the caption)."""
    table = comparison.table
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
        _col(
            "Δ vs baseline [95% CI]",
            lambda r: (
                ""
                if r["is_baseline"]
                else f"{signed(r['diff'])} {fmt_ci(r['diff_ci_low'], r['diff_ci_high'])}"
            ),
        ),
        _col("p (Holm)", lambda r: "" if r["is_baseline"] else fmt_p(r["p_holm"])),
        _col("d_z", lambda r: "" if r["is_baseline"] else fmt_num(r["effect_size"], 3)),
        _col("verdict", verdict_text, "left"),
    ]
    if not compact:
        cols[5:5] = [
            _col("median [IQR]", lambda r: f"{fmt_num(r['median'])} {fmt_ci(r['q1'], r['q3'])}"),
            _col("95% CI", lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
        ]
        if "mean_rank" in table.columns:
            cols.append(_col("mean rank", lambda r: fmt_num(r["mean_rank"], 3)))
        if "persistence" in table.columns:
            cols.append(_col("persistence", lambda r: fmt_num(r["persistence"])))
    if "time_per_epoch_s" in table.columns:
        cols.append(_col("s/epoch", lambda r: fmt_num(r["time_per_epoch_s"], 3)))
    if "params" in table.columns:
        cols.append(_col("params", lambda r: fmt_num(r["params"], 6)))
    if "bn_shift_max" in table.columns:
        cols.append(_col("BN shift", lambda r: fmt_num(r["bn_shift_max"], 3)))
    return cols


DELTA = "Δ vs baseline [95% CI]"
MEAN = "mean ± sd"
# Columns given up, in this order, while the table is wider than the terminal.
_DROP_ORDER = ("BN shift", "params", "d_z", "s/epoch", "failed", "n")
Column = tuple[str, Callable[..., str], str]


def _fit_columns(
    comparison: Comparison, max_width: int
) -> tuple[list[Column], dict[str, int | None]]:
    """The compact columns and the widths of the wrapping ones (variant, verdict, Δ; None: as
    wide as their text), giving up the least important columns, then detail, until the table
    fits `max_width` characters."""
    columns = display_columns(comparison, compact=True)
    rows = records(comparison)
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
        DELTA: _col("Δ", lambda r: "" if r["is_baseline"] else signed(r["diff"])),
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
    widths: dict[str, int | None] = {c[0]: min(natural(c), wrap[c[0]]) for c in wrapping}
    spare = max_width - need()
    wants = {c[0]: natural(c) - widths[c[0]] for c in wrapping}  # type: ignore[operator]
    total_want = sum(wants.values())
    if spare > 0 and total_want > 0:
        for name, want in wants.items():
            widths[name] = widths[name] + min(want, spare * want // total_want)  # type: ignore[operator]
    return columns, widths


def build_table(comparison: Comparison, max_width: int = 200) -> Table:
    """A rich table of the comparison for a terminal `max_width` characters wide: best first,
    verdict column coloured, notes in the caption; less important columns are left out when
    the terminal is narrow (BN shift, params, d_z, s/epoch, failed, n, the CI of Δ, the sd)."""
    from rich.table import Table
    from rich.text import Text

    styles = {"better": "bold green", "worse": "bold red", "baseline": "cyan"}
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
            table.add_column(header, justify=align, overflow="fold", width=widths[header])  # type: ignore[arg-type]
        else:
            table.add_column(header, justify=align, no_wrap=True)  # type: ignore[arg-type]
    for row in records(comparison):
        cells = [Text(fn(row)) for _h, fn, _a in columns]  # Text: no markup parsing
        verdict = str(row["verdict"])
        cells[at].stylize(styles.get(verdict, "yellow" if verdict.startswith("no") else ""))
        table.add_row(*cells)
    return table


class ComparisonTable:
    """A rich renderable that builds the table for the width of the console it is printed to."""

    def __init__(self, comparison: Comparison) -> None:
        self.comparison = comparison

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield build_table(self.comparison, options.max_width)


def render_table(comparison: Comparison) -> ComparisonTable:
    """The comparison as a rich renderable (`console.print(render_table(c))`): best first,
    verdict column coloured, fitted to the console's width."""
    return ComparisonTable(comparison)


def _caption(comparison: Comparison) -> str:
    lines = [
        "verdict: Holm-corrected Wilcoxon p < "
        f"{comparison.options.alpha:g} and a bootstrap CI of the paired difference that "
        "excludes 0; Δ = variant − baseline, paired by seed"
    ]
    if "persistence" in comparison.table.columns:
        pers = comparison.table["persistence"].dropna()
        if len(pers):
            lines.append(
                f"persistence baseline (last value): {comparison.metric} {fmt_num(pers.mean())}"
            )
    fr = comparison.friedman
    if fr is not None:
        lines.append(
            f"Friedman over {fr.n_seeds} seeds x {fr.n_variants} variants: chi2 = "
            f"{fmt_num(fr.statistic, 3)}, p = {fmt_p(fr.pvalue)}; mean ranks differ when apart by "
            f"more than CD = {fmt_num(fr.critical_difference, 3)}"
        )
    for r in comparison.failures.to_dict("records"):
        lines.append(f"failed: {r['variant']}: {r['reason']} x{int(r['n'])}")
    lines.extend(comparison.notes)
    return "\n".join(lines)
