"""Compare's notes on the training regime (bnplace.compare.budget): chosen settings, runs that
ran to the epoch cap, variants that stop at different epochs, a metric that varies tenfold."""

from __future__ import annotations

import pandas as pd

from bnplace.compare.budget import budget_notes


def _trials(epochs: dict[str, list[float]], cap: float, **extra: list[float]) -> pd.DataFrame:
    rows = [
        {"variant": v, "status": "finished", "epochs_run": e, "hit_cap": float(e >= cap)}
        for v, values in epochs.items()
        for e in values
    ]
    frame = pd.DataFrame(rows)
    return frame.assign(**extra) if extra else frame


def test_a_variant_whose_runs_reach_the_cap_is_flagged() -> None:
    # 2 of 10 runs of "b" at the cap (20%), 1 of 10 of "a" (10%: not more than 10%)
    trials = _trials({"a": [12.0] * 9 + [20.0], "b": [12.0] * 8 + [20.0] * 2}, cap=20)
    notes = budget_notes(trials)
    assert any("2 of 10 runs of b ran to the epoch cap" in n for n in notes)
    assert not any("runs of a ran" in n for n in notes)


def test_with_several_datasets_the_cap_is_named_where_it_binds() -> None:
    """The search study's shape: the cap binds on some series for every placement and on the
    others for none. The warning names the datasets where some variant's runs passed
    CAP_SHARE, most at the cap first, with the share over all variants and the range by
    variant; a dataset where none did is not named."""
    cap = 20.0
    shares = {"long": {"a": 9, "b": 7}, "mid": {"a": 0, "b": 2}, "short": {"a": 1, "b": 1}}
    frames = [
        _trials({v: [cap] * k + [12.0] * (10 - k)}, cap).assign(dataset=d)
        for d, by_variant in shares.items()
        for v, k in by_variant.items()
    ]  # short: 10% for each variant, not more than CAP_SHARE
    (warning,) = [n for n in budget_notes(pd.concat(frames)) if "cap" in n]
    assert warning.startswith(
        "warning: runs ran to the epoch cap (early stopping did not stop them) on 2 of 3 "
        "datasets: long (16 of 20 runs, 70% to 90% by variant); mid (2 of 20 runs, 0% to 20% "
        "by variant): on those the budget may decide this comparison"
    )
    assert "short" not in warning
    # past LISTED datasets the warning names the first LISTED and counts the rest
    many = pd.concat(
        _trials({"a": [cap] * 5 + [12.0] * 5}, cap).assign(dataset=f"s{i}") for i in range(11)
    )
    (warning,) = [n for n in budget_notes(many) if "cap" in n]
    assert "on 11 of 11 datasets" in warning and "s7 (5 of 10 runs)" in warning
    assert "and 3 more" in warning and "s8" not in warning


def test_variants_that_stop_at_different_epochs_are_flagged() -> None:
    far = budget_notes(_trials({"bn": [12.6] * 4, "none": [15.5] * 4}, cap=20))
    assert any("stop at different epochs" in n and "12.6 for bn" in n for n in far)
    near = budget_notes(_trials({"bn": [14.0] * 4, "none": [15.5] * 4}, cap=20))
    assert not any("different epochs" in n for n in near)


def test_fixed_epochs_say_nothing_and_chosen_rates_are_counted() -> None:
    fixed = pd.DataFrame({"variant": ["a", "b"], "status": "finished", "epochs_run": [5.0, 9.0]})
    assert budget_notes(fixed) == []  # no early stopping: no cap to hit, lengths are the budget
    chosen = fixed.assign(chosen_learning_rate=[0.01, 0.001], select_candidates=[3.0, 3.0])
    notes = budget_notes(chosen)
    assert (
        "learning rate chosen per seed on the validation split: a: 0.01 (1 of 1); b: 0.001 (1 of 1)"
        in notes
    )
    assert any("3 candidates" in n for n in notes)
    walked = fixed.assign(chosen_learning_rate=[0.01, 0.001], select_candidates=[3.0, 5.0])
    assert any("3 to 5 candidates" in n for n in budget_notes(walked))  # `extend` walked one


