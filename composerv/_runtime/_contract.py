"""The runtime contract: what a server asks of its concurrency, and of its handler.

A `Server` builds its runtime once, ``concurrency.build(service)``, and from then on
only delegates to the `Runtime` it got: serve, stop, drain, close. One runtime
family per kind of concurrency implements it: the blocking loop with a
`Scheduler` (sync, threads, a pool, processes), the event loops, and the
supervisor of worker processes. Handlers say by capabilities, not by their class,
what they can run on: `Handler.for_event_loop` and `Handler.for_asyncio`.
"""

from __future__ import annotations

import abc
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, NoReturn, Protocol

import attrs

from .._errors import ConfigurationError
from .._limits import DrainReport, Limits
from .._outcome import Outcomes
from .._transports._base import R, Transport
from ._tally import Tally

if TYPE_CHECKING:
    import asyncio

    from .._context import RequestContext
    from .._framing import Datagrams, MessageFn, StreamFraming
    from ._evict import Evictions

__all__ = [
    "AsyncForm",
    "Concurrency",
    "Deadline",
    "Handler",
    "Job",
    "Layer",
    "MessageForm",
    "Runtime",
    "Scheduler",
    "Service",
]


class Deadline:
    """When a drain must end (monotonic seconds); it can only move earlier.

    A second stop request during a drain (a second SIGTERM) moves it to now, and
    every wait of a drain is bounded by a short slice, so that takes effect at once.
    """

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at
        """The monotonic time the drain ends."""

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """The deadline `seconds` from now."""
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return time.monotonic() >= self.at

    def bring_forward(self, at: float) -> None:
        """Move the deadline to `at`, if that is earlier."""
        self.at = min(self.at, at)


@attrs.frozen
class MessageForm:
    """What an event loop runs for a handler instead of its blocking `Handler.handle`.

    ``open(context)`` is called once per connection (and per datagram, whose
    context names its sender): it returns the function that turns each message of
    that connection into its reply (None: no reply). A stateless handler returns the
    same function every time; a session returns one bound to the connection's state.
    """

    framing: StreamFraming | Datagrams
    """How messages and replies are cut and framed."""
    open: Callable[[RequestContext], MessageFn]
    """The reply function for one connection (or one datagram's sender)."""
    fn: MessageFn | None = None
    """The one reply function of a handler that keeps no state: a loop may call it
    for every connection without calling `open` (and making a context) first."""


@attrs.frozen
class AsyncForm:
    """What an asyncio loop runs for a handler: ``await fn(reader, writer)`` per connection."""

    fn: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[object]]
    """The coroutine function serving one connection."""
    limit: int
    """The stream reader's buffer limit."""


class Layer:
    """A concern wrapped around a handler without changing its kind (see `layered`).

    A runtime calls `admit` when a connection (or a datagram) arrives, before the
    handler sees it, and `finish` when it has been served; a message or session
    handler also lets each layer `wrap` the function that answers the messages of
    one connection. Each method's default does nothing, so a layer overrides only
    what it is about, and a layer that does not wrap messages costs them nothing.
    """

    __slots__ = ()

    def admit(self, context: RequestContext) -> None:
        """A connection or datagram arrives; raise `RefusedError` to close (or drop) it."""

    def wrap(self, fn: MessageFn, context: RequestContext) -> MessageFn:
        """The function that answers the messages of `context`'s connection."""
        return fn

    def finish(self, context: RequestContext, error: BaseException | None) -> None:
        """The connection or datagram has been served; `error` is how it ended, if badly."""

    def wraps_messages(self) -> bool:
        """Whether `wrap` is overridden (a loop may skip it otherwise)."""
        return type(self).wrap is not Layer.wrap


