"""The transport protocol: how a server's socket is made, bound, and read."""

from __future__ import annotations

import abc
import contextlib
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Generic, Literal, TypeVar

from typing_extensions import TypeVar as DefaultedTypeVar

from .._addresses import Address
from .._datagram import Datagram
from .._errors import DatagramTooLargeError

if TYPE_CHECKING:
    from .._context import RequestContext
    from ._proxy import ProxyProtocol
    from ._tls import TLS

__all__ = [
    "INET_FAMILIES",
    "LISTENER_OPTIONS_INHERITED",
    "A",
    "Cleanup",
    "DatagramTransport",
    "R",
    "StreamTransport",
    "Transport",
    "close_connection",
    "half_close",
    "set_listener_nodelay",
    "set_reuse_options",
]


# Linux copies a listening TCP socket's options (TCP_NODELAY, SO_RCVTIMEO,
# SO_SNDTIMEO) to each connection it accepts. Set once on the listener, they cost
# no system call per connection, where a short connection served by a thread makes
# about ten, each a chance for the GIL to change hands.
LISTENER_OPTIONS_INHERITED = sys.platform.startswith("linux")

INET_FAMILIES = (socket.AF_INET, socket.AF_INET6)
"""The families of TCP sockets (the ones TCP options apply to)."""

R = TypeVar("R")
"""The request a transport produces: an accepted socket, or a `Datagram`."""

A = DefaultedTypeVar("A", bound=Address, default=Address, covariant=True)  # noqa: PLC0105  # read as "address", its one use
"""The address a transport binds: `InetAddress` for TCP and UDP, a path for unix."""

Cleanup = Callable[[], None]
"""What `Transport.bind` returns: undoes what binding left behind (a unix path)."""


class Transport(Generic[R, A], metaclass=abc.ABCMeta):
    """Where requests come from: a listening socket and how to take requests off it.

    A transport is an immutable value; the socket it makes belongs to the server.
    `A` is the type of the address it binds, which `Server.address` then has.
    The server calls, in order: `create_socket`, `bind`, `activate`, then
    `get_request` once per readable event, `prepare_request` where the request is
    served, `close_request` when a request is done, and the cleanup returned by
    `bind` when it closes.
    """

    __slots__ = ()

    kind: ClassVar[Literal["stream", "datagram"]]
    """``"stream"`` or ``"datagram"``: what handlers this transport can feed."""

    @property
    @abc.abstractmethod
    def bind_and_activate(self) -> bool:
        """Whether `serve()` binds and activates at once (else call `Server.bind_and_activate`)."""

    @abc.abstractmethod
    def create_socket(self) -> socket.socket:
        """A new, unbound socket of the right family and type."""

    @abc.abstractmethod
    def bind(self, sock: socket.socket) -> Cleanup:
        """Apply socket options and bind `sock`; return what undoes the binding on close."""

    @abc.abstractmethod
    def activate(self, sock: socket.socket) -> None:
        """Make a bound socket ready for requests (``listen`` for streams)."""

    @abc.abstractmethod
    def get_request(self, sock: socket.socket) -> tuple[R, Address]:
        """Take one request off a readable socket; raises `OSError` if there is none."""

    @property
    def nodelay(self) -> bool | None:
        """Whether accepted TCP connections get TCP_NODELAY; None: the concurrency
        decides (see `Concurrency.nodelay`), and for transports without TCP."""
        return None

    @property
    def tls(self) -> TLS[A] | None:
        """The TLS layer of this transport, if it has one: an event loop that runs
        handshakes itself (asyncio's) takes its context from there."""
        return None

    @property
    def proxy_protocol(self) -> ProxyProtocol[A] | None:
        """The PROXY protocol layer of this transport, if it has one: an event loop
        reads each connection's header itself, without blocking (see `HeaderReader`)."""
        return None

    prepares_requests: ClassVar[bool] = False
    """Whether `prepare_request` does blocking work per request (a TLS handshake),
    which an event loop, serving every client from one thread, cannot run."""

    def prepare_request(self, request: R, context: RequestContext) -> R | None:
        """Make a request ready for the handler, where it is served (thread or child).

        Work that may block per client (a TLS handshake, a PROXY protocol header)
        belongs here, not in `get_request`, which runs on the accept loop; it keeps
        the request's `context` (its deadlines, and its peer, which it may update).
        Returns the request to hand to the handler, or None to drop it (the
        transport has logged why and closed what it made). The default hands the
        request on as it is.
        """
        return request

    @abc.abstractmethod
    def close_request(self, request: R, *, at_eof: bool = False) -> None:
        """Release a request when it is done; `at_eof`: its handler read the peer's end
        of stream, so nothing unread is left on it."""

    @abc.abstractmethod
    def close_request_copy(self, request: R) -> None:
        """Close this process's copy of a request that a child process now serves,
        without ending the request itself (no FIN on a connection)."""


