"""A worker's `TrialRunner` reuses each variant's traced model: results equal fresh trials'.

Tiny real models (every stochastic layer kind bnplace builds, BN, the BN- and LN-LSTM cells,
SE), two epochs: every logged epoch metric and every final metric of a reused trial is `==` to
the fresh trial's (seeded and cleared by Keras' own calls, which also empty TensorFlow's kernel
cache; bnplace keeps it), a later seed's and a trial's on another dataset of the same shapes
alike (one whose validation and test splits are smaller than a batch: the kept model remakes
its predict function, traced per call shape, as a fresh model makes it); later seeds retrace
nothing; a model that may not be reset falls back to a fresh build and says so; a `bnplace run
--jobs 1` sweep records reuse on its trial runs. The same holds for a model compiled by XLA
(`train.jit_compile`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import keras
import pytest

import bnplace.trial.reuse
import bnplace.trial.train
from bnplace.names import metrics as m
from bnplace.names import tags
from bnplace.plan import Trial
from bnplace.run.sweep import Prepared, plan_sweep
from bnplace.trial.result import TrialResult
from bnplace.trial.reuse import ModelCache
from bnplace.trial.train import TrialRunner, run_trial
from tests.sweeps import bnplace as run_cli
from tests.sweeps import runs, sqlite_store, write_config

pytestmark = pytest.mark.slow

CONFIG = """
experiment: reuse
datasets:  # the same shapes; short's validation and test splits are smaller than one batch
  long: {source: synthetic, generator: sine_mix, length: 300, features: 2, window: 10}
  short: {source: synthetic, generator: ar, length: 200, features: 2, window: 10}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
  - se: {id: se, ratio: 2, enabled: false}
  - lstm: {id: lstm, units: 4}
train: {epochs: 2, batch_size: 32, learning_rate: 0.02}
sweep:
  arms:
    kind:
      bn_dropout:
        conv.pre_act: [batch_norm]
        conv.post_act: [{dropout: 0.3}]
        lstm.after: [batch_norm]
        lstm.cell: batch_norm
        train.lr_schedule: {kind: reduce_on_plateau, patience: 1, factor: 0.5}
      spatial_se:
        conv.post_act: [{spatial_dropout: 0.3}, batch_norm]
        se.enabled: true
        lstm.recurrent_dropout: 0.3
      noise_ln_cell:
        conv.post_act: [{gaussian_noise: 0.2}]
        lstm.cell: layer_norm
        lstm.dropout: 0.1
        lstm.recurrent_dropout: 0.2
        train.optimizer: nadam
  seeds: 2
"""
TIMINGS = {m.TRAIN_TIME_S, m.TIME_PER_EPOCH_S, m.FIRST_EPOCH_S, m.SELECT_TIME_S}


def _outcome(result: TrialResult) -> tuple:
    """Everything a trial logs but its wall times."""
    final = {k: v for k, v in result.metrics.items() if k not in TIMINGS}
    return result.status, result.reason, final, result.history, result.summary


@pytest.fixture(scope="module")
def fresh_as_keras_documents(prepared: Prepared) -> Callable[[Trial], TrialResult]:
    """A trial of `prepared` trained fresh the way Keras documents (each trial once per
    module): seeded and cleared by Keras' own calls, its metric state left to the first traced
    step, its masks and noise drawn with Keras' own `auto_select`."""
    done: dict[str, TrialResult] = {}

    def fresh(trial: Trial) -> TrialResult:
        if trial.key not in done:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(bnplace.trial.train, "seed_trial", keras.utils.set_random_seed)
                patch.setattr(
                    bnplace.trial.train,
                    "clear_keras_state",
                    lambda **_: keras.backend.clear_session(),
                )
                patch.setattr(bnplace.trial.reuse, "build_state", lambda model, spec: None)
                patch.setattr(bnplace.trial.train, "philox_draws", contextlib.nullcontext)
                done[trial.key] = run_trial(trial, prepared.datasets[trial.data_fingerprint])
        return done[trial.key]

    return fresh


