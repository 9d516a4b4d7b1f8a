"""`threaded()`: a thread per request, kept a moment for the next one."""

from __future__ import annotations

import contextvars
import itertools
import queue
import threading

import attrs

from .._validate import flag, non_negative_number
from ._base import BlockingConcurrency, Scheduler, Work

__all__ = ["DEFAULT_KEEP_IDLE", "ThreadScheduler", "Threaded", "threaded"]

_thread_numbers = itertools.count(1)

DEFAULT_KEEP_IDLE = 1.0
"""Seconds a request thread waits for another request before it ends.

Starting a thread costs more than serving a short request (about 180 us of CPU
per datagram under ThreadingUDPServer, against 15 us for the whole request in one
thread); a second is long enough to bridge the gaps of a busy server, and short
enough that a quiet server soon holds no idle thread."""


class ThreadScheduler:
    """Runs each request at once in a thread of its own, never queued behind another.

    A thread whose request is done waits `keep_idle` seconds for the next one
    before it ends (0: it ends at once, as under socketserver). Only live threads
    are tracked (unlike bpo-37193). Each request runs in a fresh `contextvars`
    context, as in a new thread; `threading.local` values a handler leaves behind
    may be seen by a later request on the same thread.
    """

    def __init__(self, *, daemon: bool, block_on_close: bool, keep_idle: float = 0.0) -> None:
        self.daemon = daemon
        self.block_on_close = block_on_close
        self.keep_idle = keep_idle
        self._live: set[threading.Thread] = set()
        self._lock = threading.Lock()
        # Requests handed to idle threads; None tells one to end.
        self._handed: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._idle = 0
        self._busy = 0
        self._closed = False

    def submit(self, work: Work, release_in_parent: Work) -> None:
        with self._lock:
            self._busy += 1
            if self._idle:
                # Put under the lock: an idle thread that times out and finds its
                # place taken (see `_next`) knows the request is already queued.
                self._idle -= 1
                self._handed.put(work)
                return
            thread = threading.Thread(
                target=self._run,
                args=(work,),
                name=f"composerv-request-{next(_thread_numbers)}",
                daemon=self.daemon,
            )
            self._live.add(thread)
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._live.discard(thread)
                self._busy -= 1
            raise

    def _run(self, work: Work) -> None:
        next_work: Work | None = work
        try:
            while next_work is not None:
                finished = False
                try:
                    contextvars.Context().run(next_work)
                    finished = True
                finally:
                    next_work = self._next(wait=finished)
        finally:
            with self._lock:
                self._live.discard(threading.current_thread())

    def _next(self, *, wait: bool) -> Work | None:
        """After a request: the next one handed to this thread, or None to end it."""
        with self._lock:
            # In one step, so that a request seen ended finds this thread idle.
            self._busy -= 1
            if not wait or self._closed or self.keep_idle <= 0:
                return None
            self._idle += 1
        try:
            return self._handed.get(timeout=self.keep_idle)
        except queue.Empty:
            with self._lock:
                if self._idle:
                    self._idle -= 1
                    return None
            # Every idle place was taken while this one timed out, this one's too:
            # a request (or an end) is in the queue for it.
            return self._handed.get()

    def service_actions(self) -> None:
        """Finished threads remove themselves; nothing to do."""

    def close(self) -> None:
        """End idle threads; join every live one if `block_on_close` and not daemons."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, 0
        for _ in range(idle):
            self._handed.put(None)
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
            return self._busy


@attrs.frozen
class Threaded(BlockingConcurrency):
    """A thread per request; build it with `threaded`."""

    daemon: bool = attrs.field(default=False, validator=flag)
    """Daemon threads do not keep the process alive and are not waited for on close."""
    block_on_close: bool = attrs.field(default=True, validator=flag)
    """Whether closing the server waits for its (non-daemon) request threads."""
    keep_idle: float = attrs.field(default=DEFAULT_KEEP_IDLE, validator=non_negative_number)
    """Seconds a thread whose request is done waits to serve another before it ends."""

    def scheduler(self) -> Scheduler:
        return ThreadScheduler(
            daemon=self.daemon, block_on_close=self.block_on_close, keep_idle=self.keep_idle
        )


def threaded(
    *, daemon: bool = False, block_on_close: bool = True, keep_idle: float = DEFAULT_KEEP_IDLE
) -> Threaded:
    """Serve each request at once in a thread of its own.

    Every request gets a thread as soon as it arrives, however many run. A thread
    whose request is done waits up to `keep_idle` seconds to serve the next one
    instead of ending, which saves a thread start per request on a busy server
    (``keep_idle=0``: a new thread for every request, as socketserver's
    ThreadingMixIn does). Each request runs in a fresh `contextvars` context.

    By default closing the server waits until every request thread has finished,
    so no thread outlives the server. With ``daemon=True`` threads are not waited
    for and die with the process.
    """
    return Threaded(daemon=daemon, block_on_close=block_on_close, keep_idle=keep_idle)
