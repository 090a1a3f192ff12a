"""Collect every study's verdicts into one Markdown table (printed; pasted into README.md).

In: experiments/<study>/report-<dataset>/comparison.json, written by `bnplace compare --out`.
Out: a table with, per study and dataset, the seeds, the best variant, each non-baseline
variant's verdict with its paired difference, 95% CI and effect size, and the cost per epoch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.{digits}g}" if digits else f"{value:g}"


def rows() -> list[str]:
    lines = [
        "| study | data | seeds | metric | variant vs baseline | Δ [95% CI] | d_z | verdict "
        "| s/epoch (variant / baseline) |",
        "| :--- | :--- | ---: | :--- | :--- | :--- | ---: | :--- | :--- |",
    ]
    for path in sorted(HERE.glob("*/report-*/comparison.json")):
        data = json.loads(path.read_text())
        study = path.parent.parent.name
        dataset = path.parent.name.removeprefix("report-")
        variants = data["variants"]
        base = next(v for v in variants if v["is_baseline"])
        seeds = max(v["n_trials"] for v in variants)
        for v in sorted(variants, key=lambda v: v["order"]):
            if v["is_baseline"]:
                continue
            if "delta_pct" in v:  # reports since the verdict rule of issue 11: relative effects
                delta = (
                    f"{_num(v['delta_pct'])}% [{_num(v['delta_pct_low'])}, "
                    f"{_num(v['delta_pct_high'])}]"
                )
            else:  # older reports: raw mean difference and bootstrap CI
                delta = f"{_num(v['diff'])} [{_num(v['diff_ci_low'])}, {_num(v['diff_ci_high'])}]"
            cost = f"{v.get('time_per_epoch_s', math.nan):.3f} / {base['time_per_epoch_s']:.3f}"
            lines.append(
                f"| {study} | {dataset} | {seeds} | {data['metric']} | {v['variant']} vs "
                f"{base['variant']} | {delta} | {_num(v.get('effect_size', math.nan), 2)} | "
                f"{v['verdict']} | "
                f"{cost} |"
            )
    return lines


if __name__ == "__main__":
    print("\n".join(rows()))
