"""Per-trial choice of training settings given as `{choose: [...]}`: the candidates and the pick.

In: a `Train` section whose `learning_rate` (or `weight_decay`) is a `Choose`. Out: the
candidate `Train` sections (every combination of the chosen values, each fixed), the metric
names a chosen setting is logged under, and `pick`, the rule that takes the candidate with the
lowest best validation loss. Pure: no TensorFlow, no files; `bnplace.trial.train` trains the
candidates.

The protocol, and why it is fair:

- Inside each trial, per variant, dataset and seed. Every candidate trains from that seed's
  build (the same initial weights, data order and dropout masks), with the trial's budget
  (epochs, early stopping), on the training split; the candidate whose best validation loss
  (`min` over its epochs, the epoch early stopping restores) is lowest is kept, and that model
  is the trial's model: it is evaluated on the test split once, after the choice.
- The choice never sees the test split: the candidates train on a copy of the dataset that has
  no test split (`Dataset.without_test`), so reading it fails (tests/test_choose.py).
- Each seed makes its own choice, so the paired comparison stays paired (seed s of every
  variant was tuned the same way, with the same effort) and the noise of the choice is part of
  each trial's result: the interval over seeds includes it, nothing is chosen on the seeds the
  verdict is then read from in a way the other variant was not. The cost is candidates x the
  trial's training, logged as `select_epochs` and `select_time_s`.
- Ties (equal best validation loss) go to the earlier candidate in the listed order, and a
  candidate whose validation loss never was finite is never chosen over one that was.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from bnplace.config.schema import Choose, Train
from bnplace.names import metrics as m


def chosen_metric(key: str) -> str:
    """The trial metric holding the value chosen for `key`: chosen_learning_rate."""
    return f"{m.CHOSEN_PREFIX}{key}"


def best_val_metric(index: int) -> str:
    """A candidate's best validation loss, by its position in `candidates`: select_val_loss.0."""
    return f"{m.SELECT_VAL_LOSS}.{index}"


def candidates(train: Train) -> list[Train]:
    """Every combination of the chosen values, in the listed order (the first key varies
    slowest); [train] when nothing is chosen."""
    keys = train.chosen_keys
    if not keys:
        return [train]
    values = [_choices(train, key) for key in keys]
    return [
        train.model_copy(update=dict(zip(keys, combo, strict=True)))
        for combo in itertools.product(*values)
    ]


def chosen_values(train: Train, candidate: Train) -> dict[str, float]:
    """The chosen settings of `candidate` (a member of `candidates(train)`), as metrics."""
    return {chosen_metric(key): float(getattr(candidate, key)) for key in train.chosen_keys}


def at_edge(train: Train, candidate: Train) -> float:
    """1.0 when a chosen setting of `candidate` is the smallest or largest of its 3 or more
    candidates (the best value may lie beyond the list), else 0.0. With 2 candidates every
    choice is an end, which says nothing."""
    for key in train.chosen_keys:
        choices = _choices(train, key)
        if len(choices) >= 3 and getattr(candidate, key) in (min(choices), max(choices)):
            return 1.0
    return 0.0


def count(train: Train) -> int:
    """How many candidates `train` gives (1 when nothing is chosen)."""
    return math.prod(len(_choices(train, key)) for key in train.chosen_keys)


def pick(best_val_losses: Sequence[float]) -> int:
    """The index of the lowest finite best validation loss; the first on ties; 0 when none is
    finite (the trial then fails on its own divergence)."""
    finite = [(v, i) for i, v in enumerate(best_val_losses) if math.isfinite(v)]
    return min(finite)[1] if finite else 0


def _choices(train: Train, key: str) -> list[float]:
    value = getattr(train, key)
    assert isinstance(value, Choose)
    return list(value.choose)
