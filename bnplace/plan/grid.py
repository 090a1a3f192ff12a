"""Sweep axes and arms -> the settings of each variant (the grid), with readable labels.

In: a validated `Config`. Out: `Cell`s, one per point of the grid (the product of every axis and
every arm set, in config order), each holding its labels (`("conv.pre_act", "batch_norm")`) and
the `key -> value` overrides that turn the base config into that variant. Pure.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from bnplace.config.overrides import target_paths
from bnplace.config.schema import Config


@dataclass(frozen=True)
class Cell:
    labels: tuple[tuple[str, str], ...]  # (axis, label) in axis order
    overrides: tuple[tuple[str, Any], ...]  # (key, value) applied to the base config

    @property
    def name(self) -> str:
        return ", ".join(f"{axis}={label}" for axis, label in self.labels) or "base"


def label_of(value: Any, is_site: bool) -> str:
    """A short label for an axis value written as a list item (mapping items name themselves)."""
    if is_site:
        return "+".join(_layer_label(entry) for entry in value) if value else "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float) or value is None:
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _layer_label(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    ((kind, args),) = entry.items()
    if args is None or args == {}:
        return kind
    if not isinstance(args, dict):
        return f"{kind}({args})"
    inner = ",".join(f"{k}={v}" for k, v in args.items())
    return f"{kind}({inner})"


def expand(config: Config) -> list[Cell]:
    dimensions: list[list[tuple[tuple[str, str], tuple[tuple[str, Any], ...]]]] = []
    for key, values in config.sweep.axes.items():
        is_site = target_paths(key, config)[0][0] == "placements"
        if isinstance(values, dict):
            items = [(str(label), value) for label, value in values.items()]
        else:
            items = [(label_of(value, is_site), value) for value in values]
        dimensions.append([((key, label), ((key, value),)) for label, value in items])
    for arm_set, arms in config.sweep.arms.items():
        dimensions.append(
            [((arm_set, arm), tuple(settings.items())) for arm, settings in arms.items()]
        )
    cells = []
    for combo in itertools.product(*dimensions):
        labels = tuple(label for label, _ in combo)
        overrides = tuple(item for _, items in combo for item in items)
        cells.append(Cell(labels, overrides))
    return cells
