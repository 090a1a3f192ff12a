"""Execute one trial: seed, build, compile, fit, evaluate, diagnose -> a `TrialResult`.

In: a `Trial` (canonical model spec, the variant's config, the seed), the prepared `Dataset`, and
an `on_epoch` callback that carries per-epoch metrics to the driver while the trial trains (and
an `on_fit` one told as each fit begins: the executor's hard limit counts from there). Out:
a frozen `TrialResult` with per-epoch history, final test metrics (and the persistence
baseline's, for forecasting), timings, the BN variance-shift diagnostics and a status.
`TrialRunner.run` (what a worker calls) keeps each variant's compiled and traced model for the
variant's next seed, reset to that seed's fresh build (`bnplace.trial.reuse`); `run_trial` is a
one-off on a fresh model. Neither raises for a problem of the trial itself: an exception, a
diverging loss or a time limit becomes a FAILED result, worded by
`bnplace.trial.result.failed_result`.
The result's tags say whether the model was reused and how many functions the trial traced.
A trial whose `train` has `{choose: [...]}` settings fits each candidate (`trial.choose`) from
the seed's build on the data without its test split, keeps the one with the lowest best
validation loss and evaluates only that one; a fixed setting trains exactly as before.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import keras
import numpy as np

from bnplace.build import build_model
from bnplace.config.schema import Train
from bnplace.data import Dataset
from bnplace.data.feed import tf_dataset
from bnplace.names import metrics as m
from bnplace.names import tags
from bnplace.names.states import FINISHED
from bnplace.plan import Trial
from bnplace.trial import choose
from bnplace.trial.draws import philox_draws
from bnplace.trial.evaluate import diagnostics, evaluate, init_variance
from bnplace.trial.result import DIVERGED, TIMEOUT, Stopped, TrialResult, failed_result
from bnplace.trial.reuse import (
    CAPACITY,
    Kept,
    ModelCache,
    blocker,
    kept,
    load,
    move_to,
    restore,
    snapshot,
    traces,
    variant_key,
)
from bnplace.trial.seeding import clear_keras_state, seed_trial

EpochCallback = Callable[[int, dict[str, float]], None]
FitCallback = Callable[[], None]  # told when a fit begins: the executor's hard-limit clock restarts


class _Watch(keras.callbacks.Callback):
    """Stops on a non-finite loss or past the time limit; reports each epoch; times epochs."""

    def __init__(
        self, on_epoch: EpochCallback | None, on_fit: FitCallback | None, time_limit: float | None
    ) -> None:
        super().__init__()
        self.on_epoch, self.on_fit, self.time_limit = on_epoch, on_fit, time_limit
        self.started = time.perf_counter()
        self.epoch_started = self.started
        self.epoch_times: list[float] = []
        self.history: list[dict[str, float]] = []
        self.stop_reason: Stopped | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.started = time.perf_counter()  # the time limit counts the fit, as the executor's
        if self.on_fit is not None:
            self.on_fit()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.stop_reason = DIVERGED
            self.model.stop_training = True
        elif self.time_limit and time.perf_counter() - self.started > self.time_limit:
            self.stop_reason = TIMEOUT
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_times.append(time.perf_counter() - self.epoch_started)
        row = {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}
        if "learning_rate" in row:
            row[m.LR] = row.pop("learning_rate")
        self.history.append(row)
        if self.on_epoch is not None:
            self.on_epoch(epoch, row)


class TrialRunner:
    """Runs trials one after another in one process, keeping each variant's compiled and traced
    model (`bnplace.trial.reuse`) for its next seed. A worker holds one; results are bit-identical
    to fresh trials'. `capacity` 0 keeps nothing: every trial builds and traces afresh."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.cache = ModelCache(capacity)

    def run(
        self,
        trial: Trial,
        dataset: Dataset,
        on_epoch: EpochCallback | None = None,
        on_fit: FitCallback | None = None,
    ) -> TrialResult:
        """Train and evaluate one trial; every failure of the trial becomes a FAILED result.
        `on_epoch` gets each epoch's metrics; `on_fit` is called as each fit begins (one per
        candidate of a `{choose:}` trial), after the build and before the first batch."""
        _freeze_long_lived()
        key = variant_key(trial)
        try:
            with philox_draws():  # XLA:CPU draws masks slowly otherwise; graphs' numbers equal
                return self._train(trial, dataset, _Reports(on_epoch, on_fit), key)
        except Exception as exc:  # a trial's crash must not stop the sweep
            self.cache.drop(key)  # its model may be half-trained or half-built
            return failed_result(trial, exc)

    def _model(self, trial: Trial, dataset: Dataset, key: str) -> tuple[Kept, dict[str, str]]:
        """The trial's model, reset to its seed's fresh build, and the tags that say how."""
        fresh = build_model(trial.model)  # the seed's weights, exactly as a fresh trial's
        held = self.cache.get(key)
        why = load(held, fresh, trial.config.train) if held is not None else ""
        if held is not None and not why:
            move_to(held, trial.data_fingerprint)
            return held, {tags.REUSE: "reused"}
        self.cache.drop(key)
        why = why or blocker(fresh)
        train = trial.config.train
        fresh.compile(
            optimizer=_optimizer(train, steps_per_epoch=_steps(dataset, train)),
            loss=_loss(train, dataset.task),
            metrics=["mae"] if dataset.task == "forecast" else ["accuracy"],
            jit_compile=train.jit_compile,
            steps_per_execution=train.steps_per_execution,
        )
        spec = tf_dataset(dataset, "train", train.batch_size).element_spec
        made = kept(fresh, spec, trial.data_fingerprint)
        if why:
            return made, {tags.REUSE: "fresh", tags.REUSE_FALLBACK: why}
        self.cache.put(key, made)
        return made, {tags.REUSE: "fresh"}

    def _train(self, trial: Trial, dataset: Dataset, reports: _Reports, key: str) -> TrialResult:
        if trial.config.train.chosen_keys:
            return self._finish(trial, dataset, self._choose(trial, dataset, reports))
        return self._finish(trial, dataset, self._fit(trial, dataset, reports, key))

    def _fit(self, trial: Trial, dataset: Dataset, reports: _Reports, key: str) -> _Fitted:
        """Clear, seed, build (or reset a kept model) and fit: the trial (or one candidate of
        it) up to its evaluation. Every fit builds from Keras' cleared state, so a fresh build's
        variable names match the model kept for its key (also a candidate's, which shares the
        model of the one before it)."""
        train = trial.config.train
        # A full gc.collect() frees the models no longer kept (Keras models hold cycles): before
        # a fresh build, and once a model has left the cache. A trial that resets a kept model,
        # with none gone since, skips it: the collection walked every object the kept models'
        # traced functions hold, and Python's own generational collection still frees the last
        # trial's objects (benchmarks/trial_gc.py: tiny reused trials 0.73-0.80x, the same
        # numbers, the same memory).
        reused = key in self.cache
        left = self.cache.left_since_asked()  # asked every trial: this collection frees them
        clear_keras_state(keep_kernels=reused, collect=left or not reused)
        seed_trial(trial.seed)  # weight init, data order and dropout masks
        held, trial_tags = self._model(trial, dataset, key)
        model = held.model
        traced_before = traces(model)
        at_init = init_variance(model, dataset, trial.model.noisy_in_training)
        watch = _Watch(reports.on_epoch, reports.on_fit, train.time_limit)
        epochs = train.epochs_for(_steps(dataset, train))
        started = time.perf_counter()
        model.fit(
            # windows are gathered per batch from the series: memory stays O(series)
            tf_dataset(dataset, "train", train.batch_size, shuffle=train.shuffle, seed=trial.seed),
            validation_data=tf_dataset(dataset, "val", train.batch_size),
            shuffle=False,  # the feed shuffles, seeded by the trial
            epochs=epochs,
            verbose=0,
            callbacks=[watch, *_callbacks(train)],  # fresh callbacks for every trial
        )
        train_time = time.perf_counter() - started
        epochs_run = len(watch.history)
        timing = {
            m.TRAIN_TIME_S: train_time,
            # the first epoch also traces the train and validation functions: leave it out
            m.TIME_PER_EPOCH_S: float(np.mean(watch.epoch_times[1:] or watch.epoch_times)),
            m.FIRST_EPOCH_S: watch.epoch_times[0] if watch.epoch_times else 0.0,
            m.EPOCHS_RUN: float(epochs_run),
            m.STEPS_RUN: float(epochs_run * _steps(dataset, train)),
            m.PARAMS: float(model.count_params()),
        }
        if train.early_stopping:  # a stopping rule whose cap decided the length
            timing[m.HIT_CAP] = float(epochs_run >= epochs)
        return _Fitted(held, watch, timing, trial_tags, traced_before, at_init)

    def _choose(self, trial: Trial, dataset: Dataset, reports: _Reports) -> _Fitted:
        """Fit every candidate of the trial's `{choose: [...]}` settings from the seed's build,
        on the data without its test split, and keep the one with the lowest best validation
        loss (`bnplace.trial.choose`). Its epochs are then reported as the trial's. With
        `extend`, values past an end of the list are tried while the best stands at that end."""
        held_out = dataset.without_test()  # the choice cannot read the test split
        train = trial.config.train
        options = choose.candidates(train)
        if self.cache.capacity > 0:  # room for every candidate's model, where they do not share
            self.cache.capacity = max(self.cache.capacity, choose.count(train))
        fits: list[_Fitted] = []
        bests: list[float] = []
        states: list[list[np.ndarray]] = []  # each candidate's trained state

        def fit(option: Train) -> None:
            candidate = replace(trial, config=trial.config.model_copy(update={"train": option}))
            key = variant_key(candidate)
            fits.append(self._fit(candidate, held_out, reports.prefixed(len(fits)), key))
            bests.append(_best_val_loss(fits[-1]))
            states.append(snapshot(fits[-1].held.model))

        for option in options:
            fit(option)
        chosen = choose.pick(bests)
        while math.isfinite(bests[chosen]) and (
            beyond := choose.next_candidate(train, options, options[chosen])
        ):  # `extend`: the best stands at an end of the values tried, so try one past it
            options.append(beyond)
            fit(beyond)
            chosen = choose.pick(bests)
        winner, option = self._kept_candidate(fits, chosen, states[chosen]), options[chosen]
        if reports.on_epoch is not None:  # the kept candidate's curves are the trial's curves
            for epoch, row in enumerate(winner.watch.history):
                reports.on_epoch(epoch, row)
        values = choose.chosen_values(train, option)
        values[m.CHOSEN_AT_EDGE] = choose.at_edge(train, option, options)
        winner.timing |= values | {
            m.SELECT_EPOCHS: float(sum(len(f.watch.history) for f in fits)),
            m.SELECT_TIME_S: float(sum(f.timing[m.TRAIN_TIME_S] for f in fits)),
            m.SELECT_CANDIDATES: float(len(fits)),
        }
        # a diverged candidate has no best loss: left out, not logged as inf
        winner.timing |= {
            choose.best_val_metric(i): v for i, v in enumerate(bests) if math.isfinite(v)
        }
        chosen_tag = ",".join(f"{k}={getattr(option, k)!r}" for k in train.chosen_keys)
        winner.tags[tags.CHOSEN] = chosen_tag
        return winner

    @staticmethod
    def _kept_candidate(fits: list[_Fitted], chosen: int, state: list[np.ndarray]) -> _Fitted:
        """The chosen candidate, its model holding its own trained state. Candidates that
        differ only in a rate the optimizer holds in a variable train one kept model in turn
        (`variant_key`): traced once, not once per candidate (with XLA, compiled once), so the
        chosen one's state is put back once a later one trained over it. Its trial is then
        tagged as its first candidate started (fresh or reused), with every candidate's
        tracing counted; results are `==` to candidates on models of their own
        (tests/test_choose.py)."""
        winner = fits[chosen]
        if any(later.held is winner.held for later in fits[chosen + 1 :]):
            restore(winner.held.model, state)
        if fits[0].held is winner.held:
            winner.tags = dict(fits[0].tags)
            winner.traced_before = fits[0].traced_before
        return winner

    def _finish(self, trial: Trial, dataset: Dataset, fitted: _Fitted) -> TrialResult:
        """Evaluate a fitted trial on the test split and diagnose it -> its result."""
        train, held, watch, trial_tags = trial.config.train, fitted.held, fitted.watch, fitted.tags
        model = held.model
        history = tuple(watch.history)
        if watch.stop_reason:
            trial_tags[tags.TRACES] = str(traces(model) - fitted.traced_before)
            return failed_result(
                trial, watch.stop_reason, metrics=fitted.timing, history=history, tags=trial_tags
            )
        season = trial.config.section.season
        metrics = {**fitted.timing, **evaluate(model, dataset, train.batch_size, season)}
        if not all(math.isfinite(v) for v in metrics.values()):
            trial_tags[tags.TRACES] = str(traces(model) - fitted.traced_before)
            return failed_result(trial, DIVERGED, metrics=metrics, history=history, tags=trial_tags)
        loss = _loss(train, dataset.task)
        metrics |= fitted.at_init | diagnostics(
            model, dataset, loss, trial.model.differs_in_training
        )
        held.summary = held.summary or _summary(model)
        trial_tags[tags.TRACES] = str(traces(model) - fitted.traced_before)
        return TrialResult(
            trial.key,
            trial.variant_id,
            trial.variant,
            trial.seed,
            FINISHED,
            "",
            metrics,
            history,
            held.summary,
            trial_tags,
        )


