"""`message_layer` and `connection_layer`: a layer from a plain function."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from .._context import RequestContext
from .._framing import MessageFn
from .._runtime import Layer
from .._validate import callable_value

__all__ = ["ConnectionLayer", "MessageLayer", "connection_layer", "message_layer"]

Around = Callable[[bytes, MessageFn], "bytes | None"]
"""``around(message, call_next) -> reply``: a message layer as a function."""


@attrs.frozen
class MessageLayer(Layer):
    """A layer around each message; build it with `message_layer`."""

    around: Around = attrs.field(validator=callable_value)
    """Called with each message and the function to pass it on to."""

    def wrap(self, fn: MessageFn, context: RequestContext) -> MessageFn:
        around = self.around
        return lambda message: around(message, fn)


@attrs.frozen
class ConnectionLayer(Layer):
    """A layer that admits connections; build it with `connection_layer`."""

    check: Callable[[RequestContext], object] = attrs.field(validator=callable_value)
    """Called with each connection's context; raises `RefusedError` to refuse it."""

    def admit(self, context: RequestContext) -> None:
        self.check(context)


def message_layer(around: Around) -> MessageLayer:
    """A layer from a function ``around(message, call_next) -> reply``, for message and
    session handlers. Example::

        def shout(message: bytes, call_next: MessageFn) -> bytes | None:
            reply = call_next(message)
            return None if reply is None else reply.upper()

        layered(message_handler(echo), message_layer(shout))
    """
    return MessageLayer(around)


def connection_layer(check: Callable[[RequestContext], object]) -> ConnectionLayer:
    """A layer from a function ``check(context)`` called for each connection (or
    datagram) before the handler; it raises `RefusedError` to refuse it."""
    return ConnectionLayer(check)
