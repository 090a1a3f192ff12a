"""`train.learning_rate: {choose: [...]}`: each variant trains at its own rate, chosen per seed on
the validation split; the test split is out of the choice's reach (bnplace.trial.choose)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bnplace.config.checks import check_candidates_bounded, check_extend_one_setting
from bnplace.config.schema import Choose, Config, Train
from bnplace.data.dataset import Dataset
from bnplace.names.errors import DataError
from bnplace.run.sweep import plan_sweep
from bnplace.trial import choose
from bnplace.trial.train import TrialRunner, run_trial

# A planted case: the input is the target's history scaled by 0.1, and the model is a linear
# head trained by SGD. Unstandardized ("raw"), the loss's curvature is 0.1² of the standardized
# one, so raw needs a 100x higher rate: at 3.0 it takes the steps standardized takes at 0.03,
# while standardized diverges at 3.0; at 0.03 raw barely moves.
PLANTED = """
experiment: planted
data: {{source: csv, path: series.csv, time_column: t, features: [x], targets: [y], window: 8}}
model:
  - pool: {{id: p, kind: average, pool_size: 1}}
head: {{use_bias: false}}
sweep:
  axes:
    data.standardize: {{raw: false, std: true}}
  seeds: [3]
train: {{epochs: 3, batch_size: 32, optimizer: sgd, learning_rate: {rate}}}
"""
LOW, HIGH = 0.03, 3.0


def _write_series(folder: Path) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(600)
    y = np.sin(2 * np.pi * t / 17) + 0.5 * np.sin(2 * np.pi * t / 41 + 1)
    y = y + 0.1 * rng.standard_normal(t.size)
    rows = np.column_stack([t, 0.1 * y, y])
    np.savetxt(folder / "series.csv", rows, delimiter=",", header="t,x,y", comments="", fmt="%.9g")


def _results(folder: Path, rate: str) -> dict[str, dict]:
    path = folder / f"c{abs(hash(rate))}.yaml"
    path.write_text(PLANTED.format(rate=rate))
    prepared = plan_sweep(path)
    out = {}
    for trial in prepared.plan.trials:
        result = run_trial(trial, prepared.datasets[trial.data_fingerprint])
        out[trial.variant.split("=")[1]] = {"status": result.status, **result.metrics}
    return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict]]:
    folder = Path(tmp_path_factory.mktemp("planted"))
    _write_series(folder)
    return {
        "low": _results(folder, str(LOW)),
        "high": _results(folder, str(HIGH)),
        "chosen": _results(folder, f"{{choose: [{LOW}, {HIGH}]}}"),
    }


def _score(result: dict) -> float:
    return result["test_rmse"] if result["status"] == "finished" else np.inf


@pytest.mark.slow
def test_at_a_fixed_rate_the_winner_flips_with_the_rate(planted) -> None:
    low, high = planted["low"], planted["high"]
    assert _score(low["std"]) < _score(low["raw"])  # standardized wins at the low rate
    assert _score(high["raw"]) < _score(high["std"])  # raw wins at the high rate


@pytest.mark.slow
def test_each_variant_gets_its_own_rate_and_is_compared_at_it(planted) -> None:
    chosen = planted["chosen"]
    assert chosen["raw"]["chosen_learning_rate"] == HIGH
    assert chosen["std"]["chosen_learning_rate"] == LOW
    # the kept candidate is the trial at that rate: the same test error as a fixed-rate trial
    assert chosen["raw"]["test_rmse"] == planted["high"]["raw"]["test_rmse"]
    assert chosen["std"]["test_rmse"] == planted["low"]["std"]["test_rmse"]
    for result in chosen.values():
        assert result["status"] == "finished"
        assert result["select_candidates"] == 2
        assert result["chosen_at_edge"] == 0.0  # an end of two candidates says nothing
        assert result["select_epochs"] >= result["epochs_run"]  # the choice's cost is logged
    # standardized diverged at 3.0 (no finite best loss to log), raw's loss fell with the rate
    assert "select_val_loss.1" not in chosen["std"]
    assert chosen["raw"]["select_val_loss.1"] < chosen["raw"]["select_val_loss.0"]


@pytest.mark.slow
def test_the_choice_never_reads_the_test_split(tmp_path: Path, monkeypatch) -> None:
    """Every read of a split during the candidates' fits is on data without a test split, and
    the test split is read only once the choice is made (by the evaluation)."""
    _write_series(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text(PLANTED.format(rate=f"{{choose: [{LOW}, {HIGH}]}}"))
    prepared = plan_sweep(path)
    reads: list[tuple[str, bool]] = []
    part = Dataset.part

    def spy(self: Dataset, name: str):  # type: ignore[no-untyped-def]
        reads.append((name, any(p.name == "test" for p in self.parts)))
        return part(self, name)

    finish = TrialRunner._finish

    def finishing(self, *args):  # type: ignore[no-untyped-def]
        reads.append(("<chosen>", True))
        return finish(self, *args)

    monkeypatch.setattr(Dataset, "part", spy)
    monkeypatch.setattr(TrialRunner, "_finish", finishing)
    trial = prepared.plan.trials[0]
    fit_began = lambda: reads.append(("<fit>", False))  # noqa: E731
    result = TrialRunner(capacity=0).run(
        trial, prepared.datasets[trial.data_fingerprint], on_fit=fit_began
    )
    assert result.status == "finished", result.reason
    chosen_at = reads.index(("<chosen>", True))
    before = reads[:chosen_at]
    # each candidate's fit says it began, after its build (the executor's time limit counts
    # from there), and none after the choice
    assert [name for name, _ in reads].count("<fit>") == 2 and ("<fit>", False) in before
    assert reads[0] != ("<fit>", False)
    assert {"train", "val"} <= {name for name, _ in before}
    assert not any(has_test for _name, has_test in before)  # the fits saw no test split at all
    assert ("test", True) in reads[chosen_at:]


def test_data_without_its_test_split_refuses_to_give_it(tmp_path: Path) -> None:
    _write_series(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text(PLANTED.format(rate=LOW))
    dataset = next(iter(plan_sweep(path).datasets.values())).without_test()
    assert dataset.split("val").n > 0
    with pytest.raises(DataError, match="test split is held out"):
        dataset.split("test")


def test_candidates_are_every_combination_in_the_listed_order() -> None:
    train = Train(
        learning_rate=Choose(choose=[0.01, 0.1]), weight_decay=Choose(choose=[1e-4, 1e-3])
    )
    options = choose.candidates(train)
    assert [(o.learning_rate, o.weight_decay) for o in options] == [
        (0.01, 1e-4), (0.01, 1e-3), (0.1, 1e-4), (0.1, 1e-3)
    ]  # fmt: skip
    assert choose.count(train) == 4 and not options[0].chosen_keys
    assert choose.candidates(Train()) == [Train()]  # a fixed rate trains as before


def test_a_choice_at_an_end_of_three_or_more_candidates_is_marked() -> None:
    three = Train(learning_rate=Choose(choose=[0.003, 0.001, 0.01]))  # ends by value, not place
    marks = [choose.at_edge(three, option) for option in choose.candidates(three)]
    assert marks == [0.0, 1.0, 1.0]
    two = Train(learning_rate=Choose(choose=[0.001, 0.01]))  # every choice is an end of two
    assert [choose.at_edge(two, option) for option in choose.candidates(two)] == [0.0, 0.0]


def test_extend_walks_one_grid_step_past_the_end_the_best_stands_at() -> None:
    train = Train(learning_rate=Choose(choose=[0.003, 0.01, 0.03], extend=2))
    listed = choose.candidates(train)
    assert choose.count_listed(train) == 3 and choose.count(train) == 5
    rates = lambda options: [o.learning_rate for o in options]  # noqa: E731
    # the middle value is inside the values tried: nothing more to try
    assert choose.next_candidate(train, listed, listed[1]) is None
    up = choose.next_candidate(train, listed, listed[2])
    down = choose.next_candidate(train, listed, listed[0])
    assert up is not None and down is not None
    assert (up.learning_rate, down.learning_rate) == (0.09, 0.0009)  # x3 and /3, as the grid
    further = choose.next_candidate(train, [*listed, up], up)
    assert further is not None and further.learning_rate == 0.27
    assert choose.next_candidate(train, [*listed, up, further], further) is None  # 2 used
    # at an end of every value tried: still marked; inside them after the walk: not
    tried = [*listed, up, further]
    assert choose.at_edge(train, further, tried) == 1.0
    assert choose.at_edge(train, up, tried) == 0.0 and rates(tried)[-1] == 0.27
    plain = Train(learning_rate=Choose(choose=[0.003, 0.01, 0.03]))
    assert choose.next_candidate(plain, choose.candidates(plain), listed[2]) is None


def test_extend_leaves_the_keys_of_configs_without_it_alone_and_needs_one_setting() -> None:
    # trial keys hash the train section's dump: a config without `extend` dumps as before
    plain = Train(learning_rate=Choose(choose=[0.003, 0.01]))
    assert plain.model_dump(mode="json")["learning_rate"] == {"choose": [0.003, 0.01]}
    walked = Train(learning_rate=Choose(choose=[0.003, 0.01], extend=1))
    assert walked.model_dump(mode="json")["learning_rate"]["extend"] == 1
    base = {"experiment": "x", "data": {"source": "synthetic"}, "model": [{"lstm": {"units": 4}}]}
    two = {
        "learning_rate": {"choose": [0.01, 0.1], "extend": 1},
        "weight_decay": {"choose": [0.1, 0.2]},
    }
    (issue,) = check_extend_one_setting(Config.model_validate({**base, "train": two}))
    assert issue.path == ("train", "learning_rate", "extend") and "one" in issue.expected
    one = Config.model_validate({**base, "train": {"learning_rate": two["learning_rate"]}})
    assert check_extend_one_setting(one) == []
    with pytest.raises(ValueError):
        Choose(choose=[0.01, 0.1], extend=5)  # bounded: each value is one more training


@pytest.mark.slow
def test_a_trial_walks_past_the_top_of_a_too_low_grid(tmp_path: Path) -> None:
    """Standardized, the planted case trains well at 0.03 (and diverges at 3.0): from a grid
    of rates far too low, each step up wins, so the trial walks up as far as `extend` allows,
    and the kept candidate is the one at the highest rate tried."""
    _write_series(tmp_path)
    config = PLANTED.format(rate="{choose: [0.0001, 0.0003], extend: 2}")
    path = tmp_path / "c.yaml"
    path.write_text(
        config.replace("data.standardize: {raw: false, std: true}", "data.standardize: {std: true}")
    )
    prepared = plan_sweep(path)
    (trial,) = prepared.plan.trials
    result = run_trial(trial, prepared.datasets[trial.data_fingerprint])
    assert result.status == "finished", result.reason
    assert result.metrics["select_candidates"] == 4  # 2 listed + 2 past the top
    assert result.metrics["chosen_learning_rate"] == 0.0027  # 0.0003 x3 x3
    losses = [result.metrics[f"select_val_loss.{i}"] for i in range(4)]
    assert losses == sorted(losses, reverse=True)  # each step up did better
    assert result.metrics["chosen_at_edge"] == 1.0  # still the top of what was tried


SHARED = """
experiment: shared
data: {source: synthetic, generator: sine_mix, length: 300, features: 2, window: 10}
model:
  - conv1d: {id: conv, filters: 4, kernel_size: 3, padding: causal, activation: relu}
