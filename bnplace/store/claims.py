"""Claims over MLflow: which driver trains a trial, and which sweep run a plan continues.

In: a `Tracker` (its client and experiment), this driver's id, and what to claim: a trial (by
its key) or a plan (by its digest). Out: a trial claim's outcome (`bnplace.execute.schedule.Claim`:
won, so this driver holds the trial's run and trains it; held by a live driver; or ended
elsewhere since this driver started, with its result), the sweep run a plan continues
(`open_sweep`), runs whose driver died marked KILLED (`kill_stale`), whether any other driver
still works on a sweep (`others_on_sweep`), and `Heartbeat`, the driver's thread that keeps
its claims fresh.

MLflow has no transactions, so a claim is a run and two reads (docs/tracking.md, "Claims"):
create the run as INTENT; read every claim of the key and yield to a live HELD one or to an
earlier (start time, then run id) live INTENT one; otherwise mark it HELD, read again, and
yield to any other live HELD one. A yielded claim is deleted. Of two claims that both reach
HELD, the one marked later reads after the other was marked, so it sees it and yields: two
drivers never both win (both may yield, and try again later). A claim is live while its run is
RUNNING and its heartbeat is younger than `stale_after()` seconds; that one rule, the same on
every machine, also decides which runs a dead driver left RUNNING (`kill_stale`). The heartbeat
thread belongs to the driver process, which stays the only writer; workers never see MLflow.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bnplace.execute.schedule import Claim
from bnplace.names.errors import TrackingError
from bnplace.names.states import FAILED, FINISHED, KILLED, RUNNING
from bnplace.names.tags import (
    CLAIM,
    DRIVER,
    DRIVER_PREFIX,
    FAILURE,
    GENERATION,
    HEARTBEAT,
    HELD,
    INTENT,
    PLAN_DIGEST,
    READY,
    ROLE,
    SWEEP,
    SWEEP_ID,
    TRIAL,
    TRIAL_KEY,
    VARIANT,
)
from bnplace.store.client import make_client
from bnplace.store.records import plan_digest
from bnplace.trial.result import TrialResult

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from bnplace.plan import Plan, Trial
    from bnplace.store.track import Tracker

# Seconds without a heartbeat after which a RUNNING claim counts as its driver's death.
STALE_ENV = "BNPLACE_CLAIM_STALE_S"
DEFAULT_STALE_S = 30.0
BEATS_PER_STALE = 5  # a driver refreshes its heartbeats this many times per stale period
ENDED = (FINISHED.run_status, FAILED.run_status)


def stale_after() -> float:
    """Seconds after which a claim whose heartbeat stopped is stale (BNPLACE_CLAIM_STALE_S)."""
    raw = os.environ.get(STALE_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_STALE_S
    except ValueError:
        raise TrackingError(f"{STALE_ENV}={raw!r} is not a number of seconds") from None
    if not value > 0 or math.isinf(value):
        raise TrackingError(f"{STALE_ENV} must be a positive number of seconds, got {raw!r}")
    return value


def new_driver_id() -> str:
    """host:pid:token, unique for this process (a pid is reused, the token is not)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def driver_tag(driver: str) -> str:
    """The sweep-run tag holding `driver`'s heartbeat (tag names cannot hold every character)."""
    return DRIVER_PREFIX + re.sub(r"[^A-Za-z0-9_.-]", "-", driver)


def now_ms() -> int:
    return int(time.time() * 1000)


def heartbeat_of(run: Run) -> int:
    """The run's freshest heartbeat (ms): a trial's own, or a sweep's newest driver's; 0: none."""
    beats = [
        value
        for name, value in run.data.tags.items()
        if name == HEARTBEAT or name.startswith(DRIVER_PREFIX)
    ]
    return max((int(v) for v in beats if v.isdigit()), default=0)


def is_live(run: Run, stale_s: float, now: int | None = None) -> bool:
    """RUNNING with a heartbeat younger than `stale_s`: its driver is taken to be alive."""
    now = now_ms() if now is None else now
    return run.info.status == RUNNING.run_status and now - heartbeat_of(run) < stale_s * 1000


def _generation(run: Run) -> int:
    value = run.data.tags.get(GENERATION, "")
    return int(value) if value.isdigit() else 0


