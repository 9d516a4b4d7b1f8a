"""The two families of concurrency a strategy belongs to: blocking, or an event loop."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from .._errors import ConfigurationError
from .._runtime import BlockingRuntime, Concurrency, Handler, Runtime, Scheduler, Service
from .._transports._base import Transport

__all__ = ["BlockingConcurrency", "EventLoopConcurrency"]


class BlockingConcurrency(Concurrency):
    """A strategy that runs handlers which may block: sync, threads, processes.

    Its runtime is a `BlockingRuntime`: one loop takes requests and hands each to
    the strategy's `Scheduler`.
    """

    __slots__ = ()

    @abc.abstractmethod
    def scheduler(self, request_ended: Callable[[], None]) -> Scheduler:
        """A new scheduler for one server; it calls `request_ended` after each request,
        in the thread or process that served it."""

    @property
    def nodelay(self) -> bool:
        """Off, as socketserver leaves it: a handler's writes go out as it makes them,
        and Nagle's algorithm joins a stream of small ones into full segments."""
        return False

    def check(self, transport: Transport[Any], handler: Handler[Any]) -> None:
        """A blocking concurrency runs any handler over any transport, except a
        coroutine over a transport with per-connection setup: asyncio's streams take
        a plain socket, not the ``ssl.SSLSocket`` of a blocking handshake."""
        if handler.for_asyncio() is not None and transport.prepares_requests:
            raise ConfigurationError(
                f"async_stream_handler cannot serve {transport!r} under {self!r}, "
                "whose per-connection setup (a TLS handshake) hands it a socket that asyncio "
                "cannot take: use asyncio_loop(), which runs the handshakes itself"
            )

    def build(self, service: Service[Any]) -> Runtime:
        """A `BlockingRuntime` feeding `scheduler`."""
        return BlockingRuntime(service, self.scheduler)


class EventLoopConcurrency(Concurrency):
    """A strategy that serves every connection from one thread's event loop.

    Handlers must not block: each loop takes the handlers whose capability it can
    run (`Handler.for_event_loop`, `Handler.for_asyncio`), checked by `check`.
    """

    __slots__ = ()

    @property
    def nodelay(self) -> bool:
        """On: the loop sends each batch of replies in one write, which should leave at once."""
        return True

    def check_transport(self, transport: Transport[Any]) -> None:
        """Refuse a transport whose per-connection setup blocks (a TLS handshake)."""
        if transport.prepares_requests:
            raise ConfigurationError(
                f"{self!r} serves every client from one thread and cannot run the "
                f"blocking per-connection setup of {transport!r} (a TLS handshake): "
                "use threaded() or pooled() (in workers() for many cores)"
            )
