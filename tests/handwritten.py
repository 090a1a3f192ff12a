"""Hand-written Keras reference models for the tests, written the way the seed question does.

In: a window length and a feature count. Out: uncompiled `keras.Model`s built layer by layer
with plain Keras, to compare with what bnplace builds from a spec: the question's model and the
answer's template of the first seed question (/work/shared/seeds/000_*.txt, "Batch
normalization layer for CNN-LSTM"), and `copy_weights` to give a built model the weights of a
hand-written one.
"""

from __future__ import annotations

import keras
from keras import layers


def question_model(window: int, features: int) -> keras.Model:
    """Input -> Conv1D(10, 3, causal, relu) -> LSTM(15) -> BatchNormalization -> Dense(1, relu)."""
    ipt = keras.Input((window, features))
    x = layers.Conv1D(filters=10, kernel_size=3, padding="causal", activation="relu")(ipt)
    x = layers.LSTM(15, return_sequences=False)(x)
    x = layers.BatchNormalization()(x)
    out = layers.Dense(1, activation="relu")(x)
    return keras.Model(ipt, out, name="question_model")


def squeeze_excite(inputs: keras.KerasTensor, r: int = 4) -> keras.KerasTensor:
    """The answer's SqueezeExcite block, verbatim apart from the Keras 3 spelling."""
    filters = inputs.shape[-1]
    se = layers.GlobalAveragePooling1D()(inputs)
    se = layers.Reshape((1, filters))(se)
    se = layers.Dense(
        filters // r, activation="relu", use_bias=False, kernel_initializer="he_normal"
    )(se)
    se = layers.Dense(
        filters, activation="sigmoid", use_bias=False, kernel_initializer="he_normal"
    )(se)
    return layers.multiply([inputs, se])


def answer_template(
    window: int, features: int, output_activation: str | None = None
) -> keras.Model:
    """The answer's template: ConvBlock (Conv1D, BN(scale=False), SELU, AlphaDropout, SE),
    LSTM(16, recurrent_dropout=0.2), Dense(1).

    The seed's own `make_model` writes `Dense(1, activation='relu')` (and never applies it);
    the output here is linear unless `output_activation` says otherwise.
    """
    ipt = keras.Input((window, features))
    x = layers.Conv1D(
        filters=10,
        kernel_size=3,
        padding="causal",
        use_bias=False,
        kernel_initializer="lecun_normal",
    )(ipt)
    x = layers.BatchNormalization(scale=False)(x)
    x = layers.Activation("selu")(x)
    x = layers.AlphaDropout(0.1)(x)
    x = squeeze_excite(x)
    x = layers.LSTM(16, return_sequences=False, recurrent_dropout=0.2)(x)
    out = layers.Dense(1, activation=output_activation)(x)
    return keras.Model(ipt, out, name="answer_template")


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Give `target` the weights of `source`, layer by layer in order.

    The weight arrays of `source`'s layers are laid end to end and dealt out to `target`'s
    layers in order, each taking as many as it holds, so one target layer may take the weights
    of several source layers (the seed's two SE Dense layers go into one SqueezeExcite1D).
    Raises ValueError when the counts or shapes do not line up.
    """
    arrays = [w for layer in source.layers for w in layer.get_weights()]
    start = 0
    for layer in target.layers:
        n = len(layer.weights)
        if n == 0:
            continue
        chunk = arrays[start : start + n]
        shapes = [tuple(w.shape) for w in layer.weights]
        if [tuple(a.shape) for a in chunk] != shapes:
            raise ValueError(
                f"layer {layer.name!r} wants weights of shapes {shapes}, "
                f"the source offers {[tuple(a.shape) for a in chunk]}"
            )
        layer.set_weights(chunk)
        start += n
    if start != len(arrays):
        raise ValueError(f"{len(arrays) - start} source weight arrays left over")
