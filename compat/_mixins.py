"""`ThreadingMixIn` and `ForkingMixIn`: the classic mixins over composerv's schedulers.

They rely only on the classic hooks (``finish_request``, ``handle_error``,
``shutdown_request``, ``close_request``, ``server_close``), so they also work mixed
into classes that still derive from the stdlib ``socketserver``, such as
``class S(ThreadingMixIn, http.server.HTTPServer)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from composerv._concurrency import ForkScheduler, ThreadScheduler

from ._servers import BaseServer

__all__ = ["ForkingMixIn", "ThreadingMixIn"]

if TYPE_CHECKING:
    # For the type checker a mixin is a server, so that its calls to the hooks and
    # to super().server_close() check; at run time it must stay a plain mixin.
    _Server = BaseServer
else:
    _Server = object


class ThreadingMixIn(_Server):
    """Serve each request in a new thread, started and tracked by composerv's `ThreadScheduler`.

    Only live threads are tracked (``len(server._threads)`` counts them), so a
    long-running server does not accumulate finished threads (bpo-37193).
    `daemon_threads` and `block_on_close` are read when used, as in the stdlib.
    """

    daemon_threads: bool = False
    """Whether request threads are daemons (not waited for when the server closes)."""
    block_on_close: bool = True
    """Whether `server_close` waits for the (non-daemon) request threads."""

    @property
    def _threads(self) -> ThreadScheduler:
        """The scheduler of this server's request threads; its len() is how many run."""
        threads: ThreadScheduler | None = vars(self).get("_ThreadingMixIn__threads")
        if threads is None:
            threads = ThreadScheduler(
                _nothing, daemon=bool(self.daemon_threads), block_on_close=bool(self.block_on_close)
            )
            self.__threads = threads
        return threads

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one request in its thread: `finish_request`, `handle_error`, `shutdown_request`."""
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Start a thread that runs `process_request_thread`."""
        threads = self._threads
        threads.daemon = bool(self.daemon_threads)
        threads.submit(
            _ClassicJob(lambda: self.process_request_thread(request, client_address), _nothing)
        )

    def server_close(self) -> None:
        """Close the server, then wait for request threads as `block_on_close` says."""
        super().server_close()
        threads = self._threads
        threads.block_on_close = bool(self.block_on_close)
        threads.close()


def _nothing() -> None:
    """A thread shares its request with the server: no parent copy to release, and
    no loop to wake when it ends (the classic loop has no connection limit)."""


class _ClassicJob:
    """A classic request as composerv's schedulers run it (see `composerv.abc.Job`).

    Classic servers have no drain and evict nothing: `drain` and `cut` do nothing."""

    __slots__ = ("_release", "_run")

    def __init__(self, run: Callable[[], None], release: Callable[[], None]) -> None:
        self._run = run
        self._release = release

    def run(self) -> None:
        self._run()

    def release_in_parent(self) -> None:
        self._release()

    def enter_child(self) -> None:
        """A classic child keeps what it inherited, as under the stdlib."""

    def drain(self) -> None:
        """A classic server never drains."""

    def cut(self) -> None:
        """A classic server never drains."""

    @property
    def closed_idle(self) -> bool:
        return False

    @property
    def peer(self) -> None:
        """Not known to the job: the classic server holds it."""
        return None

    @property
    def idle_since(self) -> None:
        """Never idle: a classic server evicts nothing."""
        return None

    def evict(self) -> bool:
        """A classic server evicts nothing."""
        return False


class ForkingMixIn(_Server):
    """Serve each request in a child process, forked and reaped by composerv's `ForkScheduler`.

    Only this server's own children are ever reaped (the stdlib may reap others
    with ``waitpid(-1)``), and at most `max_children` run at once: beyond that the
    server waits for one to exit before forking.
    """

    timeout: float | None = 300
    """`handle_request` reaps finished children when it times out."""
    max_children: int = 40
    """At most this many children at once."""
    block_on_close: bool = True
    """Whether `server_close` waits for every child to exit."""

    @property
    def active_children(self) -> set[int] | None:
        """The pids of running children, or None before the first fork."""
        scheduler = self.__scheduler()
        return None if scheduler is None else scheduler.children

    def __scheduler(self) -> ForkScheduler | None:
        scheduler: ForkScheduler | None = vars(self).get("_ForkingMixIn__children")
        return scheduler

    def collect_children(self, *, blocking: bool = False) -> None:
        """Reap the children that have exited; with `blocking`, wait for all of them."""
        scheduler = self.__scheduler()
        if scheduler is None:
            return
        if blocking:
            scheduler.wait_for_all()
        else:
            scheduler.reap()

    def handle_timeout(self) -> None:
        """Reap finished children after `timeout` seconds without a request."""
        self.collect_children()

    def service_actions(self) -> None:
        """Reap finished children on every turn of the serve loop."""
        self.collect_children()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Fork a child that serves the request; the parent closes its copy of it."""
        scheduler = self.__scheduler()
        if scheduler is None:
            scheduler = ForkScheduler(
                max_children=self.max_children, block_on_close=bool(self.block_on_close)
            )
            self.__children = scheduler
        scheduler.max_children = self.max_children
        scheduler.submit(
            _ClassicJob(
                lambda: self.__serve_in_child(request, client_address),
                lambda: self.close_request(request),
            )
        )

    def __serve_in_child(self, request: Any, client_address: Any) -> None:
        # An exception makes the scheduler exit the child with status 1, as in the
        # stdlib, after handle_error has reported it.
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            raise
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        """Close the server, then reap children (waiting for all if `block_on_close`)."""
        super().server_close()
        self.collect_children(blocking=bool(self.block_on_close))
