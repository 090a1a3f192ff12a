"""Claims on a real MLflow SQLite store: drivers racing for one trial or one sweep run, stale
claims taken over, trials that ended elsewhere passed on, and the claiming schedule.

Each "driver" is a `Tracker` with its own `Claims` (own driver id, own client) in a thread of
this process; they race through the store as separate processes would. No training.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlflow.entities import ViewType

from bnplace.execute.schedule import ClaimedSchedule, FixedSchedule
from bnplace.names.states import FINISHED
from bnplace.names.tags import HEARTBEAT
from bnplace.run.sweep import Prepared
from bnplace.store.claims import Claims, driver_tag, now_ms
from bnplace.store.track import Tracker
from bnplace.trial.result import TrialResult
from tests.sweeps import TINY, sqlite_store

CONFIG = TINY + "sweep: {axes: {conv.filters: [2, 3]}, seeds: 3}\n"  # `prepared` (conftest.py)


# Claims here go stale after an hour: no heartbeat is started, and a test that means a claim to
# be live must not see it go stale because a busy machine ran the test slowly (a stale claim is
# made by back-dating its heartbeat instead; no clock is waited on).
STALE_S = 3600.0
BACKDATED_MS = int(STALE_S * 1000) + 1000  # a heartbeat this old is past the stale period


def driver(uri: str, prepared: Prepared, stale_s: float = STALE_S) -> Claims:
    """A driver on the plan's sweep run (created or continued), its heartbeat not started."""
    tracker = Tracker(uri, prepared.plan.experiment)
    claims = Claims(tracker, stale_s=stale_s)
    claims.open_plan_sweep(prepared.plan, "# test\nconfig: 1\n")
    return claims