class Handler(Generic[R], metaclass=abc.ABCMeta):
    """What to do with one request of type `R` (an accepted socket or a `Datagram`).

    A handler is an immutable value. A blocking runtime calls `handle` once per
    request, in whatever thread or process its concurrency chose, with the
    request's `RequestContext`; it releases the request itself afterwards, so
    `handle` must not close it. An event loop calls what `for_event_loop` or
    `for_asyncio` hands over instead; a handler that offers neither blocks, and
    event loops refuse it.
    """

    __slots__ = ()

    kind: ClassVar[Literal["stream", "datagram"]]
    """``"stream"`` or ``"datagram"``: the transports this handler can serve."""

    @property
    def layers(self) -> tuple[Layer, ...]:
        """The layers wrapped around this handler, outermost first (see `layered`);
        every runtime applies their `Layer.admit` and `Layer.finish`."""
        return ()

    @abc.abstractmethod
    def handle(self, request: R, context: RequestContext) -> None:
        """Serve one request; an exception is logged with the peer and ends only this request."""

    def for_event_loop(self) -> MessageForm | None:
        """What `evented()` runs instead of `handle`; None (the default): this handler blocks."""
        return None

    def for_asyncio(self) -> AsyncForm | None:
        """What `asyncio_loop()` runs instead of `handle`; None (the default): not a coroutine."""
        return None


class Job(Protocol):
    """One request handed to a `Scheduler`: serving it, and its part in a drain."""

    def run(self) -> None:
        """Serve the request to its end and release it; handles its own errors."""

    def release_in_parent(self) -> None:
        """Close this process's copy of the request, which a child process now serves."""

    def enter_child(self) -> None:
        """First thing in a child process forked to serve this request: close the
        child's copies of the server's own sockets, so that a drain that closes
        the listening socket refuses new clients at once."""

    def drain(self) -> None:
        """Close the request's connection if it waits for a new request; else let it finish."""

    def cut(self) -> None:
        """Force the request's connection closed, so that its handler wakes up and ends."""

    @property
    def closed_idle(self) -> bool:
        """Whether a drain closed the request's connection while it waited for a new request."""
        ...

    @property
    def peer(self) -> Any:
        """The client's address."""

    @property
    def idle_since(self) -> float | None:
        """Since when (monotonic) the request's connection waits for a new request, if
        it does (see `composerv._runtime._evict.Evictable`)."""

    def evict(self) -> bool:
        """Close the request's connection if it still waits for a new request; whether
        it did."""
        ...


class Scheduler(Protocol):
    """Where a blocking runtime's requests run, and which of them are in flight.

    The runtime calls `submit` once per request, `service_actions` on every turn
    of its loop, `drain` when the server drains, and `close` once at the end.
    """

    def submit(self, job: Job) -> None:
        """Start serving `job` now (inline, in a thread, in a child process).

        Raises if it cannot be started; the runtime then releases the request.
        """

    def service_actions(self) -> None:
        """Housekeeping between requests (reaping finished children)."""

    def make_room(self, evictions: Evictions) -> bool:
        """Close the connection in flight that has waited longest for a new request,
        through `evictions`, to admit a new one; whether one was closed.
        A scheduler that cannot see its requests' state (they run in child
        processes) closes none."""
        ...

    def drain(self, deadline: Deadline) -> DrainReport:
        """Close the idle requests in flight, let the others finish until `deadline`,
        cut the rest; what it did. The loop has stopped taking requests."""
        ...

    def close(self) -> None:
        """Wait for running work as the strategy promises, then free its resources."""

    def __len__(self) -> int:
        """How many requests are in flight."""
        ...

    @property
    def waits_on_close(self) -> bool:
        """Whether closing the server waits for (drains) the requests in flight."""
        ...


