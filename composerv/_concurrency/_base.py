"""The scheduling protocol every concurrency strategy implements."""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .._errors import ConfigurationError

if TYPE_CHECKING:
    from .._handlers._base import Handler
    from .._limits import DrainReport, Limits
    from .._server._lifecycle import RequestLifecycle
    from .._transports._base import Transport

__all__ = [
    "BlockingConcurrency",
    "Built",
    "Concurrency",
    "EventLoop",
    "EventLoopConcurrency",
    "Loop",
    "Scheduler",
    "Work",
]

Work = Callable[[], None]
"""Serving one request from start to release; it handles its own errors."""


class Scheduler(Protocol):
    """The run-time side of a concurrency value, owned by one server.

    The server calls `submit` once per request, `service_actions` on every turn of
    its loop, and `close` once when it closes.
    """

    def submit(self, work: Work, release_in_parent: Work) -> None:
        """Run `work` now, in a thread or in a child process.

        `release_in_parent` is called instead of `work` in a parent process that
        handed the request to a child (it closes the parent's copy of the request).
        Raises if the work cannot be started; the server then releases the request.
        """

    def service_actions(self) -> None:
        """Housekeeping between requests (reaping finished children)."""

    def close(self) -> None:
        """Wait for running work as the strategy promises, then free its resources."""

    def __len__(self) -> int:
        """How many requests are being served right now, outside the caller's thread."""


class Loop(Protocol):
    """What runs a server: waits for requests and serves them until stopped.

    `ServeLoop` is the loop of every blocking concurrency; an `EventLoop` is its
    own. Both follow `ServeLoop`'s semantics for each of these.
    """

    @property
    def running(self) -> bool:
        """Whether `serve_forever` is running in some thread."""

    @property
    def paused(self) -> bool:
        """Whether the loop has stopped accepting because the server is at capacity."""

    def serve_forever(self, poll_interval: float) -> None:
        """Serve until `shutdown`."""

    def shutdown(self) -> None:
        """Stop `serve_forever`; from another thread, return once it has stopped."""

    def request_stop(self) -> threading.Thread | None:
        """Make `serve_forever` stop soon without waiting; return the loop's thread, if any."""

    def wait_stopped(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for `serve_forever` to return; whether it has."""

    def wake(self) -> None:
        """Make a waiting loop look at its state again; safe from any thread."""

    def handle_request(self, timeout: float | None) -> None:
        """Wait up to `timeout` seconds for a request and serve it."""


class EventLoop(Scheduler, Loop, Protocol):
    """The run-time side of an event-loop concurrency: it runs the whole server.

    The server delegates `serve_forever`, `shutdown` and `handle_request` to it, and,
    as for any scheduler, calls `close` from ``server_close`` (which closes every
    connection still open) and ``len()`` for the number of open connections. The
    loop accepts and reads by itself, so `Scheduler.submit` is never called on it.
    """

    def drain(self, deadline: float) -> DrainReport:
        """Once the loop has stopped: close idle connections, serve the others until
        they are idle or until `deadline` (monotonic), then cut what is left."""


class Built(NamedTuple):
    """What a concurrency makes for one server."""

    loop: Loop
    """What waits for requests and serves them."""
    scheduler: Scheduler
    """Where the requests run."""
    event_loop: EventLoop | None
    """The loop again, when it owns its connections and drains them itself."""


class Concurrency(metaclass=abc.ABCMeta):
    """How a server schedules requests: an immutable value.

    A `BlockingConcurrency` makes a `Scheduler` fed by the server's request loop;
    an `EventLoopConcurrency` makes an `EventLoop` that is both.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def nodelay(self) -> bool:
        """Whether TCP connections get TCP_NODELAY when the transport leaves it to the
        concurrency (``tcp(nodelay=None)``, the default)."""

    @abc.abstractmethod
    def check_handler(self, handler: Handler[Any]) -> None:
        """Raise `HandlerMismatchError`, saying what to use instead, if this concurrency
        cannot run `handler`."""

    @abc.abstractmethod
    def check_transport(self, transport: Transport[Any]) -> None:
        """Raise `ConfigurationError`, saying what to use instead, if this concurrency
        cannot serve `transport`."""

    @abc.abstractmethod
    def build(
        self,
        lifecycle: RequestLifecycle[Any],
        handler: Handler[Any],
        limits: Limits,
        has_capacity: Callable[[], bool] | None,
        transport: Transport[Any],
    ) -> Built:
        """The loop and the scheduler of one server: the loop takes requests through
        `lifecycle` (asking `has_capacity` whether to take more now) and serves them
        with `handler` on the scheduler, keeping `limits`; `transport` is the one
        that `check_transport` accepted. Made in the process that serves (after the
        fork, under `workers`).

        ``lifecycle.get_request`` never waits: with no request ready it raises
        `BlockingIOError`, so a loop may take several per wake-up."""


class BlockingConcurrency(Concurrency):
    """A strategy that runs handlers which may block: sync, threads, processes."""

    __slots__ = ()

    @abc.abstractmethod
    def scheduler(self) -> Scheduler:
        """A new scheduler for one server."""

    @property
    def nodelay(self) -> bool:
        """Off, as socketserver leaves it: a handler's writes go out as it makes them,
        and Nagle's algorithm joins a stream of small ones into full segments."""
        return False

    def check_handler(self, handler: Handler[Any]) -> None:
        """A blocking concurrency runs any handler."""

    def check_transport(self, transport: Transport[Any]) -> None:
        """A blocking concurrency serves any transport."""

    def build(
        self,
        lifecycle: RequestLifecycle[Any],
        handler: Handler[Any],
        limits: Limits,
        has_capacity: Callable[[], bool] | None,
        transport: Transport[Any],
    ) -> Built:
        """A `ServeLoop` in one thread feeding `scheduler()`."""
        from .._server._lifecycle import ServeLoop

        return Built(ServeLoop(lifecycle, has_capacity, nonblocking=True), self.scheduler(), None)


class EventLoopConcurrency(Concurrency):
    """A strategy that serves every connection from one thread's event loop.

    Handlers must not block; which handler types a loop can run is its own
    business, checked by `check_handler`.
    """

    __slots__ = ()

    @property
    def nodelay(self) -> bool:
        """On: the loop sends each batch of replies in one write, which should leave at once."""
        return True

    def check_transport(self, transport: Transport[Any]) -> None:
        if transport.prepares_requests:
            raise ConfigurationError(
                f"{self!r} serves every client from one thread and cannot run the "
                f"blocking per-connection setup of {transport!r} (a TLS handshake): "
                "use threaded() or pooled() (in workers() for many cores)"
            )

    @abc.abstractmethod
    def event_loop(
        self,
        lifecycle: RequestLifecycle[Any],
        handler: Handler[Any],
        limits: Limits,
        transport: Transport[Any],
    ) -> EventLoop:
        """A new loop for one server: it takes requests through `lifecycle` (accepting,
        verifying, logging errors, closing), serves them with `handler`, and keeps
        `limits`; `transport` is the one that `check_transport` accepted."""

    def build(
        self,
        lifecycle: RequestLifecycle[Any],
        handler: Handler[Any],
        limits: Limits,
        has_capacity: Callable[[], bool] | None,
        transport: Transport[Any],
    ) -> Built:
        loop = self.event_loop(lifecycle, handler, limits, transport)
        return Built(loop, loop, loop)
