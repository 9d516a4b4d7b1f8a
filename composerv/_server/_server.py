"""`serve()` and `Server`: three values become a running server."""

from __future__ import annotations

import errno
import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, overload

from .._addresses import Address, peer_repr
from .._concurrency._base import (
    BlockingConcurrency,
    Concurrency,
    EventLoop,
    EventLoopConcurrency,
    Scheduler,
)
from .._datagram import Datagram
from .._errors import HandlerMismatchError
from .._handlers._base import Handler
from .._log import logger
from .._transports._base import Cleanup, DatagramTooLargeError, R, Transport
from ._lifecycle import ServeLoop

if TYPE_CHECKING:
    # Only the overloads of serve() name these; the modules import the server loop.
    from .._concurrency._asyncio import AsyncioLoop
    from .._concurrency._evented import Evented
    from .._handlers._async import AsyncStreamHandler
    from .._handlers._message import MessageHandler

__all__ = ["Server", "serve"]

# accept() fails with these when the process or the system is out of a resource.
# Retrying at once would spin the CPU (socketserver does: ~400k calls/s); like trio,
# log and pause so that handlers can finish and free what they hold.
ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
ACCEPT_CAPACITY_PAUSE = 0.1


class Server(Generic[R]):
    """A server made by `serve()`: a bound socket, a scheduler, and the loop that feeds it.

    Use it as a context manager, or call `server_close` when done::

        with serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo)) as server:
            print("listening on", server.address)
            server.serve_forever()
    """

    def __init__(
        self, transport: Transport[R], concurrency: Concurrency, handler: Handler[R]
    ) -> None:
        self.transport = transport
        """The transport value this server was made from."""
        self.concurrency = concurrency
        """The concurrency value this server was made from."""
        self.handler = handler
        """The handler value this server was made from."""
        self.socket = transport.create_socket()
        """The server's listening (or datagram) socket."""
        self.socket.setblocking(False)
        self._cleanup: Cleanup | None = None
        self._closed = False
        self._close_lock = threading.Lock()
        self._scheduler: Scheduler
        self._loop: ServeLoop | EventLoop
        if isinstance(concurrency, EventLoopConcurrency):
            # An event loop replaces the request loop and schedules nothing else.
            self._loop = self._scheduler = concurrency.event_loop(_CoreLifecycle(self), handler)
        else:
            assert isinstance(concurrency, BlockingConcurrency)
            self._scheduler = concurrency.scheduler()
            self._loop = ServeLoop(_CoreLifecycle(self))
        if transport.bind_and_activate:
            try:
                self.bind_and_activate()
            except BaseException:
                self.server_close()
                raise

    def bind_and_activate(self) -> None:
        """Bind and activate the socket; `serve()` does this unless the transport says not to."""
        if self._cleanup is not None:
            raise RuntimeError("this server's socket is already bound")
        self._cleanup = self.transport.bind(self.socket)
        self.transport.activate(self.socket)

    @property
    def address(self) -> Address:
        """The bound address, with the real port when port 0 was asked for."""
        return self.socket.getsockname()  # type: ignore[no-any-return]  # getsockname is untyped

    @property
    def active_requests(self) -> int:
        """How many requests are being served right now in threads or child processes."""
        return len(self._scheduler)

    def fileno(self) -> int:
        """The server socket's descriptor, so a server can be put in a selector."""
        return self.socket.fileno()

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve requests until `shutdown` is called.

        `poll_interval` is how often, at most, housekeeping runs while idle
        (reaping children); shutdown does not wait for it.
        """
        if self._closed:
            raise RuntimeError("cannot serve: this server is closed")
        self._loop.serve_forever(poll_interval)

    def shutdown(self) -> None:
        """Stop `serve_forever`; safe from any thread, a handler included.

        From another thread, returns once the loop has stopped. Does not close the
        socket or wait for requests in flight: `server_close` does that.
        """
        self._loop.shutdown()

    def handle_request(self, timeout: float | None = None) -> None:
        """Wait up to `timeout` seconds (None: forever) for one request and serve it."""
        if self._closed:
            raise RuntimeError("cannot serve: this server is closed")
        self._loop.handle_request(timeout)

    def server_close(self) -> None:
        """Stop listening, remove what binding left (a unix path), and wait for requests in
        flight as the concurrency promises. Safe to call more than once."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self.socket.close()
        if self._cleanup is not None:
            self._cleanup()
        self._scheduler.close()

    def __enter__(self) -> Server[R]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop.running:
            self.shutdown()
        self.server_close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "serving" if self._loop.running else "open"
        return f"<Server {state} {self.transport!r} {self.concurrency!r} {self.handler!r}>"


