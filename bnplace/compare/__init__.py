"""`bnplace compare`: the runs of a sweep in; statistics, plots, a report and verdicts out.

The package faces outward only: `compare_runs` (from the store) and `compare_frames` (from a
sweep already read: `frame.SweepData`) make a `Comparison`; `render_table` and `render_text`
render it. The pipeline is `bnplace.compare.pipeline`; its steps are the other modules
(`frame`, `stats`, `paired`, `pooled`, `rows`, `side`, `record`, `plots`, `table`, `report`,
`datasets_report`, `forest`, `format`, `blocks`). Nothing heavy is imported until a function
is called.
"""

from bnplace.compare.comparison import Comparison
from bnplace.compare.pipeline import compare_frames, compare_runs, render_table, render_text

__all__ = ["Comparison", "compare_frames", "compare_runs", "render_table", "render_text"]
