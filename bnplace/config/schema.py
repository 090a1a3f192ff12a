"""The config schema: pydantic models that are the single source of truth for a bnplace YAML.

In: plain Python data (as parsed from YAML). Out: a frozen, validated `Config`. The models mirror
the YAML exactly (a block is a one-key mapping `{conv1d: {...}}`, a placed layer is a one-key
mapping `{batch_norm: {...}}` or its short forms), so a pydantic error location is also a path
into the file. Cross-field rules live in `bnplace.config.checks`, one named function each.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveFloat, ValidationError, field_validator, model_validator

from bnplace.config.base import Strict
from bnplace.config.data import DataConfig, Task
from bnplace.names.kinds import BLOCKS, PLACEABLE, check_covers

ACTIVATIONS = ("linear", "relu", "selu", "elu", "gelu", "tanh", "sigmoid", "swish", "softmax")
INITIALIZERS = (
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "orthogonal",
)
Activation = Literal["linear", "relu", "selu", "elu", "gelu", "tanh", "sigmoid", "swish", "softmax"]
Initializer = Literal[
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "orthogonal",
]


# --- Layers that can be placed at a site ---------------------------------------------------


class _Layer(Strict):
    """A placeable layer; `shorthand` names the argument a bare scalar sets (`dropout: 0.3`)."""

    shorthand: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _expand_scalar(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            return {cls.shorthand: value}
        return value


class BatchNorm(_Layer):
    shorthand = "momentum"
    axis: int = -1
    momentum: float = Field(0.99, ge=0, lt=1)
    epsilon: float = Field(1e-3, gt=0)
    center: bool = True
    scale: bool = True


class LayerNorm(_Layer):
    shorthand = "axis"
    axis: int | list[int] = -1
    epsilon: float = Field(1e-3, gt=0)
    center: bool = True
    scale: bool = True


class GroupNorm(_Layer):
    shorthand = "groups"
    groups: int = Field(2, ge=1)
    axis: int = -1
    epsilon: float = Field(1e-3, gt=0)
    center: bool = True
    scale: bool = True


class Dropout(_Layer):
    shorthand = "rate"
    rate: float = Field(0.5, ge=0, lt=1)


class SpatialDropout(Dropout):
    pass


class AlphaDropout(Dropout):
    pass


class GaussianDropout(Dropout):
    pass


class GaussianNoise(_Layer):
    shorthand = "stddev"
    stddev: float = Field(0.1, ge=0, le=1)  # Keras 3 refuses more (GaussianNoise.__init__)


class ActivationLayer(_Layer):
    shorthand = "activation"
    activation: Activation = "relu"


LAYER_TYPES: dict[str, type[_Layer]] = {
    "batch_norm": BatchNorm,
    "layer_norm": LayerNorm,
    "group_norm": GroupNorm,
    "dropout": Dropout,
    "spatial_dropout": SpatialDropout,
    "alpha_dropout": AlphaDropout,
    "gaussian_dropout": GaussianDropout,
    "gaussian_noise": GaussianNoise,
    "activation": ActivationLayer,
}
check_covers(LAYER_TYPES, PLACEABLE, "config.schema.LAYER_TYPES")


def _one_key(value: Any, what: str) -> Any:
    """Accept `name`, `{name: args}`; turn a bare name into `{name: None}`."""
    if isinstance(value, str):
        return {value: None}
    if isinstance(value, dict) and len(value) != 1:
        names = ", ".join(map(str, value)) or "nothing"
        raise ValueError(f"a {what} is a mapping with exactly one key (its type); got {names}")
    return value


class _OneKey(Strict):
    """A mapping with exactly one key, its type: `{dropout: 0.3}`, `{lstm: {units: 16}}`. A bare
    `- batch_norm:` (YAML's {batch_norm: None}) means that type with its defaults."""

    _what: ClassVar[str] = "mapping"

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        value = _one_key(value, cls._what)
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @property
    def key(self) -> str:
        """The one key given."""
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)


