"""Tests of the builder: spec in, Keras model out, custom layers, parity with hand-written Keras."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

from bnplace.build import REGISTRY, build_model
from bnplace.build.layers import BatchNormLSTMCell, LastStep, LayerNormLSTMCell, SqueezeExcite1D
from bnplace.names.errors import BuildError
from bnplace.plan.spec import LayerSpec, ModelSpec
from tests.handwritten import answer_template, copy_weights, question_model

L = LayerSpec.of
WINDOW, FEATURES = 12, 3


def _spec(*layers: LayerSpec, outputs: int = 1, task: str = "forecast") -> ModelSpec:
    return ModelSpec(WINDOW, FEATURES, outputs, task, tuple(layers))  # type: ignore[arg-type]


def _batch(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, WINDOW, FEATURES)).astype("float32")


CONV = L("conv1d", "conv", filters=8, kernel_size=3, padding="causal")
OUT = L("output", "head", units=1, activation=None, use_bias=True)
GAP = L("global_average_pool", "head")

# (case id, layers between CONV and OUT, Keras class expected in the model)
KIND_CASES = [
    (
        "conv1d",
        [L("conv1d", "c2", filters=4, kernel_size=2, strides=2, dilation_rate=1), GAP],
        keras.layers.Conv1D,
    ),
    (
        "conv1d_dilated",
        [L("conv1d", "c2", filters=4, kernel_size=2, dilation_rate=2), GAP],
        keras.layers.Conv1D,
    ),
    (
        "dense",
        [L("dense", "d", units=5, use_bias=False, kernel_initializer="he_normal"), GAP],
        keras.layers.Dense,
    ),
    ("activation", [L("activation", "a", activation="selu"), GAP], keras.layers.Activation),
    (
        "batch_norm",
        [L("batch_norm", "bn", axis=-1, momentum=0.9, epsilon=1e-3, center=True, scale=False), GAP],
        keras.layers.BatchNormalization,
    ),
    (
        "layer_norm",
        [L("layer_norm", "ln", axis=-1, epsilon=1e-3, center=True, scale=True), GAP],
        keras.layers.LayerNormalization,
    ),
    (
        "layer_norm_axis_1_2",
        [L("layer_norm", "ln", axis=(1, 2), epsilon=1e-3), GAP],
        keras.layers.LayerNormalization,
    ),
    (
        "group_norm",
        [L("group_norm", "gn", groups=2, axis=-1, epsilon=1e-3), GAP],
        keras.layers.GroupNormalization,
    ),
    ("dropout", [L("dropout", "dr", rate=0.5), GAP], keras.layers.Dropout),
    ("spatial_dropout", [L("spatial_dropout", "dr", rate=0.5), GAP], keras.layers.SpatialDropout1D),
    ("alpha_dropout", [L("alpha_dropout", "dr", rate=0.1), GAP], keras.layers.AlphaDropout),
    (
        "gaussian_dropout",
        [L("gaussian_dropout", "dr", rate=0.3), GAP],
        keras.layers.GaussianDropout,
    ),
    ("gaussian_noise", [L("gaussian_noise", "dr", stddev=0.1), GAP], keras.layers.GaussianNoise),
    (
        "max_pool",
        [L("max_pool", "p", pool_size=2, strides=2, padding="valid"), GAP],
        keras.layers.MaxPooling1D,
    ),
    (
        "average_pool",
        [L("average_pool", "p", pool_size=3, strides=1, padding="same"), GAP],
        keras.layers.AveragePooling1D,
    ),
    ("se", [L("se", "se", ratio=4, use_bias=True), GAP], SqueezeExcite1D),
    (
        "lstm",
        [
            L(
                "lstm",
                "rnn",
                units=6,
                return_sequences=False,
                cell="standard",
                dropout=0.2,
                recurrent_dropout=0.2,
            )
        ],
        keras.layers.LSTM,
    ),
    (
        "ln_lstm_dropout",
        [
            L(
                "lstm",
                "rnn",
                units=6,
                return_sequences=False,
                cell="layer_norm",
                activation="tanh",
                recurrent_activation="sigmoid",
                use_bias=True,
                dropout=0.3,
                recurrent_dropout=0.3,
                kernel_initializer="glorot_uniform",
                recurrent_initializer="orthogonal",
            )
        ],
        keras.layers.RNN,
    ),
    (
        "stacked_lstm",
        [
            L("lstm", "rnn1", units=6, return_sequences=True, cell="standard"),
            L("lstm", "rnn2", units=5, return_sequences=True, cell="layer_norm"),
            L("lstm", "rnn3", units=4, return_sequences=False, cell="standard"),
        ],
        keras.layers.LSTM,
    ),
    ("flatten", [L("flatten", "head")], keras.layers.Flatten),
    ("global_average_pool", [GAP], keras.layers.GlobalAveragePooling1D),
    ("last_step", [L("last_step", "head")], LastStep),
]


@pytest.mark.parametrize(
    ("middle", "expected"), [c[1:] for c in KIND_CASES], ids=[c[0] for c in KIND_CASES]
)
def test_every_kind_builds_and_runs(middle: list[LayerSpec], expected: type) -> None:
    keras.utils.set_random_seed(0)
    model = build_model(_spec(CONV, *middle, OUT))
    assert any(isinstance(layer, expected) for layer in model.layers)
    x = _batch()
    for training in (False, True):
        y = keras.ops.convert_to_numpy(model(x, training=training))
        assert y.shape == (4, 1)
        assert np.isfinite(y).all()


def test_registry_covers_every_kind_in_the_kinds_docstring() -> None:
    import bnplace.names.kinds as kinds_module

    documented = set()
    for line in kinds_module.__doc__.split("Layer kinds and their args")[1].splitlines():
        # a kind line is indented by exactly four spaces; its kinds end at the first wide gap
        match = re.match(r" {4}(\S.*?)(\s{2,}|$)", line)
        if match:
            documented |= {kind.strip() for kind in match.group(1).split(",")}
    assert documented and documented == set(REGISTRY)


def test_classification_head_softmax() -> None:
    spec = _spec(
        CONV, GAP, L("output", "head", units=3, activation="softmax"), outputs=3, task="classify"
    )
    y = keras.ops.convert_to_numpy(build_model(spec)(_batch()))
    assert y.shape == (4, 3)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


def test_dropout_layers_differ_between_training_and_inference() -> None:
    keras.utils.set_random_seed(1)
    model = build_model(
        _spec(
            CONV,
            L("lstm", "rnn", units=6, cell="layer_norm", dropout=0.5, recurrent_dropout=0.5),
            OUT,
        )
    )
    x = _batch()
    infer = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_array_equal(infer, keras.ops.convert_to_numpy(model(x, training=False)))
    train = keras.ops.convert_to_numpy(model(x, training=True))
    assert not np.allclose(train, infer)
    cell = model.get_layer("rnn__lstm").cell
    assert cell._dropout_mask is None and cell._recurrent_dropout_mask is None  # reset per batch


def test_layer_names_readable_and_unique() -> None:
    spec = _spec(
        CONV,
        L("batch_norm", "conv.pre_act"),
        L("activation", "conv", activation="relu"),
        L("dropout", "conv", rate=0.1),
        L("dropout", "conv", rate=0.2),
        L("last_step"),
        OUT,
    )
    model = build_model(spec)
    names = [layer.name for layer in model.layers]
    assert names == [
        "input",
        "conv__conv1d",
        "conv_pre_act__batch_norm",
        "conv__activation",
        "conv__dropout",
        "conv__dropout_2",
        "last_step",
        "head__output",
    ]
    assert model.name == "bnplace"
    assert not model.compiled


def test_unknown_kind_raises_build_error() -> None:
    with pytest.raises(BuildError) as info:
        build_model(_spec(CONV, L("batchnorm", "x"), GAP, OUT))
    message = str(info.value)
    assert "'batchnorm'" in message
    assert "known kinds" in message and "layer_norm" in message
    assert "did you mean: batch_norm" in message


def test_bad_argument_raises_build_error() -> None:
    with pytest.raises(BuildError, match="fliters"):
        build_model(_spec(L("conv1d", "conv", fliters=4, kernel_size=3), GAP, OUT))


def test_se_with_too_few_channels_raises_build_error() -> None:
    conv2 = L("conv1d", "conv", filters=2, kernel_size=3)
    with pytest.raises(BuildError, match=r"channels=2 and ratio=4"):
        build_model(_spec(conv2, L("se", "se", ratio=4, use_bias=False), GAP, OUT))
    with pytest.raises(BuildError, match="ratio"):
        build_model(_spec(CONV, L("se", "se", ratio=0), GAP, OUT))


def test_wrong_output_shape_raises_build_error() -> None:
    with pytest.raises(BuildError, match="expected"):
        build_model(_spec(CONV, OUT))  # no time reduction


def test_layer_norm_cell_validates_arguments() -> None:
    with pytest.raises(ValueError, match="-3"):
        LayerNormLSTMCell(-3)
    with pytest.raises(ValueError, match=r"got 1\.5"):
        LayerNormLSTMCell(4, recurrent_dropout=1.5)


@pytest.mark.parametrize("cell", ["layer_norm", "batch_norm"])
def test_building_is_deterministic_under_seed(cell: str) -> None:
    spec = _spec(
        CONV,
        L("se", "se", ratio=4),
        L("lstm", "rnn", units=5, return_sequences=True, cell=cell),
        L("last_step"),
        OUT,
    )

    def weights(seed: int) -> list[np.ndarray]:
        keras.utils.set_random_seed(seed)
        return build_model(spec).get_weights()

    first, again, other = weights(3), weights(3), weights(4)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize(("cin", "units", "use_bias"), [(3, 5, True), (8, 4, False), (1, 1, True)])
def test_layer_norm_lstm_param_count(cin: int, units: int, use_bias: bool) -> None:
    spec = ModelSpec(
        WINDOW,
        cin,
        1,
        "forecast",
        (L("lstm", "rnn", units=units, cell="layer_norm", use_bias=use_bias), OUT),
    )
    lstm = build_model(spec).get_layer("rnn__lstm")
    u = units
    expected = cin * 4 * u + u * 4 * u + (4 * u if use_bias else 0) + 4 * u + 4 * u + 2 * u
    assert lstm.count_params() == expected


def test_layer_norm_lstm_forget_bias_is_one() -> None:
    cell = keras.layers.RNN(LayerNormLSTMCell(3))
    cell.build((None, WINDOW, FEATURES))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(cell.cell.bias), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    )


def test_se_param_count() -> None:
    for use_bias, extra in ((False, 0), (True, 2 + 8)):
        model = build_model(_spec(CONV, L("se", "se", ratio=4, use_bias=use_bias), GAP, OUT))
        assert model.get_layer("se__se").count_params() == 2 * 8 * 2 + extra


def test_last_step_takes_last_time_step() -> None:
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(LastStep()(x)), x[:, -1, :])


def _round_trip(model: keras.Model, folder) -> keras.Model:
    """`model` saved as .keras and loaded again; both predict the same, bit for bit."""
    x = _batch(8)
    path = folder / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    return loaded


def test_save_load_round_trip(tmp_path) -> None:
    keras.utils.set_random_seed(5)
    spec = _spec(
        CONV,
        L("se", "se", ratio=4, use_bias=True),
        L(
            "lstm",
            "rnn",
            units=5,
            return_sequences=True,
            cell="layer_norm",
            dropout=0.1,
            recurrent_dropout=0.1,
            epsilon=1e-2,
        ),
        L("last_step", "head"),
        OUT,
    )
    loaded = _round_trip(build_model(spec), tmp_path)
    cell = loaded.get_layer("rnn__lstm").cell
    assert isinstance(cell, LayerNormLSTMCell) and cell.epsilon == 1e-2
    assert isinstance(loaded.get_layer("se__se"), SqueezeExcite1D)
    assert isinstance(loaded.get_layer("head__last_step"), LastStep)


# --- parity with hand-written Keras (the first seed question) -------------------------------


def _perturb(model: keras.Model, seed: int) -> None:
    """Random weights everywhere, positive moving variances, so parity is not trivially met."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape = tuple(weight.shape)
        if "moving_variance" in weight.path:
            weight.assign(rng.uniform(0.5, 2.0, shape).astype("float32"))
        else:
            weight.assign(rng.normal(0, 0.5, shape).astype("float32"))


