"""`threaded()`: a new thread per request."""

from __future__ import annotations

import itertools
import threading

import attrs

from .._validate import flag
from ._base import BlockingConcurrency, Scheduler, Work

__all__ = ["ThreadScheduler", "Threaded", "threaded"]

_thread_numbers = itertools.count(1)


class ThreadScheduler:
    """Starts a thread per request and tracks only the live ones (unlike bpo-37193)."""

    def __init__(self, *, daemon: bool, block_on_close: bool) -> None:
        self.daemon = daemon
        self.block_on_close = block_on_close
        self._live: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def submit(self, work: Work, release_in_parent: Work) -> None:
        thread = threading.Thread(
            target=self._run,
            args=(work,),
            name=f"composerv-request-{next(_thread_numbers)}",
            daemon=self.daemon,
        )
        with self._lock:
            self._live.add(thread)
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._live.discard(thread)
            raise

    def _run(self, work: Work) -> None:
        try:
            work()
        finally:
            with self._lock:
                self._live.discard(threading.current_thread())

    def service_actions(self) -> None:
        """Finished threads remove themselves; nothing to do."""

    def close(self) -> None:
        """Join every live thread if `block_on_close` and the threads are not daemons."""
        if self.daemon or not self.block_on_close:
            return
        while True:
            with self._lock:
                running = [t for t in self._live if t is not threading.current_thread()]
            if not running:
                return
            for thread in running:
                thread.join()

    def __len__(self) -> int:
        with self._lock:
            return len(self._live)


@attrs.frozen
class Threaded(BlockingConcurrency):
    """A thread per request; build it with `threaded`."""

    daemon: bool = attrs.field(default=False, validator=flag)
    """Daemon threads do not keep the process alive and are not waited for on close."""
    block_on_close: bool = attrs.field(default=True, validator=flag)
    """Whether closing the server waits for its (non-daemon) request threads."""

    def scheduler(self) -> Scheduler:
        return ThreadScheduler(daemon=self.daemon, block_on_close=self.block_on_close)


def threaded(*, daemon: bool = False, block_on_close: bool = True) -> Threaded:
    """Serve each request in a new thread.

    By default closing the server waits until every request thread has finished,
    so no thread outlives the server. With ``daemon=True`` threads are not waited
    for and die with the process.
    """
    return Threaded(daemon=daemon, block_on_close=block_on_close)
