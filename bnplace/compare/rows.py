"""The comparison row: one comparison of the family, typed.

In: what `compare.paired` (one dataset, or each dataset of several) and `compare.pooled` (the
pooled row over datasets) compute for a comparison. Out: a frozen `ComparisonRow` (a
`PooledRow` adds the meta-analysis columns), the one shape every reader of a comparison uses —
the terminal and contrast tables, the reports, the records written to MLflow, the forest plots
and comparison.json — and the DataFrame of a family (`frame_of`), whose columns are the fields
in order. Pure, and light to import (`compare.comparison` builds on `Verdicts`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import pandas as pd

    from bnplace.stats.verdicts import Contrast


@dataclass(frozen=True)
class ComparisonRow:
    """One comparison of the family: "a vs b" (an interaction: a's effect over b against a2's
    over b2), its effect in percent with the exact interval, p-values, the verdict and, in a
    sequential design, the look it stands at. NaN where a number does not apply."""

    comparison: str
    origin: str  # "baseline" | "contrast" | "interaction"
    a: str
    b: str
    a2: str  # "" unless an interaction
    b2: str
    scale: str
    n_pairs: int
    n_failed_a: float  # an int, NaN on a pooled row
    n_failed_b: float
    diff: float
    delta_pct: float
    delta_pct_low: float
    delta_pct_high: float
    p_value: float
    p_adjusted: float
    level: float
    reachable: bool
    verdict: str
    within_margin: bool
    excluded: str
    seed_sd: float
    p_failures: float
    look: float  # 1-based; NaN in a fixed design
    look_seeds: int
    decided: bool | None  # None: a fixed design

    def get(self, name: str, default: Any = None) -> Any:
        """A field by name, as a table row's mapping would give it (the shared formatters read
        variant-table rows and comparison rows alike)."""
        return getattr(self, name, default)

    def record(self) -> dict[str, Any]:
        """The row as {column: value}, in column order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class PooledRow(ComparisonRow):
    """A comparison pooled over datasets (`compare.pooled`): the random-effects interval, the
    prediction interval for a new dataset, τ², I², the per-dataset verdicts counted and the
    sign test of direction."""

    k: int
    n_excluded: int
    pi_low: float
    pi_high: float
    pi_level: float
    tau2: float
    i2: float
    new_dataset: bool  # better/worse predicted on the same side for a new dataset
    reading: str
    n_better: int
    n_worse: int
    n_equivalent: int
    n_undecided: int
    sign_p: float
    direction: str

    # The column order of the pooled family (comparison.json and the logged table keep it).
    ORDER: ClassVar[tuple[str, ...]] = (
        "comparison", "origin", "a", "b", "a2", "b2", "scale", "k", "n_pairs", "n_failed_a",
        "n_failed_b", "n_excluded", "diff", "delta_pct", "delta_pct_low", "delta_pct_high",
        "pi_low", "pi_high", "pi_level", "tau2", "i2", "p_value", "p_adjusted", "level",
        "reachable", "verdict", "new_dataset", "reading", "n_better", "n_worse", "n_equivalent",
        "n_undecided", "sign_p", "direction", "within_margin", "excluded", "seed_sd",
        "p_failures", "look", "look_seeds", "decided",
    )  # fmt: skip

    def record(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.ORDER}


class Verdicts:
    """What a per-variant table with its comparison family offers (`compare.stats.Statistics`
    and `compare.comparison.Comparison`): the family as a DataFrame and each variant's
    verdict."""

    table: pd.DataFrame  # one row per variant, with its verdict
    rows: tuple[ComparisonRow, ...]  # the comparison family

    @property
    def comparisons(self) -> pd.DataFrame:
        """The comparison family as a DataFrame, one row per comparison (`frame_of`)."""
        return frame_of(self.rows)

    @property
    def verdicts(self) -> dict[str, str]:
        """{variant name: verdict} ("baseline", "better", "worse", "equivalent", "inconclusive")."""
        return dict(zip(self.table["variant"], self.table["verdict"], strict=True))


def columns(row_type: type[ComparisonRow]) -> tuple[str, ...]:
    """The columns of a family of `row_type` rows, in order."""
    if issubclass(row_type, PooledRow):
        return PooledRow.ORDER
    return tuple(f.name for f in fields(row_type))


def contrast_fields(c: Contrast) -> dict[str, Any]:
    """The fields that name a comparison, from its contrast."""
    return {"comparison": c.name, "origin": c.origin, "a": c.a, "b": c.b, "a2": c.a2, "b2": c.b2}


def judged_fields(p: float, m: int, verdict: str, low: float, high: float) -> dict[str, Any]:
    """The fields every verdict row derives alike: the Bonferroni-adjusted p over a family of
    `m`, the verdict, and what an inconclusive interval [low, high] (in percent) excludes."""
    from bnplace.stats.verdicts import INCONCLUSIVE, excluded_text

    return {
        "p_value": p,
        "p_adjusted": min(1.0, p * m) if math.isfinite(p) else math.nan,
        "verdict": verdict,
        "excluded": excluded_text(low, high) if verdict == INCONCLUSIVE else "",
    }


def frame_of(rows: Sequence[ComparisonRow]) -> pd.DataFrame:
    """The family as a DataFrame: one row per comparison, the columns of its row type (of a
    pooled family `PooledRow.ORDER`; an empty family has `ComparisonRow`'s)."""
    import pandas as pd

    row_type = type(rows[0]) if rows else ComparisonRow
    return pd.DataFrame([r.record() for r in rows], columns=list(columns(row_type)))


def of_origin(rows: Iterable[ComparisonRow], *, baseline: bool) -> list[ComparisonRow]:
    """The baseline comparisons (`baseline=True`) or the declared ones (contrasts and
    interactions)."""
    return [r for r in rows if (r.origin == "baseline") == baseline]


def by_name(rows: Iterable[ComparisonRow]) -> Mapping[str, ComparisonRow]:
    return {r.comparison: r for r in rows}
