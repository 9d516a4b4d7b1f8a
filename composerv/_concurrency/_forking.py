"""`forking()`: a child process per request."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable

import attrs

from .._errors import ConfigurationError
from .._limits import DrainReport
from .._log import logger
from .._runtime import (
    Deadline,
    Evictions,
    Job,
    Scheduler,
    drain_requests,
    take_signals_in_a_thread,
)
from .._validate import flag, positive_int
from ._base import BlockingConcurrency

__all__ = ["ForkScheduler", "Forking", "forking"]

# How long to sleep between polls while waiting for a child to exit: short at first,
# since most requests are short, and capped so a long wait costs little CPU.
_FIRST_POLL = 0.001
_MAX_POLL = 0.05
# How long a child that has woken the loop may take to exit (it exits at once).
_EXITING = 0.02

# How a request child exits: served (or ended by its handler's error, logged in the
# child), or closed by a drain while it waited for a request.
_SERVED = 0
_FAILED = 1
_CLOSED_IDLE = 3


def _nothing_ended() -> None:
    """The classic mixin has no loop to wake when a child ends."""


class ForkScheduler:
    """Forks a child per request and reaps only its own children (never ``waitpid(-1)``).

    A draining parent sends SIGTERM to its children: a child waiting for a request
    closes its connection and exits, one serving a request finishes it. SIGTERM is
    blocked in the forking thread around the fork and stays blocked in the child,
    where a thread takes it (see `take_signals_in_a_thread`), so a child forked as a
    drain begins gets it too.
    """

    def __init__(
        self,
        request_ended: Callable[[], None] = _nothing_ended,
        *,
        max_children: int,
        block_on_close: bool,
    ) -> None:
        self.max_children = max_children
        self.block_on_close = block_on_close
        self.children: set[int] = set()
        self._request_ended = request_ended
        self._lock = threading.Lock()
        self._draining = False
        self._drained: set[int] = set()
        self._closed_idle = 0
        self._cut = 0

    def submit(self, job: Job) -> None:
        while len(self.children) >= self.max_children:
            self._wait_for_one()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            pid = os.fork()
            if pid == 0:
                self._serve_in_child(job)
            with self._lock:
                self.children.add(pid)
                if self._draining:
                    self._drained.add(pid)
                    # The child copied the flag if it forked after the drain began;
                    # if not, the signal tells it (a second one is harmless).
                    os.kill(pid, signal.SIGTERM)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        job.release_in_parent()

    def _serve_in_child(self, job: Job) -> None:
        """The body of a request child; never returns."""
        status = _FAILED
        try:
            job.enter_child()
            # SIGTERM is still blocked here, as around the fork: one already sent
            # waits for the thread that takes it.
            take_signals_in_a_thread(
                {signal.SIGTERM}, lambda _signum: job.drain(), "composerv-child-drain"
            )
            if self._draining:
                job.drain()
            job.run()
            status = _CLOSED_IDLE if job.closed_idle else _SERVED
        finally:
            with contextlib.suppress(BaseException):
                self._request_ended()
            os._exit(status)

    def service_actions(self) -> None:
        # A child wakes the loop just before it exits: at the cap, the loop waits the
        # moment it takes to exit, or it would stay at the cap until its next poll.
        if self.reap() >= self.max_children:
            self._wait_for_one(within=_EXITING)

    def reap(self) -> int:
        """Collect every finished child without waiting; return how many are left."""
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                self.children.discard(pid)  # reaped elsewhere (e.g. SIGCHLD ignored)
                continue
            if done:
                self._collected(pid, status)
        return len(self.children)

    def _collected(self, pid: int, status: int) -> None:
        self.children.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        if code == _CLOSED_IDLE and pid in self._drained:
            self._closed_idle += 1
        elif code not in (_SERVED, _CLOSED_IDLE):
            logger.debug("request child %d exited with status %#x", pid, status)

    def _wait_for_one(self, within: float | None = None) -> None:
        """Wait until a child has exited and is reaped (or `within` seconds pass)."""
        before = len(self.children)
        deadline = None if within is None else Deadline.after(within)
        pause = _FIRST_POLL
        while self.reap() >= before and not (deadline is not None and deadline.expired):
            time.sleep(pause)
            pause = min(pause * 2, _MAX_POLL)

    def wait_for_all(self) -> None:
        """Wait until every child has exited and reap it."""
        while self.children:
            self._wait_for_one()

    def make_room(self, evictions: Evictions) -> bool:
        """None: whether a child's connection waits for a request is known only in
        the child, so new clients wait in the backlog at the bound."""
        return False

    def drain(self, deadline: Deadline) -> DrainReport:
        return drain_requests(self, deadline)

    # The drain's view of the children (see `DrainTarget`).

    def begin(self) -> None:
        with self._lock:
            self._draining = True
            self.reap()
            self._drained |= self.children
            running = list(self.children)
        for pid in running:
            # ProcessLookupError: it exited after the reap above; waitpid collects it.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        # Children cannot notify this thread: poll for them.
        if self.reap():
            time.sleep(min(timeout, _MAX_POLL))
            self.reap()

    def cut(self) -> None:
        self.reap()
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            # ChildProcessError: reaped elsewhere (e.g. SIGCHLD ignored).
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self.children.discard(pid)
            self._cut += 1

    def settle(self, timeout: float) -> bool:
        return not self.reap()

    def tally(self) -> DrainReport:
        return DrainReport(
            finished=len(self._drained) - self._closed_idle - self._cut,
            closed_idle=self._closed_idle,
            cut=self._cut,
        )

    def close(self) -> None:
        """Wait for every child if `block_on_close`, else collect those already done."""
        if self.block_on_close:
            self.wait_for_all()
        else:
            self.reap()

    def __len__(self) -> int:
        return len(self.children)

    @property
    def waits_on_close(self) -> bool:
        """`block_on_close`: whether closing the server drains and waits for the children."""
        return self.block_on_close


@attrs.frozen
class Forking(BlockingConcurrency):
    """A child process per request; build it with `forking`."""

    max_children: int = attrs.field(default=40, validator=positive_int)
    """At most this many children at once; the server waits for one to exit beyond it."""
    block_on_close: bool = attrs.field(default=True, validator=flag)
    """Whether closing the server waits for its children to exit."""

    def __attrs_post_init__(self) -> None:
        if not hasattr(os, "fork"):
            raise ConfigurationError("forking() needs os.fork, which this platform lacks")

    def scheduler(self, request_ended: Callable[[], None]) -> Scheduler:
        return ForkScheduler(
            request_ended, max_children=self.max_children, block_on_close=self.block_on_close
        )


def forking(*, max_children: int = 40, block_on_close: bool = True) -> Forking:
    """Serve each request in a forked child process (POSIX only).

    At most `max_children` run at once. Children are reaped as they finish and,
    by default, waited for when the server closes, so none is left behind. A
    draining server asks each child to finish (SIGTERM): one waiting for a new
    request closes its connection at once.
    """
    return Forking(max_children=max_children, block_on_close=block_on_close)
