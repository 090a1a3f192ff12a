"""The plan's data: variants, trials, merges and the `Plan` that holds them, all frozen.

In: what `bnplace.plan.make.make_plan` resolved. Out: `Plan` (with `only` for --filter and
`to_dict` for plan.json), `Variant`, `OnDataset`, `Merge`, `Trial`; `find_variant` (by name, id
or a unique part of a name) and `variant_detail` (one variant layer by layer). Pure.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bnplace.config.schema import Config
from bnplace.names.errors import PlanError, did_you_mean
from bnplace.plan.detail import model_detail
from bnplace.plan.lint import Finding
from bnplace.plan.search_space import Pruned
from bnplace.plan.spec import ModelSpec
from bnplace.stats.verdicts import Design

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
    seeds_on_demand: dict[str, Any] | None = None  # `plan.design.sequential_figures`, per dataset
    combinations: int = 0  # a search: the placements its menus make, before bounds and lint
    pruned: tuple[Pruned, ...] = ()  # a search: placements left out, by reason

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
        if self.combinations:  # a search: the race trains only part of these
            return (
                f"{len(self.variants)} placements x up to {len(self.seeds)} seeds = at most "
                f"{len(self.trials)} trials (a race)"
            )
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
            "design_findings": [
                {"rule": f.rule, "level": f.level, "message": f.message}
                for f in self.design_findings
            ],
            "seeds_on_demand": self.seeds_on_demand,
            "trials": [
                {"key": t.key, "variant_id": t.variant_id, "variant": t.variant, "seed": t.seed}
                | ({"dataset": t.dataset} if t.dataset else {})
                for t in self.trials
            ],
            **self._search_dict(),
        } | ({"datasets": list(self.datasets)} if self.datasets else {})

    def _search_dict(self) -> dict[str, Any]:
        if not self.combinations:
            return {}
        pruned = [{"reason": p.reason, "count": p.count, "example": p.example} for p in self.pruned]
        search = self.variants[0].config.search
        seeds = search.seeds.model_dump() if search is not None else {}
        return {"search": {"combinations": self.combinations, "pruned": pruned, "seeds": seeds}}


def variant_detail(variant: Variant) -> dict[str, Any]:
    """The variant's id and name with its `model_detail`."""
    return {"id": variant.id, "name": variant.name, **model_detail(variant.model)}


def find_variant(wanted: str, variants: Sequence[Variant]) -> Variant:
    """By exact name, by id, else the one variant whose name contains `wanted`."""
    for variant in variants:
        if wanted in (variant.name, variant.id):
            return variant
    matches = [v for v in variants if wanted in v.name]
    if len(matches) == 1:
        return matches[0]
    names = [v.name for v in variants]
    hint = did_you_mean(wanted, names)
    raise PlanError(
        f"--variant {wanted!r} matches {len(matches)} variants; name one of: {'; '.join(names)}"
        + (f"\n  did you mean: {hint}" if hint else "")
    )


def _selected(name: str, patterns: Sequence[str]) -> bool:
    return any(p in name or fnmatch.fnmatch(name, p) for p in patterns)


def _selected_exactly(name: str, patterns: Sequence[str]) -> bool:
    return any(name == p or fnmatch.fnmatch(name, p) for p in patterns)
