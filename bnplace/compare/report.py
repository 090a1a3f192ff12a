"""Documents of a comparison: csv / json / Markdown text and the report files.

In: a `bnplace.compare.Comparison` (statistics table, failures, Friedman result, notes, sweep
metadata, plot paths). Out: text in markdown, csv or json, and the report files: `report.md`
(plots referenced by relative path) and a self-contained `report.html` (plots embedded as base64
PNG). Pure apart from `write_reports`, which writes the files it is given a folder for. The
terminal table is `bnplace.compare.table`; number formats are `bnplace.compare.format`.

Why one module past ~450 lines: the report is described once, as sections of blocks
(`sections`), and its two renderings (Markdown and HTML) and the JSON/CSV text sit beside that
description so that a section and its rendering read together; the several-datasets sections
already live apart (`compare.datasets_report`).
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

from bnplace.compare.blocks import Grid, Section
from bnplace.compare.datasets_report import rule_for
from bnplace.compare.datasets_report import sections as dataset_sections
from bnplace.compare.datasets_report import to_dict as datasets_dict
from bnplace.compare.format import (
    BASELINE_NOTES,
    DASH,
    effect_text,
    failed_text,
    fmt_num,
    fmt_p,
    fmt_pct,
    level_text,
    missing,
    rows_of,
    verdict_text,
)
from bnplace.compare.search import SearchView, search_section
from bnplace.compare.side import CHOSEN, DIAGNOSTICS, range_labels
from bnplace.compare.table import display_columns
from bnplace.names.errors import BnplaceError
from bnplace.names.metrics import BASELINES
from bnplace.stats.verdicts import T

if TYPE_CHECKING:
    from bnplace.compare.comparison import Comparison

TextFormat = Literal["markdown", "csv", "json"]
FORMATS: tuple[str, ...] = ("markdown", "csv", "json")

PLOT_CAPTIONS = {
    "final_metric": "Final metric per variant: one point per seed, grey lines join the same seed "
    "across variants, black diamond = mean with its 95% t-interval. With several datasets each "
    "point is in % of the baseline's mean on its own dataset (never a raw mean across scales).",
    "learning_curves": "Learning curves: mean over seeds, band = ±1 sd within the seeds' range "
    "(train and validation).",
    "heatmap": "Mean metric over the two sweep axes (several datasets: % of the baseline's mean "
    "on each dataset).",
    "cost_quality": "Cost vs quality: mean time per epoch against the mean metric (95% CI).",
    "forest": "Forest plot: each dataset's Hodges–Lehmann Δ% with the interval its own verdict "
    "was read from (coloured by that verdict: green better, red worse, blue equivalent, grey "
    "inconclusive), the pooled effect (diamond: its interval at the family's level) and the "
    "prediction interval for a new dataset at the same level (line).",
    "critical_difference": "Mean ranks over datasets; bars join variants closer than Nemenyi's "
    "critical difference (Demšar 2006).",
    "search_survivors": "Search: placements still in the race after each look.",
    "search_sites": "Search: each site's options against the site's baseline, averaged over "
    "the other sites, on the race's first stage (square: mean Δ%; line: its interval at the "
    "Bonferroni level over the effects; coloured by verdict: red worse, green better, blue "
    "equivalent, grey inconclusive; dashed: ±margin).",
}


def _caption(name: str) -> str:
    """A plot's caption; `forest_2` (one plot per comparison) has its family's."""
    return PLOT_CAPTIONS.get(name) or PLOT_CAPTIONS.get(name.rsplit("_", 1)[0], name)


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


def answer_markdown(comparison: Comparison) -> str:
    """The answer as the sweep run's description in the MLflow UI (its Markdown note): every
    variant with its Δ% against the baseline and its verdict, and the rule that reads them."""
    columns = display_columns(comparison, compact=True)
    rows = [[fn(r) for _h, fn, _a in columns] for r in rows_of(comparison.table)]
    title = (
        f"**{comparison.sweep.experiment}: {comparison.metric} "
        f"({'lower' if comparison.direction == 'min' else 'higher'} is better), "
        f"baseline {comparison.baseline}**"
    )
    # first, in the lines the UI shows before its "Show more": each variant's verdict and Δ%
    verdicts = " · ".join(
        f"{_md_escape(str(r['variant']))}: **{r['verdict']}** {effect_text(r)}"
        for r in rows_of(comparison.table)
        if isinstance(r.get("verdict"), str) and not r["is_baseline"]
    )
    table = markdown_table([h for h, _f, _a in columns], rows, [a for _h, _f, a in columns])
    notes = [f"- {_md_escape(n)}" for n in comparison.notes]
    parts = [title, verdicts, table, _md_escape(rule_for(comparison)), "\n".join(notes)]
    if comparison.search is not None:  # a search's answer first: its selection, its sites
        parts.insert(1, _search_answer(comparison.search))
    return "\n\n".join(p for p in parts if p)


def _search_answer(search: SearchView) -> str:
    """A search's answer in a few lines: the selection (or how far the race is) and each site
    effect's verdict."""
    if search.selected:
        head = f"**{len(search.selected)} of {search.placements} placements selected**"
    else:
        head = f"**not over yet: {len(search.eliminated_at)} of {search.placements} eliminated**"
    sites = " · ".join(
        f"{_md_escape(f'{e.site}={e.option}')} vs {_md_escape(e.baseline)}: **{e.verdict}** "
        f"{e.delta_pct:+.1f}% [{e.low_pct:+.1f}%, {e.high_pct:+.1f}%]"
        for e in search.sites
    )
    return f"{head}{' · site effects: ' + sites if sites else ''}"


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
        "design": comparison.design.to_dict(),
        "rule": rule_for(comparison),
        "variants": [
            {k: _jsonable(v) for k, v in row.items()} for row in rows_of(comparison.table)
        ],
        "comparisons": [
            {k: _jsonable(v) for k, v in row.record().items()} for row in comparison.rows
        ],
        "failures": [
            {k: _jsonable(v) for k, v in row.items()} for row in rows_of(comparison.failures)
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
        "search": None if comparison.search is None else comparison.search.to_dict(),
        "files": {k: str(v) for k, v in comparison.files.items()},
        "artifacts": list(comparison.artifacts),
    } | datasets_dict(comparison, _jsonable)


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
# The report is described once, as sections of blocks, and rendered to Markdown and to HTML.


