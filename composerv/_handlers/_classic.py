"""`request_handler`: a classic ``socketserver.BaseRequestHandler`` class as a core handler."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, ClassVar, Literal, overload

import attrs

from .._addresses import Address
from .._context import RequestContext
from .._datagram import Datagram
from .._errors import ConfigurationError
from .._runtime import Handler, Layer
from .._validate import callable_value
from ._layering import layers_field

__all__ = [
    "ClassicDatagramHandler",
    "ClassicServer",
    "ClassicStreamHandler",
    "DatagramHandlerClass",
    "StreamHandlerClass",
    "request_handler",
]


@attrs.frozen
class ClassicServer:
    """What a classic handler finds as ``self.server`` under `serve()`.

    A core server has no subclass to carry state, so this holds only what classic
    handlers commonly read.
    """

    server_address: Address
    """The local address the request arrived on (the server's bound address)."""
    socket: socket.socket = attrs.field(repr=False)
    """The socket the request arrived on: the connection (stream) or the server socket."""


StreamHandlerClass = Callable[[socket.socket, Any, ClassicServer], object]
"""A classic stream handler class: called with ``(connection, client_address, server)``."""

DatagramHandlerClass = Callable[[tuple[bytes, socket.socket], Any, ClassicServer], object]
"""A classic datagram handler class: called with ``((data, socket), client_address, server)``."""


@attrs.frozen
class ClassicStreamHandler(Handler[socket.socket]):
    """Instantiates a classic handler class per connection; build it with `request_handler`."""

    kind: ClassVar[Literal["stream", "datagram"]] = "stream"

    handler_class: StreamHandlerClass = attrs.field(validator=callable_value)
    """Called as ``handler_class(connection, client_address, server)``, like
    ``socketserver.StreamRequestHandler`` subclasses. The connection's own
    ``recv``, ``sendall`` and ``makefile`` keep the server's limits."""
    layers: tuple[Layer, ...] = layers_field()
    """The layers around the handler, outermost first (see `layered`)."""

    def handle(self, request: socket.socket, context: RequestContext) -> None:
        self.handler_class(request, context.peer, ClassicServer(request.getsockname(), request))


@attrs.frozen
class ClassicDatagramHandler(Handler[Datagram]):
    """Instantiates a classic handler class per datagram; build it with `request_handler`."""

    kind: ClassVar[Literal["stream", "datagram"]] = "datagram"

    handler_class: DatagramHandlerClass = attrs.field(validator=callable_value)
    """Called as ``handler_class((data, socket), client_address, server)``, like
    ``socketserver.DatagramRequestHandler`` subclasses."""
    layers: tuple[Layer, ...] = layers_field()
    """The layers around the handler, outermost first (see `layered`)."""

    def handle(self, request: Datagram, context: RequestContext) -> None:
        sock = request.socket
        self.handler_class(
            (request.data, sock), context.peer, ClassicServer(sock.getsockname(), sock)
        )


@overload
def request_handler(
    handler_class: StreamHandlerClass, *, kind: Literal["stream"] = "stream"
) -> ClassicStreamHandler: ...


@overload
def request_handler(
    handler_class: DatagramHandlerClass, *, kind: Literal["datagram"]
) -> ClassicDatagramHandler: ...


def request_handler(
    handler_class: Any, *, kind: Literal["stream", "datagram"] = "stream"
) -> ClassicStreamHandler | ClassicDatagramHandler:
    """A handler that serves each request with a classic request-handler class.

    The class is called with ``(request, client_address, server)`` as
    ``socketserver`` does: `request` is the connection for ``kind="stream"`` and
    ``(data, socket)`` for ``kind="datagram"``; `server` is a `ClassicServer`.
    The server closes the connection after the handler's ``finish``. Example::

        class Echo(socketserver.StreamRequestHandler):
            def handle(self):
                self.wfile.write(self.rfile.readline())

        serve(tcp(("127.0.0.1", 8000)), threaded(), request_handler(Echo))
        serve(udp(("127.0.0.1", 5353)), sync(), request_handler(Ping, kind="datagram"))
    """
    if kind == "stream":
        return ClassicStreamHandler(handler_class)
    if kind == "datagram":
        return ClassicDatagramHandler(handler_class)
    raise ConfigurationError(f"kind must be 'stream' or 'datagram', not {kind!r}")
