"""Plan: a loaded config -> the variants and trials of a sweep, linted, with stable keys.

In: a `LoadedConfig`, a `shape_of` function giving the `DataShape` of a data section (the CLI
passes one that prepares the data; tests pass a constant) and the seeds. Out: a frozen `Plan`
(`bnplace.plan.trials`): variants (canonical `ModelSpec`, layer order, parameter count, lint
findings), the trials (variant x seed, each with a trial key that hashes everything that
affects its result), the variants merged because they compute the same function, and the
baseline. Pure: imports neither TensorFlow nor MLflow and touches no files.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from bnplace.config.checks import Issue
from bnplace.config.data import CsvData, SyntheticData
from bnplace.config.load import LoadedConfig, validate_raw
from bnplace.config.overrides import set_values, target_paths
from bnplace.config.schema import Config
from bnplace.config.sweep import SeedSchedule
from bnplace.names.errors import ConfigError, PlanError, PlanTooLarge, UnknownVariant
from bnplace.names.metrics import default_metric, direction_for
from bnplace.plan.design import (
    auto_finding,
    auto_looks,
    design_findings,
    make_design,
    pooling_findings,
    resolve_variant,
    sequential_figures,
)
from bnplace.plan.grid import Cell, expand
from bnplace.plan.lint import Finding, Level, Subject, lint
from bnplace.plan.memory import data_bytes, machine_memory, show_bytes
from bnplace.plan.resolve import DataShape, resolve_model
from bnplace.plan.search_space import Pruned, Space, prune_reason, search_space, variant_config
from bnplace.plan.shapes import analyse
from bnplace.plan.spec import ModelSpec
from bnplace.plan.trials import Merge, OnDataset, Plan, Trial, Variant

# Bump when the training procedure changes in a way that makes old results incomparable.
TRIAL_FORMAT = "bnplace-trial-1"
# The most trials one plan takes: a sweep past it is refused before anything is resolved
# (planning costs ~1 ms a variant and each trial is a run in the store; a grid that large is
# a typo or a job for several sweeps).
MAX_TRIALS = 100_000


def _digest(payload: Any, size: int = 64) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def data_key(config: Config) -> str:
    """Identity of a (single-dataset) config's data section, for caching prepared data."""
    data = config.section.model_dump(mode="json")
    return _digest(data)


def _variant_config(loaded: LoadedConfig, cell: Cell) -> Config:
    raw = loaded.raw
    for key, value in cell.overrides:
        raw = set_values(raw, target_paths(key, loaded.config), value)
    try:
        return validate_raw(raw)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise PlanError(
            f"{loaded.file}: variant '{cell.name}' is not a valid config:\n{exc}"
        ) from None


def _variant_key(config: Config, model: ModelSpec, data: DataShape) -> str:
    data_identity: Any = data.fingerprint or config.section.model_dump(mode="json")
    if isinstance(config.section, CsvData) and data.fingerprint:
        data_identity = data.fingerprint  # the content, wherever the file lives
    return _digest(
        {
            "model": model.canonical(),
            "train": config.train.model_dump(mode="json"),
            "data": data_identity,
        }
    )


