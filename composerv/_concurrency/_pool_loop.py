"""The datagram loop of `pooled()`: the workers take turns receiving, and serve what they get.

Handing each request from a receiving thread to a worker costs a GIL hand-off,
which for small requests costs more than serving them (a pool of 64 threads
behind one receiver served UDP echo at 15k datagrams/s against 39k for one thread
doing both). So the worker that receives a request serves it itself
(leader/follower): one worker at a time, the leader, waits for a request; while
it keeps serving quickly it stays the leader and no thread ever switches.

Only when the leader spends longer than `TAKEOVER_AFTER` on one datagram (its
handler blocks: a database, a disk) does another worker take over receiving, so
blocking handlers still overlap up to `workers` at a time, as in Go's scheduler,
which hands a thread's work to another once it blocks in a system call. The
thread that called `serve_forever` watches for that.

Stream transports do not use this loop: a connection holds its worker until it
closes, so `pooled()` hands each one over (see `Pooled.build`).
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from .._runtime import BATCH, ListenerGate, RequestLifecycle, ServeLoop, new_selector, take_request

__all__ = ["TAKEOVER_AFTER", "PoolLoop", "ReceivingPool"]

TAKEOVER_AFTER = 0.005
"""Seconds a leader may spend on one request before another worker takes over receiving.

Short enough that a blocking handler delays the next request by a few milliseconds
at most, long enough that the watching thread wakes only 200 times a second."""


class _Run:
    """The shared state of one `serve_forever` call; workers of a finished run leave."""

    __slots__ = (
        "idle",
        "leader",
        "leader_progress",
        "over",
        "poll_interval",
        "selecting",
        "selector",
        "turns",
        "wake_reader",
        "workers",
    )

    def __init__(
        self, selector: selectors.BaseSelector, wake_reader: socket.socket, poll_interval: float
    ) -> None:
        self.selector = selector
        self.wake_reader = wake_reader
        self.poll_interval = poll_interval
        self.turns = threading.Condition(threading.Lock())
        """Guards every field below; notified when the leadership is free or the run ends."""
        self.leader: threading.Thread | None = None
        self.leader_progress: _Progress | None = None
        """The leader's counts, so the watcher can tell a request that takes too long."""
        self.selecting = False
        """Whether the leader is waiting on the selector (which closes with the run)."""
        self.idle = 0
        """Workers waiting to become the leader."""
        self.workers = 0
        """Workers started for this run and not yet gone."""
        self.over = False


class _Progress:
    """How many requests one worker began and finished: written by that worker alone,
    without a lock, and read by the watcher."""

    __slots__ = ("finished", "started")

    def __init__(self) -> None:
        self.started = 0
        self.finished = 0


class ReceivingPool(Protocol):
    """The pool whose workers run the loop (`PoolScheduler`)."""

    @property
    def workers(self) -> int:
        """At most this many workers receive and serve at once."""
        ...

    def start_receiver(self, target: Callable[[], None]) -> None:
        """Start a worker that runs `target`, receiving requests itself."""


