"""MLflow tag, param and artifact names of a sweep: the one table the writer and readers share.

In: nothing (pure data; no MLflow, no files, no other bnplace module). Out: constants for every
`bnplace.*` tag (what it holds and on which runs, in `TAGS`), the three run roles a run's
`bnplace.kind` tag names (sweep, variant, trial), the sweep run's params and the artifact paths.
`bnplace.store.track` writes these names and `bnplace.compare` reads them; the layout is in
docs/tracking.md.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- the role of a run: tag bnplace.kind -------------------------------------------------------
ROLE = "bnplace.kind"  # the tag's name stays "bnplace.kind" (stored in existing MLflow stores)
SWEEP, VARIANT, TRIAL = "sweep", "variant", "trial"  # its values
PARENT = "mlflow.parentRunId"  # MLflow's own nesting tag
EXPERIMENT_NOTE = "mlflow.note.content"  # MLflow's experiment description (the config's)
RUN_NOTE = EXPERIMENT_NOTE  # on the sweep run: its description in the UI, the answer (compare)

# --- sweep run --------------------------------------------------------------------------------
EXPERIMENT = "bnplace.experiment"
TASK = "bnplace.task"
METRIC = "bnplace.metric"
DIRECTION = "bnplace.direction"
BASELINE = "bnplace.baseline"
AXES = "bnplace.axes"
CONFIG_DIGEST = "bnplace.config_digest"
VERSION = "bnplace.version"
DRIVER = "bnplace.driver"  # sweep and trial runs: the id of the driver that made the run
DRIVER_PREFIX = "bnplace.driver."  # + a driver id's key: each driver's heartbeat on a sweep run
PLAN_DIGEST = "bnplace.plan_digest"  # a rerun of the same plan continues the sweep run with it
OPENED = "bnplace.opened"  # ms since the epoch when a driver last (re)opened the sweep run
LIB_PREFIX = "bnplace.lib."  # + a package name: bnplace.lib.keras

# --- variant and trial runs -------------------------------------------------------------------
SWEEP_ID = "bnplace.sweep"  # the sweep run's id
VARIANT_NAME = "bnplace.variant"
VARIANT_ID = "bnplace.variant_id"
LAYERS = "bnplace.layers"
PARAMS = "bnplace.params"
CUDNN = "bnplace.cudnn"
VERDICT = "bnplace.verdict"  # written by compare
CONTRAST_PREFIX = "bnplace.contrast"  # + an index: bnplace.contrast0 (written by compare)
SEARCH_STATE = "bnplace.search"  # a search's placements: its values
SELECTED, ELIMINATED = "selected", "eliminated"
ELIMINATED_AT = "bnplace.eliminated_at"  # seeds the placement had when eliminated
ELIMINATED_BY = "bnplace.eliminated_by"  # the placement it was shown worse than
ELIMINATION = "bnplace.elimination"  # why, in words

# --- trial runs -------------------------------------------------------------------------------
SEED = "bnplace.seed"
TRIAL_KEY = "bnplace.trial_key"
DATA = "bnplace.data"
DATASET = "bnplace.dataset"  # the dataset's name in a config with several `datasets:`
DATASET_VERDICT_PREFIX = "bnplace.verdict_on."  # + a dataset name (written by compare)
STATUS = "bnplace.status"
FAILURE = "bnplace.failure"
REUSE = "bnplace.reuse"  # its values: "fresh", "reused"
REUSE_FALLBACK = "bnplace.reuse_fallback"
TRACES = "bnplace.traces"
NODE = "bnplace.node"  # the Ray node the trial ran on
CHOSEN = "bnplace.chosen"  # the values a `{choose: [...]}` setting took: learning_rate=0.01

# --- claims: sweep and trial runs (bnplace/store/claims.py) ---------------------------------
CLAIM = "bnplace.claim"  # its values: INTENT, HELD (trial and sweep runs), READY (sweep runs)
INTENT, HELD, READY = "intent", "held", "ready"
HEARTBEAT = "bnplace.heartbeat"  # ms since the epoch, refreshed by the driver holding the run
GENERATION = "bnplace.generation"  # trial runs: 1 + the highest generation of the key's claims
SUPERSEDED = "bnplace.superseded_by"  # a KILLED trial run whose claim was taken over: by which


@dataclass(frozen=True)
class Tag:
    name: str
    runs: str  # the run roles that carry it
    holds: str
    writer: str = "track"


# A table: its rows share their shape by design (one row per tag).
TAGS: dict[str, Tag] = {
    tag.name: tag
    for tag in (
        Tag(ROLE, "all", "the run's role: sweep, variant or trial"),
        Tag(EXPERIMENT, "sweep", "the config's experiment name"),
        Tag(TASK, "sweep", "forecast or classify"),
        Tag(METRIC, "sweep", "the main metric"),
        Tag(DIRECTION, "sweep", "min or max: which way the main metric is better"),
        Tag(BASELINE, "sweep", "the baseline variant's name"),
        Tag(AXES, "sweep", "the sweep's axes and arm sets, a JSON list"),
        Tag(CONFIG_DIGEST, "sweep", "hash of the resolved config"),
        Tag(VERSION, "sweep", "bnplace's version"),
        Tag(DRIVER, "sweep, trial", "host:pid:token of the driver that created the run"),
        Tag(DRIVER_PREFIX + "<driver>", "sweep", "a driver's heartbeat (ms) while it works on it"),
        Tag(PLAN_DIGEST, "sweep", "hash of the resolved config and the planned trial keys"),
        Tag(OPENED, "sweep", "when a driver last opened (or reopened) it, ms since the epoch"),
        Tag(CLAIM, "sweep, trial", "claim state: intent, held (won), ready (sweep set up)"),
        Tag(HEARTBEAT, "trial", "ms since the epoch; refreshed while its driver is alive"),
        Tag(GENERATION, "trial", "claim generation: 1 + the highest of the key's claims then"),
        Tag(
            SUPERSEDED,
            "trial",
            "the run that took its claim over; this run (KILLED) keeps its late result",
        ),
        Tag(LIB_PREFIX + "<package>", "sweep", "tensorflow, keras, mlflow versions"),
        Tag(SWEEP_ID, "variant, trial", "the sweep run's id"),
        Tag(VARIANT_NAME, "variant, trial", "the variant's name"),
        Tag(VARIANT_ID, "variant, trial", "8 hex characters of the variant key"),
        Tag(LAYERS, "variant, trial", "the layer order, Conv1D>BN>ReLU>LSTM>Dense"),
        Tag(PARAMS, "variant, trial", "parameter count"),
        Tag(CUDNN, "variant, trial", "true when every LSTM can use cuDNN"),
        Tag(VERDICT, "variant", "the comparison's verdict", writer="compare"),
        Tag(CONTRAST_PREFIX + "<i>", "variant", "a declared contrast's result", writer="compare"),
        Tag(SEARCH_STATE, "variant", "a search's placement: selected or eliminated"),
        Tag(ELIMINATED_AT, "variant", "a search: seeds the placement had when eliminated"),
        Tag(ELIMINATED_BY, "variant", "a search: the placement it was shown worse than"),
        Tag(ELIMINATION, "variant", "a search: why the placement was eliminated, in words"),
        Tag(SEED, "trial", "the trial's seed"),
        Tag(TRIAL_KEY, "trial", "hash of everything that affects the trial's result"),
        Tag(DATA, "trial", "fingerprint of the prepared data"),
        Tag(DATASET, "trial", "the dataset's name (configs with several `datasets:`)"),
        Tag(
            DATASET_VERDICT_PREFIX + "<dataset>",
            "variant",
            "the baseline comparison's verdict on one dataset (several `datasets:`)",
            writer="compare",
        ),
        Tag(STATUS, "trial", "running, finished, failed or killed"),
        Tag(FAILURE, "trial", "why a trial failed: diverged, timeout, error: <message>"),
        Tag(REUSE, "trial", "fresh (built and traced) or reused (a kept model, reset to its seed)"),
        Tag(REUSE_FALLBACK, "trial", "why its model could not be kept for reuse (fresh trials)"),
        Tag(TRACES, "trial", "functions traced for the trial (0: a reused model retraced none)"),
        Tag(NODE, "trial", "the id of the Ray node that ran it (--executor ray)"),
        Tag(CHOSEN, "trial", "the values chosen on validation for `{choose: [...]}` settings"),
    )
}

# --- params -----------------------------------------------------------------------------------
PARAM_VARIANTS, PARAM_SEEDS, PARAM_TRIALS = "variants", "seeds", "trials"  # sweep run
PARAM_SEED, PARAM_LAYERS = "seed", "layers"  # trial run (with data.* and train.* settings)
PARAM_DATASET = "dataset"  # trial run of a config with several `datasets:`

# --- artifacts --------------------------------------------------------------------------------
CONFIG_ARTIFACT = "config/config.yaml"  # sweep run
PLAN_ARTIFACT = "plan.json"  # sweep run
# sweep run, seeds on demand: each look's decisions, looks/look_<k>.json (several datasets:
# looks/<dataset>/look_<k>.json; bnplace.store.looks)
LOOKS_ARTIFACTS = "looks"
FOREST_ARTIFACT_PREFIX = "forest_"  # sweep run, compare/plots/forest_<i>.png (several datasets)
SUMMARY_ARTIFACT = "model_summary.txt"  # trial run
HISTORY_ARTIFACT = "history.csv"  # trial run