def test_a_variant_that_mostly_chose_an_end_of_its_list_is_flagged() -> None:
    """More than half of a variant's seeds chose the smallest or largest of 3+ candidates
    (`chosen_at_edge`, logged per trial): its best setting may lie beyond the list."""
    trials = pd.DataFrame(
        {
            "variant": ["bn"] * 4 + ["none"] * 4,
            "status": "finished",
            "chosen_learning_rate": [0.01, 0.01, 0.01, 0.003, 0.003, 0.01, 0.003, 0.001],
            "chosen_at_edge": [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0],  # none: 2 of 4, not more
        }
    )
    (warning,) = [n for n in budget_notes(trials) if "list" in n]
    assert warning.startswith("warning: the smallest or largest candidate") and "bn (3 of 4)" in (
        warning
    )
    assert "none (" not in warning
    several = trials.assign(dataset=["x", "x", "y", "y"] * 2)  # per dataset: 2 of 2 on x
    (warning,) = [n for n in budget_notes(several) if "list" in n]
    assert "bn on x (2 of 2)" in warning and "bn on y" not in warning
    # seeds run before trials logged it: their choice is unknown, so the variant is not judged
    older = trials.assign(chosen_at_edge=[1.0, 1.0, 1.0, None] + [0.0] * 4)
    assert not [n for n in budget_notes(older) if "list" in n]


def test_a_metric_that_varies_tenfold_over_seeds_is_flagged() -> None:
    """Near-perfect classifiers: test log loss from 0.002 to 0.3 over one variant's seeds on a
    dataset rules the paired log ratio; the note names where, and points to accuracy/F1. A
    metric within 10-fold, a non-positive one and another metric say nothing."""
    trials = pd.DataFrame(
        {
            "variant": ["bn"] * 4 + ["ln"] * 4 + ["bn"] * 4,
            "dataset": ["motions"] * 8 + ["italy"] * 4,
            "status": "finished",
            # bn on motions spans 150-fold; ln there and bn on italy stay within 10-fold
            "test_log_loss": [0.002, 0.01, 0.05, 0.3, 0.2, 0.25, 0.3, 0.35, 0.1, 0.2, 0.3, 0.5],
            "test_rmse": [1.0] * 12,
        }
    )
    (warning,) = [n for n in budget_notes(trials, "test_log_loss") if "fold" in n]
    assert "bn on motions (0.002 to 0.3)" in warning and "test_accuracy" in warning
    assert "ln on motions" not in warning and "italy" not in warning
    assert not [n for n in budget_notes(trials, "test_rmse") if "fold" in n]
    assert not [n for n in budget_notes(trials) if "fold" in n]  # no metric named
    signed = trials.assign(test_log_loss=[-1.0, 0.01, 0.05, 0.3] + [0.2] * 8)
    assert not [n for n in budget_notes(signed, "test_log_loss") if "fold" in n]


def test_a_search_s_many_variants_are_summarised_not_listed() -> None:
    """A search's 32 placements x 15 series made a note of 480 parts and a warning per
    placement: past LISTED the chosen values are counted per dataset over all variants, and a
    warning names the first LISTED and counts the rest."""
    variants = [f"p{i}" for i in range(20)]
    rows = [
        {"variant": v, "dataset": d, "status": "finished", "epochs_run": 30.0,
         "hit_cap": float(seed < 2), "chosen_learning_rate": 0.01 if seed else 0.003,
         "test_rmse": 1.0 + 20 * (seed == 0)}
        for v in variants for d in ("sine", "ar") for seed in range(4)
    ]  # fmt: skip
    notes = budget_notes(pd.DataFrame(rows), "test_rmse")
    chosen = next(n for n in notes if "chosen per seed" in n)
    assert chosen == (
        "learning rate chosen per seed on the validation split, over all 20 variants (each "
        "one's: bnplace export): sine: 0.01 (60 of 80), 0.003 (20 of 80); ar: 0.01 (60 of 80), "
        "0.003 (20 of 80)"
    )
    (cap,) = [n for n in notes if "epoch cap" in n]  # several datasets: named by dataset
    assert cap.startswith(
        "warning: runs ran to the epoch cap (early stopping did not stop them) on 2 of 2 "
        "datasets: sine (40 of 80 runs, 50% for every variant); ar (40 of 80 runs, 50% for "
        "every variant): on those the budget may decide"
    )
    (spread,) = [n for n in notes if "varies more than" in n]
    assert "and 32 more" in spread  # 40 variant-dataset pairs, 8 named
