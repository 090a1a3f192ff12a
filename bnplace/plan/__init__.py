"""Plan: a loaded config -> the variants and trials of a sweep, linted, with stable keys.

In: a `LoadedConfig`, a `shape_of` function giving the `DataShape` of a data section (the CLI
passes one that prepares the data; tests pass a constant) and the seeds. Out: a frozen `Plan`:
variants (canonical `ModelSpec`, layer order, parameter count, lint findings), the trials
(variant x seed, each with a trial key that hashes everything that affects its result), the
variants merged because they compute the same function, and the baseline; `Plan.only` narrows
it to the variants a --filter names. Pure: imports neither TensorFlow nor MLflow and touches
no files.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bnplace.config.checks import Issue
from bnplace.config.data import CsvData, SyntheticData
from bnplace.config.load import LoadedConfig, validate_raw
from bnplace.config.overrides import set_values, target_paths
from bnplace.config.schema import Config
from bnplace.errors import ConfigError, PlanError, PlanTooLarge, UnknownVariant
from bnplace.metrics import default_metric, direction_for
from bnplace.plan.design import design_findings, make_design, resolve_variant
from bnplace.plan.detail import model_detail
from bnplace.plan.grid import Cell, expand
from bnplace.plan.lint import Finding, Level, Subject, lint
from bnplace.plan.memory import data_bytes, machine_memory, show_bytes
from bnplace.plan.resolve import DataShape, resolve_model
from bnplace.plan.shapes import analyse
from bnplace.plan.spec import LayerSpec, ModelSpec
from bnplace.verdicts import Design

__all__ = [
    "DataShape",
    "Finding",
    "LayerSpec",
    "Merge",
    "ModelSpec",
    "OnDataset",
    "Plan",
    "Trial",
    "Variant",
    "direction_for",  # re-exported from bnplace.metrics
    "make_plan",
]

# Bump when the training procedure changes in a way that makes old results incomparable.
TRIAL_FORMAT = "bnplace-trial-1"
# The most trials one plan takes: a sweep past it is refused before anything is resolved
# (planning costs ~1 ms a variant and each trial is a run in the store; a grid that large is
# a typo or a job for several sweeps).
MAX_TRIALS = 100_000
DATASET_FILTER = "dataset="  # `--filter dataset=NAME` picks datasets, other patterns variants


@dataclass(frozen=True)
class OnDataset:
    """A variant on one dataset of the config: its model there (input and output shapes follow
    the data) and its key, which hashes that model, the training settings and that data alone,
    so adding a dataset to a config leaves the other datasets' trial keys as they were."""

    dataset: str  # the name under `datasets:`; "" for a `data:` config
    key: str
    config: Config  # the variant's config on this dataset alone (`Config.on_dataset`)
    model: ModelSpec
    params: int
    cudnn: bool
    fingerprint: str


@dataclass(frozen=True)
class Variant:
    """One arm of the question. With several datasets it is the same arm (the same name,
    labels and placements) on each; `config`, `model`, `params` and `cudnn` are then those on
    the first dataset, and `on` holds every dataset's."""

    id: str  # 8 hex characters of `key`
    key: str  # hash of the canonical model, training settings and data (of every dataset)
    name: str
    labels: tuple[tuple[str, str], ...]
    config: Config
    model: ModelSpec
    params: int
    cudnn: bool
    findings: tuple[Finding, ...]
    on: tuple[OnDataset, ...] = ()

    @property
    def layer_order(self) -> str:
        return self.model.layer_order


@dataclass(frozen=True)
class Merge:
    kept: str  # variant name
    dropped: str
    reason: str


@dataclass(frozen=True)
class Trial:
    key: str
    seed: int
    variant_id: str
    variant: str  # variant name
    model: ModelSpec
    config: Config  # the variant's config on the trial's dataset (train, data, head...)
    data_fingerprint: str
    dataset: str = ""  # its name under `datasets:`; "" for a `data:` config


