"""The `bnplace` command line: thin commands that parse, call the steps, and render.

In: argv. Out: text on the console and an exit code: 0 all finished, 1 some trials failed,
2 a config or data error, 130 interrupted (Ctrl-C or SIGTERM). Library code raises
`BnplaceError`; only this module renders it. Nothing heavy is imported at start-up (TensorFlow,
MLflow and Ray load inside the commands that need them), so `bnplace --help`, `validate` and
`plan` answer quickly.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer

from bnplace.names.errors import BnplaceError, PlanError

app = typer.Typer(
    name="bnplace",
    help="Where does BatchNormalization go? Run placement experiments for time-series Keras "
    "models, tracked in MLflow.\n\n"
    "  bnplace init my.yaml        write a commented starter config\n\n"
    "  bnplace plan my.yaml        show the variants, layer orders and lint findings\n\n"
    "  bnplace run my.yaml         train every variant x seed, log to ./mlflow.db\n\n"
    "  bnplace compare my.yaml     statistics, plots and verdicts for the latest sweep\n\n"
    "  bnplace status my.yaml      done / failed / pending / not needed trials in the store\n\n"
    "  bnplace export my.yaml      one row per trial as csv or parquet\n\n"
    "  bnplace ui                  open the MLflow UI on the same store",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

F = TypeVar("F", bound=Callable[..., Any])


def _show_version(value: bool) -> None:
    if value:
        from bnplace import __version__

        typer.echo(f"bnplace {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    pass


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=stderr)


def _reports_errors(func: F) -> F:
    """Render BnplaceError as a message (no traceback) and exit with its code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BnplaceError as exc:
            from rich.markup import escape

            console = _console(stderr=True)
            console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _console(stderr=True).print("interrupted")
            raise typer.Exit(130) from None

    return cast(F, wrapper)  # functools.wraps keeps func's signature, which mypy cannot see


ConfigArg = Annotated[
    Path, typer.Argument(help="A bnplace YAML config.", show_default=False, dir_okay=False)
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one setting, e.g. --set train.epochs=3 (repeatable)."),
]
SeedsOpt = Annotated[int | None, typer.Option(help="Use seeds 0..N-1 instead of the config's.")]
FilterOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        help="Only variants whose name contains this (or glob-matches it); run still records "
        "and compares the whole plan.",
    ),
]
UriOpt = Annotated[
    str | None,
    typer.Option(
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, the config's tracking.uri, "
        "else sqlite:///./mlflow.db)."
    ),
]


@app.command()
@_reports_errors
def validate(config: ConfigArg, set_: SetOpt = None) -> None:
    """Check a config file: every check `plan` runs (schema, cross-field rules, each variant's
    config, model shapes and lint errors, sizes, the baseline), without training anything."""
    from bnplace.run.sweep import plan_sweep

    prepared = plan_sweep(config, set_ or ())
    plan = prepared.plan
    if plan.errors:
        lines = [f"  {f.variant}: [{f.rule}] {f.message}" for f in plan.errors]
        raise PlanError(f"{config}: the plan has errors:\n" + "\n".join(lines))
    later = f"(run `bnplace plan {config}` for layer orders and lint)"
    search = prepared.loaded.config.search
    if search is not None:
        _console().print(
            f"{config}: valid — a search of {len(plan.variants)} placements within the bounds, "
            f"seeds {search.seeds.min} to {search.seeds.max} {later}"
        )
        return
    _console().print(
        f"{config}: valid — {len(plan.variants)} variants x {len(plan.seeds)} seeds {later}"
    )