def make_plan(
    loaded: LoadedConfig,
    shape_of: Callable[[Config], DataShape],
    *,
    seeds: Sequence[int] | None = None,
) -> Plan:
    """Expand the grid, resolve and lint every variant, merge equivalents, list the trials.
    (Most of its length is the `Plan`'s fields, set in this one place.)"""
    config = loaded.config
    space = search_space(loaded) if config.search is not None else None
    default_seeds = config.sweep.seed_list
    if config.search is not None:
        default_seeds = tuple(range(config.search.seeds.max))
    seed_list = tuple(seeds) if seeds is not None else default_seeds
    if space is None:
        _check_size(loaded, len(seed_list))
    variants, merges, pruned = _variants(loaded, shape_of, space)
    if not variants:
        reasons = "; ".join(f"{count} {reason}" for reason, (count, _) in pruned.items())
        raise PlanError(f"{loaded.file}: every placement of the search was pruned ({reasons})")
    task = config.task
    n_datasets = len(config.datasets or ())
    metric = config.compare.metric or default_metric(task)
    looks = config.sweep.looks if seeds is None else ()  # --seeds N: a fixed design
    schedule = config.sweep.seeds
    auto_max = schedule.max if isinstance(schedule, SeedSchedule) and schedule.auto else 0
    auto = seeds is None and auto_max > 0
    spending = config.sweep.spending if seeds is None else None
    if auto:  # `seeds: auto`: min and step chosen for this family (stats.sequential_design)
        pool = n_datasets >= 2
        looks, spending = auto_looks(config.compare, variants, merges, auto_max, pool, spending)
    design = make_design(config.compare, variants, merges, looks, spending)
    baseline = _baseline(loaded, variants, merges)
    names = [v.name for v in variants]
    findings = pooling_findings(n_datasets, len(seed_list))
    if space is None:  # a search's seeds come from its race, not from verdict power
        findings += tuple(
            design_findings(design, names, baseline, len(seed_list), looks, n_datasets)
        )
    plan = Plan(
        experiment=config.experiment,
        task=task,
        metric=metric,
        direction=direction_for(metric),
        baseline=baseline,
        axes=tuple(config.search.sites if config.search else config.sweep.axes | config.sweep.arms),
        seeds=seed_list,
        variants=tuple(variants),
        trials=_trials(variants, seed_list),
        merges=tuple(merges),
        design=design,
        design_findings=findings,
        datasets=tuple(config.datasets or ()),
        seeds_on_demand=None
        if space is not None
        else sequential_figures(design, names, baseline, looks) or None,
        combinations=space.combinations if space is not None else 0,
        pruned=(space.pruned if space is not None else ())
        + tuple(Pruned(reason, count, example) for reason, (count, example) in pruned.items()),
    )
    if auto and plan.seeds_on_demand:
        m = plan.seeds_on_demand["comparisons"]
        pool = n_datasets >= 2
        said = auto_finding(design, m, auto_max, pool, config.sweep.spending)
        plan = replace(plan, design_findings=(said, *plan.design_findings))
    return plan


def _variants(
    loaded: LoadedConfig, shape_of: Callable[[Config], DataShape], space: Space | None
) -> tuple[list[Variant], list[Merge], dict[str, list[Any]]]:
    """Every cell of the grid (or the search space) resolved and linted on each dataset: the
    variants, the cells merged into an earlier one that builds the same function, and the
    cells a search pruned ({reason: [count, an example]})."""
    config = loaded.config
    variants: list[Variant] = []
    merges: list[Merge] = []
    pruned: dict[str, list[Any]] = {}
    by_key: dict[str, Variant] = {}
    for cell in space.cells if space is not None else expand(config):
        if space is not None:
            vconfig = variant_config(config, cell)
        else:
            vconfig = _variant_config(loaded, cell)
        _check_data_size(loaded, vconfig, cell.name)  # before a series is generated
        on, findings = _on_datasets(vconfig, shape_of, cell.name)
        reason = prune_reason(loaded, findings) if space is not None else ""
        if reason:  # a search leaves out what lint rejects; a grid reports it as an error
            pruned.setdefault(reason, [0, cell.name])[0] += 1
            continue
        # one dataset: its key, as before datasets existed; several: a hash of each one's
        key = on[0].key if not config.datasets else _digest({o.dataset: o.key for o in on})
        if key in by_key:
            merges.append(Merge(by_key[key].name, cell.name, "builds the same function"))
            continue
        first = on[0]
        variant = Variant(
            key[:8], key, cell.name, cell.labels, first.config, first.model, first.params,
            first.cudnn, findings, on,
        )  # fmt: skip
        by_key[key] = variant
        variants.append(variant)
    return variants, merges, pruned


def _trials(variants: Sequence[Variant], seed_list: Sequence[int]) -> tuple[Trial, ...]:
    """Every variant x dataset x seed, each keyed by its model, settings, data and seed."""
    return tuple(
        Trial(
            _digest([TRIAL_FORMAT, o.key, seed], 16),
            seed,
            v.id,
            v.name,
            o.model,
            o.config,
            o.fingerprint,
            o.dataset,
        )
        for v in variants
        for o in v.on
        for seed in seed_list
    )


