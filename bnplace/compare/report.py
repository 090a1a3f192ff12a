"""Documents of a comparison: csv / json / Markdown text and the report files.

In: a `bnplace.compare.Comparison` (statistics table, failures, Friedman result, notes, sweep
metadata, plot paths). Out: text in markdown, csv or json, and the report files: `report.md`
(plots referenced by relative path) and a self-contained `report.html` (plots embedded as base64
PNG). Pure apart from `write_reports`, which writes the files it is given a folder for. The
terminal table is `bnplace.compare.table`; number formats are `bnplace.compare.format`.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from bnplace.compare.format import (
    DASH,
    fmt_ci,
    fmt_num,
    fmt_p,
    fmt_seeds,
    missing,
    records,
    signed,
)
from bnplace.compare.stats import DIAGNOSTICS, range_labels
from bnplace.compare.table import display_columns
from bnplace.errors import BnplaceError

if TYPE_CHECKING:
    from bnplace.compare import Comparison
    from bnplace.compare.stats import FriedmanResult

TextFormat = Literal["markdown", "csv", "json"]
FORMATS: tuple[str, ...] = ("markdown", "csv", "json")

PLOT_CAPTIONS = {
    "final_metric": "Final metric per variant: one point per seed, grey lines join the same seed "
    "across variants, black diamond = mean with 95% bootstrap CI.",
    "learning_curves": "Learning curves: mean over seeds, band = ±1 sd within the seeds' range "
    "(train and validation).",
    "heatmap": "Mean metric over the two sweep axes.",
    "cost_quality": "Cost vs quality: mean time per epoch against the mean metric (95% CI).",
}


# ---------------------------------------------------------------- text formats


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], aligns: Sequence[str]
) -> str:
    """A GitHub-flavoured Markdown table."""
    marks = {"left": ":---", "right": "---:", "center": ":---:"}
    lines = [
        "| " + " | ".join(_md_escape(h) for h in headers) + " |",
        "| " + " | ".join(marks.get(a, "---") for a in aligns) + " |",
    ]
    lines += ["| " + " | ".join(_md_escape(str(c)) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _summary_md(comparison: Comparison) -> str:
    columns = display_columns(comparison)
    rows = [[fn(r) for _h, fn, _a in columns] for r in records(comparison)]
    return markdown_table([h for h, _f, _a in columns], rows, [a for _h, _f, a in columns])


def _jsonable(value: Any) -> Any:
    if isinstance(value, float | int) and not isinstance(value, bool):
        x = float(value)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return int(value) if isinstance(value, int) else x
    if hasattr(value, "item"):  # numpy scalar
        return _jsonable(value.item())
    if value is pd.NA or value is None:
        return None
    return value


def to_dict(comparison: Comparison) -> dict[str, Any]:
    """The comparison as plain JSON-able data (NaN -> null, infinity -> "inf")."""
    sweep = comparison.sweep
    fr = comparison.friedman
    return {
        "experiment": sweep.experiment,
        "sweep_run_id": sweep.run_id,
        "sweep_run_name": sweep.run_name,
        "merged_sweeps": list(comparison.merged_sweeps),
        "task": sweep.task,
        "metric": comparison.metric,
        "direction": comparison.direction,
        "baseline": comparison.baseline,
        "alpha": comparison.options.alpha,
        "variants": [
            {k: _jsonable(v) for k, v in row.items()} for row in comparison.table.to_dict("records")
        ],
        "failures": [
            {k: _jsonable(v) for k, v in row.items()}
            for row in comparison.failures.to_dict("records")
        ],
        "friedman": None
        if fr is None
        else {
            "statistic": _jsonable(fr.statistic),
            "pvalue": _jsonable(fr.pvalue),
            "n_seeds": fr.n_seeds,
            "n_variants": fr.n_variants,
            "critical_difference": _jsonable(fr.critical_difference),
            "mean_ranks": {
                str(v): _jsonable(r)
                for v, r in zip(fr.ranks["variant"], fr.ranks["mean_rank"], strict=True)
            },
        },
        "notes": list(comparison.notes),
        "files": {k: str(v) for k, v in comparison.files.items()},
        "artifacts": list(comparison.artifacts),
    }


def render_text(comparison: Comparison, fmt: str) -> str:
    """The comparison as `fmt`: "markdown" (the report without plots), "csv" (the statistics
    table, one row per variant, best first) or "json" (`to_dict`)."""
    if fmt == "markdown":
        return markdown_report(comparison, plots={})
    if fmt == "csv":
        return comparison.table.to_csv(index=False)
    if fmt == "json":
        return json.dumps(to_dict(comparison), indent=2, ensure_ascii=False) + "\n"
    raise BnplaceError(f"unknown output format {fmt!r}; expected one of: {', '.join(FORMATS)}")


# ---------------------------------------------------------------- report sections


def _meta_lines(comparison: Comparison) -> list[tuple[str, str]]:
    s = comparison.sweep
    seeds = (
        sorted({int(x) for x in comparison.trials["seed"].dropna()})
        if len(comparison.trials)
        else []
    )
    lines = [
        ("experiment", s.experiment),
        ("sweep run", f"{s.run_name} ({s.run_id})"),
        ("task", s.task or DASH),
        (
            "metric",
            f"{comparison.metric} ({'lower' if comparison.direction == 'min' else 'higher'} "
            "is better)",
        ),
        ("baseline", comparison.baseline),
        ("seeds", ", ".join(map(str, seeds)) or DASH),
        ("variants", str(len(comparison.table))),
    ]
    if len(comparison.merged_sweeps) > 1:
        lines.append(("merged sweeps", ", ".join(comparison.merged_sweeps)))
    lines.append(("tracking store", s.tracking_uri))
    lines.append(("generated", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")))
    return lines


def _paired_table(comparison: Comparison) -> tuple[list[str], list[list[str]], list[str]]:
    headers = [
        "variant", "pairs", "Δ mean", "Δ median", "Δ 95% CI", "p Wilcoxon", "p paired t",
        "p Holm", "d_z", "seeds needed", "verdict",
    ]  # fmt: skip
    rows = []
    for r in records(comparison):
        if r["is_baseline"]:
            continue
        rows.append(
            [
                str(r["variant"]),
                str(int(r["n_pairs"])),
                signed(r["diff"]),
                signed(r["diff_median"]),
                fmt_ci(r["diff_ci_low"], r["diff_ci_high"]),
                fmt_p(r["p_wilcoxon"]),
                fmt_p(r["p_ttest"]),
                fmt_p(r["p_holm"]),
                fmt_num(r["effect_size"], 3),
                fmt_seeds(r["seeds_needed"]),
                str(r["verdict"]),
            ]
        )
    return headers, rows, ["left"] + ["right"] * 9 + ["left"]


def _side_table(comparison: Comparison) -> tuple[list[str], list[list[str]], list[str]] | None:
    wanted = [
        ("persistence", "persistence (last value)"),
        ("time_per_epoch_s", "s/epoch"),
        ("train_time_s", "train s"),
        ("epochs_run", "epochs"),
        ("params", "params"),
        ("bn_shift_max", "BN moving/real var (max) [seed range]"),
        ("bn_train_vs_infer_max", "BN train/infer var (max) [seed range]"),
        ("infer_vs_train_loss", "inference/training-mode loss on train data [seed range]"),
    ]
    present = [(c, h) for c, h in wanted if c in comparison.table.columns]
    if not present:
        return None

    def cell(row: Mapping[str, Any], column: str) -> str:
        lo, hi = range_labels(column)
        if column in DIAGNOSTICS and not missing(row.get(lo)):
            return f"{fmt_num(row[column])} [{fmt_num(row[lo], 3)}, {fmt_num(row[hi], 3)}]"
        return fmt_num(row[column])

    rows = [
        [str(r["variant"]), fmt_num(r["mean"])] + [cell(r, c) for c, _h in present]
        for r in records(comparison)
    ]
    headers = ["variant", f"{comparison.metric} mean"] + [h for _c, h in present]
    return headers, rows, ["left"] + ["right"] * (len(headers) - 1)


def _rank_rows(fr: FriedmanResult) -> list[list[str]]:
    pairs = zip(fr.ranks["variant"], fr.ranks["mean_rank"], strict=True)
    return [[str(v), fmt_num(r, 3)] for v, r in pairs]


def _failure_rows(comparison: Comparison) -> list[list[str]]:
    return [
        [str(r["variant"]), str(r["reason"]), str(int(r["n"]))]
        for r in comparison.failures.to_dict("records")
    ]


def _how_to_read(comparison: Comparison) -> list[str]:
    alpha = comparison.options.alpha
    return [
        "Δ is variant − baseline on the same seed; only seeds finished by both enter the paired "
        "tests. A failed seed never enters the statistics; it is counted under *failed*.",
        f"**better / worse**: Wilcoxon signed-rank p, Holm-corrected across the variants, below "
        f"{alpha:g}, and a {comparison.options.confidence:.0%} bootstrap CI (BCa, "
        f"{comparison.options.n_boot} resamples) of the mean difference that excludes 0. "
        "The paired t-test is a second opinion.",
        '**no evidence at n seeds** is not "no difference": *seeds needed* is the number of '
        f"seeds at which a paired test would detect the observed effect size d_z (mean / sd of "
        f"the differences) with power {comparison.options.power:.0%} at α = {alpha:g}.",
    ]


def markdown_report(comparison: Comparison, plots: Mapping[str, str]) -> str:
    """The report in Markdown; `plots` maps plot names to paths relative to the report."""
    out: list[str] = [f"# {comparison.sweep.experiment}: {comparison.metric}", ""]
    out += [f"- **{k}**: {v}" for k, v in _meta_lines(comparison)]
    out += ["", "## Results (best first)", "", _summary_md(comparison), ""]
    out += ["### How to read this", ""] + [f"- {line}" for line in _how_to_read(comparison)]
    headers, rows, aligns = _paired_table(comparison)
    if rows:
        out += ["", f"## Paired comparison with {comparison.baseline}", ""]
        out += [markdown_table(headers, rows, aligns)]
    fr = comparison.friedman
    if fr is not None:
        out += ["", "## Friedman test and mean ranks", ""]
        out += [
            f"χ² = {fmt_num(fr.statistic, 4)}, p = {fmt_p(fr.pvalue)} over {fr.n_seeds} seeds "
            f"finished by all {fr.n_variants} variants. Rank 1 is best; two mean ranks differ "
            f"(Nemenyi, α = {comparison.options.alpha:g}) when they are more than "
            f"CD = {fmt_num(fr.critical_difference, 3)} apart.",
            "",
            markdown_table(
                ["variant", "mean rank"],
                _rank_rows(fr),
                ["left", "right"],
            ),
        ]  # fmt: skip
    side = _side_table(comparison)
    if side is not None:
        out += ["", "## Cost, persistence and diagnostics (means over finished seeds)", ""]
        out += [markdown_table(*side)]
    fails = _failure_rows(comparison)
    if fails:
        out += ["", "## Failed trials", ""]
        out += [markdown_table(["variant", "reason", "trials"], fails, ["left", "left", "right"])]
    if comparison.notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in comparison.notes]
    if plots:
        out += ["", "## Plots", ""]
        for name, rel in plots.items():
            out += [f"![{name}]({rel})", "", f"*{PLOT_CAPTIONS.get(name, name)}*", ""]
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem}th{background:#f3f3f3}
td.r{text-align:right;font-variant-numeric:tabular-nums}
.better{color:#17803d;font-weight:bold}.worse{color:#b42318;font-weight:bold}
.noev{color:#8a6d00}.baseline{color:#0b6e99}
figure{margin:1.5rem 0}img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}ul.meta{list-style:none;padding:0}
"""


