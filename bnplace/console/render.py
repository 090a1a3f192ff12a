"""Console renderings of a plan, of a finished sweep and of a sweep's standing in the store
(rich renderables; no I/O here).

In: a `Plan`, a `SweepOutcome`, or a plan with its `TrialRecord`s. Out: rich tables and text
that the CLI prints.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from bnplace.names.metrics import N_FAILED, N_FINISHED, aggregate_name

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bnplace.data import Dataset
    from bnplace.execute.schedule_search import Standing
    from bnplace.plan import Plan
    from bnplace.run.sweep import SweepOutcome
    from bnplace.store.inventory import TrialRecord

_LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


# Variants shown in the plan's table: rich lays out 1,024 rows in ~1 s, the rest of planning
# such a grid takes less; the rest are in `bnplace plan --json` (findings are listed below).
MAX_ROWS = 100


def data_warnings(datasets: Iterable[Dataset]) -> list[Text]:
    """The prepared data's warnings (filled values, a trending target ...) as `plan` shows
    them, one line each, named by the data's origin: `bnplace data` gives the whole summary."""
    return [
        Text.assemble(("warning: ", _LEVEL_STYLE["warning"]), f"data {dataset.origin}: {warning}")
        for dataset in datasets
        for warning in dataset.warnings
    ]


def plan_view(plan: Plan) -> Group:
    table = Table(
        title=f"{plan.experiment}: {plan.size}",
        title_justify="left",
    )
    table.add_column("id", style="dim")
    table.add_column("variant")
    table.add_column("layers", overflow="fold")
    table.add_column("params", justify="right")
    table.add_column("lint")
    table.add_column("trials", justify="right")
    per_variant = {v.id: 0 for v in plan.variants}
    for trial in plan.trials:
        per_variant[trial.variant_id] += 1
    for variant in plan.variants[:MAX_ROWS]:
        lint = Text()
        for level in ("error", "warning", "info"):
            count = sum(1 for f in variant.findings if f.level == level)
            if count:
                lint.append(f"{count} {level} ", style=_LEVEL_STYLE[level])
        name = variant.name + ("  (baseline)" if variant.name == plan.baseline else "")
        table.add_row(
            variant.id,
            name,
            variant.layer_order,
            f"{variant.params:,}",
            lint,
            str(per_variant[variant.id]),
        )
    parts: list = [table]
    if len(plan.variants) > MAX_ROWS:
        more = len(plan.variants) - MAX_ROWS
        parts.append(Text(f"... and {more:,} more variants (bnplace plan --json lists all)"))
    for merge in plan.merges[:MAX_ROWS]:
        parts.append(
            Text(f"merged: '{merge.dropped}' into '{merge.kept}' ({merge.reason})", style="dim")
        )
    if len(plan.merges) > MAX_ROWS:
        parts.append(Text(f"... and {len(plan.merges) - MAX_ROWS:,} more merges", style="dim"))
    parts += search_lines(plan)
    for finding in plan.findings:
        line = Text(f"{finding.level}: ", style=_LEVEL_STYLE[finding.level])
        where = f"{finding.variant}: " if finding.variant else ""  # "": the whole sweep
        line.append(f"{where}[{finding.rule}] {finding.message}")
        parts.append(line)
    parts.append(
        Text(
            f"main metric: {plan.metric} ({plan.direction}); baseline: {plan.baseline}", style="dim"
        )
    )
    return Group(*parts)


def search_lines(plan: Plan) -> list[Text]:
    """A search's space: combinations, what was pruned and why, how many placements remain."""
    if not plan.combinations:
        return []
    merged = len(plan.merges)
    lines = [
        Text(
            f"search: the menus make {plan.combinations:,} combinations; "
            f"{len(plan.variants):,} placements remain"
            + (f" ({merged:,} more merged as the same network)" if merged else ""),
            style="bold",
        )
    ]
    for group in plan.pruned:
        lines.append(Text(f"pruned {group.count:,}: {group.reason}, e.g. {group.example}"))
    return lines


