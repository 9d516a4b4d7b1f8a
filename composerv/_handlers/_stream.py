"""`stream_handler`: a function that owns one blocking connection."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import ClassVar, Literal

import attrs

from .._connection import Connection, connection_of
from .._context import RequestContext
from .._runtime import Handler, Layer
from .._validate import callable_value
from ._layering import layers_field

__all__ = ["StreamHandler", "stream_handler"]


@attrs.frozen
class StreamHandler(Handler[socket.socket]):
    """Calls `fn` with a `Connection` per accepted connection; build it with `stream_handler`."""

    kind: ClassVar[Literal["stream", "datagram"]] = "stream"

    fn: Callable[[Connection], object] = attrs.field(validator=callable_value)
    """Called once per connection; the connection closes when it returns."""
    layers: tuple[Layer, ...] = layers_field()
    """The layers around the handler, outermost first (see `layered`)."""

    def handle(self, request: socket.socket, context: RequestContext) -> None:
        connection = connection_of(request, context)
        try:
            self.fn(connection)
        finally:
            connection.close()


def stream_handler(fn: Callable[[Connection], object]) -> StreamHandler:
    """A handler for stream transports (TCP, unix stream) that calls ``fn(connection)``.

    Example::

        def echo(conn: Connection) -> None:
            while data := conn.recv():
                conn.send_all(data)

        serve(tcp(("127.0.0.1", 8000)), threaded(), stream_handler(echo))
    """
    return StreamHandler(fn)
