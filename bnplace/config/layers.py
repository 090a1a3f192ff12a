"""The model's schema: the layers that can be placed at a site and the blocks of the skeleton.

In: plain Python data (a `model:` entry or a placed layer, as parsed from YAML). Out: frozen,
validated models (`PlacedLayer`, `Block` and their settings), the tables naming each layer and
block type, and the activation and initializer names. The YAML shape is kept (a block is a
one-key mapping `{conv1d: {...}}`, a placed layer `{batch_norm: {...}}` or a short form), so a
pydantic error location is also a path into the file. `bnplace.config.schema` assembles the
whole `Config` from these.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from bnplace.config.base import Strict
from bnplace.names.kinds import BLOCKS, PLACEABLE, check_covers

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
check_covers(LAYER_TYPES, PLACEABLE, "config.layers.LAYER_TYPES")


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


# PlacedLayer and Block below share their shape (a one-key model: its fields, its key, the
# value under it) by design: each field is a YAML key of the schema, written out so that pydantic
# and the editor see it; `_OneKey` holds what they share.
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
    cell: Literal["standard", "layer_norm", "batch_norm"] = "standard"
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
check_covers(BLOCK_TYPES, BLOCKS, "config.layers.BLOCK_TYPES")
# The sites each block type offers and the model-wide ones: bnplace.names.kinds.BLOCK_SITES and
# MODEL_SITES.


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
