"""Variable-length sequences: `padding: edge` (the padding is data) or `padding: mask` (a Masking
layer first; LSTMs step over padded steps, BN leaves them out of its statistics).

In: CSV sequences of unequal length (long format), aeon's JapaneseVowels, plans on a masked
`DataShape`, and real Keras models. Out: assertions on the prepared arrays (padding holds
MASK_VALUE, the scaler is fitted on real steps only), on the plan (Masking first, the lint that
says where the mask ends), on Keras' BN statistics with and without the mask, and on one real
trial trained end to end on masked data.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from bnplace.config import parse_config
from bnplace.config.data import MASK_VALUE
from bnplace.data import prepare
from bnplace.names.errors import BnplaceError
from bnplace.names.tags import LAYERS
from bnplace.plan import DataShape, make_plan
from bnplace.plan.spec import LayerSpec, ModelSpec
from tests.sweeps import bnplace, runs, sqlite_store

LENGTHS = (9, 6, 9, 4, 9, 7, 9, 5, 9, 8, 9, 6)  # sequence i has LENGTHS[i] steps; class i % 2


def _config(data: str):
    """A config with this data section and a one-LSTM model, parsed from p.yaml."""
    return parse_config(
        f"experiment: p\ndata: {data}\nmodel: [lstm: {{id: l, units: 2}}]\n", "p.yaml"
    )


def _write_sequences(folder: Path) -> None:
    """A long-format CSV of 12 sequences of 4-9 steps: class 1 climbs, class 0 falls."""
    rng = np.random.default_rng(0)
    rows = ["id,step,cls,a,b"]
    for i, steps in enumerate(LENGTHS):
        sign = 1 if i % 2 else -1
        for t in range(steps):
            rows.append(f"s{i},{t},{i % 2},{sign * t + rng.normal():.4f},{rng.normal() + 3:.4f}")
    (folder / "seq.csv").write_text("\n".join(rows) + "\n")


def _section(padding: str | None) -> str:
    pad = f", padding: {padding}" if padding else ""
    return (
        "{source: csv, path: seq.csv, task: classify, label_column: cls, sequence_column: id, "
        f"time_column: step, split: {{train: 0.5, val: 0.25, test: 0.25}}{pad}}}"
    )


def _prepared(folder: Path, padding: str | None):
    return prepare(_config(_section(padding)).config.section, folder)


def test_unequal_lengths_need_a_padding_and_the_message_offers_both(tmp_path: Path) -> None:
    _write_sequences(tmp_path)
    with pytest.raises(BnplaceError) as caught:
        _prepared(tmp_path, None)
    assert "sequences differ in length" in str(caught.value)
    assert "padding: mask" in str(caught.value) and "padding: edge" in str(caught.value)


def test_masked_padding_holds_the_mask_value_and_the_scaler_sees_real_steps_only(
    tmp_path: Path,
) -> None:
    _write_sequences(tmp_path)
    data = _prepared(tmp_path, "mask")
    assert data.masked and data.window == max(LENGTHS)
    x = np.concatenate([part.inputs for part in data.parts])
    padded = (x == MASK_VALUE).all(axis=-1)
    assert padded.sum() == sum(max(LENGTHS) - n for n in LENGTHS)
    assert not (x == MASK_VALUE).any(axis=-1)[~padded].any()  # a real step is never taken
    assert not padded[:, -1].any()  # left-padded: the last step is always real
    train = data.part("train").inputs
    real = train[~(train == MASK_VALUE).all(axis=-1)]
    np.testing.assert_allclose(real.mean(axis=0), 0.0, atol=1e-6)  # fitted on real steps
    np.testing.assert_allclose(real.std(axis=0), 1.0, atol=1e-5)
    assert any("left-padded, masked" in note for note in data.warnings)
    assert data.summary()["padding"] == "mask"  # `bnplace data` says so

    edge = _prepared(tmp_path, "edge")  # the padding repeats the first value and is scaled
    assert not edge.masked and not (np.concatenate([p.inputs for p in edge.parts]) < -1e3).any()
    assert any("the model sees as data" in note for note in edge.warnings)
    assert edge.fingerprint != data.fingerprint


def test_japanese_vowels_masks_exactly_the_steps_aeon_leaves_out() -> None:
    datasets = pytest.importorskip("aeon.datasets")
    data = prepare(
        _config("{source: packaged, name: japanese_vowels, padding: mask}").config.section
    )
    x, _ = datasets.load_japanese_vowels()
    real_steps = sum(item.shape[1] for item in x)
    inputs = np.concatenate([part.inputs for part in data.parts])
    assert inputs.shape[1] == 29
    assert int((~(inputs == MASK_VALUE).all(axis=-1)).sum()) == real_steps


def test_vary_length_keeps_a_fixed_random_ending_of_each_real_sequence() -> None:
    pytest.importorskip("aeon.datasets")
    data = "{source: packaged, name: italy_power_demand, standardize: false%s}"
    whole = prepare(_config(data % "").config.section)
    cut = prepare(_config(data % ", vary_length: 0.5, padding: mask").config.section)
    assert prepare(
        _config(data % ", vary_length: 0.5, padding: mask").config.section
    ).fingerprint == (cut.fingerprint)
    assert cut.fingerprint != whole.fingerprint
    for before, after in zip(whole.parts, cut.parts, strict=True):  # the same split
        kept = ~(after.inputs == MASK_VALUE).all(axis=-1)
        lengths = kept.sum(axis=1)
        assert lengths.min() >= 12 and lengths.max() <= 24 and lengths.min() < 24
        assert (kept == (np.arange(24)[None, :] >= 24 - lengths[:, None])).all()  # an ending
        np.testing.assert_array_equal(after.inputs[kept], before.inputs[kept])  # real values


def test_edge_padding_keeps_the_dump_and_keys_of_configs_written_before_padding() -> None:
    """`padding: edge` is the default and is left out of the dump, as is an unset `vary_length`
    (the data's fingerprint and trial keys of every config that uses neither are what they
    were)."""
    plain = _config("{source: packaged, name: gunpoint}")
    explicit = _config("{source: packaged, name: gunpoint, padding: edge}")
    dumped = plain.config.section.model_dump(mode="json")
    assert "padding" not in dumped and "vary_length" not in dumped
    assert dumped == explicit.config.section.model_dump(mode="json")


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ("padding: mask", "padding: mask applies to classification"),
        ("vary_length: 0.5", "vary_length applies to classification"),
        ("vary_length: 1.5", "vary_length"),
    ],
)
def test_padding_settings_out_of_place_are_located_config_errors(setting: str, said: str) -> None:
    with pytest.raises(BnplaceError) as caught:
        _config(f"{{source: synthetic, window: 12, {setting}}}")
    message = str(caught.value)
    assert "p.yaml:2" in message and said in message


def _masked_plan(model: str):
    text = "experiment: p\ndata: {source: synthetic, generator: shapes}\n" + textwrap.dedent(model)
    loaded = parse_config(text, "p.yaml")
    return make_plan(loaded, lambda c: DataShape("classify", 20, 2, 3, "fp", 100, masked=True))


def test_a_masked_plan_starts_with_masking_and_says_where_the_mask_ends() -> None:
    model = """
        model:
          - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: %s, activation: relu}
          - lstm: {id: lstm, units: 4}
        placements: {conv.post_act: [{batch_norm: {}}]}
        """
    causal = _masked_plan(model % "causal")  # each output step on its input step: kept
    (variant,) = causal.variants
    first = variant.model.layers[0]
    assert (first.kind, first.get("mask_value")) == ("masking", MASK_VALUE)
    assert variant.model.masked
    assert variant.model.layer_order.startswith("Mask>Conv1D")
    assert "padding_mask_dropped" not in {f.rule for f in causal.findings}

    valid = _masked_plan(model % "valid")  # shorter than its input: the mask ends there
    (ended,) = [f for f in valid.findings if f.rule == "padding_mask_dropped"]
    assert "ends at Conv1D 'conv' (a Conv1D carries it only at stride 1" in ended.message
    assert "BN 'conv.post_act'" in ended.message and "LSTM 'lstm'" in ended.message

    lstm_first = _masked_plan(
        """
        model:
          - lstm: {id: lstm, units: 4, return_sequences: true, cell: batch_norm}
          - pool: {id: pool, kind: average, pool_size: 2}
        placements: {lstm.after: [{batch_norm: {}}], pool.after: [{layer_norm: {}}]}
        """
    )
    found = {f.rule for f in lstm_first.findings}
    assert "padding_mask_dropped" not in found  # nothing after the pool reads the mask
    assert "bn_cell_sees_padding" in found


def test_bn_after_the_mask_leaves_padded_steps_out_of_its_statistics() -> None:
    """The mechanism `padding: mask` is for, in Keras itself: one training step of BN (momentum
    0: the moving mean becomes the batch's) on left-padded sequences."""
    pytest.importorskip("keras")
    from bnplace.build import build_model
    from bnplace.trial.seeding import seed_trial

    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 1.0, size=(6, 8, 2)).astype(np.float32)
    lengths = np.array([8, 3, 5, 8, 2, 6])
    padded = np.arange(8)[None, :] < (8 - lengths)[:, None]
    x[padded] = MASK_VALUE
    bn = LayerSpec.of("batch_norm", "input", momentum=0.0)
    head = (LayerSpec.of("last_step", "head"), LayerSpec.of("output", "head", units=1))
    seed_trial(0)
    masked = build_model(
        ModelSpec(
            8,
            2,
            1,
            "forecast",
            (LayerSpec.of("masking", "input", mask_value=MASK_VALUE), bn, *head),
        )
    )
    masked(x, training=True)
    moving = masked.get_layer("input__batch_norm").moving_mean.numpy()
    np.testing.assert_allclose(moving, x[~padded].mean(axis=0), rtol=1e-5)

    # the diagnostic compares BN's moving variance with the variance of the real steps it meets
    from bnplace.trial.diagnose import variance_shift

    (shift,) = variance_shift(masked, x).values()
    assert shift.moving_vs_real == pytest.approx(1.0, abs=1e-3)

    unmasked = build_model(ModelSpec(8, 2, 1, "forecast", (bn, *head)))
    unmasked(x, training=True)
    seen = unmasked.get_layer("input__batch_norm").moving_mean.numpy()
    assert (seen < -1e7).all()  # without the mask the padding is averaged in


