"""The compare pipeline: the runs of a sweep in; statistics, plots, a report and verdicts out.

In: an MLflow tracking URI and an experiment name or a sweep run id (`compare_runs`), or a
sweep already read (`compare_frames`, no MLflow: `frame.SweepData`). Out: a `Comparison`
(`bnplace.compare.comparison`); `compare_runs` also writes the report, plots and tables to
`out_dir` and logs them to the sweep run in MLflow. `render_table` (rich) and `render_text`
(markdown | csv | json) render a `Comparison` for the CLI. The steps it calls, each imported
when first needed (none of pandas, scipy, mlflow or matplotlib is imported before): `frame`
(runs -> DataFrames), `stats` and `paired` (pure statistics), `pooled` (several datasets),
`record` (results -> MLflow), `plots`, `table`, `report`, `format`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bnplace.compare.comparison import Comparison
from bnplace.names.errors import TrackingError, did_you_mean
from bnplace.names.metrics import BASELINES
from bnplace.names.states import FINISHED, MISSING

if TYPE_CHECKING:
    import pandas as pd

    from bnplace.compare.frame import SweepData
    from bnplace.compare.pooled import DatasetsView
    from bnplace.compare.stats import Statistics
    from bnplace.compare.table import ComparisonTable
    from bnplace.names.metrics import Direction
    from bnplace.stats.sequential import Decision
    from bnplace.stats.verdicts import Design
    from bnplace.store.read import StoreClient, SweepInfo


def compare_frames(
    data: SweepData,
    *,
    metric: str | None = None,
    baseline: str | None = None,
    margin: float | None = None,
) -> Comparison:
    """Statistics of a sweep already read (`frame.load_sweep`, or `SweepData.of_trials` for
    a trials table made by hand): no MLflow, no files.

    `metric` defaults to the sweep's main metric, its direction to the sweep's direction (for
    the main metric) or to bnplace's naming rule; `baseline` to the sweep's baseline, else the
    first variant; `margin` to the design's. Raises TrackingError for a metric no trial logged
    or a baseline that is not a variant. Seeds on demand: the decisions the sweep logged
    (`data.decisions`) are shown for its own metric, baseline and margin (another is another
    question: its decisions are recomputed). The history table is left empty (`compare_runs`
    reads it only when it is needed).
    """
    import pandas as pd

    from bnplace.compare.budget import budget_notes
    from bnplace.compare.frame import HISTORY_COLUMNS
    from bnplace.compare.stats import axis_column

    trials, sweep, decisions = data.trials, data.sweep, data.decisions
    design = data.design if margin is None else replace(data.design, margin=margin)
    metric = metric or sweep.metric
    if not metric:
        raise TrackingError(
            f"sweep run {sweep.run_id} has no 'bnplace.metric' tag; name the metric to compare"
        )
    names = [str(v) for v in data.variants["variant"]]
    _check_metric(trials, metric, sweep)
    direction = _direction(metric, sweep)
    baseline = _baseline(baseline, sweep, names)
    if metric not in trials.columns:
        trials = trials.assign(**{metric: float("nan")})
    if margin is not None or metric != sweep.metric or baseline != (sweep.baseline or baseline):
        decisions = None  # logged for the sweep's own question
    on = {"metric": metric, "direction": direction, "variants": names, "baseline": baseline}
    trials, said = _not_run(trials, on, design, decisions)
    axes = [a for a in sweep.axes if axis_column(a) in trials.columns]
    stats, view = _statistics(trials, on, design, axes, decisions)
    return Comparison(
        sweep=sweep,
        metric=metric,
        direction=direction,
        baseline=baseline,
        table=stats.table,
        rows=stats.rows,
        failures=stats.failures,
        friedman=stats.friedman,
        trials=trials,
        history=pd.DataFrame(columns=list(HISTORY_COLUMNS)),
        notes=(*data.notes, *said, *stats.notes, *budget_notes(trials, metric)),
        design=stats.design,
        merged_sweeps=data.merged_sweeps or (sweep.run_id,),
        datasets=view,
    )


def _not_run(
    trials: pd.DataFrame,
    on: dict[str, Any],
    design: Design,
    decisions: Mapping[str, Mapping[str, Decision]] | None,
) -> tuple[pd.DataFrame, list[str]]:
    """Seeds on demand: the planned trials never needed dropped (`_drop_seeds_not_needed`,
    before counting what is not run), and the planned trials still without a run counted."""
    notes: list[str] = []
    if design.sequential:
        trials, notes = _drop_seeds_not_needed(
            trials, on["metric"], on["direction"], on["variants"], on["baseline"], design,
            decisions,
        )  # fmt: skip
    if "status" in trials.columns and (missing := int((trials["status"] == MISSING.value).sum())):
        notes.append(f"{missing} planned trial(s) have no run yet (listed as 'not run')")
    return trials, notes


def _direction(metric: str, sweep: SweepInfo) -> Direction:
    """The sweep's direction for its main metric, else bnplace's naming rule."""
    from bnplace.names.metrics import direction_for

    if metric == sweep.metric and sweep.direction in ("min", "max"):
        return cast("Direction", sweep.direction)  # a free-form tag, checked just above
    return direction_for(metric)


def _baseline(baseline: str | None, sweep: SweepInfo, names: Sequence[str]) -> str:
    """The baseline asked for, else the sweep's, else the first variant; TrackingError when it
    is not a variant."""
    baseline = baseline or sweep.baseline or (names[0] if names else "")
    if baseline not in names:
        hint = did_you_mean(baseline, names)
        raise TrackingError(
            f"sweep run {sweep.run_id}: no variant named {baseline!r} to use as the baseline"
            + (f" (did you mean {hint!r}?)" if hint else "")
            + f"; variants: {', '.join(names)}"
        )
    return baseline


def _statistics(
    trials: pd.DataFrame,
    on: dict[str, Any],
    design: Design,
    axes: Sequence[str],
    decisions: Mapping[str, Mapping[str, Decision]] | None,
) -> tuple[Statistics, DatasetsView | None]:
    """The sweep's statistics: of its one dataset, or pooled over several with their view."""
    from bnplace.compare.stats import compute_statistics

    if "dataset" in trials.columns and trials["dataset"].nunique() > 1:  # several datasets
        from bnplace.compare.pooled import compare_datasets, pooled_statistics

        view = compare_datasets(trials, **on, design=design, axes=axes, decisions=decisions)
        return pooled_statistics(trials, view), view
    return compute_statistics(
        trials, **on, axes=axes, design=design, decisions=(decisions or {}).get("")
    ), None