@app.command()
@_reports_errors
def plan(
    config: ConfigArg,
    set_: SetOpt = None,
    seeds: SeedsOpt = None,
    filter_: FilterOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    variant: Annotated[
        str | None,
        typer.Option(
            help="Show this variant layer by layer (name, id or a unique part of the name): "
            "Keras class, arguments, output shape, parameters."
        ),
    ] = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Show the variants: id, name, layer order, parameters, lint findings, trials, and the
    training time estimated from the store.

    Example: bnplace plan my.yaml --variant conv.pre_act=bn
    """
    from bnplace.run.sweep import plan_sweep

    prepared = plan_sweep(config, set_ or (), seeds, filter_ or ())
    selected = prepared.selected
    if variant is not None:
        from bnplace.plan.trials import find_variant, variant_detail

        detail = variant_detail(find_variant(variant, selected.variants))
        if as_json:
            typer.echo(json.dumps(detail, indent=2))
            return
        from bnplace.console.render import variant_view

        _console().print(variant_view(selected, detail))
        return
    from bnplace.run.estimate import estimate_time
    from bnplace.store.track import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri, prepared.loaded.config.tracking.uri)
    estimate = estimate_time(prepared, uri)
    if as_json:
        typer.echo(
            json.dumps({**selected.to_dict(), "time_estimate": estimate.to_dict()}, indent=2)
        )
        return
    from bnplace.console.render import data_warnings, plan_view

    console = _console()
    console.print(plan_view(selected))
    for line in data_warnings(prepared.datasets.values()):
        console.print(line)
    console.print(estimate.describe(), style="dim")
    if selected.errors:
        raise typer.Exit(2)


@app.command()
@_reports_errors
def data(config: ConfigArg, set_: SetOpt = None) -> None:
    """Show the prepared data: splits, windows, feature statistics, fingerprint."""
    from bnplace.data import format_summary
    from bnplace.run.sweep import plan_sweep

    prepared = plan_sweep(config, set_ or ())
    for dataset in prepared.datasets.values():
        typer.echo(format_summary(dataset.summary()))


@app.command()
@_reports_errors
def run(
    config: ConfigArg,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", help="Parallel trials (default: cores).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Override train.epochs.")] = None,
    seeds: SeedsOpt = None,
    set_: SetOpt = None,
    experiment: Annotated[str | None, typer.Option(help="Override the experiment name.")] = None,
    filter_: FilterOpt = None,
    rerun: Annotated[bool, typer.Option(help="Train trials that already finished again.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Show the plan and stop.")] = False,
    tracking_uri: UriOpt = None,
    no_compare: Annotated[
        bool, typer.Option("--no-compare", help="Skip the comparison at the end.")
    ] = False,
    executor: Annotated[str, typer.Option(help="local or ray.")] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (default: start a local Ray).")
    ] = None,
    cpus_per_trial: Annotated[float, typer.Option(help="Ray: CPUs per trial.")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option(help="Ray: GPUs per trial.")] = 0.0,
    max_retries: Annotated[
        int, typer.Option(help="Ray: retries of a trial whose worker died.")
    ] = 0,
    threads: Annotated[int, typer.Option(help="TensorFlow threads per trial.")] = 1,
) -> None:
    """Train every variant x seed and log it to MLflow (resumes: finished trials are skipped).

    Example: bnplace run configs/quickstart.yaml --jobs 2 --epochs 3
    """  # its length is Typer's options, declared in the signature; the body is ~30 lines
    sets = list(set_ or [])
    if epochs is not None:
        sets.append(f"train.epochs={epochs}")
    if experiment is not None:
        sets.append(f"experiment={experiment}")
    if dry_run:
        plan(config, sets, seeds, filter_, False)
        return
    if executor not in ("local", "ray"):
        raise typer.BadParameter(f"--executor must be local or ray, got {executor!r}")
    from bnplace.console.progress import make_progress
    from bnplace.console.render import outcome_link, outcome_view
    from bnplace.run.sweep import RunOptions, run_sweep

    console = _console()
    ray: dict[str, object] = {
        "address": ray_address,
        "cpus_per_trial": cpus_per_trial,
        "gpus_per_trial": gpus_per_trial,
        "max_retries": max_retries,
    }
    options = RunOptions(
        config=config, sets=tuple(sets), seeds=seeds, only=tuple(filter_ or ()), rerun=rerun,
        jobs=jobs or os.cpu_count() or 1, threads=threads, executor=executor,
        executor_options=ray if executor == "ray" else {}, tracking_uri=tracking_uri,
    )  # fmt: skip
    outcome = run_sweep(options, make_progress(console))
    compare_now = not no_compare and not outcome.interrupted and outcome.finished + outcome.skipped
    console.print(outcome_view(outcome, with_table=not compare_now))
    if compare_now:
        _compare_sweep(outcome.tracking_uri, outcome.sweep_run_id, console)
    console.print(outcome_link(outcome), soft_wrap=True, style="bold")
    raise typer.Exit(outcome.exit_code)


def _compare_sweep(uri: str, sweep_run_id: str, console: Any) -> None:
    from bnplace.compare import compare_runs, render_table

    comparison = compare_runs(
        uri, experiment=None, sweep_run_id=sweep_run_id, metric=None, baseline=None, out_dir=None
    )
    console.print(render_table(comparison))


@app.command()
@_reports_errors
def compare(
    target: Annotated[
        str | None,
        typer.Argument(
            help="A config file, an experiment name or a sweep run id (default: the latest sweep "
            "in the store).",
            show_default=False,
        ),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="Compare across all sweeps of this experiment.")
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Metric to compare (default: main).")] = None,
    baseline: Annotated[str | None, typer.Option(help="Baseline variant name.")] = None,
    margin: Annotated[
        float | None,
        typer.Option(
            min=0.0001,
            max=0.99,
            help="Equivalence margin, relative (0.02 = ±2%; default: the "
            "config's compare.margin, 0.05).",
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, markdown, csv or json.")] = "table",
    out: Annotated[
        Path | None, typer.Option(help="Write the report (Markdown, HTML, plots) here.")
    ] = None,
    tracking_uri: UriOpt = None,
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Do not log the report back to MLflow.")
    ] = False,
) -> None:
    """Statistics, plots and verdicts for a sweep (paired by seed against a baseline)."""
    from bnplace.compare import compare_runs, render_table, render_text
    from bnplace.store.track import resolve_tracking_uri

    experiment, config_uri, sweep_run_id = _compare_target(target, experiment)
    uri = resolve_tracking_uri(tracking_uri, config_uri)
    comparison = compare_runs(
        uri,
        experiment=experiment,
        sweep_run_id=sweep_run_id,
        metric=metric,
        baseline=baseline,
        out_dir=out,
        log_to_mlflow=not no_log,
        margin=margin,
    )
    if fmt == "table":
        _console().print(render_table(comparison))
    else:
        typer.echo(render_text(comparison, fmt))


def _compare_target(
    target: str | None, experiment: str | None
) -> tuple[str | None, str | None, str | None]:
    """What `compare TARGET` names: (experiment, the config's tracking URI, sweep run id). A
    config file names its experiment and store; 32 hex digits a run id; else an experiment."""
    if target and Path(target).suffix in (".yaml", ".yml"):
        from bnplace.config import load_config

        loaded = load_config(target)
        return experiment or loaded.config.experiment, loaded.config.tracking.uri, None
    if target and experiment is None:
        if len(target) == 32 and all(c in "0123456789abcdef" for c in target):
            return None, None, target
        return target, None, None
    return experiment, None, None


# Typer reads each command's options from its signature, so commands that take the same
# options list them again (their types and help are shared: ConfigArg, SetOpt, ...).
@app.command()
@_reports_errors
def status(
    config: ConfigArg,
    set_: SetOpt = None,
    seeds: SeedsOpt = None,
    tracking_uri: UriOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per trial.")] = False,
) -> None:
    """Show which trials of a config are done, failed, pending or not needed (seeds on demand
    decided, a placement eliminated) in the store (no training)."""
    from bnplace.run.status import plan_standing
    from bnplace.run.sweep import plan_sweep
    from bnplace.store.track import resolve_tracking_uri

    prepared = plan_sweep(config, set_ or (), seeds)
    uri = resolve_tracking_uri(tracking_uri, prepared.loaded.config.tracking.uri)
    records, note = plan_standing(prepared, uri)
    if as_json:
        keys = (
            "variant",
            "variant_id",
            "dataset",
            "seed",
            "trial_key",
            "status",
            "failure",
            "run_id",
        )
        rows = [{k: getattr(r, k) for k in keys} for r in records]
        typer.echo(json.dumps({"tracking_uri": uri, "note": note, "trials": rows}, indent=2))
        return
    from bnplace.console.render import status_view

    _console().print(status_view(prepared.plan, records, note))


@app.command()
@_reports_errors
def export(
    config: ConfigArg,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet (needs pyarrow).")] = "csv",
    out: Annotated[
        Path | None, typer.Option(help="The file to write (default: <experiment>-trials.<fmt>).")
    ] = None,
    set_: SetOpt = None,
    seeds: SeedsOpt = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Write one row per trial (ids, seed, status, params, metrics) as csv or parquet."""
    from bnplace.run.status import plan_standing
    from bnplace.run.sweep import plan_sweep
    from bnplace.store.inventory import EXPORT_FORMATS, records_frame, write_export
    from bnplace.store.track import resolve_tracking_uri

    if fmt not in EXPORT_FORMATS:
        raise typer.BadParameter(f"--format must be csv or parquet, got {fmt!r}")
    prepared = plan_sweep(config, set_ or (), seeds)
    uri = resolve_tracking_uri(tracking_uri, prepared.loaded.config.tracking.uri)
    records, note = plan_standing(prepared, uri)
    frame = records_frame(prepared.plan, records)
    path = write_export(frame, fmt, out or Path(f"{prepared.plan.experiment}-trials.{fmt}"))
    console = _console()
    if note:
        console.print(note)
    console.print(f"wrote {len(frame)} trials to {path}")


@app.command()
@_reports_errors
def ui(
    tracking_uri: UriOpt = None,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 5000,
    host: Annotated[
        str, typer.Option(help="Interface to bind (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
) -> None:
    """Start the MLflow UI on the same store, bound to 127.0.0.1 by default."""
    from bnplace.console.ui import serve

    serve(tracking_uri, host, port, _console())


@app.command()
@_reports_errors
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter config.")] = Path(
        "bnplace.yaml"
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter config that runs as is."""
    from importlib.resources import files

    if path.exists() and not force:
        raise BnplaceError(f"{path} exists; use --force to overwrite it")
    text = files("bnplace").joinpath("templates/starter.yaml").read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    _console().print(f"wrote {path}; next: bnplace plan {path}")
