"""`pooled()`: a bounded pool of worker threads, started once and reused."""

from __future__ import annotations

import itertools
import queue
import threading
from typing import Literal

import attrs

from .._errors import ComposervError, ConfigurationError
from .._validate import positive_int
from ._base import BlockingConcurrency, Scheduler, Work

__all__ = ["PoolFullError", "PoolScheduler", "Pooled", "pooled"]

_pool_numbers = itertools.count(1)


class PoolFullError(ComposervError, RuntimeError):
    """A request was refused because every worker was busy and the queue was full."""


class PoolScheduler:
    """Hands requests to at most `workers` threads through a queue of at most `queue_size`.

    Threads start on demand, up to `workers`, and then live as long as the server,
    so no request pays for a thread start. A `threading.SimpleQueue` (a C queue
    with no Python-level locking) carries the work, and a semaphore bounds it.
    """

    def __init__(self, *, workers: int, queue_size: int, when_full: str) -> None:
        self.workers = workers
        self.when_full = when_full
        self._work: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._slots = threading.Semaphore(workers + queue_size)
        self._lock = threading.Lock()
        self._active = 0
        self._threads: list[threading.Thread] = []
        self._name = f"composerv-pool-{next(_pool_numbers)}"

    def submit(self, work: Work, release_in_parent: Work) -> None:
        if not self._slots.acquire(blocking=self.when_full == "wait"):
            raise PoolFullError(
                f"refused a request: all {self.workers} workers are busy and the queue is "
                "full; raise workers or queue, or use when_full='wait'"
            )
        with self._lock:
            self._active += 1
            # Each thread serves one request at a time: a new one is needed only when
            # there is more work than threads.
            start = self._active > len(self._threads) and len(self._threads) < self.workers
            if start:
                thread = threading.Thread(
                    target=self._worker,
                    name=f"{self._name}-worker-{len(self._threads) + 1}",
                    daemon=True,
                )
                self._threads.append(thread)
        if start:
            thread.start()
        self._work.put(work)

    def _worker(self) -> None:
        while (work := self._work.get()) is not None:
            try:
                work()
            finally:
                with self._lock:
                    self._active -= 1
                self._slots.release()

    def service_actions(self) -> None:
        """Workers run until the pool closes; nothing to tidy."""

    def close(self) -> None:
        """Let the workers finish the requests already taken, then join them."""
        with self._lock:
            threads = list(self._threads)
            self._threads.clear()
        for _ in threads:
            self._work.put(None)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join()

    def __len__(self) -> int:
        with self._lock:
            return self._active


def _when_full(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if value not in ("wait", "reject"):
        raise ConfigurationError(f"{attribute.name} must be 'wait' or 'reject', not {value!r}")


@attrs.frozen
class Pooled(BlockingConcurrency):
    """A bounded pool of reusable worker threads; build it with `pooled`."""

    workers: int = attrs.field(default=64, validator=positive_int)
    """At most this many requests are served at once, each in its own worker thread."""
    queue: int = attrs.field(default=64, validator=positive_int)
    """At most this many accepted requests wait for a worker."""
    when_full: Literal["wait", "reject"] = attrs.field(default="wait", validator=_when_full)
    """With every worker busy and the queue full: ``"wait"`` stops taking requests
    until a worker is free, ``"reject"`` closes (or drops) each new request and logs it."""

    def scheduler(self) -> Scheduler:
        return PoolScheduler(workers=self.workers, queue_size=self.queue, when_full=self.when_full)


def pooled(
    *, workers: int = 64, queue: int = 64, when_full: Literal["wait", "reject"] = "wait"
) -> Pooled:
    """Serve requests on a pool of at most `workers` threads, reused from request to request.

    Backpressure: up to `queue` accepted requests wait for a free worker. Beyond
    that, by default (``when_full="wait"``) the server stops accepting until a
    worker is free, so new connections wait in the kernel's listen backlog and
    datagrams in the socket's receive buffer (the kernel drops them when it is
    full). With ``when_full="reject"`` each request over the limit is closed or
    dropped at once and logged. A stream handler holds its worker for the whole
    connection: size `workers` for the connections you expect at once.

    While the loop waits for a free worker, `Server.shutdown` waits with it: with
    handlers that call ``shutdown()`` themselves, use ``when_full="reject"``.
    """
    return Pooled(workers=workers, queue=queue, when_full=when_full)
