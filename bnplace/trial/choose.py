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
- `extend: n` (one chosen setting): while the best value so far stands at an end of the values
  tried, the next value one grid step past that end is tried too (`next_candidate`), up to n
  more; the pick is then over every value tried. The walk depends only on validation losses,
  so it keeps the choice blind to the test split and each seed's choice its own.
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


def next_candidate(train: Train, tried: Sequence[Train], best: Train) -> Train | None:
    """With `extend`: the value one grid step past the end of the `tried` values that `best`
    stands at (the ratio of the two values at that end: 0.01 -> 0.03 goes on to 0.09), while
    `extend` allows more; None when `best` stands inside, or nothing more may be tried."""
    if extend_limit(train) <= len(tried) - count_listed(train):
        return None
    (key,) = train.chosen_keys
    values = sorted(float(getattr(option, key)) for option in tried)
    value = float(getattr(best, key))
    if value == values[0]:
        beyond = values[0] * values[0] / values[1]
    elif value == values[-1]:
        beyond = values[-1] * values[-1] / values[-2]
    else:
        return None
    return train.model_copy(update={key: float(f"{beyond:.6g}")})  # 0.09, not 0.09000000000000001


def extend_limit(train: Train) -> int:
    """How many values past its list's ends a trial may try (`extend`, one chosen setting)."""
    keys = train.chosen_keys
    return _chosen(train, keys[0]).extend if len(keys) == 1 else 0


def chosen_values(train: Train, candidate: Train) -> dict[str, float]:
    """The chosen settings of `candidate` (a member of `candidates(train)`), as metrics."""
    return {chosen_metric(key): float(getattr(candidate, key)) for key in train.chosen_keys}


def at_edge(train: Train, candidate: Train, tried: Sequence[Train] = ()) -> float:
    """1.0 when a chosen setting of `candidate` is the smallest or largest of its 3 or more
    values tried (`tried`: the listed ones and any `extend` added; default the listed), so the
    best value may lie beyond them, else 0.0. With 2 values every choice is an end, which says
    nothing."""
    for key in train.chosen_keys:
        choices = [getattr(option, key) for option in tried] if tried else _choices(train, key)
        choices = list(dict.fromkeys(choices))
        if len(choices) >= 3 and getattr(candidate, key) in (min(choices), max(choices)):
            return 1.0
    return 0.0


def count_listed(train: Train) -> int:
    """How many candidates `train` lists (1 when nothing is chosen)."""
    return math.prod(len(_choices(train, key)) for key in train.chosen_keys)


def count(train: Train) -> int:
    """The most candidates a trial of `train` trains: the listed ones and every `extend`."""
    return count_listed(train) + extend_limit(train)


def pick(best_val_losses: Sequence[float]) -> int:
    """The index of the lowest finite best validation loss; the first on ties; 0 when none is
    finite (the trial then fails on its own divergence)."""
    finite = [(v, i) for i, v in enumerate(best_val_losses) if math.isfinite(v)]
    return min(finite)[1] if finite else 0


def _chosen(train: Train, key: str) -> Choose:
    value = getattr(train, key)
    assert isinstance(value, Choose)
    return value


def _choices(train: Train, key: str) -> list[float]:
    return list(_chosen(train, key).choose)