def _drop_seeds_not_needed(
    trials: pd.DataFrame,
    metric: str,
    direction: str,
    names: Sequence[str],
    baseline: str,
    design: Design,
    decisions: Mapping[str, Mapping[str, Decision]] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Seeds on demand: planned trials past what their comparisons asked for were never meant
    to run (not "not run"); say where each comparison was decided and the seeds each used.
    With several datasets each dataset decided its own family (as the sweep dealt them), so
    this is done per dataset, each line prefixed by the dataset's name. `decisions`: as the
    sweep logged them, per dataset ("" for one); recomputed where none were logged."""
    import pandas as pd

    from bnplace.compare.pooled import per_dataset
    from bnplace.stats.pairing import FamilyQuestion, family_decisions, seeds_needed
    from bnplace.stats.verdicts import family

    contrasts = family(names, baseline, design)
    question = FamilyQuestion(metric, direction, contrasts, design)
    several = "dataset" in trials.columns and trials["dataset"].nunique() >= 2
    parts, lines = [], []
    for dataset, mine in per_dataset(trials) if several else [("", trials)]:
        logged = (decisions or {}).get(dataset)
        found = family_decisions(mine, question, logged)
        needed = seeds_needed(found, contrasts, design)
        limit = mine["variant"].map(needed).fillna(design.looks[-1])
        unneeded = (mine["status"] == MISSING.value) & (mine["seed"] >= limit)
        parts.append(mine[~unneeded].reset_index(drop=True))
        on = f"{dataset}: " if dataset else ""
        lines.append(
            f"{on}seeds on demand (looks at {', '.join(str(n) for n in design.looks)} seeds): "
            + "; ".join(f"{v} {needed.get(v, 0)}" for v in names)
            + f" seeds used of up to {design.looks[-1]}"
            + (f"; {int(unneeded.sum())} planned trial(s) not needed" if unneeded.any() else "")
        )
        lines += [on + _standing(c.name, found[c.name], design) for c in contrasts]
    return (pd.concat(parts, ignore_index=True) if several else parts[0]), lines


def _standing(name: str, d: Decision, design: Design) -> str:
    """Where a comparison of seeds on demand stands, in words."""
    if d.look is None:
        return f"{name}: no look complete yet"
    if d.decided:
        return f"{name}: {d.verdict} at look {d.look + 1} ({d.seeds} seeds)"
    at = "the last look" if d.look + 1 == len(design.looks) else f"look {d.look + 1}"
    return f"{name}: undecided at {at} ({d.seeds} seeds)"


def _check_metric(trials: pd.DataFrame, metric: str, sweep: SweepInfo) -> None:
    from bnplace.compare.frame import FIXED_TRIAL_COLUMNS
    from bnplace.compare.stats import axis_column

    if metric in trials.columns:
        return
    finished = trials[trials["status"] == FINISHED] if "status" in trials.columns else trials
    if finished.empty:
        return  # nothing finished yet: every trial counts as failed, the table says so
    fixed = {*FIXED_TRIAL_COLUMNS, *map(axis_column, sweep.axes)}
    logged = sorted(c for c in trials.columns if c not in fixed)
    hint = did_you_mean(metric, logged)
    raise TrackingError(
        f"sweep run {sweep.run_id}: no trial logged a metric named {metric!r}"
        + (f" (did you mean {hint!r}?)" if hint else "")
        + f"; logged metrics: {', '.join(logged) or 'none'}"
    )


def compare_runs(
    tracking_uri: str,
    *,
    experiment: str | None = None,
    sweep_run_id: str | None = None,
    metric: str | None = None,
    baseline: str | None = None,
    out_dir: Path | None = None,
    log_to_mlflow: bool = True,
    merge_sweeps: bool = True,
    margin: float | None = None,
) -> Comparison:
    """Compare the variants of a sweep read from MLflow; write and log the results.

    The sweep: `sweep_run_id` (a variant or trial run id is followed up to its sweep), else the
    newest sweep of `experiment`, else the newest sweep in the store. With `merge_sweeps` the
    trials of earlier sweeps of the same experiment that ran the same variants count too, once
    per trial key. Plots and reports are made when `out_dir` is given or `log_to_mlflow` is
    true: into `out_dir` (created if needed) or a temporary folder; with `log_to_mlflow` the
    report, plots and statistics go to the sweep run's artifacts under "compare/" (for a metric
    other than the sweep's main one, "compare/<metric>/") and each variant run of the sweep
    gets its numbers and verdicts (see `record.log_comparison`). The design (alpha, margin,
    failure rule, contrasts) is the one the sweep's plan recorded; `margin` overrides its margin.
    (Its length is its keyword arguments and this docstring; the body is read, compare, write,
    log.)
    """

    from bnplace.compare.frame import load_history, load_sweep
    from bnplace.store.client import existing_client

    client = existing_client(tracking_uri)
    data = load_sweep(
        client,
        experiment=experiment,
        sweep_run_id=sweep_run_id,
        merge_sweeps=merge_sweeps,
        tracking_uri=tracking_uri,
    )
    comparison = compare_frames(data, metric=metric, baseline=baseline, margin=margin)
    if data.search is not None:  # a search: each placement against the best, race bounds
        from bnplace.compare.search import ranking_notes, site_notes, with_results

        search = with_results(data.search, data.trials, comparison.metric, comparison.direction)
        notes = (*ranking_notes(search.ranking, comparison.metric), *site_notes(search.sites))
        comparison = replace(comparison, search=search, notes=(*comparison.notes, *notes))
    if out_dir is None and not log_to_mlflow:
        return comparison

    from bnplace.names.metrics import HISTORY_METRICS
    from bnplace.store.client import refresh_query_statistics

    refresh_query_statistics(tracking_uri)  # one history read a trial: store/client.py says why
    history = load_history(client, data.trials, metrics=HISTORY_METRICS, tracking_uri=tracking_uri)
    comparison = replace(comparison, history=history)
    with tempfile.TemporaryDirectory(prefix="bnplace-compare-") as tmp:
        work = Path(out_dir) if out_dir is not None else Path(tmp)
        files = _write_outputs(comparison, work)
        artifacts: tuple[str, ...] = ()
        if log_to_mlflow:
            artifacts = _log(client, tracking_uri, data, comparison, files)
    return replace(comparison, files=files if out_dir is not None else {}, artifacts=artifacts)


def _log(
    client: StoreClient,
    tracking_uri: str,
    data: SweepData,
    comparison: Comparison,
    files: dict[str, Path],
) -> tuple[str, ...]:
    """Log the comparison to the sweep's runs (`record.log_comparison`): under "compare/" for
    the sweep's main metric (with the answer as the sweep run's note), else
    "compare/<metric>/"; returns the artifact paths written."""
    from bnplace.compare.record import log_comparison
    from bnplace.compare.report import answer_markdown

    main = comparison.metric == data.sweep.metric
    return log_comparison(
        client,
        data.sweep,
        data.variants,
        comparison.table,
        comparison.rows,
        metric=comparison.metric,
        files=files,
        artifact_dir="compare" if main else f"compare/{comparison.metric}",
        tracking_uri=tracking_uri,
        datasets=comparison.datasets,
        note=answer_markdown(comparison) if main else "",
    )


def _write_outputs(comparison: Comparison, out_dir: Path) -> dict[str, Path]:
    """Plots into out_dir/plots, then the reports into out_dir; returns {name: path}."""
    from bnplace.compare.plots import make_plots
    from bnplace.compare.report import write_reports

    out_dir.mkdir(parents=True, exist_ok=True)
    trials, table, metric = comparison.trials, comparison.table, comparison.metric
    history = comparison.history
    if comparison.datasets is not None:  # no raw metric across datasets' scales
        trials, table, metric = _relative_to_baseline(comparison)
        history = history.iloc[0:0]  # learning curves per dataset only (below)
    plots = make_plots(
        trials=trials,
        history=history,
        table=table,
        variants=[str(v) for v in comparison.table.sort_values("order")["variant"]],
        metric=metric,
        direction=comparison.direction,
        baseline=comparison.baseline,
        axes=comparison.sweep.axes,
        out_dir=out_dir / "plots",
        experiment=comparison.sweep.experiment,
    )
    if comparison.datasets is not None:
        from bnplace.compare.forest import make_dataset_plots

        plots |= make_dataset_plots(
            comparison.datasets, comparison.design.margin, out_dir / "plots"
        )
        plots |= _per_dataset_plots(comparison, out_dir / "plots")
    if comparison.search is not None:
        from bnplace.compare.search import plot_sites, plot_survivors

        survivors = plot_survivors(comparison.search, out_dir / "plots" / "search_survivors.png")
        if survivors is not None:
            plots["search_survivors"] = survivors
        sites = plot_sites(comparison.search, out_dir / "plots" / "search_sites.png")
        if sites is not None:
            plots["search_sites"] = sites
    reports = write_reports(comparison, out_dir, plots)
    return {**reports, **{f"plot_{name}": path for name, path in plots.items()}}


def _relative_to_baseline(comparison: Comparison) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Several datasets: each trial's metric in % of the baseline's mean on its own dataset (a
    dataset's seeds numbered apart from another's, so seeds pair within a dataset only), the
    table with that metric's per-variant mean and no raw baselines, and the metric's name."""
    import numpy as np
    import pandas as pd
    from scipy import stats as st

    name = f"{comparison.metric}_pct_vs_baseline"
    trials = comparison.trials.copy()
    value = pd.to_numeric(trials[comparison.metric], errors="coerce").astype(float)
    ok = trials["status"].astype(str) == FINISHED.value
    base = trials["variant"].astype(str) == comparison.baseline
    means = value[ok & base].groupby(trials.loc[ok & base, "dataset"]).mean()
    trials[name] = 100 * (value / trials["dataset"].map(means).astype(float) - 1)
    codes = {d: i for i, d in enumerate(dict.fromkeys(trials["dataset"]))}
    seeds = pd.to_numeric(trials["seed"], errors="coerce")
    stride = int(np.nanmax(seeds)) + 1 if seeds.notna().any() else 1
    trials["seed"] = trials["dataset"].map(codes) * stride + seeds
    grouped = trials[ok].groupby("variant")[name]
    mean, sem, n = grouped.mean(), grouped.sem(), grouped.count()
    half = sem * st.t.ppf(0.975, (n - 1).clip(lower=1))  # the mean's 95% t-interval
    table = comparison.table.drop(columns=list(BASELINES), errors="ignore")
    of = table["variant"]
    table = table.assign(
        mean=of.map(mean).astype(float),
        ci_low=of.map(mean - half).astype(float),
        ci_high=of.map(mean + half).astype(float),
    )
    return trials, table, name