placements:
  conv.pre_act: [batch_norm]
  conv.post_act: [{dropout: 0.3}]
sweep: {seeds: 2}
train:
  epochs: 3
  batch_size: 32
  learning_rate: {choose: [0.003, 0.03, 30.0], extend: 1}
  lr_schedule: {kind: reduce_on_plateau, patience: 1}
"""


@pytest.mark.slow
def test_candidates_that_differ_in_their_rate_share_one_model_and_change_no_number(
    tmp_path: Path,
) -> None:
    """The candidates of a chosen rate train one kept model in turn (traced once), each reset
    to the seed's build at its own rate (BN statistics, dropout's seed state and the rate that
    ReduceLROnPlateau lowers included), and the chosen one's trained state is put back after
    the later ones (30.0 diverges, so the chosen one is never the last): every number `==` to
    candidates built on models of their own (`run_trial` keeps none), at the first seed and
    at the next, whose model was left at the last candidate's rate."""
    from bnplace.names import tags
    from tests.sweeps import sqlite_store
    from tests.test_reuse import _outcome

    sqlite_store(tmp_path)
    (tmp_path / "c.yaml").write_text(SHARED)
    prepared = plan_sweep(tmp_path / "c.yaml")
    runner = TrialRunner()
    for trial in prepared.plan.trials:
        data = prepared.datasets[trial.data_fingerprint]
        shared, own = runner.run(trial, data), run_trial(trial, data)
        assert shared.finished, shared.reason
        assert (
            shared.metrics["select_candidates"] == 3 and shared.metrics["chosen_learning_rate"] < 30
        )
        assert _outcome(shared) == _outcome(own)
        assert len(runner.cache) == 1  # one model for the three candidates
        if trial.seed == prepared.plan.trials[0].seed:  # traced once, not once per candidate
            assert shared.tags[tags.REUSE] == "fresh" and own.tags[tags.REUSE] == "fresh"
            # `own` counts the tracing of its chosen candidate's model alone: as much as all
            # three shared candidates traced
            assert int(shared.tags[tags.TRACES]) == int(own.tags[tags.TRACES]) > 0
        else:
            assert shared.tags[tags.REUSE] == "reused" and shared.tags[tags.TRACES] == "0"