def race(count: int, work: Callable[[int], Any]) -> list[Any]:
    """`work(i)` for i < count, all released at once from their own threads."""
    barrier, out = threading.Barrier(count), [None] * count

    def run(i: int) -> None:
        barrier.wait()
        out[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return out


def active_trial_runs(claims: Claims, key: str) -> list:
    return [r for r in claims.trial_runs(key) if r.info.lifecycle_stage == "active"]


def test_drivers_racing_for_each_trial_end_with_one_owner(tmp_path: Path, prepared) -> None:
    uri = sqlite_store(tmp_path)
    drivers = [driver(uri, prepared) for _ in range(3)]
    assert len({d.tracker.sweep_run_id for d in drivers}) == 1  # one sweep run for one plan
    for trial in prepared.plan.trials:
        winners: list[int] = []
        for _attempt in range(5):  # a tie in which every claimant yields is tried again
            claims = race(3, lambda i, t=trial: drivers[i].claim(t))
            winners = [i for i, c in enumerate(claims) if c.won]
            assert len(winners) <= 1, claims
            if winners:
                break
        assert len(winners) == 1
        (run,) = active_trial_runs(drivers[0], trial.key)  # the losers' claims are deleted
        assert run.info.status == "RUNNING"
        assert run.data.tags["bnplace.driver"] == drivers[winners[0]].driver
        assert run.data.tags["bnplace.claim"] == "held"
        for other in drivers:  # now held by a live driver: nobody else gets it
            claim = other.claim(trial)
            assert not claim.won and claim.result is None
            assert claim.holder == drivers[winners[0]].driver


def test_drivers_racing_for_a_new_plan_share_one_sweep_run(tmp_path: Path, prepared) -> None:
    uri = sqlite_store(tmp_path)
    Tracker(uri, prepared.plan.experiment)  # the store and experiment exist before the race
    drivers = race(3, lambda i: driver(uri, prepared))
    sweep_ids = {d.tracker.sweep_run_id for d in drivers}
    assert len(sweep_ids) == 1
    client = drivers[0].client
    exp = drivers[0].tracker.experiment_id
    active = client.search_runs([exp], "tags.`bnplace.kind` = 'sweep'")
    assert [r.info.run_id for r in active] == list(sweep_ids)
    assert active[0].data.tags["bnplace.claim"] == "ready"
    variants = client.search_runs([exp], "tags.`bnplace.kind` = 'variant'")
    assert len(variants) == len(prepared.plan.variants)  # set up once, before it was ready
    deleted = client.search_runs([exp], "", run_view_type=ViewType.DELETED_ONLY)
    assert all(r.data.tags["bnplace.kind"] == "sweep" for r in deleted)  # the losers' runs


def test_a_stale_claim_is_taken_over_and_marked_killed(tmp_path: Path, prepared) -> None:
    uri = sqlite_store(tmp_path)
    dead, alive = driver(uri, prepared), driver(uri, prepared)
    trial = prepared.plan.trials[0]
    assert dead.claim(trial).won
    # its driver died a stale period ago: its last heartbeat is back-dated past the period
    (claim,) = active_trial_runs(dead, trial.key)
    dead.client.set_tag(claim.info.run_id, HEARTBEAT, str(now_ms() - BACKDATED_MS))
    assert alive.claim(prepared.plan.trials[1]).won
    assert alive.claim(trial).won
    runs = {r.data.tags["bnplace.driver"]: r for r in active_trial_runs(alive, trial.key)}
    assert runs[dead.driver].info.status == "KILLED"
    assert runs[dead.driver].data.tags["bnplace.status"] == "killed"
    assert runs[alive.driver].info.status == "RUNNING"
    assert int(runs[alive.driver].data.tags["bnplace.generation"]) == 2  # took over generation 1
    assert dead.kill_stale() == 0  # the live driver's claims are not stale
    time.sleep(0.01)  # any wait at all: now the heartbeats are older than a 1 ms period
    dead.stale_s = 0.001
    assert dead.kill_stale() == 2  # both trial runs, once their heartbeats are a period old


def test_the_last_driver_ends_the_sweep_past_a_just_killed_drivers_fresh_heartbeat(
    tmp_path: Path, prepared
) -> None:
    """A driver SIGKILLed between trials leaves its heartbeat tag on the sweep run fresh for up
    to a stale period: the driver that ends the plan meanwhile waits it out (and so ends the
    sweep run), where a tag that beats again is a live driver's, which ends the sweep itself."""
    uri = sqlite_store(tmp_path)
    killed, beating, last = (driver(uri, prepared, stale_s=1.0) for _ in range(3))
    sweep = last.tracker.sweep_run_id
    killed.client.set_tag(sweep, driver_tag(killed.driver), str(now_ms()))  # its last beat
    assert last.others_on_sweep(sweep)  # at a glance it looks alive ...
    assert not last.others_on_sweep(sweep, wait=True)  # ... but it never beats again
    assert driver_tag(killed.driver) not in last.client.get_run(sweep).data.tags  # removed
    beating.client.set_tag(sweep, driver_tag(beating.driver), str(now_ms()))
    beating.heartbeat.start()  # and beats again every 0.2 s
    try:
        last.stale_s = 30.0  # a beat late on a busy machine still counts as alive
        assert last.others_on_sweep(sweep, wait=True)
    finally:
        beating.heartbeat.stop()


def test_a_taken_over_claim_is_fenced_before_and_after_its_result_is_written(
    tmp_path: Path, prepared
) -> None:
    uri = sqlite_store(tmp_path)
    frozen, taker = driver(uri, prepared), driver(uri, prepared)
    trial = prepared.plan.trials[0]
    assert frozen.claim(trial).won
    (claim,) = active_trial_runs(frozen, trial.key)
    mine = claim.info.run_id
    assert frozen.taken_over(trial.key, mine) is None  # held
    frozen.client.set_tag(mine, HEARTBEAT, str(now_ms() - BACKDATED_MS))  # frozen past the period
    assert taker.claim(trial).won
    (theirs,) = [r for r in active_trial_runs(taker, trial.key) if r.info.run_id != mine]
    assert frozen.taken_over(trial.key, mine) == theirs.info.run_id
    assert taker.taken_over(trial.key, theirs.info.run_id) is None
    result = TrialResult(trial.key, trial.variant_id, trial.variant, trial.seed, FINISHED)
    frozen.tracker.end_trial(replace(result, metrics={"test_rmse": 0.5}), frozen.taken_over)
    taker.tracker.end_trial(result, taker.taken_over)
    ended = {r.info.run_id: r for r in active_trial_runs(taker, trial.key)}
    assert ended[mine].info.status == "KILLED"  # its late result kept, never FINISHED
    assert ended[mine].data.tags["bnplace.superseded_by"] == theirs.info.run_id
    assert ended[mine].data.metrics["test_rmse"] == 0.5
    assert ended[theirs.info.run_id].info.status == "FINISHED"


def test_a_trial_that_ended_elsewhere_is_passed_on_not_claimed(tmp_path: Path, prepared) -> None:
    uri = sqlite_store(tmp_path)
    one, two = driver(uri, prepared), driver(uri, prepared)
    two.known_ended = two.tracker.ended_run_ids()
    trial = prepared.plan.trials[0]
    assert one.claim(trial).won
    metrics = {"test_rmse": 0.5}
    result = TrialResult(
        trial.key, trial.variant_id, trial.variant, trial.seed, FINISHED, "", metrics
    )
    one.tracker.end_trial(result)
    claim = two.claim(trial)
    assert not claim.won and claim.result is not None
    assert claim.result.finished and claim.result.metrics["test_rmse"] == 0.5
    # a driver that began after it ended (resume decided on it) claims it again (--rerun)
    three = driver(uri, prepared)
    three.known_ended = three.tracker.ended_run_ids()
    assert three.claim(trial).won


def test_claimed_schedule_skips_held_trials_and_waits_for_them(tmp_path: Path, prepared) -> None:
    """Driver two deals only what driver one does not hold, then waits for driver one's trials
    and hears their results as if they had ended here."""
    uri = sqlite_store(tmp_path)
    one, two = driver(uri, prepared), driver(uri, prepared)
    two.known_ended = two.tracker.ended_run_ids()
    trials = prepared.plan.trials
    held = trials[:2]
    for trial in held:
        assert one.claim(trial).won
    heard: list[TrialResult] = []
    schedule = ClaimedSchedule(FixedSchedule(trials), two, heard.append, poll_s=0.2)
    dealt = []
    for _ in trials[2:]:
        trial = schedule.take()
        assert trial is not None
        dealt.append(trial)
        schedule.ended(
            TrialResult(trial.key, trial.variant_id, trial.variant, trial.seed, FINISHED)
        )
    assert [t.key for t in dealt] == [t.key for t in trials[2:]]
    assert set(schedule.held) == {t.key for t in held} and schedule.ready() == 2

    def finish_held() -> None:
        time.sleep(0.5)
        for t in held:
            one.tracker.end_trial(TrialResult(t.key, t.variant_id, t.variant, t.seed, FINISHED))

    threading.Thread(target=finish_held).start()
    assert schedule.take() is None  # waited for driver one's trials, then nothing was left
    assert sorted(r.trial_key for r in heard) == sorted(t.key for t in held)
    assert schedule.ready() == schedule.remaining() == 0
