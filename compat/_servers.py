"""The classic server classes: `BaseServer`, `TCPServer`, `UDPServer` and the unix ones.

Each keeps the stdlib's overridable hooks and attributes; the work behind them is
composerv's: `ServeLoop` runs the request lifecycle (and wakes at once on shutdown),
and the socket operations go through the core transport value that the class
attributes describe (see `TCPServer.core_transport`).
"""

from __future__ import annotations

import functools
import socket
import sys
import traceback
from types import TracebackType
from typing import Any, cast

from composerv import Datagram, DatagramTooLargeError, tcp, udp, unix_datagram, unix_stream
from composerv._log import logger
from composerv._runtime import RequestLifecycle, ServeLoop
from composerv._transports._base import Transport, half_close, set_reuse_options

__all__ = ["BaseServer", "TCPServer", "UDPServer", "UnixDatagramServer", "UnixStreamServer"]

# The line the stdlib's handle_error draws around a traceback; tests and log scrapers
# look for it.
_RULE = "-" * 40


class BaseServer:
    """The request lifecycle with every hook a subclass may override.

    Methods for the caller: ``serve_forever(poll_interval=0.5)``, ``shutdown()``,
    ``handle_request()``, ``server_close()``. Hooks: ``server_activate``,
    ``get_request``, ``verify_request``, ``process_request``, ``finish_request``,
    ``handle_error``, ``handle_timeout``, ``service_actions``, ``shutdown_request``,
    ``close_request``. Subclasses provide ``socket`` and ``fileno()``.

    Unlike the stdlib, ``shutdown()`` wakes the loop at once, returns at once when
    no loop runs, and does not deadlock when called from a request handler in the
    serving thread.
    """

    timeout: float | None = None
    """Seconds `handle_request` waits for a request before calling `handle_timeout`."""

    socket: socket.socket

    def __init__(self, server_address: Any, RequestHandlerClass: Any) -> None:  # noqa: N803  # the stdlib's parameter name, which callers pass by keyword
        """Constructor.  May be extended, do not override."""
        self.server_address = server_address
        self.RequestHandlerClass = RequestHandlerClass
        # BaseServer leaves fileno() to its subclasses, as the stdlib does; the loop
        # only calls it once serving starts, when a subclass has provided it.
        self.__loop = ServeLoop(cast("RequestLifecycle[Any]", self))

    def server_activate(self) -> None:
        """Called by the constructor to activate the server.  May be overridden."""

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Handle one request at a time until `shutdown`.

        `service_actions` runs at least every `poll_interval` seconds; `shutdown`
        does not wait for it. Ignores `timeout`.
        """
        self.__loop.serve_forever(poll_interval)

    def shutdown(self) -> None:
        """Stop the `serve_forever` loop; from another thread, return once it has stopped."""
        self.__loop.shutdown()

    def service_actions(self) -> None:
        """Called on every turn of the `serve_forever` loop.  May be overridden."""

    def handle_request(self) -> None:
        """Handle one request, waiting for it at most `timeout` seconds.

        A timeout set on the socket (``socket.settimeout``) also counts, as in the
        stdlib: the shorter of the two wins.
        """
        timeout = self.socket.gettimeout()
        if timeout is None:
            timeout = self.timeout
        elif self.timeout is not None:
            timeout = min(timeout, self.timeout)
        self.__loop.handle_request(timeout)

    def _handle_request_noblock(self) -> None:
        """Handle one request from a readable socket (for callers with their own loop)."""
        self.__loop.handle_ready()

    def handle_timeout(self) -> None:
        """Called if no request arrives within `timeout` seconds.  May be overridden."""

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Return True to serve the request, False to drop it.  May be overridden."""
        return True

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the request in this thread (the mixins override this)."""
        self.finish_request(request, client_address)
        self.shutdown_request(request)

    def server_close(self) -> None:
        """Clean up the server.  May be overridden."""

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Serve one request by instantiating ``RequestHandlerClass``."""
        self.RequestHandlerClass(request, client_address, self)

    def shutdown_request(self, request: Any) -> None:
        """End and close one request."""
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        """Release one request."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Print the current exception's traceback to stderr, as the stdlib does.

        Override it (or use composerv's core, which logs) to report errors elsewhere.
        """
        print(_RULE, file=sys.stderr)
        print(
            "Exception occurred during processing of request from",
            client_address,
            file=sys.stderr,
        )
        traceback.print_exc()
        print(_RULE, file=sys.stderr)

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server_close()