def _order(run: Run) -> tuple[int, str]:
    return int(run.info.start_time or 0), run.info.run_id


@dataclass
class Claims:
    """This driver's side of the claim protocol on one experiment."""

    tracker: Tracker
    driver: str = field(default_factory=new_driver_id)
    stale_s: float = field(default_factory=stale_after)
    known_ended: set[str] = field(default_factory=set)  # ended trial runs when this driver began
    heartbeat: Heartbeat = field(init=False)

    def __post_init__(self) -> None:
        self.heartbeat = Heartbeat(self.tracker.uri, self.driver, self.stale_s / BEATS_PER_STALE)

    @property
    def client(self) -> MlflowClient:
        return self.tracker.client

    def _search(self, filter_string: str) -> list[Run]:
        return list(self.tracker.runs(filter_string))

    # --- the protocol ----------------------------------------------------------------------

    def contend(self, mine: Run, rivals: Callable[[], Iterable[Run]]) -> Run | None:
        """None when `mine` (a fresh INTENT claim) wins, else the run it yielded to (`mine` is
        deleted then). `rivals` reads every claim of the same key (any status)."""
        mine_id = mine.info.run_id

        def blocking(held_only: bool) -> Run | None:
            now = now_ms()
            for run in rivals():
                if run.info.run_id == mine_id:
                    continue
                if run.data.tags.get(ROLE) == TRIAL and self._ended_elsewhere(run):
                    return run  # trained elsewhere while this driver was claiming it
                if not is_live(run, self.stale_s, now):
                    continue
                state = run.data.tags.get(CLAIM, HELD)  # a claim without the tag: held
                if state != INTENT or (not held_only and _order(run) < _order(mine)):
                    return run
            return None

        rival = blocking(held_only=False)
        if rival is None:
            self.client.set_tag(mine_id, CLAIM, HELD)
            rival = blocking(held_only=True)
        if rival is not None:
            with contextlib.suppress(Exception):
                self.client.delete_run(mine_id)
        return rival

    # --- trials ----------------------------------------------------------------------------

    def _ended_elsewhere(self, run: Run) -> bool:
        """FINISHED or FAILED since this driver began (earlier ones resume decided on)."""
        return run.info.status in ENDED and run.info.run_id not in self.known_ended

    def trial_runs(self, key: str) -> list[Run]:
        return self._search(f"tags.`{TRIAL_KEY}` = '{key}'")

    def claim(self, trial: Trial) -> Claim:
        """Claim `trial` for this driver (see `bnplace.execute.schedule.Claimer`)."""
        runs = self.trial_runs(trial.key)
        ended = [run for run in runs if self._ended_elsewhere(run)]
        if ended:
            finished = [r for r in ended if r.info.status == FINISHED.run_status]
            return Claim(result=result_of(trial, max(finished or ended, key=_order)))
        now = now_ms()
        for run in runs:
            if is_live(run, self.stale_s, now):
                return Claim(holder=run.data.tags.get(DRIVER, "?"))
        for run in runs:
            if run.info.status == RUNNING.run_status:  # its driver died: take it over
                self.tracker.mark_killed(run.info.run_id, trial=True)
        claim_tags = {DRIVER: self.driver, CLAIM: INTENT, HEARTBEAT: str(now_ms())}
        claim_tags[GENERATION] = str(1 + max((_generation(run) for run in runs), default=0))
        mine = self.tracker.create_trial_run(trial, claim_tags)
        rival = self.contend(mine, lambda: self.trial_runs(trial.key))
        if rival is not None:
            if rival.info.status in ENDED:
                return Claim(result=result_of(trial, rival))
            return Claim(holder=rival.data.tags.get(DRIVER, "?"))
        self.heartbeat.hold(mine.info.run_id)
        self.tracker.claimed(trial, mine.info.run_id)
        return Claim(won=True)

    def taken_over(self, key: str, run_id: str) -> str | None:
        """Fencing: the run that took this driver's claim `run_id` on trial `key` over, or None
        while the claim still holds. Taken over: the run is KILLED (a taker marks a stale
        claim so before it claims the trial itself), or a claim of a
        higher generation exists (docs/tracking.md, "Fencing"). "?" when the taker is unseen."""
        runs = self.trial_runs(key)
        mine = next((run for run in runs if run.info.run_id == run_id), None)
        if mine is None:
            return "?"
        later = [run for run in runs if _generation(run) > _generation(mine)]
        if later:
            return max(later, key=_generation).info.run_id
        if mine.info.status == KILLED.run_status:
            return "?"
        return None

    def release(self, run_id: str) -> None:
        """The trial's run ended (or is about to be marked so): stop beating it."""
        self.heartbeat.release(run_id)

    # --- sweeps ----------------------------------------------------------------------------

    def sweep_runs(self, digest: str) -> list[Run]:
        return self._search(f"tags.`{ROLE}` = '{SWEEP}' and tags.`{PLAN_DIGEST}` = '{digest}'")

    def open_sweep(
        self, digest: str, create: Callable[[dict[str, str]], Run], set_up: Callable[[str], None]
    ) -> tuple[str, bool]:
        """The sweep run of the plan with `digest`, and whether this driver created it.

        A READY sweep run of the digest is continued (the earliest, should there be two). While
        another live driver sets one up, wait for it. Else create one (`create`, given the claim
        tags), contend for it, and let the winner `set_up` its variant runs and artifacts
        before it is marked READY; a loser tries again.
        """
        poll_s = min(1.0, self.stale_s / BEATS_PER_STALE)
        while True:
            runs = self.sweep_runs(digest)
            ready = sorted((r for r in runs if r.data.tags.get(CLAIM) == READY), key=_order)
            if ready:
                self.heartbeat.hold(ready[0].info.run_id, sweep=True)
                return ready[0].info.run_id, False
            if any(is_live(r, self.stale_s) for r in runs):
                time.sleep(poll_s)  # another driver is setting it up
                continue
            for run in runs:  # a driver died while setting it up: nothing was run under it
                with contextlib.suppress(Exception):
                    self.client.delete_run(run.info.run_id)
            mine = create(
                {DRIVER: self.driver, CLAIM: INTENT, driver_tag(self.driver): str(now_ms())}
            )
            self.heartbeat.hold(mine.info.run_id, sweep=True)
            if self.contend(mine, lambda: self.sweep_runs(digest)) is None:
                set_up(mine.info.run_id)
                self.client.set_tag(mine.info.run_id, CLAIM, READY)
                return mine.info.run_id, True
            self.heartbeat.release(mine.info.run_id, sweep=True)
            time.sleep(poll_s * random.uniform(0.5, 1.5))

    def open_plan_sweep(self, plan: Plan, config_text: str) -> bool:
        """The plan's sweep run, opened through `open_sweep` and attached to the tracker:
        continued when a driver ran the same plan before or runs it now, else created with
        plan.json and a variant run per variant. True: this driver created it."""
        tracker = self.tracker
        run_id, created = self.open_sweep(
            plan_digest(plan, config_text),
            lambda claim_tags: tracker.create_sweep_run(plan, config_text, claim_tags),
            lambda run_id: tracker.set_up_sweep(plan, config_text, run_id),
        )
        tracker.attach_sweep(plan, run_id, created)
        return created

    def leave_sweep(self, sweep_run_id: str) -> None:
        """Stop beating the sweep run and take this driver's heartbeat tag off it."""
        self.heartbeat.release(sweep_run_id, sweep=True)
        with contextlib.suppress(Exception):
            self.client.delete_tag(sweep_run_id, driver_tag(self.driver))

    def others_on_sweep(self, sweep_run_id: str, *, wait: bool = False) -> bool:
        """Whether another driver still works on the sweep run: its heartbeat tag there is
        fresh (stale ones are removed).

        With `wait`, a fresh tag counts once it moves. A driver killed moments ago leaves a tag
        that stays fresh for up to a stale period, and the last live driver, taking it for a
        live one, would leave the sweep RUNNING with nobody left to end it (seen when a rerun
        finished its trials within seconds of a SIGKILL). So each such tag is watched until it
        beats again (alive: that driver ends the sweep), goes (its driver left), or goes stale
        (dead): at most one stale period.
        """
        seen = self._other_beats(sweep_run_id)
        poll_s = min(1.0, self.stale_s / BEATS_PER_STALE)
        while wait and seen:
            time.sleep(poll_s)
            beats = self._other_beats(sweep_run_id)
            if any(seen.get(name) != value for name, value in beats.items()):
                return True  # a tag beat again, or a driver joined
            seen = {name: value for name, value in seen.items() if name in beats}
        return bool(seen)

    def _other_beats(self, sweep_run_id: str) -> dict[str, str]:
        """Other drivers' fresh heartbeat tags on the sweep run (name -> value); stale ones are
        removed."""
        run = self.client.get_run(sweep_run_id)
        now, mine, fresh = now_ms(), driver_tag(self.driver), {}
        for name, value in run.data.tags.items():
            if not name.startswith(DRIVER_PREFIX) or name == mine:
                continue
            if value.isdigit() and now - int(value) < self.stale_s * 1000:
                fresh[name] = value
            else:
                with contextlib.suppress(Exception):
                    self.client.delete_tag(sweep_run_id, name)
        return fresh

    # --- dead drivers ----------------------------------------------------------------------

    def kill_stale(self) -> int:
        """Mark KILLED the RUNNING trial and sweep runs whose heartbeat is stale (with a stale
        sweep its RUNNING variant runs); returns how many trial runs."""
        killed, now = 0, now_ms()
        for run in self._search(f"attributes.status = '{RUNNING.run_status}'"):
            role = run.data.tags.get(ROLE)
            if role not in (TRIAL, SWEEP) or is_live(run, self.stale_s, now):
                continue
            if role == TRIAL:
                self.tracker.mark_killed(run.info.run_id, trial=True)
                killed += 1
                continue
            sweep_id = run.info.run_id
            for child in self._search(
                f"tags.`{SWEEP_ID}` = '{sweep_id}' and attributes.status = 'RUNNING'"
            ):
                if child.data.tags.get(ROLE) == VARIANT:
                    self.tracker.mark_killed(child.info.run_id, trial=False)
            self.tracker.mark_killed(sweep_id, trial=False)
        return killed