def _assert_parity(reference: keras.Model, built: keras.Model) -> None:
    assert built.count_params() == reference.count_params()
    _perturb(reference, seed=11)
    copy_weights(reference, built)
    x = _batch(16, seed=2)
    expected = reference.predict(x, verbose=0)
    assert np.std(expected) > 0
    np.testing.assert_allclose(built.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def _conv(**kw: object) -> LayerSpec:
    args = dict(
        filters=10,
        kernel_size=3,
        strides=1,
        padding="causal",
        dilation_rate=1,
        use_bias=True,
        kernel_initializer="glorot_uniform",
    )
    return L("conv1d", "conv", **{**args, **kw})


def _lstm(units: int, **kw: object) -> LayerSpec:
    args = dict(
        units=units,
        return_sequences=False,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        dropout=0.0,
        recurrent_dropout=0.0,
        cell="standard",
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
    )
    return L("lstm", "lstm", **{**args, **kw})


def test_parity_question_model() -> None:
    spec = _spec(
        _conv(),
        L("activation", "conv", activation="relu"),
        _lstm(15),
        L("batch_norm", "lstm.post", axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True),
        L(
            "output",
            "head",
            units=1,
            activation="relu",
            use_bias=True,
            kernel_initializer="glorot_uniform",
        ),
    )
    _assert_parity(question_model(WINDOW, FEATURES), build_model(spec))


def test_parity_answer_template() -> None:
    spec = _spec(
        _conv(use_bias=False, kernel_initializer="lecun_normal"),
        L(
            "batch_norm",
            "conv.post",
            axis=-1,
            momentum=0.99,
            epsilon=1e-3,
            center=True,
            scale=False,
        ),
        L("activation", "conv", activation="selu"),
        L("alpha_dropout", "conv", rate=0.1),
        L("se", "conv", ratio=4, use_bias=False),
        _lstm(16, recurrent_dropout=0.2),
        L(
            "output",
            "head",
            units=1,
            activation=None,
            use_bias=True,
            kernel_initializer="glorot_uniform",
        ),
    )
    built = build_model(spec)
    assert built.count_params() == 10 * 3 * 3 + 3 * 10 + 2 * 10 * 2 + 4 * 16 * (10 + 16 + 1) + 17
    _assert_parity(answer_template(WINDOW, FEATURES), built)


def test_bn_on_the_logits_builds_before_the_softmax() -> None:
    """`logits: [batch_norm]` (tests/test_plan.py): BN normalises the output layer's linear
    outputs, the softmax after it still gives probabilities."""
    spec = _spec(
        CONV,
        GAP,
        L("output", "head", units=3, activation="linear"),
        L("batch_norm", "logits"),
        L("activation", "head", activation="softmax"),
        outputs=3,
        task="classify",
    )
    model = build_model(spec)
    kinds = [type(layer).__name__ for layer in model.layers[-3:]]
    assert kinds == ["Dense", "BatchNormalization", "Activation"]
    assert model.layers[-3].get_config()["activation"] == "linear"
    y = keras.ops.convert_to_numpy(model(_batch()))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


def test_bn_lstm_cell_normalizes_by_the_batch_in_training_and_by_moving_averages_after() -> None:
    """`lstm: {cell: batch_norm}` (Cooijmans et al. 2016): each time step's batch statistics in
    training, moving averages at inference, which training updates; it round-trips a save."""
    keras.utils.set_random_seed(3)
    spec = _spec(CONV, L("lstm", "rnn", units=4, cell="batch_norm"), OUT)
    model = build_model(spec)
    cell = model.get_layer("rnn__lstm").cell
    assert isinstance(cell, BatchNormLSTMCell) and cell.gamma == 0.1
    norms = [cell.kernel_norm, cell.recurrent_norm, cell.state_norm]
    assert all(isinstance(n, keras.layers.BatchNormalization) for n in norms)
    x = _batch(16)
    training = keras.ops.convert_to_numpy(model(x, training=True))
    inference = keras.ops.convert_to_numpy(model(x, training=False))
    assert not np.allclose(training, inference)  # batch statistics vs the (initial) moving ones
    before = keras.ops.convert_to_numpy(cell.kernel_norm.moving_mean).copy()
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, np.zeros((16, 1), "float32"), epochs=1, batch_size=16, verbose=0)
    after = keras.ops.convert_to_numpy(cell.kernel_norm.moving_mean)
    assert not np.allclose(before, after)  # the time loop's batch statistics update them


def test_bn_lstm_cell_round_trips_a_save_and_refuses_bad_arguments(tmp_path) -> None:
    keras.utils.set_random_seed(4)
    spec = _spec(CONV, L("lstm", "rnn", units=3, cell="batch_norm", recurrent_dropout=0.1), OUT)
    loaded = _round_trip(build_model(spec), tmp_path)
    cell = loaded.get_layer("rnn__lstm").cell
    assert isinstance(cell, BatchNormLSTMCell) and cell.recurrent_dropout == 0.1
    with pytest.raises(ValueError, match="momentum"):
        BatchNormLSTMCell(4, momentum=1.0)
    with pytest.raises(ValueError, match="gamma"):
        BatchNormLSTMCell(4, gamma=0)
