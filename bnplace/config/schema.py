"""The config schema: pydantic models that are the single source of truth for a bnplace YAML.

In: plain Python data (as parsed from YAML). Out: a frozen, validated `Config`. The models mirror
the YAML exactly, so a pydantic error location is also a path into the file. By role: the model
(`bnplace.config.layers`: placed layers and blocks), the data (`bnplace.config.data`), the sweep
and search (`bnplace.config.sweep`), and here the head, training, comparison, tracking and the
whole `Config`. Cross-field rules live in `bnplace.config.checks`, one named function each.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import (
    Field,
    PositiveFloat,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from bnplace.config.base import Strict
from bnplace.config.data import DataConfig, Task
from bnplace.config.layers import Activation, Block, Initializer, Placement
from bnplace.config.sweep import Search, Sweep

# top-level keys an axis may set (`datasets.<name>.<key>`: one dataset of several)
SECTIONS = ("data", "datasets", "train", "head", "compare", "tracking")


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
MAX_EXTEND = 4  # values a trial may try past an end of its list, each one more training


class Choose(Strict):
    """`learning_rate: {choose: [0.001, 0.003, 0.01, 0.03]}`: the value is chosen per trial
    (each variant, dataset and seed) by the lowest best validation loss, the test split out of
    reach (`bnplace.trial.choose`). Every candidate trains from the same seed's build.

    `extend: n` (one chosen setting only): when the best value so far is the smallest or the
    largest tried, the trial also tries the next value past that end, one grid step further
    (the ratio of the two values at that end), up to n more values: a best value beyond the
    list is then found rather than only warned of."""

    choose: list[float] = Field(min_length=2, max_length=MAX_CHOICES)
    extend: int = Field(0, ge=0, le=MAX_EXTEND)

    @model_serializer(mode="wrap")
    def _extend_only_when_set(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Without `extend` the dump is what it was before `extend` existed: trial keys (a hash
        of the train section) and logged params of configs that do not use it stay the same."""
        out = handler(self)
        if isinstance(out, dict) and not self.extend:
            out.pop("extend", None)
        return out

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
    # the trial stops at the first batch past it; a worker stuck 60 s longer is killed
    time_limit: float | None = Field(
        None, gt=0, description="seconds of training per fit (each {choose:} candidate its own)"
    )
    shuffle: bool = True
    # XLA: its numbers differ from the graphs' in the last bits, and a seed still fixes them
    jit_compile: bool = Field(
        False,
        description="compile the model with XLA (README: Speed): pays on long budgets",
    )
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