class PlacedLayer(_OneKey):
    """One entry of a placement list: `batch_norm`, `{dropout: 0.3}`, `{layer_norm: {axis: -1}}`."""

    _what: ClassVar[str] = "placed layer"

    batch_norm: BatchNorm | None = None
    layer_norm: LayerNorm | None = None
    group_norm: GroupNorm | None = None
    dropout: Dropout | None = None
    spatial_dropout: SpatialDropout | None = None
    alpha_dropout: AlphaDropout | None = None
    gaussian_dropout: GaussianDropout | None = None
    gaussian_noise: GaussianNoise | None = None
    activation: ActivationLayer | None = None

    @property
    def kind(self) -> str:
        """The layer kind (bnplace.names.kinds): its one key, `batch_norm`, `dropout`..."""
        return self.key

    @property
    def layer(self) -> _Layer:
        return getattr(self, self.kind)


Placement = list[PlacedLayer]


# --- Blocks of the skeleton ----------------------------------------------------------------


class _Block(Strict):
    id: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    # false drops the block and whatever is placed at its sites: "with vs without" axes
    enabled: bool = True


class Conv1D(_Block):
    filters: int = Field(ge=1)
    kernel_size: int = Field(3, ge=1)
    strides: int = Field(1, ge=1)
    padding: Literal["valid", "same", "causal"] = "valid"
    dilation_rate: int = Field(1, ge=1)
    activation: Activation = "linear"
    use_bias: bool = True
    kernel_initializer: Initializer = "glorot_uniform"


class Pool(_Block):
    kind: Literal["max", "average"] = "max"
    pool_size: int = Field(2, ge=1)
    strides: int | None = Field(None, ge=1)
    padding: Literal["valid", "same"] = "valid"


class SqueezeExcite(_Block):
    ratio: int = Field(4, ge=1)
    use_bias: bool = False


class LSTM(_Block):
    units: int = Field(ge=1)
    return_sequences: bool = False
    activation: Activation = "tanh"
    recurrent_activation: Activation = "sigmoid"
    use_bias: bool = True
    dropout: float = Field(0.0, ge=0, lt=1)
    recurrent_dropout: float = Field(0.0, ge=0, lt=1)
    cell: Literal["standard", "layer_norm"] = "standard"
    kernel_initializer: Initializer = "glorot_uniform"
    recurrent_initializer: Initializer = "orthogonal"


class Dense(_Block):
    units: int = Field(ge=1)
    activation: Activation = "linear"
    use_bias: bool = True
    kernel_initializer: Initializer = "glorot_uniform"


BLOCK_TYPES: dict[str, type[_Block]] = {
    "conv1d": Conv1D,
    "pool": Pool,
    "se": SqueezeExcite,
    "lstm": LSTM,
    "dense": Dense,
}
check_covers(BLOCK_TYPES, BLOCKS, "config.schema.BLOCK_TYPES")
# The sites each block type offers and the model-wide ones: bnplace.names.kinds.BLOCK_SITES and
# MODEL_SITES.
# top-level keys an axis may set (`datasets.<name>.<key>`: one dataset of several)
SECTIONS = ("data", "datasets", "train", "head", "compare", "tracking")


class Block(_OneKey):
    """One entry of `model:`, e.g. `{conv1d: {id: conv, filters: 16}}` or `{lstm: {units: 16}}`."""

    _what: ClassVar[str] = "model block"

    conv1d: Conv1D | None = None
    pool: Pool | None = None
    se: SqueezeExcite | None = None
    lstm: LSTM | None = None
    dense: Dense | None = None

    @property
    def block_type(self) -> str:
        """The block's type: its one key, `conv1d`, `pool`, `se`, `lstm` or `dense`."""
        return self.key

    @property
    def settings(self) -> _Block:
        """The block's settings (the value under its key)."""
        return getattr(self, self.block_type)


# --- Head, training, comparison, tracking ---------------------------------------------------