class StreamTransport(Transport[socket.socket, A]):
    """A listening stream socket whose requests are accepted connections."""

    __slots__ = ()

    kind: ClassVar[Literal["stream", "datagram"]] = "stream"

    @property
    @abc.abstractmethod
    def backlog(self) -> int:
        """The listen queue length."""

    def activate(self, sock: socket.socket) -> None:
        sock.listen(self.backlog)

    def get_request(self, sock: socket.socket) -> tuple[socket.socket, Address]:
        conn, peer = sock.accept()
        if self.nodelay and not LISTENER_OPTIONS_INHERITED and conn.family in INET_FAMILIES:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, peer

    def close_request(self, request: socket.socket, *, at_eof: bool = False) -> None:
        close_connection(request, at_eof=at_eof)

    def close_request_copy(self, request: socket.socket) -> None:
        request.close()


class WrappingStreamTransport(StreamTransport[A]):
    """A stream transport that wraps another (`tls`, `proxy_protocol`): it listens and
    accepts as the transport underneath, and adds its own work per request."""

    __slots__ = ()

    transport: StreamTransport[A]
    """The transport underneath."""

    @property
    def proxy_protocol(self) -> ProxyProtocol[A] | None:
        """As the transport underneath."""
        return self.transport.proxy_protocol

    @property
    def bind_and_activate(self) -> bool:
        """As the transport underneath."""
        return self.transport.bind_and_activate

    @property
    def backlog(self) -> int:
        """As the transport underneath."""
        return self.transport.backlog

    @property
    def nodelay(self) -> bool | None:
        """As the transport underneath."""
        return self.transport.nodelay

    def create_socket(self) -> socket.socket:
        return self.transport.create_socket()

    def bind(self, sock: socket.socket) -> Cleanup:
        return self.transport.bind(sock)

    def activate(self, sock: socket.socket) -> None:
        self.transport.activate(sock)

    def get_request(self, sock: socket.socket) -> tuple[socket.socket, Address]:
        return self.transport.get_request(sock)

    def close_request(self, request: socket.socket, *, at_eof: bool = False) -> None:
        self.transport.close_request(request, at_eof=at_eof)

    def close_request_copy(self, request: socket.socket) -> None:
        self.transport.close_request_copy(request)


def close_connection(conn: socket.socket, *, at_eof: bool = False) -> None:
    """Close, sending FIN after every byte written, so the peer reads them all before EOF.

    Bytes left unread make close() reset the connection: shutdown() first sends
    the FIN ahead of the reset. After the peer's own end of stream was read
    (`at_eof`) nothing is unread, and close() sends the FIN itself, unless a file
    made by ``makefile()`` still holds the descriptor: then the shutdown() (a
    system call, and a chance for the GIL to change hands) is left out.
    """
    if not at_eof or conn._io_refs:  # type: ignore[attr-defined]  # socket.socket's count of makefile() files
        half_close(conn)
    conn.close()


def half_close(conn: socket.socket) -> None:
    """Send FIN (shut down the writing side) but keep the socket open."""
    # OSError: the peer may already be gone (ENOTCONN); closing is all that is left to do.
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)


def set_listener_nodelay(sock: socket.socket, nodelay: bool) -> None:
    """Give a TCP listener TCP_NODELAY, for the connections that inherit it (Linux and
    the BSDs). Off Linux, `StreamTransport.get_request` also sets it per connection,
    but only when the transport itself says ``nodelay=True``."""
    if nodelay and sock.family in INET_FAMILIES and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def set_reuse_options(sock: socket.socket, *, reuse_address: bool, reuse_port: bool) -> None:
    """Set SO_REUSEADDR and SO_REUSEPORT on a socket before it is bound."""
    if reuse_address:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


class DatagramTransport(Transport[Datagram, A]):
    """A bound datagram socket whose requests are single datagrams."""

    __slots__ = ()

    kind: ClassVar[Literal["stream", "datagram"]] = "datagram"

    @property
    @abc.abstractmethod
    def max_datagram_size(self) -> int:
        """The largest datagram accepted whole; longer ones are dropped and logged."""

    def activate(self, sock: socket.socket) -> None:
        """Datagram sockets need no listen()."""

    def get_request(self, sock: socket.socket) -> tuple[Datagram, Address]:
        # One byte over the limit tells a datagram that is too long: recvfrom costs
        # a fifth less than recvmsg, whose MSG_TRUNC flag would tell the same.
        limit = self.max_datagram_size
        data, peer = sock.recvfrom(limit + 1)
        if len(data) > limit:
            raise DatagramTooLargeError(peer, limit)
        return Datagram(data, peer, sock), peer

    def close_request(self, request: Datagram, *, at_eof: bool = False) -> None:
        """A datagram holds no resource of its own."""

    def close_request_copy(self, request: Datagram) -> None:
        """A datagram holds no resource of its own."""
