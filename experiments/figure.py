"""One figure across every study: each pooled comparison's effect, and each dataset's.

In: experiments/<study>/report/comparison.json (written by `bnplace compare --out` for a study
over several datasets). Out: experiments/summary.png (or the path given): one row per pooled
comparison, grouped by study, the v3 studies (15 real series, learning rate chosen per trial)
first; the pooled Δ% as a square with its interval (at the Bonferroni level of the study's
pooled family) coloured by its verdict, each dataset's mean Δ% as a small dot, and the ±margin
band shaded. The x axis is the relative change of the error (a − b; left of 0 is better for a)
on a symmetric log scale, since a few effects reach hundreds of percent. A search (its
comparison.json has a `search` section) is left out: its answer is a selected set.

Run: `cd experiments && ../.venv/bin/python figure.py` (matplotlib, no TensorFlow).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLOURS = {"better": "#1a9850", "worse": "#d73027", "equivalent": "#4575b4"}
UNDECIDED = "#777777"


def _studies(root: Path) -> list[tuple[str, dict]]:
    """(study, report) for every study with a pooled report; v3 studies (`v3-` experiments)
    first, then the rest, each group by name."""
    found = []
    for path in sorted(root.glob("*/report/comparison.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        # a search's pooled rows set every placement against the baseline: its answer is the
        # selected set and ranking (its own report), not one question's effect
        if report.get("pooled") and not report.get("search"):
            found.append((path.parent.parent.name, report))
    return sorted(found, key=lambda item: (not item[1]["experiment"].startswith("v3-"), item[0]))


def _finite(*values: object) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def draw(root: Path, out: Path) -> int:
    """Write the figure; the number of pooled comparisons drawn."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    rows: list[tuple[str, dict, list[float], float]] = []
    for study, report in _studies(root):
        margin = 100 * float(report["design"]["margin"])
        by_comparison: dict[str, list[float]] = {}
        for effect in report.get("dataset_effects", []):
            if _finite(effect.get("delta_pct")):
                by_comparison.setdefault(effect["comparison"], []).append(effect["delta_pct"])
        for pooled in report["pooled"]:
            label = f"{study}: {pooled['comparison']}".replace("train.", "")  # fits the margin
            rows.append((label, pooled, by_comparison.get(pooled["comparison"], []), margin))
    fig, ax = plt.subplots(figsize=(12, 0.28 * len(rows) + 1.6))
    for y, (_label, pooled, datasets, margin) in enumerate(rows):
        ax.plot([-margin, margin], [y, y], color="#dddddd", lw=6, solid_capstyle="butt", zorder=1)
        ax.scatter(datasets, [y] * len(datasets), s=9, color="#555555", alpha=0.6, zorder=2)
        colour = COLOURS.get(pooled["verdict"], UNDECIDED)
        if _finite(pooled.get("delta_pct_low"), pooled.get("delta_pct_high")):
            ax.plot(
                [pooled["delta_pct_low"], pooled["delta_pct_high"]], [y, y], color=colour, lw=1.8
            )
        if _finite(pooled.get("delta_pct")):
            ax.scatter([pooled["delta_pct"]], [y], marker="s", s=30, color=colour, zorder=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xscale("symlog", linthresh=20)
    ax.set_xlim(-100, 1000)  # a change of the error is above -100%; wider intervals run off
    ax.set_yticks(range(len(rows)), [label for label, *_ in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("Δ% of the test error, a vs b (left of 0: a better); grey band: ±margin")
    ax.set_title("Pooled comparisons: interval and each dataset's mean", fontsize=10)
    handles = [
        plt.Line2D([], [], color=c, marker="s", lw=1.8, label=v) for v, c in COLOURS.items()
    ] + [plt.Line2D([], [], color=UNDECIDED, marker="s", lw=1.8, label="inconclusive")]
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return len(rows)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "summary.png"
    print(f"{draw(HERE, target)} pooled comparisons drawn to {target}")
