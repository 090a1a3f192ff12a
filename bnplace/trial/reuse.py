"""Reuse: keep a variant's compiled, traced model in a worker and reset it for the next seed.

In: a trial (its model spec, with the input and output shapes, and its training settings make
the variant key) and a model freshly built with the trial's seed. Out: `Kept` models in a small
LRU `ModelCache`, the reset that makes a kept model start exactly where a fresh build starts,
and the count of tracings behind a model's functions. A fresh trial spends about half its
fixed cost building and tracing the train, test and predict functions (and the diagnostics'
passes); a kept model has them traced already, so a later seed of its variant pays only for
building its initial weights (a plain functional build, no tracing) and training.

The reset (`load`): every model variable (weights, BN moving statistics, dropout and noise
seed-generator states) takes the value of the fresh build's variable at the same path, and the
optimizer's variables go back to the values they had when it was built (iteration counter and
moment slots zero, the learning rate the config's, which ReduceLROnPlateau may have lowered).
Data order and callbacks are the trial's own, as in a fresh trial (`bnplace.trial.train`).
Results are bit-identical to a fresh trial's (tests/test_reuse.py). A model is reused only
when all its state lives in variables: `blocker` names the reason when it may not (a layer
class not known to be so, or a fresh build whose variables do not match the kept model's one
for one), and the trial then trains a fresh model and says why in its `bnplace.reuse_fallback`
tag.
The learning rate is not part of the key where the optimizer holds it in a variable
(`rate_in_variable`): the candidates of a `{choose: [...]}` rate then train one kept model in
turn (`load` writes each one's rate; `snapshot` and `restore` keep the chosen one's trained
state), so a trial traces (or, with XLA, compiles) once instead of once per candidate. Nor is
the data: a worker that moves on to another dataset of the same shapes (the suite's seven
quarterly series, say) resets the model it kept instead of building and compiling another; only
a decaying schedule, whose steps follow the data's size, keeps the data in the key, and the
predict function is traced again for the new data (`move_to`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from bnplace.build.layers import BatchNormLSTMCell, LastStep, LayerNormLSTMCell, SqueezeExcite1D
from bnplace.config.schema import Train
from bnplace.names.kinds import LAYER_KINDS
from bnplace.plan import Trial
from bnplace.trial.diagnose import Passes

__all__ = [
    "CAPACITY",
    "Kept",
    "ModelCache",
    "blocker",
    "load",
    "move_to",
    "rate_in_variable",
    "restore",
    "snapshot",
    "traces",
    "variant_key",
]

CAPACITY = 3  # variants kept per worker: a few models of ~0.1-1 M parameters

# Layer classes whose whole state is in their variables (weights, moving statistics, seed
# generator states): the classes bnplace.names.kinds builds, and what they are made of. Listed,
# not derived, so a new layer class is a decision; tests/test_reuse.py fails for a class of
# bnplace.build.layers left off (it would build a fresh model every trial, silently).
_RESETTABLE = frozenset(
    {kind.keras for kind in LAYER_KINDS.values()}
    | {"InputLayer", "RNN", "LSTMCell", "GlobalAveragePooling1D", "Dense"}
    | {cls.__name__ for cls in (BatchNormLSTMCell, LastStep, LayerNormLSTMCell, SqueezeExcite1D)}
)


@dataclass
class Kept:
    """A compiled model whose train, test and predict functions are traced, and the values
    its optimizer's variables had when built (what `reset_optimizer` restores)."""

    model: keras.Model
    optimizer_start: list[np.ndarray]
    data: str  # the fingerprint of the dataset its predict function was traced for (`move_to`)
    summary: str = ""


def variant_key(trial: Trial) -> str:
    """What fixes a trial's model, compilation and input shapes: the model spec (its window,
    features, outputs and task) and the training settings; not its seed, and not its learning
    rate where that lives in the optimizer's variable (`rate_in_variable`), so the candidates of
    a `{choose: [...]}` rate share one kept model (`load` writes each one's rate). Not the data
    either, but for a decaying schedule: its decay steps, constants of the traced functions,
    follow the data's size. The spec's repr (not its canonical form) keeps layer names, which
    metric names and summaries carry."""
    train = trial.config.train.model_dump(mode="json")
    body: list[Any] = [repr(trial.model), train]
    if rate_in_variable(trial.config.train):
        del train["learning_rate"]
    else:
        body.append(trial.data_fingerprint)
    text = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def rate_in_variable(train: Train) -> bool:
    """The learning rate is the optimizer's `learning_rate` variable, which the traced
    functions read (a fixed rate, which ReduceLROnPlateau may lower), not a schedule whose
    start value is a constant in them."""
    return train.lr_schedule is None or train.lr_schedule.kind == "reduce_on_plateau"


def blocker(model: keras.Model) -> str:
    """Why `model` may not be reset exactly by copying variables ("" when it may)."""
    for layer in model._flatten_layers(include_self=False):
        name = type(layer).__name__
        if name not in _RESETTABLE:
            return f"layer {layer.name!r} ({name}) is not known to keep all its state in variables"
    return ""


