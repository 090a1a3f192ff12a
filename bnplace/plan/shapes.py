"""Shape inference and parameter counts for a `ModelSpec`, without TensorFlow.

In: a `ModelSpec`. Out: a `ShapeReport`: the tensor shape after each layer, the parameter count
(equal to Keras' `count_params()`, which a test checks for every layer kind), whether each LSTM
can use the cuDNN kernel, and the problems that make a model impossible to build (a 2-D tensor
where a layer needs a sequence, a window too short for the convolutions and pools...). This
lets `bnplace plan` show layer orders, shapes and sizes in well under a second.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from bnplace.names.kinds import LAYER_KINDS, PASS_THROUGH, SEQUENCE_ONLY, check_covers
from bnplace.plan.spec import LayerSpec, ModelSpec

Shape = tuple[int, ...]  # without the batch axis: (time, channels) or (channels,)


@dataclass(frozen=True)
class ShapeReport:
    shapes: tuple[Shape, ...]  # output shape of each layer, aligned with spec.layers
    inputs: tuple[Shape, ...]  # input shape of each layer
    params: int
    cudnn: bool  # every LSTM can use the cuDNN kernel (trivially true without LSTMs)
    errors: tuple[tuple[int, str], ...]  # (layer index, message)
    layer_params: tuple[int, ...] = ()  # parameter count of each layer, aligned with shapes


def cudnn_eligible(layer: LayerSpec) -> bool:
    """Keras 3 uses cuDNN for an LSTM only with these settings (see REFERENCE.md)."""
    return (
        layer.get("cell", "standard") == "standard"
        and layer.get("activation", "tanh") == "tanh"
        and layer.get("recurrent_activation", "sigmoid") == "sigmoid"
        and layer.get("use_bias", True)
        and layer.get("recurrent_dropout", 0.0) == 0
    )


def analyse(spec: ModelSpec) -> ShapeReport:
    shape: Shape = (spec.window, spec.features)
    shapes, inputs, errors, counts = [], [], [], []
    params = 0
    for index, layer in enumerate(spec.layers):
        inputs.append(shape)
        try:
            shape, count = _step(layer, shape)
        except ValueError as exc:
            errors.append((index, str(exc)))
            count = 0
        params += count
        counts.append(count)
        shapes.append(shape)
    lstms = [layer for layer in spec.layers if layer.kind == "lstm"]
    return ShapeReport(
        tuple(shapes),
        tuple(inputs),
        params,
        all(cudnn_eligible(layer) for layer in lstms),
        tuple(errors),
        tuple(counts),
    )


def _conv_length(length: int, size: int, stride: int, padding: str, dilation: int = 1) -> int:
    if padding in ("same", "causal"):
        return math.ceil(length / stride)
    return (length - dilation * (size - 1) - 1) // stride + 1


def _step(layer: LayerSpec, shape: Shape) -> tuple[Shape, int]:
    """The output shape and parameter count of one layer on an input of `shape`."""
    rule = RULES.get(layer.kind)
    if rule is None:
        raise ValueError(f"unknown layer kind {layer.kind!r}")
    if layer.kind in SEQUENCE_ONLY and len(shape) != 2:
        raise ValueError(
            f"{layer.order_name} needs a sequence (time, channels) but gets a flat vector of "
            f"{shape[0]} features: the LSTM before it returns only its last state "
            "(set return_sequences: true on it)"
        )
    return rule(layer, shape)


def _pass_through(layer: LayerSpec, shape: Shape) -> tuple[Shape, int]:
    return shape, 0


def _conv1d(layer: LayerSpec, shape: Shape) -> tuple[Shape, int]:
    get, channels = layer.get, shape[-1]
    size, filters = get("kernel_size"), get("filters")
    length = _conv_length(
        shape[0], size, get("strides", 1), get("padding", "valid"), get("dilation_rate", 1)
    )
    if length < 1:
        raise ValueError(
            f"Conv1D(kernel_size={size}) leaves no time steps from a sequence of {shape[0]}"
        )
    return (length, filters), size * channels * filters + (filters if get("use_bias") else 0)


def _pool(layer: LayerSpec, shape: Shape) -> tuple[Shape, int]:
    get = layer.get
    size = get("pool_size")
    length = _conv_length(shape[0], size, get("strides") or size, get("padding", "valid"))
    if length < 1:
        raise ValueError(f"pooling of size {size} leaves no time steps from {shape[0]}")
    return (length, shape[-1]), 0


def _batch_norm(layer: LayerSpec, shape: Shape) -> tuple[Shape, int]:
    get = layer.get
    weights = 2 + int(get("center", True)) + int(get("scale", True))  # + moving mean, var
    return shape, weights * _axis_size(shape, get("axis", -1), layer)


def _layer_norm(layer: LayerSpec, shape: Shape) -> tuple[Shape, int]:
    get = layer.get
    axes = get("axis", -1)
    axes = axes if isinstance(axes, tuple) else (axes,)
    sizes = [_axis_size(shape, a, layer) for a in axes]
    return shape, (int(get("center", True)) + int(get("scale", True))) * math.prod(sizes)


def _group_norm(layer: LayerSpec, shape: Shape) -> tuple[Shape, int]:
    get = layer.get
    groups = get("groups")
    size = _axis_size(shape, get("axis", -1), layer)
    if size % groups:
        raise ValueError(
            f"GroupNormalization(groups={groups}) needs channels divisible by {groups}, got {size}"
        )
    return shape, (int(get("center", True)) + int(get("scale", True))) * size


def _se(layer: LayerSpec, shape: Shape) -> tuple[Shape, int]:
    get, channels = layer.get, shape[-1]
    squeezed = channels // get("ratio")
    if squeezed < 1:
        raise ValueError(
            f"Squeeze-Excite ratio {get('ratio')} is larger than its {channels} channels"
        )
    bias = squeezed + channels if get("use_bias") else 0
    return shape, 2 * channels * squeezed + bias


def _lstm(layer: LayerSpec, shape: Shape) -> tuple[Shape, int]:
    get, channels = layer.get, shape[-1]
    units = get("units")
    count = 4 * units * (channels + units) + (4 * units if get("use_bias", True) else 0)
    if get("cell") == "layer_norm":
        count += 4 * units + 4 * units + 2 * units  # LN on x W, on h U, and on the cell
    elif get("cell") == "batch_norm":  # BN on x W and h U (scale, 2 statistics), on the cell (4)
        count += 3 * 4 * units + 3 * 4 * units + 4 * units
    out = (shape[0], units) if get("return_sequences") else (units,)
    return out, count


def _dense(layer: LayerSpec, shape: Shape) -> tuple[Shape, int]:
    units = layer.get("units")
    out = (*shape[:-1], units)
    return out, shape[-1] * units + (units if layer.get("use_bias", True) else 0)


def _flatten(layer: LayerSpec, shape: Shape) -> tuple[Shape, int]:
    return (math.prod(shape),), 0


def _to_channels(layer: LayerSpec, shape: Shape) -> tuple[Shape, int]:
    return (shape[-1],), 0


Rule = Callable[[LayerSpec, Shape], tuple[Shape, int]]
# One shape-and-parameter rule per layer kind (LAYER_KINDS[kind].params says it).
RULES: dict[str, Rule] = {
    **dict.fromkeys(PASS_THROUGH, _pass_through),
    "conv1d": _conv1d,
    "max_pool": _pool,
    "average_pool": _pool,
    "batch_norm": _batch_norm,
    "layer_norm": _layer_norm,
    "group_norm": _group_norm,
    "se": _se,
    "lstm": _lstm,
    "dense": _dense,
    "output": _dense,
    "flatten": _flatten,
    "global_average_pool": _to_channels,
    "last_step": _to_channels,
}
check_covers(RULES, LAYER_KINDS, "plan.shapes.RULES")


def _axis_size(shape: Shape, axis: int, layer: LayerSpec) -> int:
    rank = len(shape) + 1  # with the batch axis
    if not -rank < axis < rank or axis in (0, -rank):
        raise ValueError(
            f"{layer.order_name} axis {axis} does not exist on a tensor of rank {rank}"
        )
    return shape[axis - 1] if axis > 0 else shape[axis]
