"""One variant's config -> its `ModelSpec`: every site resolved, every default filled.

In: a validated `Config` (one variant's settings) and the `DataShape` of its data. Out: a
`ModelSpec` in canonical form: a Masking layer first for masked padding, blocks expanded into
layers (a conv with an activation becomes Conv1D then Activation, with the `pre_act` placement
between them), placements inserted at their sites, and rewrites that do not change the function
applied (rate-0 dropout removed, a monotonic activation moved after a max-pool it commutes
with). Two variants with equal canonical specs compute the same function and are merged by the
plan. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from bnplace.config.data import MASK_VALUE
from bnplace.config.layers import PlacedLayer
from bnplace.config.overrides import block_refs
from bnplace.config.schema import Config
from bnplace.names.kinds import (
    MASK_KIND,
    NOISE_KINDS,
    POOL_LAYER,
    REDUCE_DEFAULT,
    REDUCE_KINDS,
    REDUCE_LAYER,
)
from bnplace.plan.spec import LayerSpec, ModelSpec, Task

# Non-decreasing activations commute with max-pooling: max(f(a), f(b)) == f(max(a, b)).
MONOTONIC = frozenset({"relu", "selu", "elu", "tanh", "sigmoid"})


@dataclass(frozen=True)
class DataShape:
    """What the plan needs to know about the prepared data of a variant."""

    task: Task
    window: int
    features: int
    outputs: int
    fingerprint: str = ""
    train_windows: int = 0  # 0 when unknown: rules that need it stay silent
    masked: bool = False  # padded steps hold MASK_VALUE (`padding: mask`)


def placed(layers: list[PlacedLayer], origin: str) -> list[LayerSpec]:
    return [LayerSpec.of(entry.kind, origin, **entry.layer.model_dump()) for entry in layers]


def resolve_model(config: Config, data: DataShape) -> ModelSpec:
    at = config.placements
    layers: list[LayerSpec] = []
    if data.masked:  # before anything else: every layer after it may read the mask
        layers.append(LayerSpec.of(MASK_KIND, "input", mask_value=MASK_VALUE))
    layers += placed(at.get("input", []), "input")
    for ref in block_refs(config):
        if not ref.block.settings.enabled:
            continue
        args = ref.block.settings.model_dump(exclude={"id", "enabled"})

        def site(name: str, block: str = ref.id) -> list[LayerSpec]:
            return placed(at.get(f"{block}.{name}", []), f"{block}.{name}")

        if ref.block_type in ("conv1d", "dense"):
            activation = args.pop("activation")
            layers += site("before")
            layers.append(LayerSpec.of(ref.block_type, ref.id, **args))
            layers += site("pre_act")
            if activation != "linear":
                layers.append(LayerSpec.of("activation", ref.id, activation=activation))
            layers += site("post_act")
        elif ref.block_type == "pool":
            kind = POOL_LAYER[args.pop("kind")]  # the config's pool `kind:` (max, average)
            layers += [*site("before"), LayerSpec.of(kind, ref.id, **args), *site("after")]
        else:  # se, lstm
            block = LayerSpec.of(ref.block_type, ref.id, **args)
            layers += [*site("before"), block, *site("after")]
    if _rank_after(layers) == 3:
        reduce = REDUCE_LAYER.get(config.head.reduce, REDUCE_DEFAULT)
        layers.append(LayerSpec.of(reduce, "head"))
    layers += placed(at.get("pre_output", []), "pre_output")
    head = config.head
    activation = head.activation or ("softmax" if data.task == "classify" else "linear")
    logits = placed(at.get("logits", []), "logits")
    layers.append(
        LayerSpec.of(
            "output",
            "head",
            units=data.outputs,
            # layers at `logits` stand between the output's linear part and its activation
            activation="linear" if logits else activation,
            use_bias=head.use_bias,
            kernel_initializer=head.kernel_initializer,
        )
    )
    if logits:
        layers += logits
        if activation != "linear":
            layers.append(LayerSpec.of("activation", "head", activation=activation))
    return ModelSpec(data.window, data.features, data.outputs, data.task, canonicalize(layers))


def _rank_after(layers: list[LayerSpec]) -> int:
    """Rank of the tensor after `layers`: only an LSTM without return_sequences drops time."""
    rank = 3
    for layer in layers:
        if layer.kind == "lstm":
            rank = 3 if layer.get("return_sequences") else 2
        elif layer.kind in REDUCE_KINDS:
            rank = 2
    return rank


def canonicalize(layers: list[LayerSpec]) -> tuple[LayerSpec, ...]:
    """Rewrite layers into the canonical form without changing the function they compute."""
    out = [
        layer
        for layer in layers
        if not (layer.kind in NOISE_KINDS and (layer.get("rate", layer.get("stddev")) == 0))
    ]
    moved = True
    while moved:  # bubble each commuting activation past the max-pools that follow it
        moved = False
        for i in range(len(out) - 1):
            first, second = out[i], out[i + 1]
            if (
                first.kind == "activation"
                and first.get("activation") in MONOTONIC
                and second.kind == "max_pool"
            ):
                out[i], out[i + 1] = second, first
                moved = True
    return tuple(out)