class _CoreLifecycle(Generic[R]):
    """The request lifecycle built from a server's transport, concurrency and handler."""

    __slots__ = ("_server",)

    def __init__(self, server: Server[R]) -> None:
        self._server = server

    def fileno(self) -> int:
        return self._server.socket.fileno()

    def get_request(self) -> tuple[R, Address]:
        server = self._server
        try:
            return server.transport.get_request(server.socket)
        except DatagramTooLargeError as exc:
            logger.warning("%s", exc)
            raise
        except OSError as exc:
            if exc.errno in ACCEPT_CAPACITY_ERRNOS:
                logger.error(
                    "cannot accept a connection on %s: %s; pausing %.1fs",
                    peer_repr(server.address),
                    exc.strerror,
                    ACCEPT_CAPACITY_PAUSE,
                )
                time.sleep(ACCEPT_CAPACITY_PAUSE)
            raise

    def verify_request(self, request: R, client_address: Address) -> bool:
        return True

    def process_request(self, request: R, client_address: Address) -> None:
        self._server._scheduler.submit(
            lambda: self._serve(request, client_address),
            lambda: self._server.transport.close_request_copy(request),
        )

    def _serve(self, request: R, client_address: Address) -> None:
        try:
            self._server.handler.handle(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def handle_error(self, request: R, client_address: Address) -> None:
        logger.exception("error while serving %s", peer_repr(client_address))

    def handle_timeout(self) -> None:
        """A core server has nothing to do when `handle_request` times out."""

    def service_actions(self) -> None:
        self._server._scheduler.service_actions()

    def shutdown_request(self, request: R) -> None:
        self._server.transport.close_request(request)


@overload
def serve(
    transport: Transport[socket.socket],
    concurrency: BlockingConcurrency,
    handler: Handler[socket.socket],
) -> Server[socket.socket]: ...


@overload
def serve(
    transport: Transport[Datagram],
    concurrency: BlockingConcurrency,
    handler: Handler[Datagram],
) -> Server[Datagram]: ...


@overload
def serve(
    transport: Transport[socket.socket],
    concurrency: Evented,
    handler: MessageHandler[socket.socket],
) -> Server[socket.socket]: ...


@overload
def serve(
    transport: Transport[Datagram],
    concurrency: Evented,
    handler: MessageHandler[Datagram],
) -> Server[Datagram]: ...


@overload
def serve(
    transport: Transport[socket.socket],
    concurrency: AsyncioLoop,
    handler: AsyncStreamHandler,
) -> Server[socket.socket]: ...


def serve(transport: Any, concurrency: Any, handler: Any) -> Server[Any]:
    """Make a server from a transport, a concurrency and a handler, bound and listening.

    The three must fit: a stream handler (`stream_handler`) needs a stream transport
    (`tcp`, `unix_stream`), a datagram handler (`datagram_handler`) a datagram
    transport (`udp`, `unix_datagram`). mypy reports a mismatch; at run time it is
    a `HandlerMismatchError`.

    Example::

        server = serve(tcp(("127.0.0.1", 8000)), threaded(), stream_handler(echo))
    """
    _check_kind("transport", transport, Transport, "tcp(...), udp(...), unix_stream(...)")
    _check_kind("concurrency", concurrency, Concurrency, "sync(), threaded(), forking()")
    _check_kind("handler", handler, Handler, "stream_handler(fn), datagram_handler(fn)")
    if handler.kind != transport.kind:
        wanted = "stream_handler(fn)" if transport.kind == "stream" else "datagram_handler(fn)"
        other = "tcp() or unix_stream()" if handler.kind == "stream" else "udp() or unix_datagram()"
        raise HandlerMismatchError(
            f"a {handler.kind} handler cannot serve the {transport.kind} transport "
            f"{transport!r}: use {wanted} with this transport, or a {handler.kind} "
            f"transport such as {other}"
        )
    if handler.blocking and not concurrency.blocking:
        raise HandlerMismatchError(
            f"{concurrency!r} runs handlers on an event loop, which a blocking "
            f"{type(handler).__name__} would stall: use message_handler(fn), or a "
            "blocking concurrency such as threaded() or pooled()"
        )
    if isinstance(concurrency, EventLoopConcurrency):
        concurrency.check_handler(handler)
    return Server(transport, concurrency, handler)


def _check_kind(name: str, value: object, expected: type, examples: str) -> None:
    if not isinstance(value, expected):
        raise TypeError(
            f"{name} must be a {expected.__name__} value such as {examples}, "
            f"not {type(value).__name__} {value!r}"
        )