class Head(Strict):
    """The output layer; its units come from the data (horizon x targets, or classes)."""

    activation: Activation | None = None  # default: linear (forecast) / softmax (classify)
    use_bias: bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    reduce: Literal["flatten", "global_average", "last_step"] = "flatten"


class EarlyStopping(Strict):
    monitor: str = "val_loss"
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0)
    restore_best_weights: bool = True


class LrSchedule(Strict):
    kind: Literal["reduce_on_plateau", "cosine", "exponential"] = "reduce_on_plateau"
    factor: float = Field(0.5, gt=0, lt=1, description="reduce_on_plateau / exponential decay")
    patience: int = Field(2, ge=1, description="reduce_on_plateau")
    min_learning_rate: float = Field(1e-6, ge=0)


MAX_CHOICES = 8  # candidates per chosen setting: each one trains the trial once more
MAX_CANDIDATES = 16  # combinations of all chosen settings of one trial


class Choose(Strict):
    """`learning_rate: {choose: [0.001, 0.003, 0.01, 0.03]}`: the value is chosen per trial
    (each variant, dataset and seed) by the lowest best validation loss, the test split out of
    reach (`bnplace.trial.choose`). Every candidate trains from the same seed's build."""

    choose: list[float] = Field(min_length=2, max_length=MAX_CHOICES)

    @field_validator("choose")
    @classmethod
    def _positive_distinct(cls, values: list[float]) -> list[float]:
        if any(not v > 0 for v in values):
            raise ValueError(f"every candidate must be above 0, got {values}")
        if len(set(values)) != len(values):
            raise ValueError(f"a candidate is repeated: {values}")
        return values