def kept(model: keras.Model, batch_spec: Any, data: str) -> Kept:
    """Keep a compiled model: build its state now (`build_state`) and note the optimizer's
    start values. `batch_spec` is the training feed's element spec, `data` the fingerprint of
    the dataset it trains on first (`move_to`)."""
    build_state(model, batch_spec)
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)  # as fit would on its first step
    return Kept(model, [np.array(v.numpy()) for v in optimizer.variables], data)


def build_state(model: keras.Model, batch_spec: Any) -> None:
    """Create a compiled model's metric and loss state before its first fit.

    Keras (TensorFlow backend, no distribution strategy) creates that state inside the first
    traced train step, and a tf.function whose first trace creates variables is traced again:
    built here, each step function traces once, which saves about a quarter of a tiny model's
    fit. The state is the same zeros either way: results are bit-identical (the fresh
    references of tests/test_reuse.py build it Keras' way). `_symbolic_build` is what Keras
    itself calls under a distribution strategy (Keras >= 3.0); a Keras without it builds the
    state in the trace, as before."""
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is not None:
        symbolic_build(data_batch=batch_spec)  # shapes and dtypes only: nothing is computed


def load(into: Kept, fresh: keras.Model, train: Train) -> str:
    """Give `into` the fresh model's variables and a fresh optimizer state at `train`'s rate;
    "" when done, else why not (nothing is changed then)."""
    target, source = into.model.variables, fresh.variables
    if len(target) != len(source):
        return f"the fresh build has {len(source)} variables, the kept model {len(target)}"
    for mine, theirs in zip(target, source, strict=True):
        if (mine.path, tuple(mine.shape), mine.dtype) != (
            theirs.path,
            tuple(theirs.shape),
            theirs.dtype,
        ):
            return f"variable {theirs.path} of the fresh build does not match {mine.path}"
    for mine, theirs in zip(target, source, strict=True):
        mine.assign(theirs.value)
    reset_optimizer(into)
    if rate_in_variable(train):  # the kept model may have been built at another candidate's
        into.model.optimizer.learning_rate = train.learning_rate  # the same float32 as a build
    return ""


def move_to(held: Kept, data: str) -> None:
    """Point a kept model at the dataset (its fingerprint) that its next trial reads. Its train
    and test functions take their batches from an iterator and are traced for any batch size,
    but its predict function is traced per call shape: the first shape it meets gets a trace of
    its own, every other shape one shape-general trace (Keras' `reduce_retracing`), and the two
    need not agree in the last bit (they did not with SE and SpatialDropout1D,
    tests/test_reuse.py). On another dataset it is remade, so it traces as a fresh model's."""
    if held.data != data:
        held.model.predict_function = None
        held.data = data


def reset_optimizer(into: Kept) -> None:
    for variable, start in zip(into.model.optimizer.variables, into.optimizer_start, strict=True):
        variable.assign(start)


def snapshot(model: keras.Model) -> list[np.ndarray]:
    """The values of a model's and its optimizer's variables (what `restore` puts back)."""
    return [np.array(v.numpy()) for v in (*model.variables, *model.optimizer.variables)]


def restore(model: keras.Model, values: list[np.ndarray]) -> None:
    """Put a `snapshot` back: a candidate's trained state, after others trained the same
    kept model."""
    variables = (*model.variables, *model.optimizer.variables)
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


def traces(model: keras.Model) -> int:
    """How many times the model's train, test and predict functions and its diagnostics'
    passes were traced (a reused model that did not retrace adds none)."""
    functions = (model.train_function, model.test_function, model.predict_function)
    count = sum(f.experimental_get_tracing_count() for f in _tf_functions(functions))
    passes = Passes.kept(model)
    return count + (passes.traces if passes is not None else 0)


def _tf_functions(roots: tuple[Any, ...]) -> Iterator[Any]:
    """The tf.functions behind Keras' step functions (plain closures over tf.functions)."""
    seen: set[int] = set()
    stack = [root for root in roots if root is not None]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if hasattr(item, "experimental_get_tracing_count"):
            yield item
            item = item.python_function
        if inspect.isfunction(item):
            stack += [c.cell_contents for c in item.__closure__ or () if _holds(c)]


def _holds(cell: Any) -> bool:
    try:
        value = cell.cell_contents
    except ValueError:  # an empty cell
        return False
    return inspect.isfunction(value) or hasattr(value, "experimental_get_tracing_count")


class ModelCache:
    """The last `capacity` variants' kept models, least recently used out first."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._kept: OrderedDict[str, Kept] = OrderedDict()
        self._left = False  # a model left since `left_since_asked` was last called

    def get(self, key: str) -> Kept | None:
        found = self._kept.get(key)
        if found is not None:
            self._kept.move_to_end(key)
        return found

    def put(self, key: str, model: Kept) -> None:
        if self.capacity <= 0:
            return
        self._kept[key] = model
        self._kept.move_to_end(key)
        while len(self._kept) > self.capacity:
            self._kept.popitem(last=False)  # freed by the next trial's full collection
            self._left = True

    def drop(self, key: str) -> None:
        if self._kept.pop(key, None) is not None:
            self._left = True

    def left_since_asked(self) -> bool:
        """Whether a model left the cache (evicted or dropped) since the last call: its
        objects are then garbage that only a full collection frees (Keras models hold cycles)."""
        left, self._left = self._left, False
        return left

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, key: str) -> bool:
        return key in self._kept
