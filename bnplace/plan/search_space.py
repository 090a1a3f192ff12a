"""The placements a `search:` section asks for: site menus -> the cells of the search, bounded.

In: a `LoadedConfig` whose config has `search:` (its menus, `max_per_site`, `max_norm`, `apart`).
Out: a `Space`: one grid `Cell` per placement of the skeleton that the bounds allow (labels per
site; overrides hold the validated `PlacedLayer` lists, applied by `variant_config` without
re-validating the whole config), the number of combinations the menus make, and the `Pruned`
groups (reason, count, an example) the bounds removed. `make_plan` resolves, lints (pruning what
lint rejects) and merges the cells like a grid's. A space past `MAX_SEARCH_COMBINATIONS` or
keeping more than `MAX_PLACEMENTS` placements is refused with a located `ConfigError`. Pure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from bnplace.config.checks import Issue
from bnplace.config.layers import PlacedLayer
from bnplace.config.load import LoadedConfig
from bnplace.config.schema import Config
from bnplace.config.sweep import (
    MAX_PLACEMENTS,
    MAX_SEARCH_COMBINATIONS,
    MAX_SEARCH_TRIALS,
    NOTHING,
    Search,
    menu_entry,
)
from bnplace.names.errors import ConfigError, did_you_mean
from bnplace.names.kinds import NORM_KINDS, PLACEABLE
from bnplace.plan.grid import Cell
from bnplace.plan.lint import RULES, Finding

_BIT = {kind: 1 << index for index, kind in enumerate(PLACEABLE)}


@dataclass(frozen=True)
class Option:
    """One placement a site may take: its label and layers, its normalization layers and the
    bit mask of its layer kinds (for the bounds)."""

    label: str
    layers: tuple[PlacedLayer, ...]
    norms: int
    kinds: int


@dataclass(frozen=True)
class Pruned:
    """Placements of the space left out for one reason: how many, and the first one's name."""

    reason: str
    count: int
    example: str


@dataclass(frozen=True)
class Space:
    cells: tuple[Cell, ...]
    combinations: int  # the menus' options multiplied, before any bound
    pruned: tuple[Pruned, ...]


def layer_label(layer: PlacedLayer) -> str:
    """`batch_norm`, `dropout(0.3)` (only the main argument set), `batch_norm(momentum=0.9)`."""
    args = layer.layer.model_dump(exclude_defaults=True)
    if not args:
        return layer.kind
    if list(args) == [type(layer.layer).shorthand]:
        return f"{layer.kind}({next(iter(args.values()))})"
    return f"{layer.kind}({','.join(f'{k}={v}' for k, v in args.items())})"


def _option(layers: Sequence[PlacedLayer]) -> Option:
    label = "+".join(layer_label(layer) for layer in layers) or NOTHING
    norms = sum(layer.kind in NORM_KINDS for layer in layers)
    kinds = 0
    for layer in layers:
        kinds |= _BIT[layer.kind]
    return Option(label, tuple(layers), norms, kinds)


def site_options(menu: Sequence[Any], max_layers: int) -> list[Option]:
    """A site's menu -> every placement it may take: nothing (when the menu offers it), then
    each ordered arrangement of up to `max_layers` layers from distinct entries, with no layer
    kind twice (`dropout(0.1)+dropout(0.3)` is not a placement). Duplicates by label go."""
    stacks = [tuple(p) for item in menu for p in menu_entry(item)]
    options = [_option(())] if any(not stack for stack in stacks) else []
    seen = {option.label for option in options}
    filled = [stack for stack in stacks if stack]
    for size in range(1, max_layers + 1):
        for arrangement in itertools.permutations(filled, size):
            layers = [layer for stack in arrangement for layer in stack]
            kinds = [layer.kind for layer in layers]
            if len(layers) > max_layers or len(set(kinds)) < len(kinds):
                continue
            option = _option(layers)
            if option.label not in seen:
                seen.add(option.label)
                options.append(option)
    return options


