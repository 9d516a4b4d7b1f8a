"""`pooled()`: a bounded pool of worker threads, started once and reused."""

from __future__ import annotations

import functools
import itertools
import queue
import threading
from collections.abc import Callable
from typing import Any, Literal

import attrs

from .._errors import ConfigurationError, PoolFullError
from .._limits import DrainReport
from .._runtime import (
    EVICTION_RETRY,
    BlockingRuntime,
    Deadline,
    Evictions,
    InProcessJobs,
    Job,
    ListenerGate,
    Runtime,
    Scheduler,
    ServeLoop,
    Service,
    drain_requests,
)
from .._validate import positive_int
from ._base import BlockingConcurrency
from ._pool_loop import PoolLoop

__all__ = ["PoolScheduler", "Pooled", "pooled"]

_pool_numbers = itertools.count(1)

# Which pool, if any, the current thread belongs to as a receiving worker.
_receiving = threading.local()


class PoolScheduler:
    """Runs requests on at most `workers` threads, which start on demand and are reused.

    Under the pool's own datagram loop (`PoolLoop`) the worker that receives a
    request serves it itself, so `submit` runs it inline. Called from any other
    thread (the server's loop for connections, `handle_request`), `submit` hands
    it over through a `threading.SimpleQueue` (a C queue with no Python-level
    locking) bounded by a semaphore to `queue_size` waiting requests.
    """

    def __init__(
        self,
        request_ended: Callable[[], None],
        *,
        workers: int,
        queue_size: int,
        when_full: str,
        evict_idle: bool = False,
    ) -> None:
        self.workers = workers
        self.when_full = when_full
        self._evictions = Evictions(f"workers={workers}") if evict_idle else None
        self._jobs = InProcessJobs(request_ended)
        self._work: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._capacity = workers + queue_size
        self._lock = threading.Lock()
        # Waited on only while the pool is full: a threading.Semaphore would run
        # its Python-level condition on every request.
        self._room = threading.Condition(self._lock)
        self._waiting_for_room = 0
        self._active = 0
        self._threads: list[threading.Thread] = []
        self._receivers: list[threading.Thread] = []
        self._name = f"composerv-pool-{next(_pool_numbers)}"

    def start_receiver(self, target: Callable[[], None]) -> None:
        """Start a worker that receives requests itself (for `PoolLoop`); `close` joins it."""
        with self._lock:
            self._receivers = [t for t in self._receivers if t.is_alive()]
            thread = threading.Thread(
                target=self._receive,
                args=(target,),
                name=f"{self._name}-worker-{len(self._receivers) + 1}",
                daemon=True,
            )
            self._receivers.append(thread)
        thread.start()

    def _receive(self, target: Callable[[], None]) -> None:
        _receiving.pool = self
        target()

    def submit(self, job: Job) -> None:
        if getattr(_receiving, "pool", None) is self:
            self._jobs.run(job)
            return
        with self._lock:
            while self._active >= self._capacity:
                if self.when_full != "wait":
                    raise PoolFullError(
                        f"refused a request: all {self.workers} workers are busy and the "
                        "queue is full; raise workers or queue, or use when_full='wait'"
                    )
                self._waiting_for_room += 1
                try:
                    if self._evictions is None:
                        self._room.wait()
                    elif not self._room.wait(EVICTION_RETRY):
                        # Those it saw had waited too little may have waited enough since.
                        self._make_room_for_the_queued()
                finally:
                    self._waiting_for_room -= 1
            self._active += 1
            waits = self._active > self.workers
            # Each thread serves one request at a time: a new one is needed only when
            # there is more work than threads.
            thread = None
            if self._active > len(self._threads) and len(self._threads) < self.workers:
                thread = threading.Thread(
                    target=self._worker,
                    name=f"{self._name}-worker-{len(self._threads) + 1}",
                    daemon=True,
                )
                self._threads.append(thread)
        self._jobs.add(job)
        if thread is not None:
            thread.start()
        self._work.put(job)
        if waits:
            # One for this request: connections evicted for those queued just before
            # it may not have freed their workers yet.
            self._make_room_for_the_queued(at_most=1)

    def _worker(self) -> None:
        while (job := self._work.get()) is not None:
            try:
                job.run()
            finally:
                self._jobs.discard(job)
                with self._lock:
                    self._active -= 1
                    if self._waiting_for_room:
                        self._room.notify()

    def service_actions(self) -> None:
        """A request still queued for a worker may evict one now (see `submit`):
        the connections it could evict may have waited too little when it came."""
        if self._active > self.workers:
            self._make_room_for_the_queued()

    def _make_room_for_the_queued(self, at_most: int | None = None) -> None:
        # Every worker holds a connection: each one that only waits for its client
        # makes room for a request queued (up to `at_most`), which would otherwise
        # wait for it.
        if self._evictions is None:
            return
        queued = self._active - self.workers
        for _ in range(queued if at_most is None else min(at_most, queued)):
            if not self._jobs.make_room(self._evictions):
                return

    def make_room(self, evictions: Evictions) -> bool:
        return self._jobs.make_room(evictions)

    def drain(self, deadline: Deadline) -> DrainReport:
        return drain_requests(self._jobs, deadline)

    @property
    def waits_on_close(self) -> bool:
        """Closing the server drains its requests, then joins the workers."""
        return True

    def close(self) -> None:
        """Let the workers finish the requests already taken, then join them."""
        with self._lock:
            threads = list(self._threads)
            self._threads.clear()
            receivers = list(self._receivers)
            self._receivers.clear()
        for _ in threads:
            self._work.put(None)
        # Receivers leave once their loop has stopped, after the request in hand.
        for thread in threads + receivers:
            if thread is not threading.current_thread():
                thread.join()

    def __len__(self) -> int:
        return len(self._jobs)