@dataclass(frozen=True)
class Plan:
    experiment: str
    task: str
    metric: str
    direction: str  # "min" or "max"
    baseline: str  # variant name
    axes: tuple[str, ...]
    seeds: tuple[int, ...]
    variants: tuple[Variant, ...]
    trials: tuple[Trial, ...]
    merges: tuple[Merge, ...]
    design: Design = field(default_factory=Design)  # how compare judges the comparisons
    design_findings: tuple[Finding, ...] = ()  # sweep-level: seeds against the design
    datasets: tuple[str, ...] = ()  # the names under `datasets:`; () for a `data:` config

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every variant's lint findings, then the sweep-level ones (variant "")."""
        return tuple(f for v in self.variants for f in v.findings) + self.design_findings

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "error")

    @property
    def size(self) -> str:
        """The plan's size: 4 variants x 3 datasets x 6 seeds = 72 trials (no datasets: `data:`)."""
        datasets = f"{len(self.datasets)} datasets x " if self.datasets else ""
        return (
            f"{len(self.variants)} variants x {datasets}{len(self.seeds)} seeds = "
            f"{len(self.trials)} trials"
        )

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def only(self, patterns: Sequence[str]) -> Plan:
        """The variants whose name contains or glob-matches one of `patterns` (--filter), with
        their trials. The baseline stays what the config says, even when it is left out."""
        if not patterns:
            return self
        on_data = [p.removeprefix(DATASET_FILTER) for p in patterns if p.startswith(DATASET_FILTER)]
        patterns = [p for p in patterns if not p.startswith(DATASET_FILTER)]
        variants = self.variants
        if patterns:
            variants = tuple(v for v in self.variants if _selected(v.name, patterns))
        if not variants:
            raise PlanError(f"--filter {' '.join(patterns)} matches no variant")
        kept = {v.id for v in variants}
        trials = tuple(t for t in self.trials if t.variant_id in kept)
        if on_data:  # `--filter dataset=NAME`: that dataset's trials (names or globs)
            trials = tuple(t for t in trials if _selected_exactly(t.dataset, on_data))
            if not trials:
                known = ", ".join(self.datasets) or "none (this config has `data:`)"
                raise PlanError(
                    f"--filter {DATASET_FILTER}{' '.join(on_data)} matches no dataset; "
                    f"datasets: {known}"
                )
        return replace(self, variants=variants, trials=trials)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `bnplace plan --json` and the sweep run's plan.json."""
        return {
            "experiment": self.experiment,
            "task": self.task,
            "metric": self.metric,
            "direction": self.direction,
            "baseline": self.baseline,
            "axes": list(self.axes),
            "seeds": list(self.seeds),
            "variants": [
                {
                    "id": v.id,
                    "name": v.name,
                    "labels": dict(v.labels),
                    "layers": v.layer_order,
                    "params": v.params,
                    "model": model_detail(v.model),  # input shape, outputs, each layer
                    "cudnn": v.cudnn,
                    "findings": [
                        {"rule": f.rule, "level": f.level, "message": f.message} for f in v.findings
                    ],
                }
                for v in self.variants
            ],
            "merges": [
                {"kept": m.kept, "dropped": m.dropped, "reason": m.reason} for m in self.merges
            ],
            "design": self.design.to_dict(),
            "trials": [
                {"key": t.key, "variant_id": t.variant_id, "variant": t.variant, "seed": t.seed}
                | ({"dataset": t.dataset} if t.dataset else {})
                for t in self.trials
            ],
        } | ({"datasets": list(self.datasets)} if self.datasets else {})


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
    """Expand the grid, resolve and lint every variant, merge equivalents, list the trials."""
    config = loaded.config
    seed_list = tuple(seeds) if seeds is not None else config.sweep.seed_list
    _check_size(loaded, len(seed_list))
    variants: list[Variant] = []
    merges: list[Merge] = []
    by_key: dict[str, Variant] = {}
    for cell in expand(config):
        vconfig = _variant_config(loaded, cell)
        _check_data_size(loaded, vconfig, cell.name)  # before a series is generated
        on, findings = _on_datasets(vconfig, shape_of, cell.name)
        # one dataset: its key, as before datasets existed; several: a hash of each one's
        key = on[0].key if not config.datasets else _digest({o.dataset: o.key for o in on})
        if key in by_key:
            merges.append(Merge(by_key[key].name, cell.name, "builds the same function"))
            continue
        first = on[0]
        variant = Variant(
            key[:8],
            key,
            cell.name,
            cell.labels,
            first.config,
            first.model,
            first.params,
            first.cudnn,
            findings,
            on,
        )
        by_key[key] = variant
        variants.append(variant)
    trials = tuple(
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
    task = config.task
    metric = config.compare.metric or default_metric(task)
    looks = config.sweep.looks if seeds is None else ()  # --seeds N: a fixed design
    design = make_design(config.compare, variants, merges, looks)
    baseline = _baseline(loaded, variants, merges)
    names = [v.name for v in variants]
    return Plan(
        experiment=config.experiment,
        task=task,
        metric=metric,
        direction=direction_for(metric),
        baseline=baseline,
        axes=tuple(list(config.sweep.axes) + list(config.sweep.arms)),
        seeds=seed_list,
        variants=tuple(variants),
        trials=trials,
        merges=tuple(merges),
        design=design,
        design_findings=tuple(design_findings(design, names, baseline, len(seed_list))),
        datasets=tuple(config.datasets or ()),
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


def _selected(name: str, patterns: Sequence[str]) -> bool:
    return any(p in name or fnmatch.fnmatch(name, p) for p in patterns)


def _selected_exactly(name: str, patterns: Sequence[str]) -> bool:
    return any(name == p or fnmatch.fnmatch(name, p) for p in patterns)
