"""Layer kinds and block types: the one table every other module reads its kind names from.

In: nothing (pure data; no TensorFlow, no MLflow, no files, no other bnplace module). Out:
`LAYER_KINDS` (each kind of layer a resolved `LayerSpec` can have: its Keras class, its short
name in a layer order, what it does, its arguments, its parameter-count rule, whether it needs a
sequence, reduces time or acts only in training), `BLOCKS` (the block types of `model:`: the
sites each offers and the layer kinds it becomes), the model-wide sites, and the kind groups
derived from them (`PLACEABLE`, `NOISE_KINDS`, `DROPOUT_KINDS`, `NORM_KINDS`, ...). The config
schema, the plan (spec, shapes, lint, resolve) and the builder registry check their own tables
against this one when imported.

Layer kinds and their args (Keras spelling):
    conv1d        filters, kernel_size, strides, padding, dilation_rate, use_bias,
                  kernel_initializer
    dense         units, use_bias, kernel_initializer          (linear; activation is its own layer)
    activation    activation
    batch_norm    axis, momentum, epsilon, center, scale
    layer_norm    axis (int or tuple of ints), epsilon, center, scale
    group_norm    groups, axis, epsilon, center, scale
    dropout, spatial_dropout, alpha_dropout, gaussian_dropout     rate
    gaussian_noise                                                  stddev
    max_pool, average_pool   pool_size, strides, padding
    se            ratio, use_bias                     (Squeeze-and-Excite, 3-D in and out)
    lstm          units, return_sequences, activation, recurrent_activation, use_bias, dropout,
                  recurrent_dropout, cell ("standard" | "layer_norm" | "batch_norm"),
                  kernel_initializer, recurrent_initializer
    flatten, global_average_pool, last_step                         (3-D -> 2-D before the head)
    output        units, activation, use_bias, kernel_initializer    (the final Dense)
    masking       mask_value                 (first, for padded sequences: `padding: mask`)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Family = Literal["", "norm", "dropout", "noise"]


@dataclass(frozen=True)
class LayerKind:
    """One kind of layer in a resolved model (`LayerSpec.kind`)."""

    name: str  # as in a LayerSpec, a placement list and the builder registry
    keras: str  # the class the builder makes (bnplace's own for conv1d, se and last_step)
    short: str  # in the layer-order string, e.g. "Conv1D>BN>ReLU"
    does: str  # one line
    args: tuple[str, ...]  # its Keras arguments
    params: str  # the parameter-count rule (computed in bnplace.plan.shapes)
    placeable: bool = False  # may be written in a placement list at a site
    family: Family = ""  # norm; dropout and noise act in training only
    sequence_only: bool = False  # needs a (time, channels) input
    reduces_time: bool = False  # (time, channels) -> (channels,) (or flat) before the head
    # Padded sequences (`padding: mask`): does the Keras layer hand the padding mask on to the
    # next layer (Keras' own `supports_masking`, checked in tests/test_shapes_keras.py), and does
    # it act on it (an LSTM steps over padded steps; BN and global average pooling leave them out
    # of their statistics)? A layer that does not keep it ends the mask for every later layer.
    # A conv1d keeps it only at stride 1 with causal or same padding (`LayerSpec.keeps_mask`).
    keeps_mask: bool = False
    uses_mask: bool = False

    @property
    def noise(self) -> bool:
        """Adds noise in training and passes its input through at inference."""
        return self.family in ("dropout", "noise")


_POOL_ARGS = ("pool_size", "strides", "padding")
_LSTM_ARGS = (
    "units",
    "return_sequences",
    "activation",
    "recurrent_activation",
    "use_bias",
    "dropout",
    "recurrent_dropout",
    "cell",
    "kernel_initializer",
    "recurrent_initializer",
)
_DENSE_PARAMS = "inputs * units + units (bias)"


def _normalization(
    name: str,
    keras: str,
    short: str,
    does: str,
    args: tuple[str, ...],
    params: str,
    *,
    uses_mask: bool = False,
) -> LayerKind:
    """A normalization kind: placeable, passes the padding mask on, and takes `args` then
    Keras' epsilon, center and scale; what the three share, written once."""
    return LayerKind(
        name,
        keras,
        short,
        does,
        (*args, "epsilon", "center", "scale"),
        params,
        placeable=True,
        family="norm",
        keeps_mask=True,
        uses_mask=uses_mask,
    )


def _training_noise(
    name: str, keras: str, does: str, arg: str, family: Family = "dropout"
) -> LayerKind:
    """A dropout or noise kind: placeable, no parameters, named by its Keras class in a layer
    order, passes the padding mask on; what the five share, written once."""
    return LayerKind(
        name, keras, keras, does, (arg,), "none", placeable=True, family=family, keeps_mask=True
    )


