"""The drain, written once: close what is idle, let the rest finish, cut what is left.

Every runtime family drains with `drain_requests`; what differs is only how its
requests are found, asked to finish and cut, which a `DrainTarget` supplies:
requests in this process's threads (`InProcessJobs`), child processes, an event
loop's connections, worker processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from .._limits import DrainReport
from .._log import logger
from ._contract import Deadline, Job
from ._evict import Evictions

__all__ = ["CUT_GRACE", "DRAIN_SLICE", "DrainTarget", "InProcessJobs", "drain_requests"]

DRAIN_SLICE = 0.05
"""The longest a drain waits at a time before looking at its deadline again, so a
deadline brought forward (a second stop request) takes effect at once."""

GIL_YIELD = 0.001
"""How long a drain sleeps before it looks at which connections are idle: long
enough for threads waiting for the GIL with a read just returned to run."""

CUT_GRACE = 2.0
"""After a drain cuts requests, how long their handlers get to notice and return
before the drain stops waiting for them (they are blocked on a connection that now
reports an error, so they normally return within milliseconds)."""


class DrainTarget(Protocol):
    """The requests of one runtime, as a drain sees them."""

    def begin(self) -> None:
        """Ask every request in flight to finish: close those waiting for a new
        request; requests that arrive from now on are asked as they come."""

    def __len__(self) -> int:
        """How many requests are still in flight."""
        ...

    def wait(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for requests to finish (or make progress)."""

    def cut(self) -> None:
        """Force every request still in flight to end."""

    def settle(self, timeout: float) -> bool:
        """After `cut`: wait up to `timeout` seconds for the cut requests to be gone;
        whether they are."""
        ...

    def tally(self) -> DrainReport:
        """What happened to the requests in flight since `begin`, and to those that
        arrived since."""
        ...


def drain_requests(target: DrainTarget, deadline: Deadline) -> DrainReport:
    """Drain `target` by `deadline`: ask each request to finish (idle ones close at
    once), wait for the rest, then cut what is left; the report of it."""
    target.begin()
    while len(target) and not deadline.expired:
        target.wait(min(deadline.remaining(), DRAIN_SLICE))
    if len(target):
        target.cut()
        if not target.settle(CUT_GRACE):
            logger.warning(
                "%d request(s) still running %.1fs after being cut; not waiting for them",
                len(target),
                CUT_GRACE,
            )
    return target.tally()


class InProcessJobs:
    """The requests this process serves right now, inline or in threads, from the
    moment they are submitted until they are released.

    `add` and `discard` take no lock unless a drain is on: a set's add and discard
    are atomic under the GIL, and each writes its own field before it reads the
    drain's (the drain does the same the other way round, under the lock), so one of
    the two sides always sees the other. Two lock round trips were about a twentieth
    of what serving a small datagram costs.
    """

    __slots__ = (
        "_changed",
        "_cut",
        "_drained",
        "_draining",
        "_ended",
        "_jobs",
        "_lock",
        "_waiters",
    )

    def __init__(self, ended: Callable[[], None]) -> None:
        self._jobs: set[Job] = set()
        self._ended = ended
        self._lock = threading.Lock()
        # Notified only while a drain waits, which is rare.
        self._changed = threading.Condition(self._lock)
        self._waiters = 0
        self._draining = False
        self._drained: set[Job] = set()
        self._cut: set[Job] = set()

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, job: Job) -> None:
        """Track `job` from now until `discard`; drained at once if a drain is on."""
        self._jobs.add(job)
        if self._draining:
            with self._lock:
                self._drained.add(job)
            job.drain()

    def discard(self, job: Job) -> None:
        """`job` has been released."""
        self._jobs.discard(job)
        if self._waiters:
            with self._lock:
                self._changed.notify_all()
        self._ended()

    def make_room(self, evictions: Evictions) -> bool:
        """Evict the job whose connection has waited longest for a new request (see
        `Evictions`); whether one was."""
        # list() of a set runs in C, under the GIL: no thread adds or discards meanwhile.
        return evictions.evict_longest_idle(list(self._jobs))

    def run(self, job: Job) -> None:
        """Run `job` here, tracked while it runs (for inline schedulers)."""
        self.add(job)
        try:
            job.run()
        finally:
            self.discard(job)

    def begin(self) -> None:
        with self._lock:
            self._draining = True
            self._drained |= self._jobs
            jobs = list(self._jobs)
        if jobs:
            # A handler whose read has just returned a request's first bytes may
            # still wait for the GIL before it marks itself busy: let it run first,
            # or the drain would take its connection for idle and close it mid-request.
            time.sleep(GIL_YIELD)
        for job in jobs:
            job.drain()

    def wait(self, timeout: float) -> None:
        with self._lock:
            # Counted as waiting before looking, so that a request ending after the
            # look sees the count and notifies (see `discard`).
            self._waiters += 1
            try:
                if self._jobs:
                    self._changed.wait(timeout)
            finally:
                self._waiters -= 1

    def cut(self) -> None:
        with self._lock:
            self._cut = set(self._jobs)
        for job in self._cut:
            job.cut()

    def settle(self, timeout: float) -> bool:
        deadline = Deadline.after(timeout)
        while len(self) and not deadline.expired:
            self.wait(min(deadline.remaining(), DRAIN_SLICE))
        return not len(self)

    def tally(self) -> DrainReport:
        with self._lock:
            drained = set(self._drained)
            cut = len(self._cut & drained)
        closed_idle = sum(1 for job in drained - self._cut if job.closed_idle)
        return DrainReport(
            finished=len(drained) - closed_idle - cut, closed_idle=closed_idle, cut=cut
        )
