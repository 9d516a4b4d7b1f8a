"""Bounded waits: every wait of a test ends, with a message naming what it waited for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["DEFAULT_TIMEOUT", "CatchingThread", "call_within", "wait_until"]

DEFAULT_TIMEOUT = 10.0
"""Seconds any helper waits at most: far more than loopback I/O needs, short enough
that a hung server fails its test with a message instead of hanging the run."""

# The first pause of a poll is short, so a condition that holds almost at once
# costs about a millisecond; the cap keeps a long wait from spinning a core.
_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.05


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Poll `predicate` until it returns true; fail after `timeout` seconds.

    The pause between polls starts at a millisecond and doubles up to 50 ms, so a
    condition that comes true at once costs almost nothing. `what` completes the
    message of the `AssertionError` raised on timeout::

        >>> wait_until(lambda: True, "nothing")
        >>> wait_until(lambda: False, "the moon to turn blue", timeout=0.01)
        Traceback (most recent call last):
        ...
        AssertionError: timed out after 0.01s waiting for the moon to turn blue
    """
    deadline = time.monotonic() + timeout
    pause = _FIRST_PAUSE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)


class CatchingThread(threading.Thread):
    """A thread that keeps what its target raised, for the thread that waits for it."""

    def __init__(self, target: Callable[[], object], name: str, *, daemon: bool = False) -> None:
        super().__init__(name=name, daemon=daemon)
        self._target_fn = target
        self.error: BaseException | None = None
        """What the target raised, once it has."""

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as error:  # raised again by the waiting thread
            self.error = error

    def raise_error(self) -> None:
        """Raise what the target raised, if it did."""
        if self.error is not None:
            raise self.error


def call_within(fn: Callable[[], object], timeout: float, what: str) -> None:
    """Call `fn` in a helper thread and wait at most `timeout` seconds for it to
    return; re-raise what it raised, or fail naming `what` if it is still running.

    For calls that can block without a bound of their own (``shutdown()`` of a
    server whose loop is stuck): the helper thread is a daemon, so one that never
    returns does not keep the interpreter from exiting.
    """
    thread = CatchingThread(fn, f"composerv-testing: {what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"{what} did not return within {timeout}s")
    thread.raise_error()
