"""The pool's forkserver preload: what a worker needs, imported once, before any worker forks.

In: nothing (multiprocessing imports this module in its forkserver process). Out: that process
with TensorFlow, Keras and the trial runner imported, so each pool worker forked from it starts
without the ~5 s of CPU a spawned worker spends importing them (`ProcessPool`, local.py).
No TensorFlow op runs here: the runtime starts in each worker (`start_worker`), with the
worker's thread count, as it does in a spawned one; a fork before that start is safe, after it
TensorFlow's threads would not survive.
"""

import signal

# The forkserver shares the driver's process group: a Ctrl-C while it imports is the driver's
# to handle (the forkserver ignores SIGINT itself only once its imports are done).
signal.signal(signal.SIGINT, signal.SIG_IGN)

from bnplace.execute.contract import import_worker_modules  # noqa: E402

import_worker_modules()
