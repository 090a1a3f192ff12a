"""Data for every trial: sources (csv, synthetic, packaged), windowing, splits, scaling.

In: the config's `data` section (a `DataConfig`) and the config file's folder. Out: a
`Dataset` from `prepare(section, base_dir)`: scaled train/val/test series (forecasting) or
sequences (classification), windows on demand as zero-copy views, the persistence baseline,
the inverse target scaling, a fingerprint for trial keys and a summary for `bnplace data`.
Importing this package is cheap (numpy only); pandas, scipy and the optional packages are
imported when a source needs them, TensorFlow only by `bnplace.data.feed`.
"""

from __future__ import annotations

from bnplace.data.dataset import SPLITS, Dataset, SplitData, format_summary
from bnplace.data.prepare import prepare

__all__ = ["SPLITS", "Dataset", "SplitData", "format_summary", "prepare"]
