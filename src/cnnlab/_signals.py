"""Holding Ctrl-C and SIGTERM while a block runs that a signal must not cut in half.

A leaf module: it imports nothing from cnnlab.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def signals_held(signals: tuple[int, ...] = STOP_SIGNALS,
                 on_caught: Callable[[int], None] | None = None) -> Iterator[None]:
    """Hold ``signals`` while the block runs and deliver the first one caught once it is done, to whatever
    handler is in place then; ``on_caught(signum)`` is called as soon as one arrives (what must not wait for
    the block's end). A signal that was ignored (a background job's Ctrl-C) stays ignored; outside the main
    thread (where handlers cannot be set) the block simply runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum, frame) -> None:
        caught.append(signum)
        if on_caught is not None:
            on_caught(signum)

    previous = {s: signal.getsignal(s) for s in signals}
    for s, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(s, hold)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
    if caught:
        signal.raise_signal(caught[0])


def _children_unheard(signum, frame) -> None:
    pass


def stop_hearing_children():
    """Replace the SIGCHLD handler (torch's DataLoader sets one that raises when a worker dies) by one that does
    nothing, and return the handler replaced (None where the platform has no SIGCHLD or this is not the main
    thread, or where it was replaced already). Not by SIG_DFL: a SIGCHLD already received but not yet handled
    would then make Python raise "OSError: Signal 17 ignored due to race condition" at the next bytecode."""
    if not hasattr(signal, "SIGCHLD") or threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.signal(signal.SIGCHLD, _children_unheard)
    return None if previous is _children_unheard else previous
