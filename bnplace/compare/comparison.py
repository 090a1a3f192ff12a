"""The result of `bnplace compare`: one frozen `Comparison` per sweep and metric.

In: what `bnplace.compare.pipeline` computed. Out: the per-variant table (best first, with
verdicts), the family's comparisons, failures, the Friedman result, notes, the trials and
history tables, the files written and, with several datasets, the per-dataset view. Data only:
the renderers (`table`, `report`, `datasets_report`, `format`) read it and nothing here calls
them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bnplace.compare.rows import Verdicts

if TYPE_CHECKING:
    import pandas as pd

    from bnplace.compare.pooled import DatasetsView
    from bnplace.compare.rows import ComparisonRow
    from bnplace.compare.search import SearchView
    from bnplace.compare.stats import FriedmanResult
    from bnplace.stats.verdicts import Design
    from bnplace.store.read import SweepInfo


@dataclass(frozen=True, eq=False)
class Comparison(Verdicts):
    """The result of comparing the variants of one sweep on one metric."""

    sweep: SweepInfo
    metric: str
    direction: str  # "min" | "max"
    baseline: str  # variant name
    table: pd.DataFrame  # one row per variant, best first (columns: see stats.compute_statistics)
    rows: tuple[ComparisonRow, ...]  # one per comparison of the family (see paired.compare_pairs)
    failures: pd.DataFrame  # variant, reason, n
    friedman: FriedmanResult | None
    trials: pd.DataFrame  # one row per trial (see frame.load_sweep)
    history: pd.DataFrame  # variant, variant_id, seed, run_id, epoch, metric, value
    notes: tuple[str, ...]
    design: Design
    merged_sweeps: tuple[str, ...] = ()
    files: Mapping[str, Path] = field(default_factory=dict)  # written under out_dir
    artifacts: tuple[str, ...] = ()  # artifact paths logged to the sweep run
    # several datasets: per-dataset statistics, pooled comparisons, ranks (`table` and
    # `comparisons` are then the pooled ones; see bnplace.compare.pooled)
    datasets: DatasetsView | None = None
    search: SearchView | None = None  # a search: its selection and eliminations

    @property
    def best(self) -> str:
        """The variant with the best mean of the metric."""
        return str(self.table["variant"].iloc[0])