def _html_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    aligns: Sequence[str],
    classes: Sequence[str] | None = None,
) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, cell in enumerate(row):
            cls = ["r"] if aligns[j] == "right" else []
            if classes and headers[j] == "verdict" and classes[i]:
                cls.append(classes[i])
            attr = f' class="{" ".join(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{html.escape(str(cell))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _verdict_class(verdict: str) -> str:
    if verdict in ("better", "worse", "baseline"):
        return verdict
    return "noev" if verdict.startswith("no evidence") else ""


def html_report(comparison: Comparison, plots: Mapping[str, Path]) -> str:
    """The report as one self-contained HTML page; plots are embedded as base64 PNG."""
    title = f"{comparison.sweep.experiment}: {comparison.metric}"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><ul class='meta'>",
    ]
    parts += [
        f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in _meta_lines(comparison)
    ]
    parts.append("</ul><h2>Results (best first)</h2>")
    columns = display_columns(comparison)
    rows = records(comparison)
    parts.append(
        _html_table(
            [h for h, _f, _a in columns],
            [[fn(r) for _h, fn, _a in columns] for r in rows],
            [a for _h, _f, a in columns],
            [_verdict_class(str(r["verdict"])) for r in rows],
        )
    )
    parts.append("<h3>How to read this</h3><ul>")
    parts += [f"<li>{_md_inline(line)}</li>" for line in _how_to_read(comparison)]
    parts.append("</ul>")
    headers, prow, aligns = _paired_table(comparison)
    if prow:
        parts.append(f"<h2>Paired comparison with {html.escape(comparison.baseline)}</h2>")
        parts.append(_html_table(headers, prow, aligns, [_verdict_class(r[-1]) for r in prow]))
    fr = comparison.friedman
    if fr is not None:
        parts.append("<h2>Friedman test and mean ranks</h2>")
        parts.append(
            f"<p>χ² = {fmt_num(fr.statistic, 4)}, p = {fmt_p(fr.pvalue)} over {fr.n_seeds} seeds "
            f"finished by all {fr.n_variants} variants. Rank 1 is best; two mean ranks differ "
            f"(Nemenyi) when more than CD = {fmt_num(fr.critical_difference, 3)} apart.</p>"
        )
        parts.append(
            _html_table(
                ["variant", "mean rank"],
                _rank_rows(fr),
                ["left", "right"],
            )
        )  # fmt: skip
    side = _side_table(comparison)
    if side is not None:
        parts.append("<h2>Cost, persistence and diagnostics (means over finished seeds)</h2>")
        parts.append(_html_table(*side))
    fails = _failure_rows(comparison)
    if fails:
        parts.append("<h2>Failed trials</h2>")
        parts.append(_html_table(["variant", "reason", "trials"], fails, ["left", "left", "right"]))
    if comparison.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{html.escape(n)}</li>" for n in comparison.notes]
        parts.append("</ul>")
    if plots:
        parts.append("<h2>Plots</h2>")
        for name, path in plots.items():
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            caption = html.escape(PLOT_CAPTIONS.get(name, name))
            parts.append(
                f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{caption}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _md_inline(text: str) -> str:
    """Escape for HTML, then turn **bold** and *italic* into tags."""
    import re

    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return re.sub(r"\*(.+?)\*", r"<i>\1</i>", out)


def write_reports(
    comparison: Comparison, out_dir: Path, plots: Mapping[str, Path]
) -> dict[str, Path]:
    """Write report.md, report.html, statistics.csv and comparison.json into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rel = {}
    for name, path in plots.items():
        try:
            rel[name] = Path(path).resolve().relative_to(out_dir.resolve()).as_posix()
        except ValueError:
            rel[name] = Path(path).resolve().as_uri()
    files = {
        "report_md": out_dir / "report.md",
        "report_html": out_dir / "report.html",
        "statistics_csv": out_dir / "statistics.csv",
        "comparison_json": out_dir / "comparison.json",
    }
    files["report_md"].write_text(markdown_report(comparison, rel), encoding="utf-8")
    files["report_html"].write_text(html_report(comparison, plots), encoding="utf-8")
    files["statistics_csv"].write_text(render_text(comparison, "csv"), encoding="utf-8")
    files["comparison_json"].write_text(render_text(comparison, "json"), encoding="utf-8")
    return files