def search_outcome_lines(search: Standing) -> list[Text]:
    """A search's result: the selected placements, the guarantee, what went when and why."""
    state = "selected" if search.over else f"still in after {search.seeds} seeds (not over)"
    lines = [Text(f"search: {len(search.selected)} placements {state}:", style="bold")]
    lines += [Text(f"  {name}", style="green") for name in search.selected]
    lines.append(Text(search.guarantee(), style="dim"))
    lines += [Text(f"eliminated: {name}: {why}", style="dim") for name, _, why in search.eliminated]
    return lines


def outcome_link(outcome: SweepOutcome) -> str:
    """The line with the link to the sweep in the UI's model-training view; print it with
    soft_wrap, since a link broken over two lines cannot be clicked."""
    from bnplace.console.ui import answer_link, run_link

    answer = answer_link(outcome.tracking_uri, outcome.experiment_id, outcome.sweep_run_id)
    return (
        f"the answer in the UI: {answer}\n"
        f"the sweep in the UI: {run_link(outcome.tracking_uri, outcome.experiment_id)}"
    )


def outcome_view(outcome: SweepOutcome, with_table: bool = True) -> Group:
    plan = outcome.plan
    metric = plan.metric
    table = Table(title=f"{plan.experiment}: {metric} over seeds", title_justify="left")
    table.add_column("variant")
    table.add_column("layers", style="dim")
    table.add_column(f"{metric} mean ± sd", justify="right")
    table.add_column("finished", justify="right")
    table.add_column("failed", justify="right")
    reverse = plan.direction == "max"

    def order(variant_name: str) -> float:
        mean = outcome.aggregates.get(variant_name, {}).get(aggregate_name(metric, "mean"))
        if mean is None:
            return float("inf")
        return -mean if reverse else mean

    for variant in sorted(plan.variants, key=lambda v: order(v.name)):
        agg = outcome.aggregates.get(variant.name, {})
        mean, sd = agg.get(aggregate_name(metric, "mean")), agg.get(aggregate_name(metric, "sd"))
        shown = f"{mean:.4g} ± {sd:.2g}" if mean is not None and sd is not None else "-"
        failed = int(agg.get(N_FAILED, 0))
        table.add_row(
            variant.name,
            variant.layer_order,
            shown,
            str(int(agg.get(N_FINISHED, 0))),
            Text(str(failed), style="red" if failed else ""),
        )
    lines: list = [table] if with_table else []
    if outcome.search is not None:
        lines += search_outcome_lines(outcome.search)
    for name, seed, reason in outcome.failures:
        lines.append(Text(f"failed: {name} seed={seed}: {reason}", style="red"))
    status = "interrupted" if outcome.interrupted else "done"
    elsewhere = outcome.finished_elsewhere + outcome.failed_elsewhere
    by_others = (
        f"; {outcome.finished_elsewhere} finished and {outcome.failed_elsewhere} failed in "
        "other drivers of this plan"
        if elsewhere
        else ""
    )
    lines.append(
        Text(
            f"{status}: {outcome.finished} finished, {outcome.failed} failed, {outcome.skipped} "
            f"skipped (already finished){by_others}. Sweep run {outcome.sweep_run_id} in "
            f"{outcome.tracking_uri}"
        )
    )
    if not outcome.tracking_uri.startswith(("http://", "https://")):
        lines.append(
            Text(f"open the MLflow UI: bnplace ui --tracking-uri '{outcome.tracking_uri}'")
        )

    return Group(*lines)


_MARK = {
    "done": ("+", "green"),
    "failed": ("x", "red"),
    "partly": ("~", "yellow"),  # a seed done on some of the datasets, pending on others
    "pending": (".", "dim"),
    "not needed": ("-", "dim"),
}


def _seed_standing(statuses: set[str]) -> str:
    """One seed's mark over its trials (one per dataset): failed if any failed; done where
    every trial a rerun would train is done; partly when some are done and some pending."""
    if "failed" in statuses:
        return "failed"
    if "pending" in statuses:
        return "partly" if "done" in statuses else "pending"
    return "done" if "done" in statuses else "not needed"


