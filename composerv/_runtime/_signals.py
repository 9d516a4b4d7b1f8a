"""Signals for forked processes, taken by a thread instead of a Python signal handler.

CPython runs a Python-level signal handler on the main thread, between bytecodes.
In a child forked from another thread, 3.13.0 may never run it: a signal that
arrives while the child executes Python code (not blocked in a system call)
stays pending, and the child then blocks in recv() for good (measured: 4 of 8
request children missed a draining parent's SIGTERM). A thread blocked in
sigwait() with the signal blocked everywhere else gets it on every version.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable

__all__ = ["take_signals_in_a_thread"]


def take_signals_in_a_thread(
    signals: Iterable[int], callback: Callable[[int], object], name: str
) -> None:
    """Block `signals` in the calling thread (threads it starts later inherit that)
    and start a daemon thread that calls ``callback(signum)`` for each one that
    arrives, pending ones included, for the life of the process."""
    wanted = set(signals)
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)

    def take() -> None:
        while True:
            callback(signal.sigwait(wanted))

    threading.Thread(target=take, name=name, daemon=True).start()