# A table: one LayerKind per kind, written out field by field so each kind reads on its own
# (the normalization and training-noise kinds through `_normalization` and `_training_noise`,
# which hold what each group shares).
_KINDS = (
    LayerKind(
        "masking",
        "Masking",
        "Mask",
        "marks padded time steps (every feature equal to mask_value) for the layers after it; "
        "the plan puts it first when the data is `padding: mask`",
        ("mask_value",),
        "none",
        keeps_mask=True,
    ),
    LayerKind(
        "conv1d",
        "StepConv1D",  # Keras' Conv1D that keeps a padding mask at stride 1 (bnplace.build)
        "Conv1D",
        "1-D convolution over time, linear (its activation is a separate layer)",
        (
            "filters",
            "kernel_size",
            "strides",
            "padding",
            "dilation_rate",
            "use_bias",
            "kernel_initializer",
        ),
        "kernel_size * channels * filters + filters (bias)",
        sequence_only=True,
    ),
    LayerKind(
        "dense",
        "Dense",
        "Dense",
        "fully connected on the last axis, linear (its activation is a separate layer)",
        ("units", "use_bias", "kernel_initializer"),
        _DENSE_PARAMS,
        keeps_mask=True,
    ),
    LayerKind(
        "activation",
        "Activation",
        "",  # named after its function: ReLU, SELU...
        "an element-wise activation function",
        ("activation",),
        "none",
        placeable=True,
        keeps_mask=True,
    ),
    _normalization(
        "batch_norm",
        "BatchNormalization",
        "BN",
        "normalises each channel with batch statistics (moving ones at inference)",
        ("axis", "momentum"),
        "(2 + center + scale) * channels (moving mean and variance included)",
        uses_mask=True,
    ),
    _normalization(
        "layer_norm",
        "LayerNormalization",
        "LN",
        "normalises each sample over its axis (or axes)",
        ("axis",),
        "(center + scale) * product of the normalised axes",
    ),
    _normalization(
        "group_norm",
        "GroupNormalization",
        "GN",
        "normalises each sample over groups of channels",
        ("groups", "axis"),
        "(center + scale) * channels",
    ),
    _training_noise("dropout", "Dropout", "zeroes units at random in training", "rate"),
    _training_noise(
        "spatial_dropout",
        "SpatialDropout1D",
        "zeroes whole channels of a sequence at random in training",
        "rate",
    ),
    _training_noise(
        "alpha_dropout",
        "AlphaDropout",
        "dropout that keeps SELU's mean and variance in training",
        "rate",
    ),
    _training_noise(
        "gaussian_dropout",
        "GaussianDropout",
        "multiplies by 1-centred Gaussian noise in training",
        "rate",
    ),
    _training_noise(
        "gaussian_noise",
        "GaussianNoise",
        "adds 0-centred Gaussian noise in training",
        "stddev",
        family="noise",
    ),
    LayerKind(
        "max_pool",
        "MaxPooling1D",
        "MaxPool1D",
        "maximum over windows of time steps",
        _POOL_ARGS,
        "none",
        sequence_only=True,
    ),
    LayerKind(
        "average_pool",
        "AveragePooling1D",
        "AvgPool1D",
        "mean over windows of time steps",
        _POOL_ARGS,
        "none",
        sequence_only=True,
    ),
    LayerKind(
        "se",
        "SqueezeExcite1D",
        "SE",
        "Squeeze-and-Excite channel attention, 3-D in and out",
        ("ratio", "use_bias"),
        "2 * channels * (channels // ratio) + (channels // ratio + channels) (bias)",
        sequence_only=True,
    ),
    LayerKind(
        "lstm",
        "LSTM",  # keras.layers.RNN around bnplace's LayerNormLSTMCell / BatchNormLSTMCell
        "LSTM",  # LN-LSTM / BN-LSTM for those cells, with its dropout rates
        "a long short-term memory layer; its own dropout acts in training only",
        _LSTM_ARGS,
        "4 * units * (inputs + units) + 4 * units (bias); + 10 * units for the layer_norm cell, "
        "+ 28 * units for the batch_norm cell (10 trainable, 18 moving statistics)",
        sequence_only=True,
        keeps_mask=True,
        uses_mask=True,
    ),
    LayerKind(
        "flatten",
        "Flatten",
        "Flatten",
        "(time, channels) -> time * channels before the head",
        (),
        "none",
        reduces_time=True,
    ),
    LayerKind(
        "global_average_pool",
        "GlobalAveragePooling1D",
        "GAP1D",
        "mean over time before the head",
        (),
        "none",
        reduces_time=True,
        uses_mask=True,
    ),
    LayerKind(
        "last_step",
        "LastStep",
        "LastStep",
        "the last time step before the head",
        (),
        "none",
        reduces_time=True,
    ),
    LayerKind(
        "output",
        "Dense",
        "Dense",
        "the output layer: units from the data, the head's activation",
        ("units", "activation", "use_bias", "kernel_initializer"),
        _DENSE_PARAMS,
        keeps_mask=True,
    ),
)
LAYER_KINDS: dict[str, LayerKind] = {kind.name: kind for kind in _KINDS}


