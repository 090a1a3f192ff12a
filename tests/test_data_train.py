"""Tests that train real tiny Keras models on prepared data: the synthetic classification task is
learnable, the tf.data feed gives exactly the windows of `Dataset.split` (sliced from the
materialised windows or gathered from the series, the same batches in the same order), and the
example CSV (date column, three features, a target) trains end to end."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from pydantic import TypeAdapter

from bnplace.config.data import DataConfig
from bnplace.data import feed, prepare
from bnplace.data.feed import tf_dataset

ADAPTER = TypeAdapter(DataConfig)
REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_shapes_classification_is_learnable():
    spec = ADAPTER.validate_python(
        {"source": "synthetic", "generator": "shapes", "length": 600, "window": 48, "classes": 3}
    )
    ds = prepare(spec)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((ds.window, ds.features)),
            keras.layers.Conv1D(8, 5, activation="relu"),
            keras.layers.Conv1D(8, 5, activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(ds.outputs, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    train, test = ds.split("train"), ds.split("test")
    model.fit(train.x, train.y, batch_size=32, epochs=8, verbose=0)
    accuracy = float((model.predict(test.x, verbose=0).argmax(axis=1) == test.y).mean())
    assert accuracy > 0.7  # chance is 1/3


FEEDS = [
    {"source": "synthetic", "generator": "sine_mix", "length": 400, "features": 2},
    {"source": "synthetic", "generator": "ar", "length": 400, "stride": 3, "horizon": 2},
    {"source": "synthetic", "generator": "shapes", "length": 60, "window": 16},
]
FEED_IDS = ["forecast", "forecast-stride", "classify"]


@pytest.mark.parametrize("sliced_floats", [feed.SLICED_FLOATS, 0], ids=["sliced", "gathered"])
@pytest.mark.parametrize("fields", FEEDS, ids=FEED_IDS)
def test_tf_feed_gives_the_same_windows_as_split(fields, sliced_floats, monkeypatch):
    monkeypatch.setattr(feed, "SLICED_FLOATS", sliced_floats)
    ds = prepare(ADAPTER.validate_python(fields))
    split = ds.split("train")
    in_order = tf_dataset(ds, "train", batch_size=16)
    assert tf_dataset(ds, "train", batch_size=16) is in_order  # kept: built once per dataset
    for _ in range(2):  # and read again from its start
        batches = list(in_order.as_numpy_iterator())
        np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), split.x)
        np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), split.y)
    first = [b[1] for b in tf_dataset(ds, "train", 16, shuffle=True, seed=4).as_numpy_iterator()]
    again = [b[1] for b in tf_dataset(ds, "train", 16, shuffle=True, seed=4).as_numpy_iterator()]
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(again))
    assert not np.array_equal(np.concatenate(first), split.y)
    np.testing.assert_array_equal(np.sort(np.concatenate(first), axis=0), np.sort(split.y, axis=0))
    only_x = next(iter(tf_dataset(ds, "val", 8, targets=False)))
    assert tuple(only_x.shape) == ds.split("val").x[:8].shape


def _epochs(ds, monkeypatch, sliced_floats: int) -> list[list[np.ndarray]]:
    """Three epochs of the shuffled train feed and one of the validation feed, every array."""
    monkeypatch.setattr(feed, "SLICED_FLOATS", sliced_floats)
    train = tf_dataset(ds, "train", 16, shuffle=True, seed=3)
    epochs = [[a for batch in train.as_numpy_iterator() for a in batch] for _ in range(3)]
    val = tf_dataset(ds, "val", 16)
    return [*epochs, [a for batch in val.as_numpy_iterator() for a in batch]]


@pytest.mark.parametrize("fields", FEEDS, ids=FEED_IDS)
def test_sliced_and_gathered_feeds_give_the_same_batches_every_epoch(fields, monkeypatch):
    """The sliced feed is an optimisation (no map function to instantiate per epoch): the
    model must see the same bits, shuffled epoch by epoch in the same order."""
    ds = prepare(ADAPTER.validate_python(fields))
    sliced = _epochs(ds, monkeypatch, feed.SLICED_FLOATS)
    feed._in_order.cache_clear()  # the validation feed of the other kind, not the kept one
    gathered = _epochs(ds, monkeypatch, 0)
    assert len(sliced[0]) > 4  # several batches an epoch: an order to compare
    assert not all(np.array_equal(a, b) for a, b in zip(sliced[0], sliced[1], strict=True))
    for one, other in zip(sliced, gathered, strict=True):
        for a, b in zip(one, other, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


def _fit(model, ds, *, batch: int, val_batch: int, epochs: int, seed: int) -> dict:
    """Keras' fit on the feed's train split (shuffled by the feed, with `seed`) and validation
    split; every epoch's losses."""
    history = model.fit(
        tf_dataset(ds, "train", batch, shuffle=True, seed=seed),
        validation_data=tf_dataset(ds, "val", val_batch),
        epochs=epochs,
        shuffle=False,  # the feed shuffles, with its own seed
        verbose=0,
    )
    return history.history


def _trained(ds, monkeypatch, sliced_floats: int) -> tuple[list[np.ndarray], dict]:
    """A tiny Conv1D -> BN -> LSTM trained 3 epochs on the feed of one kind, from seed 0."""
    monkeypatch.setattr(feed, "SLICED_FLOATS", sliced_floats)
    feed._in_order.cache_clear()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((ds.window, ds.features)),
            keras.layers.Conv1D(4, 3, padding="causal"),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Dropout(0.2),
            keras.layers.LSTM(4),
            keras.layers.Dense(ds.outputs),
        ]
    )
    model.compile(optimizer="adam", loss="mse", steps_per_execution=2)
    history = _fit(model, ds, batch=16, val_batch=16, epochs=3, seed=5)
    return model.get_weights(), history


def test_a_model_trained_on_either_feed_has_the_same_weights_bit_for_bit(monkeypatch):
    """The feeds' equal batches carried through training: weights and every epoch's losses `==`
    (shuffling, BN's batch statistics and Dropout's masks included)."""
    ds = prepare(ADAPTER.validate_python(FEEDS[0]))
    sliced_weights, sliced_history = _trained(ds, monkeypatch, feed.SLICED_FLOATS)
    gathered_weights, gathered_history = _trained(ds, monkeypatch, 0)
    assert sliced_history == gathered_history and len(sliced_history["val_loss"]) == 3
    for a, b in zip(sliced_weights, gathered_weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_example_csv_trains_end_to_end():
    spec = ADAPTER.validate_python(
        {
            "source": "csv",
            "path": "data/energy.csv",
            "time_column": "date",
            "targets": ["load_kw"],
            "window": 24,
            "horizon": 1,
        }
    )
    ds = prepare(spec, REPO / "configs")
    assert ds.features == 4
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((ds.window, ds.features)),
            keras.layers.Conv1D(8, 3, padding="causal", activation="relu"),
            keras.layers.LSTM(8),
            keras.layers.Dense(ds.outputs),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    history = _fit(model, ds, batch=64, val_batch=256, epochs=2, seed=0)
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0]
    pred = ds.to_original(model.predict(tf_dataset(ds, "test", 256, targets=False), verbose=0))
    truth = ds.to_original(ds.split("test").y)
    assert pred.shape == truth.shape and np.isfinite(pred).all()
    assert 20 < truth.mean() < 300  # original units: kW
