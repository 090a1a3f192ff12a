"""Custom Keras layers that the builder needs and Keras does not ship.

In: Keras tensors. Out: five serializable layers, registered under the package "bnplace" so
that a saved `.keras` model loads again once this module is imported:

- `StepConv1D`: Keras' Conv1D that hands a padding mask on where its output has one step per
  input step (stride 1, causal or same padding); Keras' own drops every mask.
- `LayerNormLSTMCell`: an LSTM cell with layer normalization (Ba, Kiros and Hinton 2016), for
  `keras.layers.RNN`.
- `BatchNormLSTMCell`: the same cell with batch normalization (Cooijmans et al. 2016).
- `SqueezeExcite1D`: channel attention (Hu et al. 2018) for (batch, time, channels) tensors.
- `LastStep`: the last time step of a sequence, (batch, time, channels) -> (batch, channels).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import keras
from keras import activations, initializers, ops

# Keras 3 does not export the mixin; keras.layers.RNN pre-creates one dropout mask per sequence
# (outside its time loop) only for cells that are instances of it, as it does for LSTMCell.
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

__all__ = ["BatchNormLSTMCell", "LastStep", "LayerNormLSTMCell", "SqueezeExcite1D", "StepConv1D"]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@keras.saving.register_keras_serializable(package="bnplace")
class LayerNormLSTMCell(keras.layers.Layer, DropoutRNNCell):
    """An LSTM cell with layer normalization, to be wrapped in `keras.layers.RNN`.

    Gates: ``z = LN_x(x W) + LN_h(h U) + b``, split in Keras' gate order i, f, c, o;
    ``c' = f * c + i * tanh(z_c)``; ``h' = o * tanh(LN_c(c'))``. The carried state is the
    un-normalized ``c'``. ``LN_x`` and ``LN_h`` have a scale only (the bias ``b`` is the shift),
    ``LN_c`` has scale and shift. Parameters: ``cin*4u + u*4u + 4u (bias) + 4u + 4u + 2u``.

    Dropout is variational like `keras.layers.LSTMCell`: one input mask and one recurrent mask
    per sequence, applied to ``x`` and ``h`` before their projections, in training only.

    Args:
        units: Positive int, size of the hidden and cell state.
        activation: Activation of the candidate and of the output (default "tanh").
        recurrent_activation: Activation of the gates (default "sigmoid").
        use_bias: Whether to add the bias ``b``.
        kernel_initializer: Initializer of ``W``.
        recurrent_initializer: Initializer of ``U``.
        unit_forget_bias: Initialize the forget gate's bias to 1 (the rest to 0).
        dropout: Fraction of the inputs to drop, in [0, 1).
        recurrent_dropout: Fraction of the recurrent state to drop, in [0, 1).
        epsilon: Small float added to the variance in the three layer normalizations.
        seed: Random seed for the dropout masks.

    Example:

    >>> x = np.random.random((8, 12, 3)).astype("float32")
    >>> rnn = keras.layers.RNN(LayerNormLSTMCell(4, recurrent_dropout=0.1))
    >>> rnn(x).shape
    (8, 4)
    """

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        unit_forget_bias: bool = True,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        epsilon: float = 1e-3,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        if not _is_int(units) or units <= 0:
            raise ValueError(f"LayerNormLSTMCell: `units` must be a positive int, got {units!r}.")
        for arg, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate < 1:
                raise ValueError(
                    f"LayerNormLSTMCell: `{arg}` must be a float in [0, 1), got {rate!r}."
                )
        if not isinstance(epsilon, int | float) or isinstance(epsilon, bool) or epsilon <= 0:
            raise ValueError(
                f"LayerNormLSTMCell: `epsilon` must be a positive float, got {epsilon!r}."
            )
        super().__init__(**kwargs)
        self.units = units
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.epsilon = float(epsilon)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.state_size = [units, units]
        self.output_size = units
        self.kernel_norm = self._norm("kernel_norm", center=False)
        self.recurrent_norm = self._norm("recurrent_norm", center=False)
        self.state_norm = self._norm("state_norm", center=True)

    def _norm(self, name: str, center: bool) -> keras.layers.Layer:
        """One of the cell's three normalizations (`BatchNormLSTMCell` makes them BN)."""
        return keras.layers.LayerNormalization(epsilon=self.epsilon, center=center, name=name)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        input_dim = input_shape[-1]
        u = self.units
        self.kernel = self.add_weight(
            shape=(input_dim, 4 * u), name="kernel", initializer=self.kernel_initializer
        )
        self.recurrent_kernel = self.add_weight(
            shape=(u, 4 * u), name="recurrent_kernel", initializer=self.recurrent_initializer
        )
        if self.use_bias:
            initializer: str | Callable[[Any, Any], Any] = "zeros"
            if self.unit_forget_bias:

                def bias_initializer(shape: Any, dtype: Any = None) -> Any:
                    return ops.concatenate(
                        [ops.zeros((u,), dtype), ops.ones((u,), dtype), ops.zeros((2 * u,), dtype)]
                    )

                initializer = bias_initializer
            self.bias = self.add_weight(shape=(4 * u,), name="bias", initializer=initializer)
        else:
            self.bias = None
        self.kernel_norm.build((None, 4 * u))
        self.recurrent_norm.build((None, 4 * u))
        self.state_norm.build((None, u))
        self.built = True

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Any, list[Any]]:
        h_tm1, c_tm1 = states[0], states[1]
        if training and self.dropout > 0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0:
            h_tm1 = h_tm1 * self.get_recurrent_dropout_mask(h_tm1)
        z = self.kernel_norm(ops.matmul(inputs, self.kernel), training=training)
        z = z + self.recurrent_norm(ops.matmul(h_tm1, self.recurrent_kernel), training=training)
        if self.bias is not None:
            z = z + self.bias
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        o = self.recurrent_activation(z_o)
        c = f * c_tm1 + i * self.activation(z_c)
        h = o * self.activation(self.state_norm(c, training=training))
        return h, [h, c]

    def get_initial_state(self, batch_size: int | None = None) -> list[Any]:
        return [ops.zeros((batch_size, d), dtype=self.compute_dtype) for d in self.state_size]

    def get_config(self) -> dict[str, Any]:
        config = {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "epsilon": self.epsilon,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="bnplace")
class BatchNormLSTMCell(LayerNormLSTMCell):
    """An LSTM cell with batch normalization inside the recurrence (Cooijmans et al. 2016,
    "Recurrent Batch Normalization"), to be wrapped in `keras.layers.RNN`.

    `LayerNormLSTMCell`'s equations with each normalization a BatchNormalization instead:
    ``z = BN_x(x W) + BN_h(h U) + b``, ``h' = o * tanh(BN_c(c'))``; in training each time step
    is normalized by its batch's statistics, at inference by moving averages shared by all
    time steps (Cooijmans et al. keep one set per time step; shared ones also serve sequences
    longer than any seen in training). Scales start at `gamma` (0.1, as the paper recommends:
    a unit scale saturates the gates' tanh and sigmoid). Parameters: the LSTM's, plus
    ``BN_x`` and ``BN_h`` a scale and two moving statistics per gate unit each (12u each,
    4u trainable) and ``BN_c`` a scale, a shift and two statistics per unit (4u).

    Args: as `LayerNormLSTMCell`, and
        momentum: Momentum of the three normalizations' moving averages.
        gamma: Initial scale of the three normalizations.

    Example:

    >>> x = np.random.random((8, 12, 3)).astype("float32")
    >>> rnn = keras.layers.RNN(BatchNormLSTMCell(4, momentum=0.9))
    >>> rnn(x, training=True).shape
    (8, 4)
    """

    def __init__(
        self, units: int, momentum: float = 0.99, gamma: float = 0.1, **kwargs: Any
    ) -> None:
        for arg, value, low in (("momentum", momentum, 0.0), ("gamma", gamma, 0.0)):
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= low:
                raise ValueError(f"BatchNormLSTMCell: `{arg}` must be positive, got {value!r}.")
        if momentum >= 1:
            raise ValueError(f"BatchNormLSTMCell: `momentum` must be below 1, got {momentum!r}.")
        self.momentum = float(momentum)
        self.gamma = float(gamma)
        super().__init__(units, **kwargs)

    def _norm(self, name: str, center: bool) -> keras.layers.Layer:
        return keras.layers.BatchNormalization(
            momentum=self.momentum,
            epsilon=self.epsilon,
            center=center,
            gamma_initializer=initializers.Constant(self.gamma),
            name=name,
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="bnplace")
class SqueezeExcite1D(keras.layers.Layer):
    """Squeeze-and-Excite for sequences: rescale each channel by a learned gate in (0, 1).

    ``s = sigmoid(W2 relu(W1 mean_t(x)))``, output ``x * s`` broadcast over time. ``W1`` maps
    C channels to ``C // ratio`` (he_normal), ``W2`` back to C (he_normal). Parameters:
    ``2 * C * (C // ratio)``, plus ``C // ratio + C`` with ``use_bias``.

    Args:
        ratio: Positive int, the reduction factor of the bottleneck.
        use_bias: Whether the two Dense layers have a bias.

    Example:

    >>> x = np.random.random((8, 12, 16)).astype("float32")
    >>> SqueezeExcite1D(ratio=4)(x).shape
    (8, 12, 16)
    """

    def __init__(self, ratio: int = 4, use_bias: bool = False, **kwargs: Any) -> None:
        if not _is_int(ratio) or ratio <= 0:
            raise ValueError(f"SqueezeExcite1D: `ratio` must be a positive int, got {ratio!r}.")
        super().__init__(**kwargs)
        self.ratio = ratio
        self.use_bias = bool(use_bias)
        self.pool = keras.layers.GlobalAveragePooling1D(name="pool")
        # Dense layers, made in build() once the channel count is known (Keras is untyped: Any)
        self.squeeze: Any = None
        self.excite: Any = None

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                "SqueezeExcite1D expects a 3-D input (batch, time, channels), "
                f"got shape {tuple(input_shape)}."
            )
        channels = input_shape[-1]
        if channels is None or channels // self.ratio < 1:
            raise ValueError(
                f"SqueezeExcite1D: channels // ratio must be >= 1, got channels={channels} "
                f"and ratio={self.ratio}."
            )
        hidden = channels // self.ratio
        dense = functools.partial(
            keras.layers.Dense, use_bias=self.use_bias, kernel_initializer="he_normal"
        )
        self.squeeze = dense(hidden, activation="relu", name="squeeze")
        self.excite = dense(channels, activation="sigmoid", name="excite")
        self.squeeze.build((None, channels))
        self.excite.build((None, hidden))
        self.built = True

    def call(self, inputs: Any) -> Any:
        gate = self.excite(self.squeeze(self.pool(inputs)))
        return inputs * ops.expand_dims(gate, axis=1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ratio": self.ratio, "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="bnplace")