def _meta_lines(comparison: Comparison) -> list[tuple[str, str]]:
    s = comparison.sweep
    seeds = (
        sorted({int(x) for x in comparison.trials["seed"].dropna()})
        if len(comparison.trials)
        else []
    )
    design = comparison.design
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
        (
            "design",
            f"alpha {design.alpha:g} for the whole table, margin ±{design.margin:.0%}, "
            f"failures {design.failures}, {len(comparison.rows)} comparisons",
        ),
    ]
    if len(comparison.merged_sweeps) > 1:
        lines.append(("merged sweeps", ", ".join(comparison.merged_sweeps)))
    lines.append(("tracking store", s.tracking_uri))
    lines.append(("generated", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")))
    return lines


def _summary_grid(comparison: Comparison) -> Grid:
    columns = display_columns(comparison)
    rows = rows_of(comparison.table)
    return Grid(
        [h for h, _f, _a in columns],
        [[fn(r) for _h, fn, _a in columns] for r in rows],
        [a for _h, _f, a in columns],
        [str(r["verdict"]) for r in rows],
    )


def _comparison_grid(comparison: Comparison) -> Grid:
    headers = [
        "comparison", "kind", "pairs", "failed (a / b)", "Δ% [CI]", "CI level", "p", "p adj.",
        "seed sd", "p failures", "verdict",
    ]  # fmt: skip
    rows, verdicts = [], []
    for r in comparison.rows:
        rows.append(
            [
                r.comparison,
                r.origin,
                str(r.n_pairs),
                failed_text(r),
                effect_text(r),
                level_text(r),
                fmt_p(r.p_value),
                fmt_p(r.p_adjusted),
                fmt_pct(100 * float(r.seed_sd)) if not missing(r.seed_sd) else DASH,
                fmt_p(r.p_failures),
                verdict_text(r, comparison.design.margin),
            ]
        )
        verdicts.append(r.verdict)
    return Grid(headers, rows, ["left", "left"] + ["right"] * 8 + ["left"], verdicts)


def _side_grid(comparison: Comparison) -> Grid | None:
    wanted = [
        *((b, BASELINE_NOTES[b].replace(" baseline", "")) for b in BASELINES),
        ("time_per_epoch_s", "s/epoch"),
        ("train_time_s", "train s"),
        ("chosen_learning_rate", "chosen learning rate: median [seed range]"),
        ("chosen_weight_decay", "chosen weight decay: median [seed range]"),
        ("select_epochs", "epochs, all candidates"),
        ("epochs_run", "epochs"),
        ("steps_run", "steps"),
        ("hit_cap", "share at the epoch cap"),
        ("params", "params"),
        ("bn_shift_max", "BN moving/real var (max) [seed range]"),
        ("bn_train_vs_infer_max", "BN train/infer var (max) [seed range]"),
        ("infer_vs_train_loss", "inference/training-mode loss on train data [seed range]"),
    ]
    several = comparison.datasets is not None  # no raw-metric mean across datasets' scales
    present = [
        (c, h)
        for c, h in wanted
        if c in comparison.table.columns and not (several and c in BASELINES)
    ]
    if not present:
        return None

    def cell(row: Mapping[str, Any], column: str) -> str:
        lo, hi = range_labels(column)
        if column in (*DIAGNOSTICS, *CHOSEN) and not missing(row.get(lo)):
            return f"{fmt_num(row[column])} [{fmt_num(row[lo], 3)}, {fmt_num(row[hi], 3)}]"
        return fmt_num(row[column])

    mean = [] if several else [f"{comparison.metric} mean"]
    rows = [
        [str(r["variant"])] + ([] if several else [fmt_num(r["mean"])])
        + [cell(r, c) for c, _h in present]
        for r in rows_of(comparison.table)
    ]  # fmt: skip
    headers = ["variant", *mean] + [h for _c, h in present]
    return Grid(headers, rows, ["left"] + ["right"] * (len(headers) - 1))


def _how_to_read(comparison: Comparison) -> list[str]:
    design = comparison.design
    failures = (
        "A failed seed ranks worse than every finished seed of the other variant "
        "(`compare.failures: rank_worst`); failure counts are compared with an exact McNemar "
        "test (*p failures*)."
        if design.failures != "drop"
        else "A failed seed leaves the pairing (`compare.failures: drop`): this favours "
        "variants that fail; the failure counts are compared with an exact McNemar test."
    )
    return [
        "Δ% is the Hodges–Lehmann estimate of the per-seed ratio variant / baseline (the "
        "median of the Walsh averages of the paired log ratios), as a percentage."
        if design.interval != T
        else "Δ% is the mean paired log ratio variant / baseline, as a percentage "
        "(`compare.interval: t`).",
        rule_for(comparison),
        f"**better / worse**: the interval excludes 0. **equivalent**: it lies inside "
        f"±{design.margin:.0%} (`compare.margin`). **inconclusive**: neither; the row says which "
        'effects the interval still excludes. "Inconclusive" never means "no difference".',
        failures,
        "*seed sd* is the measured sd of the paired log ratio: put it in `compare.seed_sd` and "
        "`bnplace plan` prints the seeds a next sweep needs.",
    ]


def sections(comparison: Comparison) -> list[Section]:
    """The report's sections in order, before rendering (the renderers add the plots)."""
    out = [] if comparison.search is None else [search_section(comparison.search)]
    out += [
        Section("Results (best first)", [_summary_grid(comparison)]),
        Section("How to read this", [_how_to_read(comparison)], level=3),
    ]
    if comparison.datasets is not None:  # the pooled family replaces the one-dataset table
        out += dataset_sections(comparison)
    elif len(comparison.rows):
        out.append(
            Section(
                "Comparisons (one family: every variant against the baseline, then the declared "
                "contrasts)",
                [_comparison_grid(comparison)],
            )
        )
    fr = comparison.friedman
    if fr is not None:
        pairs = zip(fr.ranks["variant"], fr.ranks["mean_rank"], strict=True)
        out.append(
            Section(
                "Friedman test and mean ranks (omnibus view)",
                [
                    f"χ² = {fmt_num(fr.statistic, 4)}, p = {fmt_p(fr.pvalue)} over {fr.n_seeds} "
                    f"seeds finished by all {fr.n_variants} variants: whether the variants "
                    "differ at all. Rank 1 is best; Nemenyi's critical difference is CD = "
                    f"{fmt_num(fr.critical_difference, 3)} (α = {comparison.design.alpha:g}). "
                    "Pairwise answers are the verdicts above, not rank differences.",
                    Grid(
                        ["variant", "mean rank"],
                        [[str(v), fmt_num(r, 3)] for v, r in pairs],
                        ["left", "right"],
                    ),
                ],
            )
        )
    side = _side_grid(comparison)
    if side is not None:
        out.append(Section("Cost, baselines and diagnostics (means over finished seeds)", [side]))
    fails = [
        [str(r["variant"]), str(r["reason"]), str(int(r["n"]))]
        for r in rows_of(comparison.failures)
    ]
    if fails:
        out.append(
            Section(
                "Failed trials",
                [Grid(["variant", "reason", "trials"], fails, ["left", "left", "right"])],
            )
        )
    if comparison.notes:
        out.append(Section("Notes", [list(comparison.notes)]))
    return out


def markdown_report(comparison: Comparison, plots: Mapping[str, str]) -> str:
    """The report in Markdown; `plots` maps plot names to paths relative to the report."""
    out: list[str] = [f"# {comparison.sweep.experiment}: {comparison.metric}", ""]
    out += [f"- **{k}**: {v}" for k, v in _meta_lines(comparison)]
    for section in sections(comparison):
        out += ["", f"{'#' * section.level} {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Grid):
                out += [markdown_table(block.headers, block.rows, block.aligns), ""]
            elif isinstance(block, list):
                out += [f"- {item}" for item in block] + [""]
            else:
                out += [block, ""]
    if plots:
        out += ["", "## Plots", ""]
        for name, rel in plots.items():
            out += [f"![{name}]({rel})", "", f"*{_caption(name)}*", ""]
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem}th{background:#f3f3f3}
td.r{text-align:right;font-variant-numeric:tabular-nums}
.better{color:#17803d;font-weight:bold}.worse{color:#b42318;font-weight:bold}
.equivalent{color:#1d4ed8;font-weight:bold}.inconclusive{color:#8a6d00}.baseline{color:#0b6e99}
figure{margin:1.5rem 0}img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}ul.meta{list-style:none;padding:0}
"""


def _html_table(grid: Grid) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in grid.headers)
    body = []
    for i, row in enumerate(grid.rows):
        cells = []
        for j, cell in enumerate(row):
            cls = ["r"] if grid.aligns[j] == "right" else []
            if grid.verdicts and grid.headers[j] == "verdict":
                cls.append(grid.verdicts[i])
            attr = f' class="{" ".join(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{html.escape(str(cell))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


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
    parts.append("</ul>")
    for section in sections(comparison):
        parts.append(f"<h{section.level}>{html.escape(section.title)}</h{section.level}>")
        for block in section.blocks:
            if isinstance(block, Grid):
                parts.append(_html_table(block))
            elif isinstance(block, list):
                parts.append("<ul>" + "".join(f"<li>{_md_inline(i)}</li>" for i in block) + "</ul>")
            else:
                parts.append(f"<p>{_md_inline(block)}</p>")
    if plots:
        parts.append("<h2>Plots</h2>")
        for name, path in plots.items():
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            caption = html.escape(_caption(name))
            parts.append(
                f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{caption}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _md_inline(text: str) -> str:
    """Escape for HTML, then turn **bold**, *italic* and `code` into tags."""
    import re

    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"`(.+?)`", r"<code>\1</code>", out)
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
