"""`execute.interrupt`: Ctrl-C raised at once, raised again when Python dropped it, held back in
deferred blocks. Real signals (signal.raise_signal) in this process's main thread."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from bnplace.execute import interrupt


class Litter:
    """Garbage whose finaliser runs Python code when SIGINT is handled, as SQLAlchemy's weakref
    callbacks did in the MLflow store when a user's Ctrl-C was lost under Ray."""

    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)
        sum(range(3))  # bytecode after the signal: the handler runs here, inside the finaliser


@pytest.fixture
def dropped(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Exceptions Python could not raise (finalisers, weakref callbacks), caught here."""
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    yield seen


@pytest.fixture(autouse=True)
def default_sigint() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGINT, previous)
    signal.signal(signal.SIGTERM, previous_term)


def test_sigterm_ends_a_sweep_as_ctrl_c_does_even_where_sigint_is_ignored() -> None:
    """`kill` or a job scheduler's SIGTERM is acted on like a press (the sweep ends its runs
    KILLED and stops its workers); a SIGINT the process was started ignoring stays ignored."""
    with interrupt.catching(), pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a process started with `cmd &`
    with interrupt.catching():
        signal.raise_signal(signal.SIGINT)  # ignored: nothing happens
        assert not interrupt.pressed()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_python_drops_a_keyboard_interrupt_raised_in_a_finaliser(dropped: list[Any]) -> None:
    """The cause: with Python's own handler, a press handled in a finaliser is lost."""
    Litter()  # collected at once; no KeyboardInterrupt reaches this frame
    assert [type(d.exc_value) for d in dropped] == [KeyboardInterrupt]


def test_a_dropped_press_is_raised_again_at_the_next_check(dropped: list[Any]) -> None:
    with interrupt.catching():
        Litter()
        assert [type(d.exc_value) for d in dropped] == [KeyboardInterrupt]
        assert interrupt.pressed()
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_a_press_raises_at_once_and_deferred_blocks_hold_it_to_their_end() -> None:
    with interrupt.catching(), pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    written = []
    with interrupt.catching(), pytest.raises(KeyboardInterrupt):
        with interrupt.deferred():
            with interrupt.deferred():
                signal.raise_signal(signal.SIGINT)
                written.append("inner")
            interrupt.check()  # still inside the outer block: held
            written.append("outer")
        written.append("never")
    assert written == ["inner", "outer"]
    with interrupt.catching():
        with interrupt.deferred(until_check=True):  # held past its end, to the next check
            signal.raise_signal(signal.SIGINT)
        written.append("after")
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
    assert written[-1] == "after"


def test_deferred_outside_a_sweep_guards_its_block_and_restores_the_handler() -> None:
    written = []
    with pytest.raises(KeyboardInterrupt), interrupt.deferred():
        signal.raise_signal(signal.SIGINT)
        written.append("whole")
    assert written == ["whole"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_process_started_with_sigint_ignored_keeps_ignoring_it() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with interrupt.catching():
        signal.raise_signal(signal.SIGINT)
        interrupt.check()
        assert not interrupt.pressed()
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