def test_reused_trials_equal_fresh_ones_bit_for_bit(
    prepared: Prepared,
    monkeypatch: pytest.MonkeyPatch,
    fresh_as_keras_documents: Callable[[Trial], TrialResult],
) -> None:
    """The reference trials are fresh and seeded and cleared by Keras' documented calls
    (`keras.utils.set_random_seed`, `keras.backend.clear_session`), which also clear
    TensorFlow's kernel cache: keeping it (`bnplace.trial.seeding`) changes no number. They
    also leave the metric state to Keras' first traced step (which then traces twice):
    building it first (`reuse.build_state`) changes no number either, and saves a trace. And
    they draw their masks and noise with Keras' own `auto_select`: naming Philox
    (`bnplace.trial.draws`) changes no number."""
    on_long = [t for t in prepared.plan.trials if t.dataset == "long"]
    first, later = on_long[0::2], on_long[1::2]  # seeds 0 of every variant, then seeds 1
    moved = [t for t in prepared.plan.trials if t.dataset == "short" and t.seed == 1]
    runner = TrialRunner()
    collected: list[bool] = []  # whether each trial began with a full garbage collection
    shipped = bnplace.trial.train.clear_keras_state

    def clear(*, keep_kernels: bool, collect: bool = True) -> None:
        collected.append(collect)
        shipped(keep_kernels=keep_kernels, collect=collect)

    monkeypatch.setattr(bnplace.trial.train, "clear_keras_state", clear)
    reused = {
        t.key: runner.run(t, prepared.datasets[t.data_fingerprint]) for t in first + later + moved
    }
    # fresh builds collect; the kept models' later seeds (no model left the cache) skip it
    assert collected == [True] * len(first) + [False] * len(later + moved)
    monkeypatch.undo()  # the references below clear and collect as Keras does
    for first_trial, trial in zip(first, later, strict=True):  # seeds 0 and 1 of one variant
        fresh = fresh_as_keras_documents(trial)
        again = reused[trial.key]
        assert fresh.finished, fresh.reason
        assert fresh.tags[tags.REUSE] == "fresh" and again.tags[tags.REUSE] == "reused"
        assert _outcome(again) == _outcome(fresh), trial.variant
        assert again.tags[tags.TRACES] == "0"  # train, test, predict and diagnostics reused
        first_seed = reused[first_trial.key]
        assert first_seed.tags[tags.REUSE] == "fresh"
        assert 0 < int(first_seed.tags[tags.TRACES]) < int(fresh.tags[tags.TRACES])
    for trial in moved:  # another dataset and seed: the model kept on `long`, reset
        fresh = fresh_as_keras_documents(trial)
        again = reused[trial.key]
        assert fresh.finished, fresh.reason
        # traced again: only the predict function, remade for the new dataset (`reuse.move_to`)
        assert again.tags[tags.REUSE] == "reused" and again.tags[tags.TRACES] == "1"
        assert _outcome(again) == _outcome(fresh), trial.variant


def test_a_model_that_may_not_be_reset_is_built_fresh_and_says_why(
    prepared: Prepared,
    monkeypatch: pytest.MonkeyPatch,
    fresh_as_keras_documents: Callable[[Trial], TrialResult],
) -> None:
    # as if the LSTM (Keras' LSTM, or the RNN around a BN or LN cell) were a layer class with
    # state outside its variables
    monkeypatch.setattr(
        bnplace.trial.reuse, "_RESETTABLE", bnplace.trial.reuse._RESETTABLE - {"LSTM", "RNN"}
    )
    trial, other_seed = prepared.plan.trials[:2]
    runner = TrialRunner()
    results = [runner.run(t, prepared.datasets[t.data_fingerprint]) for t in (trial, other_seed)]
    for result in results:
        assert result.finished, result.reason
        assert result.tags[tags.REUSE] == "fresh"
        assert "lstm__lstm" in result.tags[tags.REUSE_FALLBACK]
    assert len(runner.cache) == 0
    assert _outcome(results[1]) == _outcome(fresh_as_keras_documents(other_seed))


def test_every_layer_class_of_bnplaces_own_is_on_the_reset_list() -> None:
    """A layer class bnplace defines but leaves off `reuse`'s list builds and compiles a fresh
    model for every trial, silently (the BN-LSTM cell did until 2026-12-05: 4.8x the time
    under XLA, benchmarks/reuse_cells.py): a new class must be listed, with a case in the `==`
    tests above, or this test says which."""
    import inspect

    import bnplace.build.layers as layers

    own = {
        name
        for name, cls in inspect.getmembers(layers, inspect.isclass)
        if issubclass(cls, keras.layers.Layer) and cls.__module__ == layers.__name__
    }
    assert {"BatchNormLSTMCell", "LayerNormLSTMCell", "SqueezeExcite1D"} <= own
    assert own - bnplace.trial.reuse._RESETTABLE == set()


def test_a_trial_that_raises_leaves_no_model_behind(prepared: Prepared) -> None:
    import dataclasses

    trial = prepared.plan.trials[0]
    train = trial.config.train.model_copy(update={"optimizer": "no-such-optimizer"})
    broken = dataclasses.replace(trial, config=trial.config.model_copy(update={"train": train}))
    runner = TrialRunner()
    result = runner.run(broken, prepared.datasets[trial.data_fingerprint])
    assert not result.finished and len(runner.cache) == 0


def test_the_cache_keeps_the_most_recently_used_variants() -> None:
    cache = ModelCache(capacity=2)
    for key in "abc":
        cache.put(key, key)  # type: ignore[arg-type]  (any object: nothing is called on it)
    assert "a" not in cache and "b" in cache and "c" in cache
    assert cache.get("b") == "b"
    cache.put("d", "d")  # type: ignore[arg-type]
    assert "c" not in cache and "b" in cache and "d" in cache
    nothing = ModelCache(capacity=0)
    nothing.put("a", "a")  # type: ignore[arg-type]
    assert len(nothing) == 0


