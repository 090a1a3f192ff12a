"""Check every result quoted in the studies' answers against the reports they come from.

In: experiments/<study>/README.md and experiments/README.md, whose answers quote results as a
*citation*: a fragment followed by an HTML comment naming where it comes from,

    (**worse**, Δ +4.1% [+1.2%, +7.0%], PI [-2.0%, +10.3%])<!-- comparison: a vs b -->

(`study: <name>;` first in experiments/README.md; `dataset: <name>;` before `comparison:` for
one dataset's verdict in a pooled study; `report: report-<name>;` for an older study's
single-dataset report; `search: <placement>` instead of `comparison:` for where a search left a
placement, `search: selected` for the size of its selected set, `site: <site>=<option>` for an
option's effect at a site against the site's baseline, averaged over the other sites), and
experiments/<study>/report/comparison.json, written by
`bnplace compare --out`. Out: `check` lists every citation whose fragment differs from the one
the JSON gives (exit 1), every answer line without a citation, and every answer that calls an
inconclusive result "no effect"; `cite STUDY [TEXT]` prints the fragments of a study's pooled
comparisons (those whose name contains TEXT) ready to paste.

A fragment is written by `fragment` alone, so a README can only quote what the report says:
the pooled verdict as `bnplace compare` reads it (e.g. "better on average, not on every
dataset"), the pooled Δ% with its interval (at the Bonferroni level of the pooled family),
and the prediction interval for a new dataset; one dataset's citation gives that dataset's
verdict with its own interval. Standard library only: it runs in the test suite on the
committed files (tests/test_experiment_answers.py).
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CITATION = re.compile(r"\((?P<fragment>\*\*[^()]*)\)<!-- (?P<ref>[^>]*?) -->")
ANSWER_LINE = re.compile(r"^\*\*Answer[^*]*\*\*", re.MULTILINE)
# words that turn "the data cannot tell" into "there is nothing there"
NO_EFFECT_WORDS = ("no effect", "no difference", "does not matter", "neither helps", "as well as",
                   "makes no", "no change", "doesn't matter", "irrelevant")  # fmt: skip


def pct(value: float | None) -> str:
    """A relative effect as quoted everywhere: "+4.1%" ("n/a" when missing)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.1f}%"


def fragment(row: dict, pooled: bool = True) -> str:
    """The one way a comparison row is quoted: verdict as read, Δ% [interval], PI."""
    reading = row.get("reading") if pooled else None
    parts = [f"**{reading or row['verdict']}**"]
    if row.get("delta_pct") is not None and math.isfinite(row["delta_pct"]):
        parts.append(
            f"Δ {pct(row['delta_pct'])} [{pct(row['delta_pct_low'])}, {pct(row['delta_pct_high'])}]"
        )
    if pooled and row.get("pi_low") is not None and math.isfinite(row["pi_low"]):
        parts.append(f"PI [{pct(row['pi_low'])}, {pct(row['pi_high'])}]")
    return ", ".join(parts)


def search_fragment(search: dict, placement: str) -> str | None:
    """The one way a search's result is quoted: the selected set's size (`selected`), or one
    placement's standing with its gap to the best and the race's bounds (None: no such
    placement in the ranking)."""
    if placement == "selected":
        return f"**{len(search['selected'])} of {search['placements']} placements selected**"
    row = next((r for r in search["ranking"] if r["name"] == placement), None)
    if row is None:
        return None
    gone = search["eliminated"].get(placement)
    if gone:
        state = f"eliminated after {gone['after_seeds']} seeds"
    else:
        state = "selected" if placement in search["selected"] else "still racing"
    if row["low_pct"] is None:
        return f"**{state}**, the best on {row['seeds']} seeds"
    bounds = f"[{pct(row['low_pct'])}, {pct(row['high_pct'])}]"
    return f"**{state}**, {pct(row['gap_pct'])} {bounds} on {row['seeds']} seeds"


def site_fragment(search: dict, site_option: str) -> tuple[str, str] | None:
    """The one way a site effect is quoted (`site: conv.pre_act=layer_norm`): its verdict, Δ%
    and interval against the site's baseline, over its pairs and seeds; with the verdict
    (None: no such effect in the report)."""
    for e in search.get("site_effects", []):
        if f"{e['site']}={e['option']}" == site_option:
            interval = f"[{pct(e['low_pct'])}, {pct(e['high_pct'])}]"
            quoted = (
                f"**{e['verdict']}**, Δ {pct(e['delta_pct'])} {interval} against "
                f"{e['baseline']} over {e['pairs']} pairs, {e['seeds']} seeds"
            )
            return quoted, e["verdict"]
    return None


def _fields(ref: str) -> dict[str, str]:
    out = {}
    for part in ref.split(";"):
        key, _, value = part.strip().partition(":")
        out[key.strip()] = value.strip()
    return out


def _report(study: str, folder: str = "report") -> dict:
    return json.loads((HERE / study / folder / "comparison.json").read_text(encoding="utf-8"))


