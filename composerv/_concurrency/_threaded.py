"""`threaded()`: a thread per request, kept a moment for the next one."""

from __future__ import annotations

import contextvars
import itertools
import queue
import threading
from collections.abc import Callable

import attrs

from .._limits import DrainReport
from .._runtime import Deadline, Evictions, InProcessJobs, Job, Scheduler, drain_requests
from .._validate import flag, non_negative_number
from ._base import BlockingConcurrency

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

    def __init__(
        self,
        request_ended: Callable[[], None],
        *,
        daemon: bool,
        block_on_close: bool,
        keep_idle: float = 0.0,
    ) -> None:
        self.daemon = daemon
        self.block_on_close = block_on_close
        self.keep_idle = keep_idle
        self._jobs = InProcessJobs(request_ended)
        self._live: set[threading.Thread] = set()
        self._lock = threading.Lock()
        # Requests handed to idle threads; None tells one to end.
        self._handed: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._idle = 0
        self._closed = False

    def submit(self, job: Job) -> None:
        # Tracked from here, not from when the thread starts, so that
        # max_connections counts a request whose thread has not started yet.
        self._jobs.add(job)
        try:
            self._start(job)
        except BaseException:
            self._jobs.discard(job)
            raise

    def _start(self, job: Job) -> None:
        with self._lock:
            if self._idle:
                # Put under the lock: an idle thread that times out and finds its
                # place taken (see `_next`) knows the request is already queued.
                self._idle -= 1
                self._handed.put(job)
                return
            thread = threading.Thread(
                target=self._run,
                args=(job,),
                name=f"composerv-request-{next(_thread_numbers)}",
                daemon=self.daemon,
            )
            self._live.add(thread)
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._live.discard(thread)
            raise

    def _run(self, job: Job) -> None:
        next_job: Job | None = job
        try:
            while next_job is not None:
                finished = False
                try:
                    contextvars.Context().run(next_job.run)
                    finished = True
                finally:
                    self._jobs.discard(next_job)
                    next_job = self._next(wait=finished)
        finally:
            with self._lock:
                self._live.discard(threading.current_thread())

    def _next(self, *, wait: bool) -> Job | None:
        """After a request: the next one handed to this thread, or None to end it."""
        with self._lock:
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

    def make_room(self, evictions: Evictions) -> bool:
        return self._jobs.make_room(evictions)

    def drain(self, deadline: Deadline) -> DrainReport:
        return drain_requests(self._jobs, deadline)

    @property
    def waits_on_close(self) -> bool:
        """Whether closing the server drains its requests: `block_on_close`, for
        threads that are not daemons."""
        return self.block_on_close and not self.daemon

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
        return len(self._jobs)


@attrs.frozen
class Threaded(BlockingConcurrency):
    """A thread per request; build it with `threaded`."""

    daemon: bool = attrs.field(default=False, validator=flag)
    """Daemon threads do not keep the process alive and are not waited for on close."""
    block_on_close: bool = attrs.field(default=True, validator=flag)
    """Whether closing the server waits for its (non-daemon) request threads."""
    keep_idle: float = attrs.field(default=DEFAULT_KEEP_IDLE, validator=non_negative_number)
    """Seconds a thread whose request is done waits to serve another before it ends."""

    def scheduler(self, request_ended: Callable[[], None]) -> Scheduler:
        return ThreadScheduler(
            request_ended,
            daemon=self.daemon,
            block_on_close=self.block_on_close,
            keep_idle=self.keep_idle,
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