def result_of(trial: Trial, run: Run) -> TrialResult:
    """The result another driver recorded for `trial` in `run` (FINISHED or FAILED)."""
    failed = run.info.status == FAILED.run_status
    reason = (run.data.tags.get(FAILURE) or "error: failed in another driver") if failed else ""
    return TrialResult(
        trial.key,
        trial.variant_id,
        trial.variant,
        trial.seed,
        FAILED if failed else FINISHED,
        reason,
        dict(run.data.metrics),
        tags={DRIVER: run.data.tags.get(DRIVER, "")},
    )


@dataclass
class Heartbeat:
    """A daemon thread of the driver that refreshes its claims every `every_s` seconds: the
    HEARTBEAT tag of each trial run it holds, and its own tag on the sweep runs it works on
    (which it also keeps RUNNING). It has its own client and never blocks the driver's loop."""

    uri: str
    driver: str
    every_s: float
    _runs: set[str] = field(default_factory=set)
    _sweeps: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def hold(self, run_id: str, *, sweep: bool = False) -> None:
        """Refresh `run_id` from now on: a trial run, or (`sweep`) a sweep run."""
        with self._lock:
            (self._sweeps if sweep else self._runs).add(run_id)

    def release(self, run_id: str, *, sweep: bool = False) -> None:
        """Stop refreshing `run_id` (a trial run, or with `sweep` a sweep run)."""
        with self._lock:
            (self._sweeps if sweep else self._runs).discard(run_id)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name="bnplace-heartbeat", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop beating (the claims go stale unless their runs end): before the sweep ends."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _loop(self) -> None:
        client = make_client(self.uri)
        tag = driver_tag(self.driver)
        while not self._stop.wait(self.every_s):
            with self._lock:
                runs, sweeps = sorted(self._runs), sorted(self._sweeps)
            stamp = str(now_ms())
            for run_id in runs:
                with contextlib.suppress(Exception):  # the next beat tries again
                    client.set_tag(run_id, HEARTBEAT, stamp)
            for run_id in sweeps:
                with contextlib.suppress(Exception):
                    client.set_tag(run_id, tag, stamp)
                    client.update_run(run_id, status=RUNNING.run_status)