def _row(report: dict, comparison: str, dataset: str | None) -> dict | None:
    if dataset:
        rows = report.get("per_dataset", {}).get(dataset, [])
    else:  # pooled over datasets, or an older single-dataset report's comparisons
        rows = report.get("pooled") or report["comparisons"]
    return next((r for r in rows if r["comparison"] == comparison), None)


def check_file(path: Path, study: str | None) -> list[str]:
    """Problems in one README: citations that differ from the report, answers without one."""
    text = path.read_text(encoding="utf-8")
    where = path.relative_to(HERE)
    problems = []
    cited: dict[int, list[str]] = {}  # line number -> verdicts cited on it
    for match in CITATION.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        ref = _fields(match["ref"])
        name = ref.get("study") or study
        if not name or not ("comparison" in ref or "search" in ref or "site" in ref):
            problems.append(f"{where}:{line}: citation without study or comparison: {match[0]}")
            continue
        folder = ref.get("report", "report")
        try:
            report = _report(name, folder)
        except FileNotFoundError:
            problems.append(f"{where}:{line}: no report {name}/{folder}/comparison.json")
            continue
        if "search" in ref:
            quoted = search_fragment(report.get("search") or {}, ref["search"])
            if quoted is None:
                problems.append(f"{where}:{line}: {name} ranked no placement {ref['search']!r}")
            elif match["fragment"] != quoted:
                problems.append(f"{where}:{line}: quoted ({match['fragment']}), report: ({quoted})")
            cited.setdefault(line, []).append("searched")
            continue
        if "site" in ref:
            found = site_fragment(report.get("search") or {}, ref["site"])
            if found is None:
                problems.append(f"{where}:{line}: {name} has no site effect {ref['site']!r}")
                continue
            if match["fragment"] != found[0]:
                problems.append(
                    f"{where}:{line}: quoted ({match['fragment']}), report: ({found[0]})"
                )
            cited.setdefault(line, []).append(found[1])
            continue
        row = _row(report, ref["comparison"], ref.get("dataset"))
        if row is None:
            problems.append(f"{where}:{line}: {name} has no comparison {ref['comparison']!r}")
            continue
        expected = fragment(row, pooled="dataset" not in ref and "pooled" in report)
        if match["fragment"] != expected:
            problems.append(f"{where}:{line}: quoted ({match['fragment']}), report: ({expected})")
        cited.setdefault(line, []).append(str(row["verdict"]))
    for match in ANSWER_LINE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        end = text.find("\n\n", match.start())
        paragraph = text[match.start() : end if end >= 0 else len(text)]
        lines = range(line, line + paragraph.count("\n") + 1)
        verdicts = [v for n in lines for v in cited.get(n, [])]
        if not verdicts:
            problems.append(f"{where}:{line}: an answer without a citation")
        said = [w for w in NO_EFFECT_WORDS if w in paragraph.lower()]
        if said and any(v == "inconclusive" for v in verdicts):
            problems.append(
                f"{where}:{line}: the answer says {said[0]!r} of an inconclusive result: say "
                "what the interval excludes instead"
            )
    return problems


def check(root: Path = HERE) -> list[str]:
    """Every problem in experiments/README.md and each study's README (see the docstring)."""
    studies = sorted(p.parent.parent.name for p in root.glob("*/report/comparison.json"))
    problems = check_file(root / "README.md", None)
    summary = (root / "README.md").read_text(encoding="utf-8")
    for study in studies:
        problems += check_file(root / study / "README.md", study)
        if f"study: {study};" not in summary:
            problems.append(f"README.md: the summary table cites nothing from {study}")
    return problems


def cite(study: str, text: str = "") -> list[str]:
    report = _report(study)
    search = report.get("search")
    lines = (
        [] if not search else [f"({search_fragment(search, 'selected')})<!-- search: selected -->"]
    )
    lines += [
        f"({search_fragment(search, r['name'])})<!-- search: {r['name']} -->"
        for r in (search or {}).get("ranking", [])
        if text in r["name"]
    ]
    for e in (search or {}).get("site_effects", []):
        named = f"{e['site']}={e['option']}"
        found = site_fragment(search or {}, named)
        if text in named and found:
            lines.append(f"({found[0]})<!-- site: {named} -->")
    lines += [
        f"({fragment(r)})<!-- comparison: {r['comparison']} -->"
        for r in report["pooled"]
        if text in r["comparison"]
    ]
    for dataset, rows in report.get("per_dataset", {}).items():
        lines += [
            f"({fragment(r, pooled=False)})<!-- dataset: {dataset}; "
            f"comparison: {r['comparison']} -->"
            for r in rows
            if text in r["comparison"]
        ]
    return lines


def main(argv: list[str]) -> int:
    if argv[:1] == ["cite"] and len(argv) >= 2:
        print("\n".join(cite(argv[1], " ".join(argv[2:]))))
        return 0
    if argv[:1] == ["check"]:
        problems = check()
        print("\n".join(problems) or "every quoted result matches its report")
        return 1 if problems else 0
    print("usage: answers.py check | answers.py cite STUDY [TEXT]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
