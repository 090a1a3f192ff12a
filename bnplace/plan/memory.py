"""What one trial of a variant needs in memory, and what this machine has; without TensorFlow.

In: a `ModelSpec`, its `ShapeReport` (from `bnplace.plan.shapes`: per-layer output shapes and
the parameter count) and the batch size. Out: a `MemoryEstimate`: bytes for the weights with
their gradients and optimizer slots (4 float32 copies per parameter: Adam's two moments are the
most any optimizer here keeps), and bytes for one batch's activations kept for the backward
pass (every layer's output, and an LSTM's gates and cell state at every time step), plus
`machine_memory()`, the physical memory from `os.sysconf` (None where the platform does not
say). A lower bound: TensorFlow's workspace and the data come on top, so a model this says does
not fit certainly does not. `data_bytes` is the same kind of lower bound for a synthetic data
section (its series as generated, float64, and its windows, float32), from the config alone.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from bnplace.config.data import SyntheticData
from bnplace.config.schema import DataConfig
from bnplace.plan.shapes import ShapeReport
from bnplace.plan.spec import ModelSpec

FLOAT_BYTES = 4  # float32 weights and activations
COPIES_PER_PARAM = 4  # the weight, its gradient, and two optimizer slots (Adam's m and v)
LSTM_STATE_PER_UNIT = 6  # four gates, the cell state and the output, at every time step


@dataclass(frozen=True)
class MemoryEstimate:
    params: int
    weight_bytes: int
    activation_bytes: int

    @property
    def total(self) -> int:
        return self.weight_bytes + self.activation_bytes


def estimate(spec: ModelSpec, report: ShapeReport, batch_size: int) -> MemoryEstimate:
    per_sample = spec.window * spec.features  # the input batch
    for layer, inputs, shape in zip(spec.layers, report.inputs, report.shapes, strict=True):
        per_sample += math.prod(shape)
        if layer.kind == "lstm" and len(inputs) == 2:
            per_sample += inputs[0] * LSTM_STATE_PER_UNIT * int(layer.get("units"))
    return MemoryEstimate(
        report.params,
        report.params * COPIES_PER_PARAM * FLOAT_BYTES,
        per_sample * batch_size * FLOAT_BYTES,
    )


def data_bytes(section: DataConfig) -> int | None:
    """Bytes a synthetic section's series and windows take at least; None for a csv or packaged
    section, whose size comes from its file."""
    if not isinstance(section, SyntheticData):
        return None
    length, features, window = section.length, section.features, section.window
    series = length * (features + 1) * 8  # the inputs and the target, float64 as generated
    if section.task == "classify":  # `length` sequences of `window` steps
        return series * window + length * window * features * FLOAT_BYTES
    windows = max(0, (length - window - section.horizon) // section.stride + 1)
    return series + windows * (window * features + section.horizon) * FLOAT_BYTES


def machine_memory() -> int | None:
    """Physical memory in bytes (os.sysconf), or None where the platform does not tell."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return int(pages * size) if pages > 0 and size > 0 else None


def show_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if count < 1024 or unit == "PB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024
    return f"{count:,.1f} PB"