def _seed_runs(standings: dict[int, str]) -> Text:
    """Each run of consecutive seeds with one standing as one mark, e.g. `0-9+ 10~ 11-19.`:
    a race to 20 seeds reads in three marks, not twenty."""
    marks = Text()
    ordered = enumerate(sorted(standings))  # consecutive seeds keep seed - position
    for (_, standing), run in itertools.groupby(
        ordered, key=lambda item: (item[1] - item[0], standings[item[1]])
    ):
        seeds = [seed for _, seed in run]
        mark, style = _MARK[standing]
        shown = f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"{seeds[0]}"
        marks.append(f"{shown}{mark} ", style=style)
    return marks


def status_view(plan: Plan, records: list[TrialRecord], note: str = "") -> Group:
    """Per variant: done / failed / pending / not needed counts (trials) and each seed's
    standing over every dataset of the config, a run of consecutive seeds in one mark
    (`bnplace status`)."""
    from bnplace.store.inventory import STANDINGS, counts

    datasets = len({r.dataset for r in records})
    several = datasets > 1
    on = f" on {datasets} datasets" if several else ""
    partly = "~ partly (some datasets), " if several else ""
    table = Table(
        title=f"{plan.experiment}: {len(plan.trials)} trials{on} in the store's view",
        title_justify="left",
        # the legend below the table, not in the seeds column's header, whose width would
        # crush the variant names
        caption=f"seeds: + done, x failed, {partly}. pending, - not needed",
        caption_justify="left",
    )
    # one axis or site per line, never cut: narrow terminals wrap the seeds instead (a name
    # cut short could be another placement's)
    table.add_column("variant", no_wrap=True)
    for standing in STANDINGS:
        table.add_column(standing, justify="right")
    table.add_column("seeds")
    for variant in plan.variants:
        mine = [r for r in records if r.variant_id == variant.id]
        per = counts(mine)
        by_seed: dict[int, set[str]] = {}
        for record in mine:
            by_seed.setdefault(record.seed, set()).add(record.status)
        seeds = _seed_runs({seed: _seed_standing(s) for seed, s in by_seed.items()})
        name = variant.name.replace(", ", ",\n")
        table.add_row(name, *(str(per[s]) for s in STANDINGS), seeds)
    total = counts(records)
    parts: list = [table]
    if note:
        parts.append(Text(note, style="dim"))
    parts.append(Text(", ".join(f"{total[s]} {s}" for s in STANDINGS)))
    for record in records:
        if record.status == "failed" and record.failure:
            where = f"seed={record.seed}" + (f" dataset={record.dataset}" if several else "")
            parts.append(Text(f"failed: {record.variant} {where}: {record.failure}", style="red"))
    return Group(*parts)


def _show_args(args: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in args.items())


def variant_view(plan: Plan, detail: dict) -> Group:
    """One variant layer by layer (`bnplace plan --variant NAME`): Keras class, where it came
    from, its arguments, output shape and parameters."""
    shape = tuple(detail["input_shape"])
    table = Table(
        title=f"{detail['name']} ({detail['id']}): input {shape} -> {detail['outputs']} "
        f"output(s), {detail['params']:,} parameters",
        title_justify="left",
    )
    table.add_column("#", justify="right", style="dim")
    table.add_column("Keras class")
    table.add_column("from", style="dim")
    table.add_column("arguments", overflow="fold")
    table.add_column("output shape")
    table.add_column("params", justify="right")
    for layer in detail["layers"]:
        table.add_row(
            str(layer["index"]),
            layer["keras_class"],
            layer["origin"],
            _show_args(layer["args"]),
            str(tuple(layer["output_shape"])),
            f"{layer['params']:,}",
        )
    parts: list = [table]
    variant = next(v for v in plan.variants if v.id == detail["id"])
    for finding in variant.findings:
        line = Text(f"{finding.level}: ", style=_LEVEL_STYLE[finding.level])
        line.append(f"[{finding.rule}] {finding.message}")
        parts.append(line)
    parts.append(Text("shapes and parameters computed without TensorFlow", style="dim"))
    return Group(*parts)
