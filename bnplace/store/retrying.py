"""An MLflow client whose calls wait out a SQLite store that another writer holds locked.

In: an `MlflowClient`, or any call that opens one. Out: `Retrying` (the same client's methods)
and `while_locked` (one call), each tried again while the store answers "database is locked",
for up to LOCK_WAIT_S seconds (then the error is raised as before). SQLite waits for a lock
itself (MLflow sets a 20 s busy timeout in its sessions) except where waiting could deadlock:
then it answers "database is locked" at once. Opening a store waits less: MLflow checks the
schema on a plain connection, whose timeout is Python's sqlite3 default of 5 s. The failed
statement's transaction was rolled back, so trying again is safe. A REST store (`mlflow
server`) has MLflow's own HTTP retries instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

# How long a write waits for a SQLite store that another writer holds locked.
LOCK_WAIT_S = 120.0

T = TypeVar("T")


def while_locked(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`call(*args, **kwargs)`, tried again while the store answers "database is locked"."""
    deadline, pause = time.monotonic() + LOCK_WAIT_S, 0.05
    while True:
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            if "database is locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 1.0)


class Retrying:
    """The wrapped client's methods, retried while the store is locked (see the module)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            return while_locked(method, *args, **kwargs)

        return call