class TCPServer(BaseServer):
    """A synchronous stream server (TCP by default) over a core stream transport."""

    address_family: int = socket.AF_INET
    socket_type: int = socket.SOCK_STREAM
    request_queue_size: int = 5
    allow_reuse_address: bool = False
    allow_reuse_port: bool = False

    def __init__(
        self,
        server_address: Any,
        RequestHandlerClass: Any,  # noqa: N803  # the stdlib's parameter name
        bind_and_activate: bool = True,
    ) -> None:
        """Constructor.  May be extended, do not override."""
        BaseServer.__init__(self, server_address, RequestHandlerClass)
        self.socket = socket.socket(self.address_family, self.socket_type)
        if bind_and_activate:
            try:
                self.server_bind()
                self.server_activate()
            except BaseException:
                self.server_close()
                raise

    def core_transport(self) -> Transport[Any]:
        """The composerv transport value that the class attributes describe.

        The attributes are read on each call, as the stdlib reads them at the moment
        it uses them (legacy code sets them on instances); the values are cached.
        """
        return _stream_transport(
            _is_unix(self),
            self.server_address,
            self.request_queue_size,
            bool(self.allow_reuse_address),
            _reuse_port(self),
        )

    def server_bind(self) -> None:
        """Set the reuse options and bind `socket` to ``server_address``.  May be overridden.

        The socket binds the address exactly as given (errors are the socket's own,
        a unix path is neither replaced nor removed), as legacy code expects.
        """
        set_reuse_options(
            self.socket,
            reuse_address=bool(self.allow_reuse_address),
            reuse_port=_reuse_port(self),
        )
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        """Listen with a backlog of ``request_queue_size``.  May be overridden."""
        self.core_transport().activate(self.socket)

    def server_close(self) -> None:
        """Close the listening socket.  May be overridden."""
        self.socket.close()

    def fileno(self) -> int:
        """The socket's descriptor, so the server can be put in a selector."""
        return self.socket.fileno()

    def get_request(self) -> tuple[Any, Any]:
        """Accept a connection: ``(connection, client_address)``.  May be overridden."""
        return self.core_transport().get_request(self.socket)

    def shutdown_request(self, request: Any) -> None:
        """Send FIN on the connection, then `close_request` it."""
        half_close(request)
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        """Close the connection."""
        self.core_transport().close_request_copy(request)


def _reuse_port(server: TCPServer) -> bool:
    # The stdlib ignores allow_reuse_port where SO_REUSEPORT does not exist.
    return bool(server.allow_reuse_port) and hasattr(socket, "SO_REUSEPORT")


def _is_unix(server: TCPServer) -> bool:
    return server.address_family == getattr(socket, "AF_UNIX", None)


# Transport values are immutable, so servers with the same settings share one; the
# cache spares get_request the cost of validating an address on every request.
_CACHED_TRANSPORTS = 64


@functools.lru_cache(maxsize=_CACHED_TRANSPORTS)
def _stream_transport(
    unix: bool, address: Any, backlog: int, reuse_address: bool, reuse_port: bool
) -> Transport[Any]:
    if unix:
        return unix_stream(address, backlog=backlog)
    return tcp(
        address,
        backlog=backlog,
        reuse_address=reuse_address,
        reuse_port=reuse_port,
        nodelay=False,  # the stdlib leaves Nagle on unless the handler turns it off
    )


@functools.lru_cache(maxsize=_CACHED_TRANSPORTS)
def _datagram_transport(
    unix: bool, address: Any, max_size: int, reuse_address: bool, reuse_port: bool
) -> Transport[Any]:
    if unix:
        return unix_datagram(address, max_datagram_size=max_size)
    return udp(
        address,
        max_datagram_size=max_size,
        reuse_address=reuse_address,
        reuse_port=reuse_port,
    )


class UDPServer(TCPServer):
    """A synchronous datagram server (UDP by default) over a core datagram transport.

    A request is ``(data, socket)``. A datagram longer than ``max_packet_size`` is
    dropped and logged by the transport (the stdlib silently cuts it short).
    """

    allow_reuse_address: bool = False
    allow_reuse_port: bool = False
    socket_type: int = socket.SOCK_DGRAM
    max_packet_size: int = 8192

    def core_transport(self) -> Transport[Any]:
        """The composerv transport value that the class attributes describe."""
        return _datagram_transport(
            _is_unix(self),
            self.server_address,
            self.max_packet_size,
            bool(self.allow_reuse_address),
            _reuse_port(self),
        )

    def get_request(self) -> tuple[Any, Any]:
        """Receive one datagram: ``((data, socket), client_address)``."""
        datagram: Datagram
        try:
            datagram, client_address = self.core_transport().get_request(self.socket)
        except DatagramTooLargeError as exc:
            # The loop drops a request whose get_request fails; say why, as the core does.
            logger.warning("%s", exc)
            raise
        return (datagram.data, self.socket), client_address

    def server_activate(self) -> None:
        """Datagram sockets need no listen()."""

    def shutdown_request(self, request: Any) -> None:
        """A datagram has no connection to shut down; only `close_request` it."""
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        """A datagram holds nothing to release."""


class UnixStreamServer(TCPServer):
    """A synchronous unix stream server."""

    address_family: int = getattr(socket, "AF_UNIX", -1)


class UnixDatagramServer(UDPServer):
    """A synchronous unix datagram server."""

    address_family: int = getattr(socket, "AF_UNIX", -1)