class StepConv1D(keras.layers.Conv1D):
    """Keras' Conv1D, which also hands a padding mask on when each output step sits on its
    input step: stride 1 with causal or same padding. Padded steps lead each sequence
    (`padding: mask` pads on the left), so an output step is padding exactly when its input
    step is; the real steps next to the padding see the zeros Masking put there, as a causal
    convolution's first steps see its zero padding. Without a mask it is Conv1D, weight for
    weight and value for value.

    Example:

    >>> masked = keras.layers.Masking(0.0)(keras.Input((5, 2)))
    >>> StepConv1D(filters=3, kernel_size=2, padding="causal")(masked)._keras_mask.shape
    (None, 5)
    >>> StepConv1D(filters=3, kernel_size=2, strides=2).supports_masking
    False
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = self.strides == (1,) and self.padding in ("causal", "same")

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask if self.supports_masking else None


@keras.saving.register_keras_serializable(package="bnplace")
class LastStep(keras.layers.Layer):
    """The last time step of a sequence: (batch, time, channels) -> (batch, channels).

    Example:

    >>> x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    >>> LastStep()(x).shape
    (2, 4)

    A padding mask ends here without a warning: bnplace pads sequences on the left
    (`padding: mask`), so the last step is always a real one.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None  # no time axis left to mask

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                "LastStep expects a 3-D input (batch, time, channels), "
                f"got shape {tuple(input_shape)}."
            )
        self.built = True

    def call(self, inputs: Any) -> Any:
        return inputs[:, -1, :]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[-1])