class Runtime(Protocol):
    """A running server, as one concurrency family runs it; what `Server` delegates to.

    `stop` is safe from any thread and from a signal handler, and may be called any
    number of times; everything else is called by the server's owner, `drain` and
    `close` once each.
    """

    def serve_forever(self, poll_interval: float) -> None:
        """Serve until `stop`; housekeeping runs at least every `poll_interval` seconds."""

    def stop(self) -> None:
        """Make `serve_forever` return soon, without waiting; a stop before
        `serve_forever` makes the next one return at once."""

    def wait_stopped(self, timeout: float | None) -> bool:
        """Wait up to `timeout` seconds (None: no limit) until `serve_forever` is not
        running; whether it is not."""
        ...

    @property
    def serving_thread(self) -> object | None:
        """The thread running `serve_forever`, or None."""

    def in_request(self) -> bool:
        """Whether the calling thread is serving one of this runtime's requests (a
        drain asked from there must not wait for itself)."""
        ...

    def drain_here(self) -> None:
        """Ask the request the calling thread is serving, if any, to finish: closed at
        once if it waits for a new request. Never waits: a signal handler that
        interrupted that request (under ``sync()``) starts the drain this way."""

    def handle_request(self, timeout: float | None) -> None:
        """Wait up to `timeout` seconds (None: forever) for one request and serve it."""

    def reload(self, service: Service[Any]) -> None:
        """Serve `service` (the same socket, a new handler that `Concurrency.check`
        accepted) from now on, without refusing a connection: under `workers`, new
        workers start and accept before the old ones drain. Returns once done;
        raises `ConfigurationError` where the runtime cannot (see `cannot_reload`)."""

    def drain(self, deadline: Deadline) -> DrainReport:
        """Stop taking requests and stop listening (the socket closes at once, so
        new clients are refused), close idle connections, let requests in flight
        finish until `deadline`, then cut the rest; what it did."""
        ...

    def close(self) -> None:
        """Free what the runtime holds; requests still running are waited for only
        as its concurrency promises (`waits_on_close`)."""

    def __len__(self) -> int:
        """How many requests are in flight."""
        ...

    @property
    def waits_on_close(self) -> bool:
        """Whether ``server_close`` drains the requests in flight before closing."""
        ...


@attrs.frozen
class Service(Generic[R]):
    """What a runtime serves: one server's transport, listening socket, handler and limits."""

    transport: Transport[R]
    """The transport value, which takes requests off `socket`."""
    handler: Handler[R]
    """The handler value, which serves them."""
    limits: Limits
    """The limits every request keeps."""
    socket: socket.socket = attrs.field(eq=False, repr=False)
    """The listening (or datagram) socket, non-blocking."""
    stop_listening: Callable[[], None] = attrs.field(eq=False, repr=False)
    """Close `socket` and undo its binding (a unix path), so that new clients are
    refused at once; safe to call more than once. A drain calls it first."""
    timeouts_preset: Callable[[], bool] = attrs.field(eq=False, repr=False)
    """Whether accepted connections inherit the idle and write timeouts from the
    listener (set when it was bound)."""
    outcomes: Outcomes = attrs.field(factory=Outcomes, eq=False, repr=False)
    """How this server logs the ends of its requests, floods bounded (see `Outcomes`)."""
    tally: Tally = attrs.field(factory=Tally, eq=False, repr=False)
    """The server's counters: the runtime counts each request's ending there (its
    `Acceptor` counts the taking)."""


def cannot_reload(service: Service[Any]) -> NoReturn:
    """What `Runtime.reload` does in a runtime that serves in the server's own process."""
    raise ConfigurationError(
        f"the server of {service.transport!r} serves in its own process, which cannot load "
        "new code in place: reloading starts new worker processes, so serve with "
        "workers(n, ...) (composerv run --workers N)"
    )


class Concurrency(metaclass=abc.ABCMeta):
    """How a server schedules requests: an immutable value that builds a `Runtime`."""

    __slots__ = ()

    @property
    @abc.abstractmethod
    def nodelay(self) -> bool:
        """Whether TCP connections get TCP_NODELAY when the transport leaves it to the
        concurrency (``tcp(nodelay=None)``, the default)."""

    @abc.abstractmethod
    def check(self, transport: Transport[Any], handler: Handler[Any]) -> None:
        """Raise `HandlerMismatchError` or `ConfigurationError`, saying what to use
        instead, if this concurrency cannot serve `handler` over `transport`."""

    @abc.abstractmethod
    def build(self, service: Service[Any]) -> Runtime:
        """The runtime of one server, for a `service` that `check` accepted. Called in
        the process that serves (after the fork, under `workers`)."""
