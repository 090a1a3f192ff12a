"""Shape inference and parameter counts for a `ModelSpec`, without TensorFlow.

In: a `ModelSpec`. Out: a `ShapeReport`: the tensor shape after each layer, the parameter count
(equal to Keras' `count_params()`, which a test checks for every layer kind), whether each LSTM
can use the cuDNN kernel, and the problems that make a model impossible to build (a 2-D tensor
where a layer needs a sequence, a window too short for the convolutions and pools...). This
lets `bnplace plan` show layer orders, shapes and sizes in well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bnplace.plan.spec import LayerSpec, ModelSpec

Shape = tuple[int, ...]  # without the batch axis: (time, channels) or (channels,)

_SEQUENCE_ONLY = {"conv1d", "max_pool", "average_pool", "se", "lstm"}
_PASS_THROUGH = {
    "activation",
    "dropout",
    "spatial_dropout",
    "alpha_dropout",
    "gaussian_dropout",
    "gaussian_noise",
}


@dataclass(frozen=True)
class ShapeReport:
    shapes: tuple[Shape, ...]  # output shape of each layer, aligned with spec.layers
    inputs: tuple[Shape, ...]  # input shape of each layer
    params: int
    cudnn: bool  # every LSTM can use the cuDNN kernel (trivially true without LSTMs)
    errors: tuple[tuple[int, str], ...]  # (layer index, message)


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
    shapes, inputs, errors = [], [], []
    params = 0
    for index, layer in enumerate(spec.layers):
        inputs.append(shape)
        try:
            shape, count = _step(layer, shape)
        except ValueError as exc:
            errors.append((index, str(exc)))
            count = 0
        params += count
        shapes.append(shape)
    lstms = [layer for layer in spec.layers if layer.kind == "lstm"]
    return ShapeReport(
        tuple(shapes),
        tuple(inputs),
        params,
        all(cudnn_eligible(layer) for layer in lstms),
        tuple(errors),
    )


def _conv_length(length: int, size: int, stride: int, padding: str, dilation: int = 1) -> int:
    if padding in ("same", "causal"):
        return math.ceil(length / stride)
    return (length - dilation * (size - 1) - 1) // stride + 1


def _step(layer: LayerSpec, shape: Shape) -> tuple[Shape, int]:
    """The output shape and parameter count of one layer on an input of `shape`."""
    kind, get = layer.kind, layer.get
    if kind in _SEQUENCE_ONLY and len(shape) != 2:
        raise ValueError(
            f"{layer.order_name} needs a sequence (time, channels) but gets a flat vector of "
            f"{shape[0]} features: the LSTM before it returns only its last state "
            "(set return_sequences: true on it)"
        )
    channels = shape[-1]
    if kind in _PASS_THROUGH:
        return shape, 0
    if kind == "conv1d":
        size, filters = get("kernel_size"), get("filters")
        length = _conv_length(
            shape[0], size, get("strides", 1), get("padding", "valid"), get("dilation_rate", 1)
        )
        if length < 1:
            raise ValueError(
                f"Conv1D(kernel_size={size}) leaves no time steps from a sequence of {shape[0]}"
            )
        return (length, filters), size * channels * filters + (filters if get("use_bias") else 0)
    if kind in ("max_pool", "average_pool"):
        size = get("pool_size")
        length = _conv_length(shape[0], size, get("strides") or size, get("padding", "valid"))
        if length < 1:
            raise ValueError(f"pooling of size {size} leaves no time steps from {shape[0]}")
        return (length, channels), 0
    if kind == "batch_norm":
        weights = 2 + int(get("center", True)) + int(get("scale", True))  # + moving mean, var
        return shape, weights * _axis_size(shape, get("axis", -1), layer)
    if kind == "layer_norm":
        axes = get("axis", -1)
        axes = axes if isinstance(axes, tuple) else (axes,)
        sizes = [_axis_size(shape, a, layer) for a in axes]
        return shape, (int(get("center", True)) + int(get("scale", True))) * math.prod(sizes)
    if kind == "group_norm":
        groups = get("groups")
        size = _axis_size(shape, get("axis", -1), layer)
        if size % groups:
            raise ValueError(
                f"GroupNormalization(groups={groups}) needs channels divisible by "
                f"{groups}, got {size}"
            )
        return shape, (int(get("center", True)) + int(get("scale", True))) * size
    if kind == "se":
        squeezed = channels // get("ratio")
        if squeezed < 1:
            raise ValueError(
                f"Squeeze-Excite ratio {get('ratio')} is larger than its {channels} channels"
            )
        bias = squeezed + channels if get("use_bias") else 0
        return shape, 2 * channels * squeezed + bias
    if kind == "lstm":
        units = get("units")
        count = 4 * units * (channels + units) + (4 * units if get("use_bias", True) else 0)
        if get("cell") == "layer_norm":
            count += 4 * units + 4 * units + 2 * units  # LN on x W, on h U, and on the cell
        out = (shape[0], units) if get("return_sequences") else (units,)
        return out, count
    if kind in ("dense", "output"):
        units = get("units")
        out = (*shape[:-1], units)
        return out, channels * units + (units if get("use_bias", True) else 0)
    if kind == "flatten":
        return (math.prod(shape),), 0
    if kind in ("global_average_pool", "last_step"):
        return (channels,), 0
    raise ValueError(f"unknown layer kind {kind!r}")


def _axis_size(shape: Shape, axis: int, layer: LayerSpec) -> int:
    rank = len(shape) + 1  # with the batch axis
    if not -rank < axis < rank or axis in (0, -rank):
        raise ValueError(
            f"{layer.order_name} axis {axis} does not exist on a tensor of rank {rank}"
        )
    return shape[axis - 1] if axis > 0 else shape[axis]