def test_the_cache_says_once_when_a_model_left_it() -> None:
    """What tells `TrialRunner` that a full collection is due (models hold cycles)."""
    cache = ModelCache(capacity=2)
    cache.put("a", "a")  # type: ignore[arg-type]
    cache.put("b", "b")  # type: ignore[arg-type]
    cache.drop("no such key")
    assert not cache.left_since_asked()
    cache.put("c", "c")  # type: ignore[arg-type]  (evicts a)
    assert cache.left_since_asked() and not cache.left_since_asked()
    cache.drop("b")
    assert cache.left_since_asked() and not cache.left_since_asked()


XLA = """
experiment: xla
datasets:  # as CONFIG's: the same shapes, short's val and test splits under one batch
  long: {source: synthetic, generator: sine_mix, length: 300, features: 2, window: 10}
  short: {source: synthetic, generator: ar, length: 200, features: 2, window: 10}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
  - lstm: {id: lstm, units: 4, recurrent_dropout: 0.2}
train: {epochs: 2, batch_size: 32, learning_rate: {choose: [0.02, 0.2]}, jit_compile: true}
placements:
  conv.pre_act: [batch_norm]
  conv.post_act: [{dropout: 0.3}]
sweep: {seeds: 2}
"""


def test_xla_compiled_trials_are_reused_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train.jit_compile: true` (the studies' XLA, README "Speed"): XLA's numbers differ from
    TensorFlow's graphs in the last bits, but a seed still fixes them. A model kept on one
    dataset, reset for a later seed on another of the same shapes (BN and Dropout: every seed
    generator reset; its two candidate rates trained in turn on the one model compiled for
    them; the LSTM's recurrent dropout), equals that trial trained fresh, each candidate on a
    model of its own, with Keras' own seeding, clearing and draws (`auto_select`, which XLA:CPU
    runs slowly; bnplace names Philox): `==` everywhere. (The LN cell, SE and the BN cell held
    too in one-off checks; each adds seconds of compilation here.)"""
    sqlite_store(tmp_path)
    (tmp_path / "c.yaml").write_text(XLA)
    prepared = plan_sweep(tmp_path / "c.yaml")
    first, _, _, later = prepared.plan.trials  # long seed 0, ..., short seed 1
    assert (first.dataset, later.dataset, later.seed) == ("long", "short", 1)
    runner = TrialRunner()
    reused = [runner.run(t, prepared.datasets[t.data_fingerprint]) for t in (first, later)][1]
    monkeypatch.setattr(bnplace.trial.train, "seed_trial", keras.utils.set_random_seed)
    monkeypatch.setattr(
        bnplace.trial.train, "clear_keras_state", lambda **_: keras.backend.clear_session()
    )
    monkeypatch.setattr(bnplace.trial.train, "philox_draws", contextlib.nullcontext)
    fresh = run_trial(later, prepared.datasets[later.data_fingerprint])
    assert fresh.finished, fresh.reason
    assert _outcome(reused) == _outcome(fresh)
    # traced again: only the predict function, remade for the new dataset (`reuse.move_to`;
    # under XLA its step is a tf.function of its own, so two)
    assert reused.tags[tags.REUSE] == "reused" and reused.tags[tags.TRACES] == "2"


SWEEP = """
placements:
  conv.pre_act: [batch_norm]
sweep:
  arms:
    drop:
      none: {}
      dropout: {conv.post_act: [{dropout: 0.2}]}
      spatial: {conv.post_act: [{spatial_dropout: 0.2}]}
  seeds: 3
"""


def test_a_jobs_1_sweep_reuses_each_variants_model_for_its_later_seeds(tmp_path: Path) -> None:
    """3 variants x 3 seeds in one process: every variant's first seed builds and traces, its
    two later seeds reuse that model and trace nothing (benchmarks/reuse_cells.py times keeping a
    model against building one per trial)."""
    write_config(tmp_path, SWEEP)
    done = run_cli(tmp_path, "run", "c.yaml", "--jobs", "1", "--no-compare")
    assert done.returncode == 0, done.stderr
    trials = runs(tmp_path)["trial"]
    assert len(trials) == 9
    by_variant: dict[str, dict[int, dict[str, str]]] = {}
    for run in trials:
        run_tags = run.data.tags
        by_variant.setdefault(run_tags[tags.VARIANT_NAME], {})[int(run_tags[tags.SEED])] = run_tags
    assert len(by_variant) == 3
    for seeds in by_variant.values():
        first, *later = (seeds[s] for s in sorted(seeds))
        assert first[tags.REUSE] == "fresh" and int(first[tags.TRACES]) > 0
        assert all(t[tags.REUSE] == "reused" and t[tags.TRACES] == "0" for t in later)
        assert not any(tags.REUSE_FALLBACK in t for t in seeds.values())
