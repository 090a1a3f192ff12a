"""The typed comparison row (`bnplace.compare.rows`): every field is a column of the family's
DataFrame, in order, and a pooled row keeps the pooled family's column order."""

from __future__ import annotations

import math
from dataclasses import fields

from bnplace.compare.rows import ComparisonRow, PooledRow, columns, frame_of, of_origin


def _row(origin: str, name: str) -> ComparisonRow:
    return ComparisonRow(
        comparison=name, origin=origin, a="x", b="y", a2="", b2="", scale="log_ratio",
        n_pairs=8, n_failed_a=0, n_failed_b=1, diff=0.1, delta_pct=3.0, delta_pct_low=-1.0,
        delta_pct_high=7.0, p_value=0.2, p_adjusted=0.4, level=0.975, reachable=True,
        verdict="inconclusive", within_margin=False, excluded="", seed_sd=0.05,
        p_failures=math.nan, look=math.nan, look_seeds=8, decided=None,
    )  # fmt: skip


def test_every_field_is_a_column_in_order_and_the_pooled_order_covers_its_fields() -> None:
    assert set(PooledRow.ORDER) == {f.name for f in fields(PooledRow)}
    assert len(PooledRow.ORDER) == len(fields(PooledRow))
    rows = [_row("baseline", "x vs y"), _row("contrast", "x vs z")]
    frame = frame_of(rows)
    assert (
        list(frame.columns)
        == [f.name for f in fields(ComparisonRow)]
        == list(columns(ComparisonRow))
    )
    assert frame["n_failed_b"].tolist() == [1, 1] and frame["decided"].tolist() == [None, None]
    assert [r.comparison for r in of_origin(rows, baseline=False)] == ["x vs z"]
    assert rows[0].get("verdict") == "inconclusive" and rows[0].get("k") is None
