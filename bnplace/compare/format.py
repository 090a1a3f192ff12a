"""How numbers and verdicts read in every rendering of a comparison (table, Markdown, HTML).

In: values from a statistics table (floats that may be NaN or missing, verdict rows). Out:
short strings: significant digits, p-values, CIs, relative effects in percent, verdicts with
the margin or what an inconclusive interval excludes, and the verdict rule in one sentence
(`rule_sentence`, fixed or seeds on demand). Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from bnplace.stats.sequential import spending_words
from bnplace.stats.verdicts import T, level_for

if TYPE_CHECKING:
    import pandas as pd

    from bnplace.compare.rows import ComparisonRow
    from bnplace.stats.verdicts import Design

# A row the verdict formatters read: a variant-table row (its baseline comparison's columns) or
# a comparison row.
Row: TypeAlias = "Mapping[str, Any] | ComparisonRow"

DASH = "—"
# The forecasting baselines' columns (`bnplace.names.metrics.BASELINES`): table headers, and
# the caption's and report's longer names.
BASELINE_LABELS = {
    "persistence": "persistence",
    "linear": "linear",
    "seasonal_naive": "seas. naive",
}
BASELINE_NOTES = {
    "persistence": "persistence baseline (last value)",
    "linear": "linear baseline (least squares on the window)",
    "seasonal_naive": "seasonal naive baseline (one season back)",
}


# The terminal style of each verdict (rich markup), shared by every rich table.
VERDICT_STYLES = {
    "better": "bold green",
    "worse": "bold red",
    "equivalent": "bold blue",
    "inconclusive": "yellow",
    "baseline": "cyan",
}


def named(names: Sequence[str], most: int, sep: str = ", ") -> str:
    """The first `most` names joined, then how many more: "a, b and 3 more"."""
    shown = sep.join(names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """`frame` as one dict per row. The compare frames' columns are all named by strings, which
    pandas' stubs cannot know (they type a column label as any Hashable): hence the cast."""
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def fmt_num(value: Any, digits: int = 4) -> str:
    """A number with `digits` significant digits; a dash for missing, "∞" for infinity."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return DASH if value is None else str(value)
    if math.isnan(x):
        return DASH
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x == int(x) and abs(x) < 1e9:
        return str(int(x))
    return f"{x:.{digits}g}"


def fmt_p(value: Any) -> str:
    """A p-value: three significant digits, "<0.0001" below that."""
    try:
        p = float(value)
    except (TypeError, ValueError):
        return DASH
    if math.isnan(p):
        return DASH
    return "<0.0001" if p < 1e-4 else f"{p:.3g}"


def fmt_ci(low: Any, high: Any) -> str:
    if any(missing(v) for v in (low, high)):
        return DASH
    return f"[{fmt_num(low)}, {fmt_num(high)}]"


def missing(value: Any) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return value is None


def fmt_pct(value: Any) -> str:
    """A relative effect in percent, signed: "+3.12%"; a dash when missing."""
    if missing(value):
        return DASH
    x = float(value)
    if math.isinf(x):
        return "+∞%" if x > 0 else "-∞%"
    return f"{x:+.3g}%" if abs(x) < 1 else f"{x:+.1f}%"


def fmt_pct_ci(low: Any, high: Any) -> str:
    """An interval of relative effects: "[-4.0%, +7.2%]"."""
    if missing(low) or missing(high):
        return DASH
    return f"[{fmt_pct(low)}, {fmt_pct(high)}]"


def effect_text(row: Row) -> str:
    """A comparison's effect and interval, as in the tables: "+3.1% [-1.0%, +7.2%]"."""
    interval = fmt_pct_ci(row.get("delta_pct_low"), row.get("delta_pct_high"))
    return f"{fmt_pct(row.get('delta_pct'))} {interval}"


def failed_text(row: ComparisonRow) -> str:
    """Failed seeds on each side of a comparison: "0 / 2"."""
    return f"{int(row.n_failed_a)} / {int(row.n_failed_b)}"


def level_text(row: ComparisonRow) -> str:
    """The level of a comparison's interval: "97.50%"."""
    return DASH if missing(row.level) else f"{float(row.level):.2%}"


def verdict_text(row: Row, margin: float) -> str:
    """The verdict as people read it: "equivalent within ±5%", "better (by less than ±5%)",
    "inconclusive: effects beyond -4.0%/+7.0% excluded", "inconclusive (too few seeds)"."""
    if not isinstance(row.get("verdict"), str):  # no comparison with the baseline was asked
        return DASH
    verdict = str(row.get("verdict"))
    if verdict in ("better", "worse") and row.get("within_margin") is True:
        return f"{verdict} (by less than ±{margin:.0%})"
    if verdict == "equivalent":
        return f"equivalent within ±{margin:.0%}"
    if verdict == "inconclusive":
        if row.get("reachable") is False or row.get("reachable") == 0:
            pooled = row.get("k")  # a pooled row: how many datasets' effects it pooled
            if not missing(pooled) and (k := int(cast(float, pooled))) < 2:
                from bnplace.stats.pooling import MIN_PAIRS_TO_POOL

                return (
                    f"inconclusive ({k} dataset{'s' if k != 1 else ''} pooled: a "
                    f"dataset enters the pool with {MIN_PAIRS_TO_POOL} finite pairs or more)"
                )
            return "inconclusive (too few seeds for any verdict)"
        excluded = row.get("excluded")
        return f"inconclusive: {excluded}" if isinstance(excluded, str) and excluded else verdict
    return verdict


def interval_words(design: Design) -> str:
    """Which interval the verdicts were read from (`compare.interval`), in words."""
    if design.interval == T:
        return "Student t interval of the mean effect (`compare.interval: t`)"
    return "exact signed-rank interval of the Hodges–Lehmann effect"


def rule_sentence(design: Design, m: int) -> str:
    """The verdict rule in one sentence, with this family's numbers."""
    level = level_for(design.alpha, m)
    if design.sequential:
        looks = ", ".join(str(n) for n in design.looks)
        spending = spending_words(design.interval, design.spending) + (
            " (boundaries computed for t statistics)" if design.interval == T else ""
        )
        return (
            f"Seeds on demand (looks at {looks} seeds): at each look every open comparison "
            f"gets an {interval_words(design)} at that look's "
            f"level (repeated confidence intervals: alpha {design.alpha:g} spent over the looks "
            f"as {spending}, split over the {m} comparison{'s' if m != 1 else ''}, so all verdicts "
            f"hold together with ≥{1 - design.alpha:.0%} confidence wherever the sweep stopped); "
            f"the first look whose interval excludes 0 (better/worse) or lies within "
            f"±{design.margin:.0%} (equivalent) decides, and its comparison gets no more seeds."
        )
    return (
        f"Each interval is an {interval_words(design)} at "
        f"{level:.2%} (Bonferroni over the {m} comparison{'s' if m != 1 else ''}, so all "
        f"verdicts hold together with ≥{1 - design.alpha:.0%} confidence): better/worse when it "
        f"excludes 0, equivalent when it lies within ±{design.margin:.0%}, inconclusive "
        "otherwise."
    )
