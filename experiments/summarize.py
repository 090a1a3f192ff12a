"""Every pooled comparison of every study as one Markdown table (printed; pasted into README.md).

In: experiments/<study>/report/comparison.json, written by `bnplace compare --out` for a
study over several datasets. Out: per study and comparison, the datasets pooled (k), the
pooled Δ% with its interval, the prediction interval for a new dataset, I², the verdict as
`bnplace compare` reads it, the per-dataset verdicts (better/worse/equivalent/inconclusive
counts) and the seeds each dataset used. The quoted answers are checked by answers.py; this
table is the full record behind them.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

from answers import pct  # the one spelling of a quoted effect (this folder is on sys.path)

HERE = Path(__file__).resolve().parent


def _seeds(report: dict) -> str:
    """The range of paired seeds per dataset over the study's comparisons."""
    counts = {int(r["n_pairs"]) for rows in report["per_dataset"].values() for r in rows}
    if not counts:
        return "—"
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}–{high}"


def rows() -> list[str]:
    lines = [
        "| study | comparison (a vs b) | k | pooled Δ [interval] | PI | I² | verdict "
        "| per dataset | seeds |",
        "| :--- | :--- | ---: | :--- | :--- | ---: | :--- | :--- | :--- |",
    ]
    for path in sorted(HERE.glob("*/report/comparison.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        study = path.parent.parent.name
        for row in report["pooled"]:
            per = Counter(
                r["verdict"]
                for rows in report["per_dataset"].values()
                for r in rows
                if r["comparison"] == row["comparison"]
            )
            i2 = row.get("i2")
            lines.append(
                f"| [{study}]({study}/README.md) | {row['comparison']} | {row['k']} | "
                f"{pct(row['delta_pct'])} [{pct(row['delta_pct_low'])}, "
                f"{pct(row['delta_pct_high'])}] | [{pct(row['pi_low'])}, "
                f"{pct(row['pi_high'])}] | "
                f"{'n/a' if i2 is None or not math.isfinite(i2) else f'{100 * i2:.0f}%'} | "
                f"{row['reading']} | "
                + ", ".join(f"{n} {v}" for v, n in sorted(per.items()))
                + f" | {_seeds(report)} |"
            )
    return lines


if __name__ == "__main__":
    print("\n".join(rows()))
