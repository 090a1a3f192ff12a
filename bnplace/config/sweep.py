"""The sweep's schema: the axes and arms of a grid, its seeds, and a search over placements.

In: plain Python data (the `sweep:` and `search:` sections, as parsed from YAML). Out: frozen,
validated `Sweep` (axes, arms, a fixed seed count or seeds on demand: `SeedSchedule`) and
`Search` (site menus, bounds, the racing seeds), with the bounds a config may ask for
(`MAX_SEEDS`, `MAX_PLACEMENTS`, ...). `bnplace.config.schema` assembles the whole `Config`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from bnplace.config.base import Strict
from bnplace.config.layers import LAYER_TYPES, PlacedLayer
from bnplace.names.kinds import PLACEABLE

# --- Sweep ---------------------------------------------------------------------------------

AxisValues = list[Any] | dict[str, Any]
MAX_SEEDS = 1000  # per variant; far past what any verdict needs (see `bnplace plan`)


AUTO_MAX = 40  # `seeds: auto`: the most seeds per variant unless `max` says otherwise
AUTO_MAX_LIMIT = 60  # the design search's bound (bnplace.stats.sequential_design)
# rho of alpha·t^rho a config may ask for: past these the first looks get (nearly) all or none
# of alpha (rho = 3 is close to O'Brien–Fleming, 1 to Pocock)
SPENDING_LIMITS = (0.5, 4.0)


class SeedSchedule(Strict):
    """`seeds: {min: 6, max: 40, step: 4}`: seeds on demand (see `bnplace.stats.sequential`): `min`
    seeds of every variant, then `step` more for variants with an undecided comparison, up to
    `max`. `seeds: auto` or `seeds: {auto: true, max: 30}`: min and step are chosen at plan time
    for the comparison family (`bnplace.stats.sequential_design.choose_design`). `spending`: the
    exponent rho of the looks' alpha spending alpha·t^rho (default: 2 for signed-rank intervals,
    1 for t; with auto and t intervals, searched unless given)."""

    min: int | None = Field(None, ge=2, le=MAX_SEEDS)
    max: int = Field(AUTO_MAX, ge=2, le=MAX_SEEDS)
    step: int | None = Field(None, ge=1, le=MAX_SEEDS)
    auto: bool = False
    spending: float | None = Field(None, ge=SPENDING_LIMITS[0], le=SPENDING_LIMITS[1])

    @model_validator(mode="after")
    def _max_not_below_min(self) -> SeedSchedule:
        if self.auto:
            if self.min is not None or self.step is not None:
                raise ValueError("seeds.auto chooses min and step itself: give only max")
            if self.max > AUTO_MAX_LIMIT:
                raise ValueError(f"seeds.max is at most {AUTO_MAX_LIMIT} with auto, got {self.max}")
            return self
        if self.min is None:
            raise ValueError("seeds on demand need min (or auto: true)")
        if self.max < self.min:
            raise ValueError(f"seeds.max ({self.max}) is below seeds.min ({self.min})")
        return self

    @property
    def looks(self) -> tuple[int, ...]:
        """The configured looks; () with auto (the plan chooses them)."""
        from bnplace.stats.sequential import look_sizes

        if self.auto or self.min is None:
            return ()
        return look_sizes(self.min, self.max, self.step_or_default)

    @property
    def step_or_default(self) -> int:
        """The seeds added per look: `step`, else 4."""
        return self.step or 4


class Sweep(Strict):
    axes: dict[str, AxisValues] = Field(default_factory=dict)
    arms: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    seeds: int | list[int] | SeedSchedule = 3

    @field_validator("seeds", mode="before")
    @classmethod
    def _auto(cls, seeds: Any) -> Any:
        return {"auto": True} if seeds == "auto" else seeds

    @field_validator("seeds")
    @classmethod
    def _seeds_usable(cls, seeds: int | list[int] | SeedSchedule) -> int | list[int] | SeedSchedule:
        if isinstance(seeds, SeedSchedule):
            return seeds
        if isinstance(seeds, int) and seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {seeds}")
        count = seeds if isinstance(seeds, int) else len(seeds)
        if count > MAX_SEEDS:  # a typo like 1000000000000 must not become a MemoryError
            raise ValueError(f"at most {MAX_SEEDS} seeds per variant, got {count}")
        if isinstance(seeds, list):
            if not seeds:
                raise ValueError("the seed list is empty")
            if len(set(seeds)) != len(seeds):
                raise ValueError(f"the seed list repeats a seed: {seeds}")
        return seeds

    @property
    def seed_list(self) -> tuple[int, ...]:
        """Every seed a variant may train: 0 .. max − 1 for seeds on demand."""
        if isinstance(self.seeds, SeedSchedule):
            return tuple(range(self.seeds.max))
        return tuple(range(self.seeds)) if isinstance(self.seeds, int) else tuple(self.seeds)

    @property
    def looks(self) -> tuple[int, ...]:
        """Seeds per variant at each look of seeds on demand; () for a fixed number."""
        return self.seeds.looks if isinstance(self.seeds, SeedSchedule) else ()

    @property
    def spending(self) -> float | None:
        """The exponent of the looks' alpha spending the config gives (None: the default)."""
        return self.seeds.spending if isinstance(self.seeds, SeedSchedule) else None


