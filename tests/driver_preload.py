"""What a `bnplace` driver imports, imported once in the forkserver the tests fork drivers from
(tests/forked.py), after the pool's own preload (TensorFlow, Keras, the trial runner).

In: nothing. Out: that process with MLflow (its SQLAlchemy store), the CLI and the run, store and
compare code imported, every object frozen (`gc.freeze`, at the end), and no thread started: a
fork is safe only while the process has one thread (checked here, so a library that starts one
at import fails loudly instead of hanging a driver). Not Ray: importing it fixes the job id of
Ray's C++ settings (`RayConfig`, read from the environment once), so a Ray worker forked from
this server (tests/forked_python.py) would fail its start ("Check failed: !job_id_env.empty()");
a Ray test's driver imports Ray itself (~0.3 s of CPU), its workers save TensorFlow's (~4 s).
"""

# ruff: noqa: E402  (the imports follow the un-hiding below on purpose)

import gc
import sys
import threading

# The pool's preload, which ran first, hid from this process what workers never use (Keras'
# optional imports, pandas among them): a driver uses them (MLflow imports pandas), as a fresh
# `bnplace` process does, so they are importable again before anything below imports them.
for name in [name for name, module in sys.modules.items() if module is None]:
    del sys.modules[name]

import mlflow  # noqa: F401
import scipy.stats  # noqa: F401
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore  # noqa: F401

import bnplace.compare.pipeline
import bnplace.console.cli
import bnplace.execute.local
import bnplace.run.sweep
import bnplace.store.claims
import bnplace.store.track  # noqa: F401

if threading.active_count() != 1:
    raise RuntimeError(
        f"a preloaded import started threads ({threading.enumerate()}): forking is unsafe"
    )

# What the server imported lives as long as every process forked from it: frozen (Python's own
# advice before a fork without exec), no collection in a forked process walks it. Otherwise the
# first full collection there writes to every preloaded object's header, copying the server's
# heap page by page: 0.34 s of CPU and 36 K page faults in a forked child against 0.001 s
# frozen, and Ray's import 0.58 s against 0.28 s. (bnplace freezes its own workers before their
# first trial, `bnplace.trial.train._freeze_long_lived`; a forked driver or test process
# collects long before that.) Ray, test_run, test_drivers, test_reuse and test_seeds_on_demand
# under pytest-xdist: 212 and 216 CPU-s against 238 and 223, in turn; the whole suite in one
# slow hour: 638 against 643, the drivers and Ray's workers 11 and 12 CPU-s less, the three
# test processes 13 more (a frozen heap makes full collections of their own objects come
# sooner, Python's trigger being a quarter more than the last full one counted).
gc.freeze()