def _per_dataset_plots(comparison: Comparison, out_dir: Path) -> dict[str, Path]:
    """Learning curves and the two-axis heatmap of each dataset on its own (the pooled ones mix
    series of different scales): `learning_curves.<dataset>`, `heatmap.<dataset>`."""
    from bnplace.compare.plots import color_map, plot_heatmap, plot_learning_curves

    assert comparison.datasets is not None
    variants = [str(v) for v in comparison.table.sort_values("order")["variant"]]
    colors = color_map(variants)
    made: dict[str, Path | None] = {}
    for name in comparison.datasets.datasets:
        runs = set(comparison.trials.loc[comparison.trials["dataset"] == name, "run_id"])
        history = comparison.history[comparison.history["run_id"].isin(runs)]
        made[f"learning_curves.{name}"] = plot_learning_curves(
            history,
            variants,
            out_dir / f"learning_curves.{name}.png",
            title=f"Learning curves on {name}: mean over seeds, band = ±1 sd",
            colors=colors,
        )
        table = comparison.datasets.per[name].table
        made[f"heatmap.{name}"] = plot_heatmap(
            table,
            comparison.sweep.axes,
            comparison.metric,
            comparison.direction,
            out_dir / f"heatmap_{comparison.metric}.{name}.png",
            title=f"{comparison.metric} on {name}",
        )
    return {name: path for name, path in made.items() if path is not None}


def render_table(comparison: Comparison) -> ComparisonTable:
    """A rich renderable for the terminal (`console.print(render_table(c))`): best first,
    verdict column coloured, notes as caption, columns fitted to the console's width."""
    from bnplace.compare.table import render_table as _render

    return _render(comparison)


def render_text(comparison: Comparison, fmt: str) -> str:
    """The comparison as text: "markdown" (report without plots), "csv" (statistics table),
    or "json" (everything, NaN as null)."""
    from bnplace.compare.report import render_text as _render

    return _render(comparison, fmt)