def test_the_mask_passes_a_causal_conv1d_which_computes_what_keras_conv1d_does() -> None:
    """StepConv1D is Keras' Conv1D value for value; in a masked model a BN after a causal
    Conv1D (and its ReLU) takes its statistics over the real steps only."""
    keras = pytest.importorskip("keras")
    from bnplace.build import build_model
    from bnplace.build.layers import StepConv1D

    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 8, 2)).astype(np.float32)
    ours, theirs = (
        cls(filters=3, kernel_size=3, padding="causal") for cls in (StepConv1D, keras.layers.Conv1D)
    )
    ours.build((None, 8, 2))
    theirs.build((None, 8, 2))
    theirs.set_weights(ours.get_weights())
    np.testing.assert_array_equal(np.asarray(ours(x)), np.asarray(theirs(x)))

    padded = np.arange(8)[None, :] < np.array([0, 3, 5, 2, 6])[:, None]
    x[padded] = MASK_VALUE
    layers = (
        LayerSpec.of("masking", "input", mask_value=MASK_VALUE),
        LayerSpec.of("conv1d", "conv", filters=3, kernel_size=3, padding="causal"),
        LayerSpec.of("batch_norm", "conv", momentum=0.0),
        LayerSpec.of("last_step", "head"),
        LayerSpec.of("output", "head", units=1),
    )
    model = build_model(ModelSpec(8, 2, 1, "forecast", layers))
    model(x, training=True)
    conv_out = np.asarray(model.get_layer("conv__conv1d")(np.where(padded[..., None], 0.0, x)))
    moving = model.get_layer("conv__batch_norm").moving_mean.numpy()
    np.testing.assert_allclose(moving, conv_out[~padded].mean(axis=0), rtol=1e-4, atol=1e-6)


