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
from bnplace.config.data import CsvData
from bnplace.config.load import LoadedConfig, validate_raw
from bnplace.config.overrides import set_value, target_path
from bnplace.config.schema import Config
from bnplace.errors import ConfigError, PlanError, PlanTooLarge, UnknownVariant
from bnplace.metrics import default_metric, direction_for
from bnplace.plan.design import design_findings, make_design, resolve_variant
from bnplace.plan.detail import model_detail
from bnplace.plan.grid import Cell, expand
from bnplace.plan.lint import Finding, Subject, lint
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


@dataclass(frozen=True)
class Variant:
    id: str  # 8 hex characters of `key`
    key: str  # hash of the canonical model, training settings and data
    name: str
    labels: tuple[tuple[str, str], ...]
    config: Config
    model: ModelSpec
    params: int
    cudnn: bool
    findings: tuple[Finding, ...]

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
    config: Config  # the variant's config (train, data, head...)
    data_fingerprint: str


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

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every variant's lint findings, then the sweep-level ones (variant "")."""
        return tuple(f for v in self.variants for f in v.findings) + self.design_findings

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "error")

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def only(self, patterns: Sequence[str]) -> Plan:
        """The variants whose name contains or glob-matches one of `patterns` (--filter), with
        their trials. The baseline stays what the config says, even when it is left out."""
        if not patterns:
            return self
        variants = tuple(v for v in self.variants if _selected(v.name, patterns))
        if not variants:
            raise PlanError(f"--filter {' '.join(patterns)} matches no variant")
        kept = {v.id for v in variants}
        trials = tuple(t for t in self.trials if t.variant_id in kept)
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
                for t in self.trials
            ],
        }


def _digest(payload: Any, size: int = 64) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def data_key(config: Config) -> str:
    """Identity of a data section for caching prepared data within one sweep."""
    data = config.data.model_dump(mode="json")
    return _digest(data)


def _variant_config(loaded: LoadedConfig, cell: Cell) -> Config:
    raw = loaded.raw
    for key, value in cell.overrides:
        raw = set_value(raw, target_path(key, loaded.config), value)
    try:
        return validate_raw(raw)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise PlanError(
            f"{loaded.file}: variant '{cell.name}' is not a valid config:\n{exc}"
        ) from None


def _variant_key(config: Config, model: ModelSpec, data: DataShape) -> str:
    data_identity: Any = data.fingerprint or config.data.model_dump(mode="json")
    if isinstance(config.data, CsvData) and data.fingerprint:
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
    fingerprints: dict[str, str] = {}  # variant id -> its data's fingerprint (asked once)
    for cell in expand(config):
        vconfig = _variant_config(loaded, cell)
        shape = shape_of(vconfig)
        model = resolve_model(vconfig, shape)
        report = analyse(model)
        key = _variant_key(vconfig, model, shape)
        if key in by_key:
            merges.append(Merge(by_key[key].name, cell.name, "builds the same function"))
            continue
        findings = lint(Subject(vconfig, model, report, shape.train_windows), cell.name)
        variant = Variant(
            key[:8],
            key,
            cell.name,
            cell.labels,
            vconfig,
            model,
            report.params,
            report.cudnn,
            tuple(findings),
        )
        by_key[key] = variant
        variants.append(variant)
        fingerprints[variant.id] = shape.fingerprint
    trials = tuple(
        Trial(
            _digest([TRIAL_FORMAT, v.key, seed], 16),
            seed,
            v.id,
            v.name,
            v.model,
            v.config,
            fingerprints[v.id],
        )
        for v in variants
        for seed in seed_list
    )
    task = config.data.task
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


def _check_size(loaded: LoadedConfig, seeds: int) -> None:
    """Refuse a sweep of more than MAX_TRIALS trials, from the sizes of its axes and arm sets
    alone (merges can only make it smaller, so the bound is checked on the full grid)."""
    sweep = loaded.config.sweep
    sizes = [(f"sweep.axes.{key}", len(values)) for key, values in sweep.axes.items()]
    sizes += [(f"sweep.arms.{name}", len(arms)) for name, arms in sweep.arms.items()]
    cells = math.prod(size for _, size in sizes)
    if cells * seeds <= MAX_TRIALS:
        return
    factors = " x ".join(f"{key} ({size})" for key, size in sizes) or "one variant"
    raise PlanTooLarge(
        f"{loaded.file}: sweep: {cells:,} variants x {seeds:,} seeds = {cells * seeds:,} "
        f"trials, more than the {MAX_TRIALS:,} one plan takes; the grid is {factors} x "
        "sweep.seeds: narrow an axis or arm set, or split the sweep"
    )


def _selected(name: str, patterns: Sequence[str]) -> bool:
    return any(p in name or fnmatch.fnmatch(name, p) for p in patterns)