class PoolLoop(ServeLoop):
    """`ServeLoop` run by the pool's workers in turn instead of by one thread."""

    def __init__(
        self, lifecycle: RequestLifecycle[Any], pool: ReceivingPool, gate: ListenerGate
    ) -> None:
        super().__init__(lifecycle, gate)
        self._pool = pool

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve on the pool's workers until `shutdown`; this thread watches them."""
        with self.running_loop() as wake_reader, new_selector() as selector:
            selector.register(wake_reader, selectors.EVENT_READ)
            self._listening = False
            run = _Run(selector, wake_reader, poll_interval)
            with run.turns:
                self._start_worker(run)
            try:
                self._watch(run)
            finally:
                with run.turns:
                    run.over = True
                    run.turns.notify_all()
                    self.wake()
                    # Workers serving a request finish it, then leave without touching
                    # the selector; the one waiting on it must be out before it closes.
                    while run.selecting:
                        run.turns.wait()

    def _watch(self, run: _Run) -> None:
        """Hand the leadership on when the leader is stuck in a request; run housekeeping."""
        last_seen: tuple[_Progress | None, int] = (None, 0)
        next_housekeeping = time.monotonic() + run.poll_interval
        while not self._stop_requested:
            # A plain sleep: waking from an Event's timed wait cost the serving
            # worker a quarter of its datagrams/s (more GIL hand-offs per wake-up).
            # A stop is seen within TAKEOVER_AFTER.
            time.sleep(TAKEOVER_AFTER)
            with run.turns:
                progress = run.leader_progress
                if progress is not None:
                    seen = (progress, progress.started)
                    if progress.finished != progress.started and seen == last_seen:
                        self._hand_on(run)
                    last_seen = seen
            if time.monotonic() >= next_housekeeping:
                next_housekeeping = time.monotonic() + run.poll_interval
                self._lifecycle.service_actions()

    def _hand_on(self, run: _Run) -> None:
        """Free the leadership for a waiting worker, or a new one while there is room;
        the caller holds ``run.turns``."""
        run.leader = None
        run.leader_progress = None
        if run.idle:
            run.turns.notify()
        elif run.workers < self._pool.workers:
            self._start_worker(run)

    def _start_worker(self, run: _Run) -> None:
        """Start one more worker for `run`; the caller holds ``run.turns``."""
        run.workers += 1
        self._pool.start_receiver(lambda: self._work(run))

    def _work(self, run: _Run) -> None:
        """A worker: wait to lead, then receive and serve until another takes over."""
        me = threading.current_thread()
        progress = _Progress()
        with run.turns:
            try:
                while self._lead(run, me, progress):
                    taken = self._receive(run)
                    if taken is not None:
                        run.turns.release()
                        try:
                            self._serve(run, me, progress, taken)
                        finally:
                            run.turns.acquire()
            finally:
                if run.leader is me:
                    run.leader = None
                    run.leader_progress = None
                run.workers -= 1

    def _lead(self, run: _Run, me: threading.Thread, progress: _Progress) -> bool:
        """Wait until `me` may lead; False once the run is over. Holds ``run.turns``."""
        while run.leader not in (None, me) and not run.over:
            run.idle += 1
            run.turns.wait()
            run.idle -= 1
        if run.over or self._stop_requested:
            return False
        run.leader = me
        run.leader_progress = progress
        return True

    def _receive(self, run: _Run) -> tuple[Any, Any] | None:
        """As the leader, wait for a request and take it; entered and left holding
        ``run.turns``, released while waiting."""
        run.selecting = True
        run.turns.release()
        try:
            ready = self.wait_for_request(run.selector, run.wake_reader, run.poll_interval)
            return take_request(self._lifecycle) if ready and not run.over else None
        finally:
            run.turns.acquire()
            run.selecting = False
            if run.over:
                run.turns.notify_all()  # serve_forever waits for this

    def _serve(
        self, run: _Run, me: threading.Thread, progress: _Progress, taken: tuple[Any, Any]
    ) -> None:
        """Serve a request `me` took, then those ready after it (up to `BATCH`, taken
        without waiting) while `me` is still the leader. Runs without ``run.turns``:
        the counts in `progress` tell the watcher what it needs, and a leader that
        notices late that it was replaced only receives alongside the new one."""
        lifecycle = self._lifecycle
        gate = self.gate
        served = 0
        while True:
            progress.started += 1
            try:
                self.process_taken(*taken)
            finally:
                progress.finished += 1
            served += 1
            if (
                served == BATCH
                or run.leader is not me
                or run.over
                or self._stop_requested
                or (gate is not None and not gate.has_room())
            ):
                return
            next_taken = take_request(lifecycle)
            if next_taken is None:
                return
            taken = next_taken