def test_a_bn_cell_counts_a_padded_sequence_in_its_statistics() -> None:
    """What `bn_cell_sees_padding` says: a sequence padded at every step (the mask keeps its
    state) still moves the moving statistics of a batch_norm cell's BNs, while a duplicate of
    the batch (the same statistics) does not."""
    keras = pytest.importorskip("keras")
    from bnplace.build.layers import BatchNormLSTMCell

    def moving_statistics(x: np.ndarray) -> list[np.ndarray]:
        keras.utils.set_random_seed(0)
        inputs = keras.Input((6, 1))
        rnn = keras.layers.RNN(BatchNormLSTMCell(4))
        model = keras.Model(inputs, rnn(keras.layers.Masking(MASK_VALUE)(inputs)))
        model(x, training=True)
        return [v.numpy() for v in rnn.cell.non_trainable_variables]

    real = np.random.default_rng(0).normal(size=(3, 6, 1)).astype(np.float32)
    alone = moving_statistics(real)
    twice = moving_statistics(np.concatenate([real, real]))
    padded = moving_statistics(np.concatenate([real, np.full((1, 6, 1), MASK_VALUE, np.float32)]))
    assert max(np.abs(a - b).max() for a, b in zip(alone, twice, strict=True)) < 1e-6
    assert max(np.abs(a - b).max() for a, b in zip(alone, padded, strict=True)) > 1e-3


def test_a_trial_trains_end_to_end_on_masked_sequences(tmp_path: Path) -> None:
    _write_sequences(tmp_path)
    sqlite_store(tmp_path)
    (tmp_path / "c.yaml").write_text(
        textwrap.dedent(
            f"""
            experiment: padded
            data: {_section("mask")}
            model:
              - lstm: {{id: lstm, units: 4, return_sequences: true}}
            placements: {{lstm.after: [{{batch_norm: {{}}}}]}}
            head: {{reduce: global_average}}
            train: {{epochs: 2, batch_size: 4, learning_rate: 0.01}}
            sweep: {{seeds: 1}}
            """
        )
    )
    done = bnplace(tmp_path, "run", "c.yaml", "-j", "1", "--no-compare")
    assert done.returncode == 0, done.stdout + done.stderr
    (trial,) = runs(tmp_path, "padded")["trial"]
    assert trial.info.status == "FINISHED"
    assert np.isfinite(trial.data.metrics["test_accuracy"])
    assert trial.data.tags[LAYERS].startswith("Mask>LSTM>BN")