@dataclass(frozen=True)
class BlockType:
    """One block type of `model:` (`{conv1d: {...}}`): its sites and the layers it becomes."""

    name: str
    sites: tuple[str, ...]  # `<id>.<site>` names it offers
    makes: tuple[str, ...]  # the layer kinds it resolves into
    does: str


BLOCKS: dict[str, BlockType] = {
    block.name: block
    for block in (
        BlockType(
            "conv1d",
            ("before", "pre_act", "post_act"),
            ("conv1d", "activation"),
            "Conv1D, then its activation as its own layer",
        ),
        BlockType(
            "pool",
            ("before", "after"),
            ("max_pool", "average_pool"),
            "max or average pooling over time",
        ),
        BlockType("se", ("before", "after"), ("se",), "Squeeze-and-Excite"),
        BlockType(
            "lstm",
            ("before", "after"),
            ("lstm",),
            "an LSTM (standard, layer_norm or batch_norm cell)",
        ),
        BlockType(
            "dense",
            ("before", "pre_act", "post_act"),
            ("dense", "activation"),
            "Dense, then its activation as its own layer",
        ),
    )
}
BLOCK_SITES: dict[str, tuple[str, ...]] = {name: b.sites for name, b in BLOCKS.items()}
# before the first block; directly before the output layer; between the output layer's linear
# part and its activation (a classifier's logits, before the softmax)
MODEL_SITES = ("input", "pre_output", "logits")

# `pool: {kind: ...}` and `head: {reduce: ...}` (config values) -> the layer kind they make
POOL_LAYER = {"max": "max_pool", "average": "average_pool"}
REDUCE_LAYER = {"flatten": "flatten", "global_average": "global_average_pool"}
REDUCE_DEFAULT = "last_step"
HEAD_KINDS = ("flatten", "global_average_pool", "last_step", "output")
# the layer the plan puts before everything else for padded data (`padding: mask`)
MASK_KIND = "masking"

PLACEABLE = tuple(name for name, kind in LAYER_KINDS.items() if kind.placeable)
NORM_KINDS = frozenset(name for name, kind in LAYER_KINDS.items() if kind.family == "norm")
DROPOUT_KINDS = frozenset(name for name, kind in LAYER_KINDS.items() if kind.family == "dropout")
NOISE_KINDS = frozenset(name for name, kind in LAYER_KINDS.items() if kind.noise)
SEQUENCE_ONLY = frozenset(name for name, kind in LAYER_KINDS.items() if kind.sequence_only)
REDUCE_KINDS = frozenset(name for name, kind in LAYER_KINDS.items() if kind.reduces_time)
PASS_THROUGH = frozenset(  # same shape out, no weights
    name
    for name, kind in LAYER_KINDS.items()
    if kind.params == "none" and not kind.sequence_only and not kind.reduces_time
)


def check_covers(names: Iterable[str], wanted: Iterable[str], where: str) -> None:
    """Raise when `names` (a table elsewhere) and `wanted` (from this one) differ."""
    have, want = set(names), set(wanted)
    if have != want:
        raise RuntimeError(
            f"{where} is out of step with bnplace.names.kinds: missing {sorted(want - have)}, "
            f"unknown {sorted(have - want)}"
        )


def _self_check() -> None:
    made = {k for block in BLOCKS.values() for k in block.makes}
    check_covers(
        made | set(HEAD_KINDS) | set(PLACEABLE) | {MASK_KIND},
        LAYER_KINDS,
        "BLOCKS + HEAD_KINDS + MASK_KIND",
    )
    check_covers(
        {*POOL_LAYER.values(), *REDUCE_LAYER.values(), REDUCE_DEFAULT},
        {*BLOCKS["pool"].makes, *REDUCE_KINDS},
        "POOL_LAYER + REDUCE_LAYER",
    )


_self_check()