@dataclass
class _Fitted:
    """A trial's model after `fit`, with what its result needs."""

    held: Kept
    watch: _Watch
    timing: dict[str, float]
    tags: dict[str, str]
    traced_before: int
    at_init: dict[str, float]


def _best_val_loss(fitted: _Fitted) -> float:
    """A candidate's lowest validation loss over its epochs; inf when it diverged or timed out."""
    if fitted.watch.stop_reason:
        return math.inf
    losses = [row.get(m.VAL_LOSS, math.nan) for row in fitted.watch.history]
    finite = [v for v in losses if math.isfinite(v)]
    return min(finite) if finite else math.inf


@dataclass(frozen=True)
class _Reports:
    """Where a trial reports while it trains: each epoch's metrics, and each fit's start."""

    on_epoch: EpochCallback | None
    on_fit: FitCallback | None

    def prefixed(self, index: int) -> _Reports:
        """Candidate `index`'s reports: its epoch metrics named select.<index>.<name>."""
        report = self.on_epoch
        if report is None:
            return self

        def renamed(epoch: int, row: dict[str, float]) -> None:
            report(epoch, {f"select.{index}.{name}": value for name, value in row.items()})

        return _Reports(renamed, self.on_fit)


def run_trial(trial: Trial, dataset: Dataset, on_epoch: EpochCallback | None = None) -> TrialResult:
    """Train and evaluate one trial on a fresh model (a one-off: nothing is kept)."""
    return TrialRunner(capacity=0).run(trial, dataset, on_epoch)