class Train(Strict):
    CHOOSABLE: ClassVar[tuple[str, ...]] = ("learning_rate", "weight_decay")

    epochs: int = Field(10, ge=1)
    # the budget in optimizer steps instead of epochs: whole epochs, ceil(steps / batches), so
    # datasets of different lengths get the same number of updates; not with `epochs`
    steps: int | None = Field(None, ge=1, le=10_000_000)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["adam", "nadam", "adamw", "rmsprop", "sgd"] = "adam"
    # a fixed value, or {choose: [...]}: chosen per variant, dataset and seed on validation
    learning_rate: PositiveFloat | Choose = 1e-3
    weight_decay: PositiveFloat | Choose | None = None  # decoupled (AdamW-style) decay
    clipnorm: float | None = Field(None, gt=0)
    loss: Literal["mse", "mae", "huber", "sparse_categorical_crossentropy"] | None = None
    early_stopping: EarlyStopping | None = None
    lr_schedule: LrSchedule | None = None
    time_limit: float | None = Field(None, gt=0, description="seconds per trial")
    shuffle: bool = True
    jit_compile: bool = False
    steps_per_execution: int = Field(1, ge=1)

    def epochs_for(self, batches: int) -> int:
        """The epochs of the budget when an epoch has `batches` optimizer steps."""
        if self.steps is None:
            return self.epochs
        return max(1, -(-self.steps // max(1, batches)))

    @property
    def chosen_keys(self) -> tuple[str, ...]:
        """The settings given as `{choose: [...]}` (chosen per trial by `bnplace.trial.choose`)."""
        return tuple(k for k in self.CHOOSABLE if isinstance(getattr(self, k), Choose))


class AxisContrast(Strict):
    """`{axis: conv.pre_act, levels: [bn, none]}`: the two levels compared at every level of
    the other axes (and, in a two-axis grid, the interaction with the other axis)."""

    axis: str
    levels: tuple[str, str]


class Compare(Strict):
    metric: str | None = None  # default: test_rmse (forecast) / test_accuracy (classify)
    baseline: str | None = None  # a variant name or axis label; default: the first variant
    alpha: float = Field(0.05, gt=0.0, le=0.2)  # for all verdicts of the table together
    margin: float = Field(0.05, gt=0.0, lt=1.0)  # smallest relative effect worth acting on
    seed_sd: float = Field(0.05, gt=0.0, le=2.0)  # assumed sd of a paired log ratio (planning)
    failures: Literal["rank_worst", "drop"] = "rank_worst"
    # the interval verdicts are read from: exact signed-rank (robust to skew, ranks failures)
    # or Student t (decides at 4-6 seeds; needs failures: drop): stats.verdicts.t_intervals.
    # None is signed_rank (unset keeps the resolved config, so a sweep's digest, as before)
    interval: Literal["signed_rank", "t"] | None = None
    # pairs [a, b] of variant names or `axis=label` selectors, or axis contrasts
    contrasts: list[tuple[str, str] | AxisContrast] = Field(default_factory=list, max_length=64)
    # false: judge the declared contrasts alone (a smaller family, narrower intervals), for a
    # sweep whose question is exactly those contrasts
    versus_baseline: bool = True

    @property
    def interval_family(self) -> str:
        """`interval`, with signed_rank when unset."""
        return self.interval or "signed_rank"


class Tracking(Strict):
    uri: str | None = None


# --- Sweep ---------------------------------------------------------------------------------

AxisValues = list[Any] | dict[str, Any]
MAX_SEEDS = 1000  # per variant; far past what any verdict needs (see `bnplace plan`)


AUTO_MAX = 40  # `seeds: auto`: the most seeds per variant unless `max` says otherwise
AUTO_MAX_LIMIT = 60  # the design search's bound (bnplace.stats.sequential_design)


class SeedSchedule(Strict):
    """`seeds: {min: 6, max: 40, step: 4}`: seeds on demand (see `bnplace.stats.sequential`): `min`
    seeds of every variant, then `step` more for variants with an undecided comparison, up to
    `max`. `seeds: auto` or `seeds: {auto: true, max: 30}`: min and step are chosen at plan time
    for the comparison family (`bnplace.stats.sequential_design.choose_design`)."""

    min: int | None = Field(None, ge=2, le=MAX_SEEDS)
    max: int = Field(AUTO_MAX, ge=2, le=MAX_SEEDS)
    step: int | None = Field(None, ge=1, le=MAX_SEEDS)
    auto: bool = False

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
    seeds: SeedSchedule = SeedSchedule(min=10, max=40, step=1)

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
        if seeds.min < 3:  # the first stage estimates variances of differences (n0 - 1 df)
            raise ValueError(
                f"min must be at least 3 (the first stage estimates variances), got {seeds.min}"
            )
        return seeds


class Config(Strict):
    """A whole bnplace config file.

    The data is one section (`data:`) or several named ones (`datasets: {name: section}`,
    one question asked on each); exactly one of the two is given (`checks.check_data_given`).
    The plan trains each variant on each dataset with a single-dataset copy of its config
    (`on_dataset`), so everything below the plan sees a config with `data:` alone.
    """

    experiment: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    description: str = ""
    data: DataConfig | None = None
    datasets: dict[str, DataConfig] | None = None
    model: list[Block] = Field(min_length=1)
    placements: dict[str, Placement] = Field(default_factory=dict)
    head: Head = Head()
    train: Train = Train()
    sweep: Sweep = Sweep()
    search: Search | None = None
    compare: Compare = Compare()
    tracking: Tracking = Tracking()

    @property
    def sections(self) -> dict[str, DataConfig]:
        """The data sections by dataset name; a `data:` config's one section is named ""."""
        if self.datasets is not None:
            return dict(self.datasets)
        return {"": self.data} if self.data is not None else {}

    @property
    def section(self) -> DataConfig:
        """The one data section of a single-dataset config (what a trial trains on)."""
        if self.data is None:
            raise ValueError("this config has several datasets; take one with on_dataset(name)")
        return self.data

    @property
    def task(self) -> Task:
        """The config's one task (`checks.check_one_task` refuses a mix across datasets)."""
        first = next(iter(self.sections.values()), None)
        return first.task if first is not None else "forecast"

    def on_dataset(self, name: str) -> Config:
        """This config on one dataset: `data:` that dataset's section, no `datasets:`."""
        if self.datasets is None:
            return self
        return self.model_copy(update={"data": self.datasets[name], "datasets": None})
