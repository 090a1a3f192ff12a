"""The first seed question's two models, written as a config, build the same networks as the
hand-written Keras code: same layer sequence, same parameter count, same outputs for the same
weights."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from bnplace.build import build_model
from bnplace.run.sweep import plan_sweep
from tests.handwritten import answer_template, copy_weights, question_model

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "seed_question.yaml"


@pytest.mark.parametrize(
    ("variant", "handwritten", "order"),
    [
        ("model=question", question_model, "Conv1D>ReLU>LSTM>BN>Dense"),
        (
            "model=answer",
            answer_template,
            "Conv1D>BN>SELU>AlphaDropout>SE>LSTM(recurrent_dropout=0.2)>Dense",
        ),
    ],
)
def test_config_builds_the_handwritten_model(variant, handwritten, order) -> None:
    plan = plan_sweep(CONFIG).plan
    spec = plan.variant(variant).model
    assert spec.layer_order == order
    keras.utils.set_random_seed(0)
    reference = handwritten(spec.window, spec.features)
    built = build_model(spec)
    assert built.count_params() == reference.count_params() == plan.variant(variant).params
    for weights in reference.weights:  # non-trivial values, moving variances kept positive
        weights.assign(np.abs(np.random.default_rng(1).normal(0.5, 0.3, weights.shape)))
    copy_weights(reference, built)
    x = np.random.default_rng(2).normal(size=(8, spec.window, spec.features)).astype("float32")
    expected = keras.ops.convert_to_numpy(reference(x, training=False))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(built(x, training=False)), expected, rtol=1e-5, atol=1e-6
    )