def _when_full(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ("wait", "reject"):
        raise ConfigurationError(f"{attribute.name} must be 'wait' or 'reject', not {value!r}")


@attrs.frozen
class Pooled(BlockingConcurrency):
    """A bounded pool of reusable worker threads; build it with `pooled`."""

    workers: int = attrs.field(default=64, validator=positive_int)
    """At most this many requests are served at once, each in its own worker thread."""
    queue: int = attrs.field(default=64, validator=positive_int)
    """At most this many requests handed over to the workers wait for one (connections;
    datagrams too with ``when_full="reject"``)."""
    when_full: Literal["wait", "reject"] = attrs.field(default="wait", validator=_when_full)
    """With every worker busy: ``"wait"`` takes no new request until a worker is
    free, ``"reject"`` closes (or drops) each new request over `queue` and logs it."""

    def scheduler(
        self, request_ended: Callable[[], None], *, evict_idle: bool = False
    ) -> Scheduler:
        """The pool's scheduler; with `evict_idle`, a connection that must wait for a
        worker evicts the longest-idle connection holding one (see `Limits.evict_idle`)."""
        return PoolScheduler(
            request_ended,
            workers=self.workers,
            queue_size=self.queue,
            when_full=self.when_full,
            evict_idle=evict_idle,
        )

    def build(self, service: Service[Any]) -> Runtime:
        if service.transport.kind != "datagram" or self.when_full == "reject":
            # A connection holds its worker until it closes, so a hand-off per
            # connection is cheap next to it (and measured 10% faster than passing
            # the receiving role on); only a loop that receives on behalf of the
            # workers can refuse requests.
            evict = service.limits.evict_idle and service.transport.kind == "stream"
            return BlockingRuntime(service, functools.partial(self.scheduler, evict_idle=evict))
        return BlockingRuntime(service, self.scheduler, _pool_loop)


def _pool_loop(runtime: BlockingRuntime, gate: ListenerGate, scheduler: Scheduler) -> ServeLoop:
    assert isinstance(scheduler, PoolScheduler)  # made by Pooled.scheduler
    return PoolLoop(runtime, scheduler, gate)


def pooled(
    *, workers: int = 64, queue: int = 64, when_full: Literal["wait", "reject"] = "wait"
) -> Pooled:
    """Serve requests on a pool of at most `workers` threads, reused from request to request.

    Connections: the server's thread accepts and hands each connection to a
    worker, which holds it until it closes (size `workers` for the connections
    you expect at once); up to `queue` accepted connections wait for a worker.
    Datagrams: the workers receive them themselves, one at a time waiting on
    the socket and serving what it gets, so a quick datagram costs no hand-off
    between threads; when a handler takes longer than a few milliseconds,
    another worker takes over receiving, so up to `workers` run at once.

    Backpressure, by default (``when_full="wait"``): with every worker busy (and,
    for connections, the queue full) no new request is taken, so connections
    wait in the kernel's listen backlog and datagrams in the socket's receive
    buffer (the kernel drops them when it is full). With ``when_full="reject"``
    the server's thread takes every request and hands it over; each one beyond
    `queue` waiting is closed or dropped at once and logged (`PoolFullError`).

    While the loop waits for a free worker, `Server.shutdown` waits with it: with
    handlers that call ``shutdown()`` themselves, use ``when_full="reject"``.
    """
    return Pooled(workers=workers, queue=queue, when_full=when_full)
