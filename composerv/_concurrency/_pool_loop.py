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
from typing import TYPE_CHECKING, Any

from .._server._lifecycle import RequestLifecycle, ServeLoop, new_selector, take_request

if TYPE_CHECKING:
    from ._pooled import PoolScheduler

__all__ = ["TAKEOVER_AFTER", "PoolLoop"]

TAKEOVER_AFTER = 0.005
"""Seconds a leader may spend on one request before another worker takes over receiving.

Short enough that a blocking handler delays the next request by a few milliseconds
at most, long enough that the watching thread wakes only 200 times a second."""


class _Run:
    """The shared state of one `serve_forever` call; workers of a finished run leave."""

    __slots__ = (
        "handling",
        "idle",
        "leader",
        "over",
        "poll_interval",
        "selecting",
        "selector",
        "served",
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
        self.selecting = False
        """Whether the leader is waiting on the selector (which closes with the run)."""
        self.handling = False
        """Whether the leader is serving a request rather than waiting for one."""
        self.served = 0
        """Requests the leaders began, so the watcher can tell one that takes too long."""
        self.idle = 0
        """Workers waiting to become the leader."""
        self.workers = 0
        """Workers started for this run and not yet gone."""
        self.over = False


class PoolLoop(ServeLoop):
    """`ServeLoop` run by the pool's workers in turn instead of by one thread."""

    def __init__(
        self,
        lifecycle: RequestLifecycle[Any],
        pool: PoolScheduler,
        has_capacity: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(lifecycle, has_capacity)
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
        last_served = -1
        next_housekeeping = time.monotonic() + run.poll_interval
        while not self._stop_requested:
            # A plain sleep: waking from an Event's timed wait cost the serving
            # worker a quarter of its datagrams/s (more GIL hand-offs per wake-up).
            # A stop is seen within TAKEOVER_AFTER.
            time.sleep(TAKEOVER_AFTER)
            with run.turns:
                if run.handling and run.served == last_served:
                    self._hand_on(run)
                last_served = run.served
            if time.monotonic() >= next_housekeeping:
                next_housekeeping = time.monotonic() + run.poll_interval
                self._lifecycle.service_actions()

    def _hand_on(self, run: _Run) -> None:
        """Free the leadership for a waiting worker, or a new one while there is room;
        the caller holds ``run.turns``."""
        run.leader = None
        run.handling = False
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
        with run.turns:
            try:
                while self._lead(run, me):
                    taken = self._receive(run)
                    if taken is not None:
                        self._serve(run, me, taken)
            finally:
                if run.leader is me:
                    run.leader = None
                run.workers -= 1

    def _lead(self, run: _Run, me: threading.Thread) -> bool:
        """Wait until `me` may lead; False once the run is over. Holds ``run.turns``."""
        while run.leader not in (None, me) and not run.over:
            run.idle += 1
            run.turns.wait()
            run.idle -= 1
        if run.over or self._stop_requested:
            return False
        run.leader = me
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

    def _serve(self, run: _Run, me: threading.Thread, taken: tuple[Any, Any]) -> None:
        """Serve a request `me` took; entered and left holding ``run.turns``."""
        run.served += 1
        run.handling = True
        run.turns.release()
        try:
            self.process_taken(*taken)
        finally:
            run.turns.acquire()
            if run.leader is me:
                run.handling = False