def search_space(loaded: LoadedConfig) -> Space:
    """Every placement of the searched sites the bounds allow, in menu order."""
    config = loaded.config
    search = config.search
    if search is None:
        raise ValueError("search_space needs a config with search:")
    sites = list(search.sites)
    menus = [site_options(search.sites[site], search.max_per_site) for site in sites]
    combinations = math.prod(len(menu) for menu in menus)
    if combinations > MAX_SEARCH_COMBINATIONS:
        sizes = " x ".join(f"{site} ({len(menu)})" for site, menu in zip(sites, menus, strict=True))
        _refuse(
            loaded,
            ("search", "sites"),
            f"{combinations:,} combinations: {sizes}",
            f"at most {MAX_SEARCH_COMBINATIONS:,} combinations before the bounds",
        )
    base = _option(
        [layer for site, stack in config.placements.items() if site not in sites for layer in stack]
    )
    cells: list[Cell] = []
    pruned: dict[str, list[Any]] = {}
    for combo in itertools.product(*menus):
        reason = _bounds_broken(search, base, combo)
        cell = Cell(
            tuple((site, option.label) for site, option in zip(sites, combo, strict=True)),
            tuple((site, option.layers) for site, option in zip(sites, combo, strict=True)),
        )
        if reason:
            group = pruned.setdefault(reason, [0, cell.name])
            group[0] += 1
            continue
        cells.append(cell)
        if len(cells) > MAX_PLACEMENTS:
            _refuse(
                loaded,
                ("search",),
                f"more than {MAX_PLACEMENTS:,} placements pass the bounds",
                f"at most {MAX_PLACEMENTS:,}: shorten a menu, lower "
                "search.max_per_site or search.max_norm, or add search.apart pairs",
            )
    trials = len(cells) * search.seeds.max
    if trials > MAX_SEARCH_TRIALS:
        _refuse(
            loaded,
            ("search", "seeds", "max"),
            f"{len(cells):,} placements x {search.seeds.max} seeds = {trials:,} possible trials",
            f"at most {MAX_SEARCH_TRIALS:,}: fewer seeds or fewer placements",
        )
    groups = tuple(Pruned(reason, count, example) for reason, (count, example) in pruned.items())
    return Space(tuple(cells), combinations, groups)


def _bounds_broken(search: Search, base: Option, combo: Sequence[Option]) -> str:
    """Why a combination of placements breaks the search's bounds ("" when it does not): more
    normalization layers than search.max_norm, or two kinds search.apart keeps apart."""
    kinds, norms = base.kinds, base.norms
    for option in combo:
        kinds |= option.kinds
        norms += option.norms
    limit = search.max_norm
    if limit is not None and norms > limit:
        return f"more than {limit} normalization layers in the model (search.max_norm)"
    apart = [(a, b, _BIT[a] | _BIT[b]) for a, b in search.apart]
    clash = next(((a, b) for a, b, mask in apart if kinds & mask == mask), None)
    if clash is not None:
        return f"{clash[0]} and {clash[1]} in one model (search.apart)"
    return ""


def variant_config(config: Config, cell: Cell) -> Config:
    """The base config with the cell's placements at its sites (already validated layers)."""
    placements = dict(config.placements)
    placements.update((site, list(layers)) for site, layers in cell.overrides)
    return config.model_copy(update={"placements": placements})


def _refuse(loaded: LoadedConfig, path: tuple[str, ...], got: str, expected: str) -> NoReturn:
    issue = Issue(path, "the search space is too large", expected=expected, got=got)
    raise ConfigError([loaded.problem(issue)])


def prune_reason(loaded: LoadedConfig, findings: Sequence[Finding]) -> str:
    """Why lint rejects a placement of the search: its first error, or its first warning of a
    rule named in `search.prune`; "" when it stays. An unknown rule name is a located error."""
    search = loaded.config.search
    prune = set(search.prune) if search is not None else set()
    known = ["shape", *(rule.__name__ for rule in RULES)]
    for index, name in enumerate(sorted(prune - set(known))):
        issue = Issue(
            ("search", "prune", index),
            f"unknown lint rule '{name}'",
            expected=f"one of {', '.join(known)}",
            got=name,
            suggestion=did_you_mean(name, known) or "",
        )
        raise ConfigError([loaded.problem(issue)])
    for finding in findings:
        if finding.level == "error":
            return f"lint error {finding.rule}"
        if finding.rule in prune:
            return f"lint {finding.rule} (search.prune)"
    return ""
