"""`forking()`: a child process per request."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import attrs

from .._errors import ConfigurationError
from .._log import logger
from .._validate import flag, positive_int
from ._base import BlockingConcurrency, Scheduler, Work

__all__ = ["ForkScheduler", "Forking", "forking"]

# How long to sleep between polls while waiting for a child to exit: short at first,
# since most requests are short, and capped so a long wait costs little CPU.
_FIRST_POLL = 0.001
_MAX_POLL = 0.05


_in_request_child = False


def in_request_child() -> bool:
    """Whether this process is a child that `ForkScheduler` forked to serve one request.

    Worker processes of `workers()` are forked too, but they run a whole server loop,
    so a pid comparison cannot tell them apart from request children.
    """
    return _in_request_child


class ForkScheduler:
    """Forks a child per request and reaps only its own children (never ``waitpid(-1)``)."""

    def __init__(self, *, max_children: int, block_on_close: bool) -> None:
        self.max_children = max_children
        self.block_on_close = block_on_close
        self.children: set[int] = set()

    def submit(self, work: Work, release_in_parent: Work) -> None:
        while len(self.children) >= self.max_children:
            self._wait_for_one()
        pid = os.fork()
        if pid == 0:
            global _in_request_child  # noqa: PLW0603  # a fact about this whole process
            _in_request_child = True
            status = 1
            try:
                work()
                status = 0
            finally:
                os._exit(status)
        self.children.add(pid)
        release_in_parent()

    def service_actions(self) -> None:
        self.reap()

    def reap(self) -> int:
        """Collect every finished child without waiting; return how many are left."""
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                self.children.discard(pid)  # reaped elsewhere (e.g. SIGCHLD ignored)
                continue
            if done:
                self.children.discard(pid)
                if status:
                    logger.debug("request child %d exited with status %#x", pid, status)
        return len(self.children)

    def ask_to_finish(self) -> None:
        """SIGTERM every child: a child serving a request closes its connection when idle."""
        self._signal_all(signal.SIGTERM)

    def terminate(self) -> int:
        """SIGKILL every child still running, wait for each; return how many there were."""
        running = self._signal_all(signal.SIGKILL)
        for pid in running:
            # ChildProcessError: reaped elsewhere (e.g. SIGCHLD ignored).
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self.children.discard(pid)
        return len(running)

    def _signal_all(self, signum: int) -> list[int]:
        self.reap()
        running = list(self.children)
        for pid in running:
            # ProcessLookupError: it exited after the reap above; waitpid collects it.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        return running

    def _wait_for_one(self) -> None:
        before = len(self.children)
        pause = _FIRST_POLL
        while self.reap() >= before:
            time.sleep(pause)
            pause = min(pause * 2, _MAX_POLL)

    def wait_for_all(self) -> None:
        """Wait until every child has exited and reap it."""
        while self.children:
            self._wait_for_one()

    def close(self) -> None:
        """Wait for every child if `block_on_close`, else collect those already done."""
        if self.block_on_close:
            self.wait_for_all()
        else:
            self.reap()

    def __len__(self) -> int:
        return len(self.children)


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

    def scheduler(self) -> Scheduler:
        return ForkScheduler(max_children=self.max_children, block_on_close=self.block_on_close)


def forking(*, max_children: int = 40, block_on_close: bool = True) -> Forking:
    """Serve each request in a forked child process (POSIX only).

    At most `max_children` run at once. Children are reaped as they finish and,
    by default, waited for when the server closes, so none is left behind.
    """
    return Forking(max_children=max_children, block_on_close=block_on_close)
