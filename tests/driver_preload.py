"""What a `bnplace` driver imports, imported once in the forkserver the tests fork drivers from
(tests/forked.py), after the pool's own preload (TensorFlow, Keras, the trial runner).

In: nothing. Out: that process with MLflow (its SQLAlchemy store), the CLI and the run, store and
compare code imported, and no thread started: a fork is safe only while the process has one
thread (checked here, so a library that starts one at import fails loudly instead of hanging a
driver). Not Ray: importing it fixes the job id of Ray's C++ settings (`RayConfig`, read from
the environment once), so a Ray worker forked from this server (tests/forked_python.py) would
fail its start ("Check failed: !job_id_env.empty()"); a Ray test's driver imports Ray itself
(~0.5 s of CPU), its workers save TensorFlow's import (~4 s).
"""

# ruff: noqa: E402  (the imports follow the un-hiding below on purpose)

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