# --- Search over placements ----------------------------------------------------------------

MAX_SEARCH_COMBINATIONS = 1_000_000  # site options multiplied, before the bounds
MAX_PLACEMENTS = 10_000  # placements a search keeps after the bounds (each is resolved, linted)
MAX_SEARCH_TRIALS = 300_000  # placements x search.seeds.max: every trial the racing may run
NOTHING = "none"  # a menu entry for an empty site


def menu_entry(item: Any) -> list[list[PlacedLayer]]:
    """One entry of a site's menu -> the placements it stands for: `none` (nothing), a layer
    (`batch_norm`, `{dropout: 0.3}`, `{batch_norm: {momentum: 0.9}}`), a layer at several values
    of its main argument (`{dropout: [0.1, 0.3]}`: one placement each) or a list of layers (one
    fixed stack). Raises ValueError on anything else."""
    if item is None or item == NOTHING or item == []:
        return [[]]
    if isinstance(item, list):
        return [[PlacedLayer.model_validate(entry) for entry in item]]
    if isinstance(item, dict) and len(item) == 1:
        ((kind, value),) = item.items()
        layer_type = LAYER_TYPES.get(kind)
        if isinstance(value, list) and layer_type is not None and layer_type.shorthand != "axis":
            if not value:
                raise ValueError(f"{kind}: an empty list of values")
            return [[PlacedLayer.model_validate({kind: one})] for one in value]
    return [[PlacedLayer.model_validate(item)]]


class Search(Strict):
    """`search:` the placements to search and how (bnplace.plan.search_space enumerates them,
    bnplace.stats.selection races them). `sites` maps a site to its menu (see `menu_entry`); a site
    takes up to `max_per_site` menu layers in any order (no kind twice); `max_norm` bounds the
    normalization layers of the whole model; `apart` lists pairs of kinds that never share a
    model; `prune` names lint rules whose warnings also prune (lint errors always do). `seeds`:
    every placement trains seeds 0 .. min − 1, then survivors `step` more a round, up to `max`."""

    sites: dict[str, list[Any]] = Field(min_length=1, max_length=32)
    max_per_site: int = Field(1, ge=1, le=4)
    max_norm: int | None = Field(None, ge=0)
    apart: list[tuple[str, str]] = Field(default_factory=list, max_length=64)
    prune: list[str] = Field(default_factory=list, max_length=64)
    # a first stage of 5: on the sunspots grid of benchmarks/search.py it raced to 40 seeds in
    # 0.37x the fixed design of the same power, against 0.47x with 10 (benchmarks/README.md)
    seeds: SeedSchedule = SeedSchedule(min=5, max=40, step=1)

    @field_validator("sites")
    @classmethod
    def _menus_valid(cls, sites: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for site, menu in sites.items():
            if not menu:
                raise ValueError(f"{site}: an empty menu (write `none` for an empty site)")
            for index, item in enumerate(menu):
                try:
                    menu_entry(item)
                except ValidationError as exc:
                    error = exc.errors()[0]
                    where = ".".join(map(str, error["loc"]))
                    raise ValueError(f"{site}[{index}]: {where}: {error['msg']}") from None
                except ValueError as exc:
                    raise ValueError(f"{site}[{index}]: {exc}") from None
        return sites

    @field_validator("apart")
    @classmethod
    def _kinds_known(cls, apart: list[tuple[str, str]]) -> list[tuple[str, str]]:
        unknown = sorted({k for pair in apart for k in pair} - set(PLACEABLE))
        if unknown:
            raise ValueError(f"unknown layer kind {unknown[0]}; kinds: {', '.join(PLACEABLE)}")
        return apart

    @field_validator("seeds")
    @classmethod
    def _first_stage(cls, seeds: SeedSchedule) -> SeedSchedule:
        if seeds.auto or seeds.min is None:
            raise ValueError("a search's seeds are {min, max, step} (the race's rounds), not auto")
        if seeds.spending is not None:  # the race's intervals do not spend alpha over looks
            raise ValueError("a search's seeds take no spending (the race has its own rule)")
        if seeds.min < 3:  # the first stage estimates variances of differences (n0 - 1 df)
            raise ValueError(
                f"min must be at least 3 (the first stage estimates variances), got {seeds.min}"
            )
        return seeds
