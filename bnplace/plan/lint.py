"""Lint rules: placements that are known to be wrong, wasteful or unfair, found before training.

In: one variant (its config, resolved `ModelSpec` and `ShapeReport`). Out: `Finding`s, each
naming its rule, a level (error stops the run; warning and info are reported) and why. One small
function per rule; `RULES` lists them in the order they are reported.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bnplace.config.schema import Config
from bnplace.names.kinds import DROPOUT_KINDS, LAYER_KINDS, NORM_KINDS
from bnplace.plan.shapes import ShapeReport, cudnn_eligible
from bnplace.plan.spec import LayerSpec, ModelSpec

Level = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    rule: str
    level: Level
    message: str
    variant: str = ""


@dataclass(frozen=True)
class Subject:
    """What a rule looks at: one variant."""

    config: Config
    model: ModelSpec
    shapes: ShapeReport
    train_windows: int = 0

    @property
    def train_steps(self) -> int:
        batches = -(-self.train_windows // self.config.train.batch_size)
        return self.config.train.epochs_for(batches) * batches

    def adjacent(
        self,
        level: Level,
        match: Callable[[LayerSpec, LayerSpec], bool],
        say: Callable[[LayerSpec, LayerSpec], str],
    ) -> list[tuple[Level, str]]:
        """A finding at `level` for each layer `a` followed directly by a layer `b` that
        `match(a, b)`, worded by `say(a, b)`: the rules over adjacent layers."""
        layers = self.model.layers
        return [(level, say(a, b)) for a, b in itertools.pairwise(layers) if match(a, b)]


Rule = Callable[[Subject], list[tuple[Level, str]]]


def norm_on_raw_input(s: Subject) -> list[tuple[Level, str]]:
    first = s.model.layers[int(s.model.masked)]  # the first layer after a Masking one
    if first.kind in ("batch_norm", "layer_norm") and first.origin == "input":
        advice = (
            "standardize the data instead (data.standardize: true)"
            if not s.config.section.standardize
            else "the data is already standardized, so it mostly adds noise"
        )
        return [("warning", f"{first.order_name} directly on the raw input: {advice}")]
    return []


def bias_before_bn(s: Subject) -> list[tuple[Level, str]]:
    return s.adjacent(
        "info",
        lambda a, b: a.kind in ("conv1d", "dense") and a.get("use_bias") and b.kind == "batch_norm",
        lambda a, b: (
            f"{a.order_name} '{a.origin}' has a bias right before BN, which BN's mean "
            "subtraction cancels: use_bias: false gives the same function with fewer parameters"
        ),
    )


def alpha_dropout_needs_selu(s: Subject) -> list[tuple[Level, str]]:
    layers = s.model.layers
    if not any(layer.kind == "alpha_dropout" for layer in layers):
        return []
    reasons = []
    activations = {x.get("activation") for x in layers if x.kind == "activation"}
    if activations - {"selu"}:
        reasons.append(f"activations {sorted(activations - {'selu'})} are not selu")
    inits = {x.get("kernel_initializer") for x in layers if x.kind in ("conv1d", "dense")}
    if inits - {"lecun_normal"}:
        reasons.append(f"kernel_initializer {sorted(inits - {'lecun_normal'})} is not lecun_normal")
    norms = sorted({x.order_name for x in layers if x.kind in NORM_KINDS})
    if norms:
        reasons.append(f"{'/'.join(norms)} in the same stack")
    if not reasons:
        return []
    return [
        (
            "warning",
            "AlphaDropout keeps SELU's self-normalising fixed point only with selu, lecun_normal "
            f"and no normalisation layers: {'; '.join(reasons)}",
        )
    ]


# SELU's negative saturation value, -scale * alpha, where AlphaDropout sets dropped units.
_SELU_SATURATION = -1.0507009873554805 * 1.6732632423543772


def alpha_dropout_gap(rate: float) -> float:
    """How much larger an AlphaDropout layer's output is at inference than in training, in
    expectation: training maps x to a * (1 - rate) * x plus noise (a restores the variance of
    N(0, 1) inputs), inference passes x."""
    a = ((1 - rate) * (1 + rate * _SELU_SATURATION**2)) ** -0.5
    return 1 / (a * (1 - rate))


def alpha_dropout_inference_gap(s: Subject) -> list[tuple[Level, str]]:
    rates = [x.get("rate") for x in s.model.layers if x.kind == "alpha_dropout" and x.get("rate")]
    if not rates:
        return []
    gap = 1.0
    for rate in rates:
        gap *= alpha_dropout_gap(rate)
    level: Level = "warning" if gap >= 1.3 else "info"
    return [
        (
            level,
            f"{len(rates)} AlphaDropout layer(s): in training each passes a * (1 - rate) * x in "
            f"expectation, at inference x itself, so what follows meets {gap:.2f}x the signal it "
            "was trained on (compounded); bnplace measures the effect as infer_vs_train_loss "
            "(2-3x the training-mode loss in experiments/selu_alpha_dropout); a lower rate "
            "or fewer AlphaDropout layers shrink it",
        )
    ]


def dropout_before_bn(s: Subject) -> list[tuple[Level, str]]:
    return s.adjacent(
        "warning",
        lambda a, b: a.kind in DROPOUT_KINDS and b.kind == "batch_norm",
        lambda a, b: (
            f"{a.order_name} directly before BN ('{b.origin}'): BN's moving variance is "
            "learned on dropped-out activations and is too large at inference (variance shift; "
            "bnplace measures it as bn_shift_*)"
        ),
    )


def layer_norm_single_channel(s: Subject) -> list[tuple[Level, str]]:
    out: list[tuple[Level, str]] = []
    for layer, shape in zip(s.model.layers, s.shapes.inputs, strict=True):
        if layer.kind == "layer_norm" and layer.get("axis") in (-1, len(shape)) and shape[-1] == 1:
            out.append(
                (
                    "error",
                    f"LayerNormalization at '{layer.origin}' normalises over a single channel, so "
                    "its output is a constant; use axis: [1, 2] (per window) or another site",
                )
            )
    return out


def spatial_dropout_on_flat(s: Subject) -> list[tuple[Level, str]]:
    return [
        (
            "error",
            f"SpatialDropout1D at '{layer.origin}' gets a flat vector {shape}: it drops whole "
            "channels of a sequence; use dropout here",
        )
        for layer, shape in zip(s.model.layers, s.shapes.inputs, strict=True)
        if layer.kind == "spatial_dropout" and len(shape) != 2
    ]


def bn_after_last_state_small_batch(s: Subject) -> list[tuple[Level, str]]:
    batch = s.config.train.batch_size
    if batch >= 16:
        return []
    return s.adjacent(
        "warning",
        lambda a, b: a.kind == "lstm" and not a.get("return_sequences") and b.kind == "batch_norm",
        lambda a, b: (
            f"BN after an LSTM's last state ('{b.origin}') with batch_size {batch}: its "
            "statistics come from the batch alone, which is noisy at this size (try LN)"
        ),
    )


def bn_momentum_too_slow(s: Subject) -> list[tuple[Level, str]]:
    """Moving statistics start at mean 0 / variance 1 and forget that at momentum**step; a
    batch-normalised LSTM cell's BNs too (their momentum is the cell's 0.99)."""
    steps = s.train_steps
    out: list[tuple[Level, str]] = []
    for layer in s.model.layers:
        momentum = layer.get("momentum", 0.99)
        if not (layer.batch_statistics and steps and momentum**steps > 0.05):
            continue
        cell = layer.kind == "lstm"
        what = f"the BN cell of '{layer.origin}'" if cell else f"BN at '{layer.origin}'"
        fix = "train longer"
        if not cell:  # a BN layer's momentum is the user's to lower
            fix = f"use momentum <= {0.01 ** (1 / steps):.2f} or {fix}"
        out.append(
            (
                "warning",
                f"{what} has momentum {momentum} but trains only {steps} steps: its moving "
                f"statistics still hold {momentum**steps:.0%} of their initial values (mean 0, "
                f"variance 1), so inference normalises with the wrong statistics; {fix}",
            )
        )
    return out


# Fewer optimizer steps than this and the budget, not the placement, may decide. Adam's step on
# a weight is bounded by about its learning rate (Kingma & Ba 2015, section 2.1), so at the
# default rate 1e-3 a weight moves by at most ~0.1 in 100 steps: the scale of a Glorot initial
# weight of a 100-unit layer. In fewer steps what a model ends with is mostly where it started.
MIN_STEPS = 100


def padding_mask_dropped(s: Subject) -> list[tuple[Level, str]]:
    """Padded data (`padding: mask`): a layer that does not hand Keras' mask on (a pooling,
    SE, a strided or `valid` Conv1D) ends it, and a later LSTM, BN or global average pool then
    takes the padded steps for data. Only while the output is still a sequence: after the time
    axis is reduced there are no steps to mask."""
    if not s.model.masked:
        return []
    layers = s.model.layers
    dropped_at: LayerSpec | None = None
    users: list[str] = []
    for layer in layers[1:]:
        kind = LAYER_KINDS[layer.kind]
        if dropped_at is not None and kind.uses_mask:
            users.append(f"{layer.order_name} '{layer.origin}'")
        if kind.reduces_time or (layer.kind == "lstm" and not layer.get("return_sequences")):
            break
        if dropped_at is None and not layer.keeps_mask:
            dropped_at = layer
    if dropped_at is None or not users:
        return []
    why = (
        "a Conv1D carries it only at stride 1 with causal or same padding"
        if dropped_at.kind == "conv1d"
        else f"Keras' {LAYER_KINDS[dropped_at.kind].keras} does not carry masks"
    )
    return [
        (
            "warning",
            f"the padding mask ends at {dropped_at.order_name} '{dropped_at.origin}' ({why}): "
            f"{', '.join(users)} after it take the padded steps for data (an LSTM steps "
            "through them, BN counts them in its statistics); put the mask-aware layers "
            "first, or use padding: edge",
        )
    ]


def bn_cell_sees_padding(s: Subject) -> list[tuple[Level, str]]:
    """Keras runs a recurrent cell on the whole batch at each step and keeps the padded
    sequences' old state afterwards: the BNs inside a batch_norm cell take their batch
    statistics over every sequence, padded ones included (the flaw LN cells avoid)."""
    if not s.model.masked:
        return []
    return [
        (
            "info",
            f"the BN cell of '{layer.origin}' takes each step's batch statistics over every "
            "sequence, the padded ones included (the mask only keeps their state from "
            "changing): BN's flaw on variable-length sequences that a layer_norm cell avoids",
        )
        for layer in s.model.layers
        if layer.kind == "lstm" and layer.get("cell") == "batch_norm"
    ]


def budget_too_short(s: Subject) -> list[tuple[Level, str]]:
    """A budget of few optimizer steps (a short series, a large batch, few epochs)."""
    steps = s.train_steps
    if not steps or steps >= MIN_STEPS:
        return []
    batches = -(-s.train_windows // s.config.train.batch_size)
    return [
        (
            "warning",
            f"the budget gives {steps} optimizer steps ({s.config.train.epochs_for(batches)} "
            "epochs x "
            f"{batches} batches of {s.config.train.batch_size}), fewer than {MIN_STEPS}: "
            "runs may still be improving when they stop, so the budget may decide the "
            "comparison; raise train.epochs or lower train.batch_size",
        )
    ]


def lstm_without_cudnn(s: Subject) -> list[tuple[Level, str]]:
    out: list[tuple[Level, str]] = []
    for layer in s.model.layers:
        if layer.kind == "lstm" and not cudnn_eligible(layer):
            out.append(
                (
                    "info",
                    f"LSTM '{layer.origin}' cannot use the cuDNN kernel on a GPU (needs the "
                    "standard cell, tanh/sigmoid, use_bias, recurrent_dropout 0): its GPU "
                    "timings are not comparable with cuDNN LSTMs",
                )
            )
    return out


def relu_in_lstm(s: Subject) -> list[tuple[Level, str]]:
    return [
        ("warning", f"LSTM '{layer.origin}' with activation relu is prone to exploding states")
        for layer in s.model.layers
        if layer.kind == "lstm" and layer.get("activation") == "relu"
    ]


def dropout_after_selu(s: Subject) -> list[tuple[Level, str]]:
    return s.adjacent(
        "info",
        lambda a, b: (
            a.kind == "activation" and a.get("activation") == "selu" and b.kind == "dropout"
        ),
        lambda a, b: (
            f"plain {b.order_name} after SELU ('{b.origin}') inflates the variance block "
            "by block (self-normalisation is lost); alpha_dropout keeps it, but see "
            "alpha_dropout_inference_gap"
        ),
    )


# The range of each head activation (bounds of its output), for output_range_misses_targets.
_INF = float("inf")
OUTPUT_RANGES: dict[str, tuple[float, float]] = {
    "relu": (0.0, _INF),
    "sigmoid": (0.0, 1.0),
    "softmax": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "elu": (-1.0, _INF),
    "selu": (-1.0507009873554805 * 1.6732632423543772, _INF),
    "gelu": (-0.1700, _INF),
    "swish": (-0.2785, _INF),
}


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2)) if math.isfinite(x) else (0.0 if x < 0 else 1.0)


def output_range_misses_targets(s: Subject) -> list[tuple[Level, str]]:
    """A forecasting head whose activation cannot reach part of the standardized targets."""
    data = s.config.section  # lint runs on one dataset's config
    if data.task != "forecast" or not data.scale_targets:
        return []
    head = s.model.layers[-1]  # the output, or the activation after layers at `logits`
    activation = str(head.get("activation", "linear"))
    if head.origin != "head" or activation not in OUTPUT_RANGES:
        return []
    low, high = OUTPUT_RANGES[activation]
    missed = _normal_cdf(low) + 1 - _normal_cdf(high)  # of N(0, 1): standardized targets
    if missed < 0.05:
        return []
    shown = f"[{low:.3g}, {'inf' if high == _INF else f'{high:.3g}'})"
    return [
        (
            "warning",
            f"the output layer's activation {activation} only reaches {shown}, but forecasting "
            "targets are standardized (train-split mean 0, sd 1): about "
            f"{missed:.0%} of them lie outside what this model can predict, so it is judged "
            "on a handicap that has nothing to do with its placements; use head.activation: "
            "linear, or data.scale_targets: false when the raw targets lie in that range",
        )
    ]


def model_fits_memory(s: Subject) -> list[tuple[Level, str]]:
    """A model whose weights or one batch's activations cannot fit this machine's memory."""
    from bnplace.plan.memory import estimate, machine_memory, show_bytes

    available = machine_memory()
    need = estimate(s.model, s.shapes, s.config.train.batch_size)
    if available is None or need.total <= available:
        return []
    return [
        (
            "error",
            f"this model cannot fit this machine: {need.params:,} parameters need "
            f"{show_bytes(need.weight_bytes)} for weights, gradients and optimizer state, and "
            f"a batch of {s.config.train.batch_size} needs {show_bytes(need.activation_bytes)} "
            f"of activations: {show_bytes(need.total)} at least, against "
            f"{show_bytes(available)} of memory; check the sizes (filters, units, window, "
            "batch_size) for a typo",
        )
    ]


RULES: tuple[Rule, ...] = (
    norm_on_raw_input,
    bias_before_bn,
    alpha_dropout_needs_selu,
    alpha_dropout_inference_gap,
    dropout_before_bn,
    dropout_after_selu,
    layer_norm_single_channel,
    spatial_dropout_on_flat,
    bn_after_last_state_small_batch,
    bn_momentum_too_slow,
    padding_mask_dropped,
    bn_cell_sees_padding,
    budget_too_short,
    lstm_without_cudnn,
    relu_in_lstm,
    output_range_misses_targets,
    model_fits_memory,
)


def lint(subject: Subject, variant: str) -> list[Finding]:
    found = [Finding("shape", "error", message, variant) for _, message in subject.shapes.errors]
    for rule in RULES:
        found += [Finding(rule.__name__, level, msg, variant) for level, msg in rule(subject)]
    return found