_frozen = False  # set once this process has frozen its long-lived objects


def _freeze_long_lived() -> None:
    """Once per process, before its first trial: exempt what already lives from collection.

    A full `gc.collect()` (`clear_keras_state`, before a fresh build) walks every tracked
    object: ~0.5 M once TensorFlow, Keras (and, in the driver, MLflow) are imported, 0.2-0.3 s
    a collection on 2 cores, for objects that live as long as the process. `gc.freeze()` moves
    them to the permanent generation, so each collection walks only what trials created
    (benchmarks/trial_overhead.py). Collection of the trials' own objects is unchanged.
    """
    global _frozen
    if not _frozen:  # a flag: gc.get_freeze_count() walks the frozen objects (~45 ms a call)
        gc.collect(1)  # young garbage is not frozen with the rest (cheap: gen 0 and 1 only)
        gc.freeze()
        _frozen = True


def _steps(dataset: Dataset, train: Train) -> int:
    return max(1, math.ceil(dataset.split("train").n / train.batch_size))


def _optimizer(train: Train, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer of a `Train` whose settings are fixed (a `{choose: [...]}` setting is
    fixed per candidate by `bnplace.trial.choose.candidates` first)."""
    if train.chosen_keys:
        raise ValueError(f"choose {', '.join(train.chosen_keys)} before building the optimizer")
    assert isinstance(train.learning_rate, float)
    rate: Any = train.learning_rate
    schedule = train.lr_schedule
    if schedule and schedule.kind == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            train.learning_rate, decay_steps=train.epochs_for(steps_per_epoch) * steps_per_epoch
        )
    elif schedule and schedule.kind == "exponential":
        rate = keras.optimizers.schedules.ExponentialDecay(
            train.learning_rate, decay_steps=steps_per_epoch, decay_rate=schedule.factor
        )
    classes = {
        "adam": keras.optimizers.Adam,
        "nadam": keras.optimizers.Nadam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }
    decay = {"weight_decay": train.weight_decay} if train.weight_decay is not None else {}
    return classes[train.optimizer](learning_rate=rate, clipnorm=train.clipnorm, **decay)


def _loss(train: Train, task: str) -> Any:
    name = train.loss or ("mse" if task == "forecast" else "sparse_categorical_crossentropy")
    return keras.losses.Huber() if name == "huber" else name


def _callbacks(train: Train) -> list[keras.callbacks.Callback]:
    callbacks: list[keras.callbacks.Callback] = []
    if train.early_stopping:
        # the schema's fields are EarlyStopping's own arguments (bnplace.config.schema)
        callbacks.append(keras.callbacks.EarlyStopping(**train.early_stopping.model_dump()))
    if train.lr_schedule and train.lr_schedule.kind == "reduce_on_plateau":
        schedule = train.lr_schedule
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                factor=schedule.factor,
                patience=schedule.patience,
                min_lr=schedule.min_learning_rate,
            )
        )
    return callbacks


def _summary(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line), line_length=100)
    return "\n".join(lines)
