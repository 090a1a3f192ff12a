"""The diagnostics (BN variance shift, activation variance, loss by mode) on tiny models."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from bnplace.build import build_model
from bnplace.plan.spec import LayerSpec, ModelSpec
from bnplace.trial.diagnose import (
    Passes,
    VarianceShift,
    activation_variance,
    loss_by_mode,
    variance_shift,
)

L = LayerSpec.of
WINDOW, FEATURES = 16, 3
CONV = L("conv1d", "conv", filters=8, kernel_size=3, padding="causal")
# A fast moving average (momentum 0.5) converges within the few steps these tests train for.
BN = L("batch_norm", "conv.post", momentum=0.5)
DROP = L("dropout", "conv.post", rate=0.5)
HEAD = (L("global_average_pool", "head"), L("output", "head", units=1, activation=None))


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 1.0, size=(256, WINDOW, FEATURES)).astype("float32")
    y = x[:, -4:, 0].mean(axis=1, keepdims=True) + 0.1 * rng.normal(size=(256, 1))
    return x, y.astype("float32")


def _trained(*middle: LayerSpec) -> tuple[keras.Model, np.ndarray]:
    keras.utils.set_random_seed(0)
    model = build_model(ModelSpec(WINDOW, FEATURES, 1, "forecast", (CONV, *middle, *HEAD)))
    model.compile(optimizer="adam", loss="mse")
    x, y = _data()
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    return model, x


@pytest.fixture(scope="module")
def dropout_before_bn() -> tuple[keras.Model, np.ndarray]:
    return _trained(DROP, BN)


@pytest.fixture(scope="module")
def bn_before_dropout() -> tuple[keras.Model, np.ndarray]:
    return _trained(BN, DROP)


def test_dropout_before_bn_shows_variance_shift(dropout_before_bn) -> None:
    model, x = dropout_before_bn
    result = variance_shift(model, x, batch_size=64)
    assert list(result) == ["conv_post__batch_norm"]
    shift = result["conv_post__batch_norm"]
    assert isinstance(shift, VarianceShift)
    assert shift.channels == 8
    assert shift.train_vs_infer > 1.5
    assert shift.moving_vs_real > 1.5


def test_bn_before_dropout_shows_none(bn_before_dropout) -> None:
    model, x = bn_before_dropout
    shift = variance_shift(model, x)["conv_post__batch_norm"]
    assert shift.train_vs_infer == pytest.approx(1.0, abs=0.1)
    assert shift.moving_vs_real < 1.5


def test_variance_shift_leaves_the_model_unchanged(dropout_before_bn) -> None:
    model, x = dropout_before_bn
    before = [w.copy() for w in model.get_weights()]
    prediction = model.predict(x[:32], verbose=0)
    variance_shift(model, x[:100], batch_size=32)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(prediction, model.predict(x[:32], verbose=0))


def test_every_bn_layer_is_reported() -> None:
    keras.utils.set_random_seed(0)
    spec = ModelSpec(
        WINDOW,
        FEATURES,
        1,
        "forecast",
        (
            CONV,
            BN,
            L("lstm", "rnn", units=4, return_sequences=False),
            BN,
            L("output", "head", units=1),
        ),
    )
    result = variance_shift(build_model(spec), _data()[0][:64])
    assert list(result) == ["conv_post__batch_norm", "conv_post__batch_norm_2"]
    assert [r.channels for r in result.values()] == [8, 4]
    assert all(np.isfinite(r.moving_vs_real) and r.moving_vs_real >= 1 for r in result.values())


def test_model_without_bn_gives_empty_dict() -> None:
    model = build_model(ModelSpec(WINDOW, FEATURES, 1, "forecast", (CONV, DROP, *HEAD)))
    assert variance_shift(model, _data()[0][:16]) == {}


def _deep_stack(activation: str, initializer: str, depth: int = 8) -> keras.Model:
    inputs = keras.Input((16, 64))
    x = inputs
    for _ in range(depth):
        x = keras.layers.Conv1D(64, 1, kernel_initializer=initializer)(x)
        x = keras.layers.Activation(activation)(x)
    return keras.Model(inputs, x)


def test_activation_variance_shows_selu_self_normalising_and_relu_drifting() -> None:
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).standard_normal((256, 16, 64)).astype("float32")
    selu = activation_variance(_deep_stack("selu", "lecun_normal"), x)
    relu = activation_variance(_deep_stack("relu", "glorot_uniform"), x)
    assert len(selu) == 16  # every layer, in order
    assert 0.7 < list(selu.values())[-1] < 1.3
    assert list(relu.values())[-1] < 0.1  # glorot + relu halves the variance layer by layer


def test_training_mode_activation_variance_shows_dropout_and_restores_state() -> None:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 64))
    x = keras.layers.Dropout(0.5)(inputs)
    x = keras.layers.BatchNormalization()(x)
    model = keras.Model(inputs, x)
    data = np.random.default_rng(0).standard_normal((256, 16, 64)).astype("float32")
    before = [v.numpy() for v in model.non_trainable_variables]
    infer = activation_variance(model, data)
    train = activation_variance(model, data, training=True)
    dropout = next(name for name in infer if "dropout" in name)
    assert infer[dropout] == pytest.approx(1.0, abs=0.05)
    assert train[dropout] == pytest.approx(2.0, rel=0.1)  # 1 / keep probability
    after = [v.numpy() for v in model.non_trainable_variables]  # BN stats and seed state
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_loss_by_mode_is_equal_without_stochastic_layers() -> None:
    keras.utils.set_random_seed(0)
    model = build_model(ModelSpec(WINDOW, FEATURES, 1, "forecast", (CONV, *HEAD)))
    x, y = _data()
    infer, train = loss_by_mode(model, x, y, "mse")
    assert infer == train > 0


def test_loss_by_mode_shows_dropout_noise_and_restores_state(dropout_before_bn) -> None:
    model, x = dropout_before_bn
    y = _data()[1]
    before = [v.numpy() for v in model.non_trainable_variables]
    infer, train = loss_by_mode(model, x, y, "mse")
    assert infer != train
    # the inference-mode loss is the plain MSE of the model's predictions
    assert infer == pytest.approx(float(np.mean((model.predict(x, verbose=0) - y) ** 2)), 1e-5)
    after = [v.numpy() for v in model.non_trainable_variables]  # BN stats and seed state
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_alpha_dropout_keeps_the_moments_but_shrinks_each_input() -> None:
    """Why `infer_vs_train_loss` exists. AlphaDropout keeps the mean and variance of N(0, 1)
    inputs, but not the inputs themselves: for an input x its training-mode output is
    a * (1 - rate) * x in expectation (0.83 x at rate 0.1), plus noise that restores the
    variance, while inference passes x itself. What follows learns on the shrunken signal and
    meets the full one at inference: 1 / (a * (1 - rate)) = 1.21 times as large a layer."""
    rate, alpha_p = 0.1, -1.6732632423543772 * 1.0507009873554805
    shrink = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5 * (1 - rate)
    assert shrink == pytest.approx(0.829, abs=1e-3)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 4))
    model = keras.Model(inputs, keras.layers.AlphaDropout(rate)(inputs))
    x = np.random.default_rng(0).standard_normal((2048, 16, 4)).astype("float32")
    out = keras.ops.convert_to_numpy(model(x, training=True))
    assert float(out.mean()) == pytest.approx(0.0, abs=0.01)  # the moments are kept
    assert float(out.var()) == pytest.approx(1.0, abs=0.02)
    assert float(np.mean(out * x) / np.mean(x * x)) == pytest.approx(shrink, abs=0.01)
    shifted = x + 2.0  # off the fixed point the mean is not kept either
    out = keras.ops.convert_to_numpy(model(shifted, training=True))
    assert float(out.mean()) == pytest.approx(shrink * 2.0, abs=0.02)
    assert np.array_equal(keras.ops.convert_to_numpy(model(x, training=False)), x)


def test_traced_passes_give_the_eager_values_bit_for_bit() -> None:
    """The diagnostics once ran every pass eagerly; their traced passes give the same bits, in
    both modes, for an LN-LSTM (where Grappler's rewrites would change the last bit), and trace
    once per mode however often and on whatever batch size they run."""
    lstm = L("lstm", "lstm", units=4, cell="layer_norm", recurrent_dropout=0.2)
    head = (L("output", "head", units=1, activation=None),)
    keras.utils.set_random_seed(0)
    model = build_model(ModelSpec(WINDOW, FEATURES, 1, "forecast", (CONV, DROP, BN, lstm, *head)))
    model.compile(optimizer="adam", loss="mse")
    x, y = _data()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    layers = model.layers[1:]
    probe = keras.Model(model.input, [layer.output for layer in layers])
    passes = Passes.of(model)
    for training in (False, True):
        for batch in (x, x[:100]):
            saved = [v.numpy() for v in model.non_trainable_variables]
            eager = [keras.ops.convert_to_numpy(o) for o in probe(batch, training=training)]
            for variable, value in zip(model.non_trainable_variables, saved, strict=True):
                variable.assign(value)
            traced = passes(batch, training)
            for variable, value in zip(model.non_trainable_variables, saved, strict=True):
                variable.assign(value)
            for a, b in zip(eager, traced, strict=True):
                np.testing.assert_array_equal(a, b)
    assert passes.traces == 2
    assert Passes.of(model) is passes
