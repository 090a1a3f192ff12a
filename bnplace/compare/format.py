"""How numbers and verdicts read in every rendering of a comparison (table, Markdown, HTML).

In: values from a statistics table (floats that may be NaN or missing, verdict rows). Out:
short strings: significant digits, p-values, CIs, signed differences, verdicts with the seeds
they would need. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bnplace.compare import Comparison

DASH = "—"


def records(comparison: Comparison) -> list[dict[str, Any]]:
    """The statistics table as one dict per variant, best first."""
    return comparison.table.to_dict("records")


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


def signed(value: Any) -> str:
    text = fmt_num(value)
    return text if text.startswith(("-", DASH)) else f"+{text}"


# Past this many seeds the observed effect is as good as none: say so instead of a number.
SEEDS_SHOWN = 10_000


def fmt_seeds(value: Any) -> str:
    """Seeds needed to detect the observed effect: a count, ">10000", or "∞" for no effect."""
    if missing(value):
        return DASH
    needed = float(value)
    if math.isfinite(needed) and needed > SEEDS_SHOWN:
        return f">{SEEDS_SHOWN}"
    return fmt_num(needed)


def verdict_text(row: Mapping[str, Any]) -> str:
    """The verdict, with the seeds needed appended when there is no evidence yet."""
    verdict = str(row.get("verdict", ""))
    needed = row.get("seeds_needed")
    if verdict.startswith("no evidence") and not missing(needed):
        if not math.isfinite(float(needed)):
            return verdict + " (d = 0)"
        shown = fmt_seeds(needed)
        verdict += f" ({shown} needed)" if shown.startswith(">") else f" (~{shown} needed)"
    return verdict
