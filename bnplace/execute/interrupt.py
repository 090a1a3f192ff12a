"""Ctrl-C for a sweep: every press is acted on, none is lost, and none cuts a record in half.

In: SIGINT, or SIGTERM (`kill`, a job scheduler ending the job), while `catching()` is active
(the `run` use case holds it for the whole sweep); both are handled alike, so a terminated sweep
ends its runs KILLED and stops its workers as Ctrl-C does, instead of dying mid-write. Out:
KeyboardInterrupt in the driver's main thread, raised at once, raised again at the next
`check()` should the first raise have been swallowed, and held back inside `deferred()` blocks
(a claim or an event being written) until the block ends.

Why a press could be lost (issue 24; seen under Ray, possible with any executor): Python's
default SIGINT handler raises KeyboardInterrupt in whatever Python code the main thread runs
when the signal is handled, and that can be a weakref callback or a `__del__` run by the
garbage collector (SQLAlchemy's class registry behind MLflow's store has such callbacks, and a
Ray driver makes garbage often: an ObjectRef per poll). An exception there cannot propagate:
Python prints "Exception ignored in: <bound method _MultipleClassMarker._remove_item ...>
KeyboardInterrupt" and drops it, and the sweep ran on as if Ctrl-C had never been pressed. Ray's
DeferSigint (ray/_private/utils.py) is not involved: it only runs in workers, around task
argument deserialisation. So the handler here also remembers the press, and the executors'
loops call `check()` each turn (at least every second), which raises it again.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


class _State:
    pressed = False  # Ctrl-C was pressed while `catching()` was active
    depth = 0  # nested `deferred()` blocks open in the main thread
    active = False


_STATE = _State()


# SIGTERM's default action kills the driver at once: its workers then die on a broken pipe and
# its open runs stay RUNNING until the next driver marks them KILLED.
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _STATE.pressed = True
    if _STATE.depth == 0:
        raise KeyboardInterrupt


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def catching() -> Iterator[None]:
    """Handle SIGINT and SIGTERM as above until the block ends (in the main thread; elsewhere
    a no-op). A signal the process was started ignoring stays ignored: SIGINT in a process
    started with `cmd &` or nohup, which SIGTERM still ends."""
    if not _main_thread() or _STATE.active:
        yield
        return
    handled = [s for s in _SIGNALS if signal.getsignal(s) != signal.SIG_IGN]
    _STATE.pressed, _STATE.depth, _STATE.active = False, 0, True
    previous: dict[int, Any] = {s: signal.signal(s, _on_signal) for s in handled}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _STATE.active = False


def pressed() -> bool:
    """Whether Ctrl-C was pressed since `catching()` began."""
    return _STATE.active and _STATE.pressed


def check() -> None:
    """Raise KeyboardInterrupt when Ctrl-C was pressed (and no `deferred()` block is open): the
    executors call this each turn of their loops, so a swallowed press is raised again."""
    if pressed() and _STATE.depth == 0 and _main_thread():
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred(until_check: bool = False) -> Iterator[None]:
    """Hold Ctrl-C back until the block ends, then raise it as KeyboardInterrupt: a trial that
    ended while the user pressed Ctrl-C is recorded whole (metrics, artifacts, its FINISHED
    status), and a claim is never left half-made. `until_check`: hold it further, to the next
    `check()` (where the caller can end what the block opened). Outside `catching()` (a library
    caller) the block is guarded the same way for its duration."""
    if not _main_thread():
        yield  # signal handlers belong to the main thread
        return
    with contextlib.ExitStack() as stack:
        if not _STATE.active:
            stack.enter_context(catching())
        _STATE.depth += 1
        try:
            yield
        finally:
            _STATE.depth -= 1
        if not until_check:
            check()