def _baseline(loaded: LoadedConfig, variants: Sequence[Variant], merges: Sequence[Merge]) -> str:
    """compare.baseline resolved to a variant name; a name that picks none is located."""
    wanted = loaded.config.compare.baseline
    if not wanted:
        return variants[0].name
    try:
        return resolve_variant(wanted, variants, merges, "compare.baseline")
    except UnknownVariant as exc:
        issue = Issue(
            ("compare", "baseline"),
            f"'{wanted}' names {exc.matches} of the plan's variants, not exactly one",
            expected="a variant name or axis=label pairs, one of: " + "; ".join(exc.names),
            got=wanted,
            suggestion=exc.suggestion,
        )
        raise ConfigError([loaded.problem(issue)]) from None


def _on_datasets(
    vconfig: Config, shape_of: Callable[[Config], DataShape], name: str
) -> tuple[tuple[OnDataset, ...], tuple[Finding, ...]]:
    """A variant resolved, keyed and linted on each dataset of its config. A finding the same
    on every dataset is listed once; one that differs names its dataset."""
    on: list[OnDataset] = []
    found: dict[tuple[str, Level, str], list[str]] = {}
    for dataset in vconfig.sections:
        dconfig = vconfig.on_dataset(dataset)
        shape = shape_of(dconfig)
        model = resolve_model(dconfig, shape)
        report = analyse(model)
        key = _variant_key(dconfig, model, shape)
        clash = next((o.dataset for o in on if o.key == key), None)
        if clash is not None:  # their trials would share keys: one would never be trained
            raise PlanError(
                f"datasets '{clash}' and '{dataset}' are the same data (variant '{name}' has "
                "the same key on both); remove one of them"
            )
        on.append(
            OnDataset(dataset, key, dconfig, model, report.params, report.cudnn, shape.fingerprint)
        )
        for f in lint(Subject(dconfig, model, report, shape.train_windows), name):
            found.setdefault((f.rule, f.level, f.message), []).append(dataset)
    findings = tuple(
        Finding(
            rule,
            level,
            message if len(where) == len(on) else f"on {', '.join(where)}: {message}",
            name,
        )
        for (rule, level, message), where in found.items()
    )
    return tuple(on), findings


def _check_size(loaded: LoadedConfig, seeds: int) -> None:
    """Refuse a sweep of more than MAX_TRIALS trials, from the sizes of its axes and arm sets
    alone (merges can only make it smaller, so the bound is checked on the full grid)."""
    sweep = loaded.config.sweep
    sizes = [(f"sweep.axes.{key}", len(values)) for key, values in sweep.axes.items()]
    sizes += [(f"sweep.arms.{name}", len(arms)) for name, arms in sweep.arms.items()]
    datasets = len(loaded.config.sections)
    if datasets > 1:
        sizes.append(("datasets", datasets))
    cells = math.prod(size for _, size in sizes)
    if cells * seeds <= MAX_TRIALS:
        return
    factors = " x ".join(f"{key} ({size})" for key, size in sizes) or "one variant"
    raise PlanTooLarge(
        f"{loaded.file}: sweep: {cells:,} variants x {seeds:,} seeds = {cells * seeds:,} "
        f"trials, more than the {MAX_TRIALS:,} one plan takes; the grid is {factors} x "
        "sweep.seeds: narrow an axis or arm set, or split the sweep"
    )


def _check_data_size(loaded: LoadedConfig, vconfig: Config, variant: str) -> None:
    """Refuse synthetic data that cannot fit this machine's memory (as lint refuses a model),
    with the estimate, before numpy is asked for it (a MemoryError, or worse, a swapping host)."""
    available = machine_memory()
    for name, section in vconfig.sections.items():
        need = data_bytes(section)
        if available is None or need is None or need <= available:
            continue
        assert isinstance(section, SyntheticData)  # data_bytes knows no other source
        where: tuple[str, ...] = ("datasets", name) if name else ("data",)
        worst = "length" if section.length >= section.features else "features"
        issue = Issue(
            (*where, worst),
            f"variant '{variant}': this data cannot fit this machine: length "
            f"{section.length:,} x {section.features:,} features, windows of {section.window:,} "
            f"steps, need {show_bytes(need)} at least, against {show_bytes(available)} of "
            f"memory; check {'.'.join(where)}.length, features, window and horizon for a typo",
            expected=f"data that fits {show_bytes(available)}",
            got=f"{section.length:,} steps x {section.features:,} features",
        )
        raise ConfigError([loaded.problem(issue)])