def test_pick_takes_the_lowest_finite_loss_and_the_first_on_ties() -> None:
    assert choose.pick([0.3, 0.1, 0.2]) == 1
    assert choose.pick([0.1, 0.1]) == 0
    assert choose.pick([np.inf, np.nan, 0.5]) == 2
    assert choose.pick([np.inf, np.inf]) == 0


@pytest.mark.parametrize("values", [[0.01], [0.01, 0.01], [0.01, -1.0], list(np.arange(1, 10.0))])
def test_a_choice_needs_two_to_eight_distinct_positive_values(values) -> None:
    with pytest.raises(ValueError):
        Choose(choose=values)


def test_the_combinations_are_bounded() -> None:
    base = {"experiment": "x", "data": {"source": "synthetic"}, "model": [{"lstm": {"units": 4}}]}
    eight = {"choose": [0.001 * (i + 1) for i in range(8)]}
    config = Config.model_validate(
        {**base, "train": {"learning_rate": eight, "weight_decay": {"choose": [0.1, 0.2, 0.3]}}}
    )
    issues = check_candidates_bounded(config)
    assert issues and "24 combinations" in issues[0].message
    fine = Config.model_validate({**base, "train": {"learning_rate": eight}})
    assert check_candidates_bounded(fine) == []


@pytest.mark.slow
def test_run_logs_the_chosen_rates_and_compare_shows_them(tmp_path: Path) -> None:
    from tests.sweeps import bnplace, runs, sqlite_store

    _write_series(tmp_path)
    config = PLANTED.format(rate=f"{{choose: [{LOW}, {HIGH}]}}").replace("[3]", "2")
    (tmp_path / "c.yaml").write_text(config)
    sqlite_store(tmp_path)
    done = bnplace(tmp_path, "run", "c.yaml", "--jobs", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    trials = runs(tmp_path, "planted")["trial"]
    assert len(trials) == 4
    for run in trials:
        rate = HIGH if run.data.tags["bnplace.variant"].endswith("raw") else LOW
        assert run.data.metrics["chosen_learning_rate"] == rate
        assert run.data.tags["bnplace.chosen"] == f"learning_rate={rate!r}"
        assert run.data.params["train.learning_rate"] == f'{{"choose": [{LOW}, {HIGH}]}}'
        assert run.data.metrics["select_epochs"] >= run.data.metrics["epochs_run"]
    text = " ".join(done.stdout.split())
    assert "learning rate chosen per seed on the validation split" in text
    assert "data.standardize=raw: 3 (2 of 2); data.standardize=std: 0.03 (2 of 2)" in text


def _walk(train: Train, loss_of: dict[float, float]) -> tuple[float, int]:
    """The trial's choice as `TrialRunner._choose` makes it (choose.candidates, pick and
    next_candidate, the rule as shipped), on validation losses looked up by rate: (the chosen
    rate, how many candidates were trained)."""
    options = choose.candidates(train)
    losses = [loss_of[o.learning_rate] for o in options]
    chosen = choose.pick(losses)
    while beyond := choose.next_candidate(train, options, options[chosen]):
        options.append(beyond)
        losses.append(loss_of[beyond.learning_rate])
        chosen = choose.pick(losses)
    return float(options[chosen].learning_rate), len(options)


@pytest.mark.parametrize("noise", ["normal", "skewed", "t3"])
def test_extend_finds_an_optimum_past_the_grid_and_costs_little_inside_it(noise: str) -> None:
    """Seeded simulation of the `extend: 2` walk on [0.003, 0.01, 0.03]. A validation loss
    quadratic in grid steps (one step from the optimum costs 1) plus noise of sd 0.4 (normal,
    centred lognormal of skewness ~6, Student t with 3 df, each scaled to that sd), 2,000
    trials per case:
    - optimum one step past the top (0.09): without `extend` no trial can choose it; with it
      at least 85% do, and none trains more than the 5 candidates `extend: 2` allows;
    - optimum inside (0.01): the walk costs at most 0.2 extra candidates a trial on average
      and loses at most 1 point of the trials that chose 0.01 without it (the walked values
      are far from the optimum, so noise rarely makes them win)."""
    rng = np.random.default_rng({"normal": 1, "skewed": 2, "t3": 3}[noise])
    rates = (0.00027, 0.0009, 0.003, 0.01, 0.03, 0.09, 0.27)  # the grid, two walked steps each way
    steps = {r: float(s) for s, r in enumerate(rates)}

    def draws(size: tuple[int, int]) -> np.ndarray:
        if noise == "normal":
            z = rng.normal(size=size)
        elif noise == "skewed":
            z = rng.lognormal(0.0, 1.0, size=size)
            z = (z - np.exp(0.5)) / np.sqrt((np.e - 1) * np.e)
        else:
            z = rng.standard_t(3, size=size) / np.sqrt(3.0)
        return 0.4 * z

    def simulate(optimum: float, extend: int) -> tuple[np.ndarray, np.ndarray]:
        train = Train(learning_rate=Choose(choose=[0.003, 0.01, 0.03], extend=extend))
        noise_ = draws((2000, len(rates)))
        picked, trained = [], []
        for row in noise_:
            loss_of = {
                r: (steps[r] - steps[optimum]) ** 2 + e for r, e in zip(rates, row, strict=True)
            }
            rate, n = _walk(train, loss_of)
            picked.append(rate)
            trained.append(n)
        return np.array(picked), np.array(trained)

    plain, _ = simulate(0.09, extend=0)
    walked, trained = simulate(0.09, extend=2)
    assert (plain == 0.09).mean() == 0.0
    assert (walked == 0.09).mean() >= 0.85 and trained.max() <= 5  # measured 0.93-0.97

    inside_plain, n_plain = simulate(0.01, extend=0)
    inside_walked, n_walked = simulate(0.01, extend=2)
    assert (n_plain == 3).all() and n_walked.mean() - 3 <= 0.2  # measured 0.04-0.07
    assert (inside_walked == 0.01).mean() >= (inside_plain == 0.01).mean() - 0.01  # <= 0.004
