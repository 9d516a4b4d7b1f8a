"""`datagram_handler`: a function called once per datagram."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

import attrs

from .._context import RequestContext
from .._datagram import Datagram
from .._runtime import Handler, Layer
from .._validate import callable_value
from ._layering import layers_field

__all__ = ["DatagramHandler", "datagram_handler"]


@attrs.frozen
class DatagramHandler(Handler[Datagram]):
    """Calls `fn` with each `Datagram`; build it with `datagram_handler`."""

    kind: ClassVar[Literal["stream", "datagram"]] = "datagram"

    fn: Callable[[Datagram], object] = attrs.field(validator=callable_value)
    """Called once per datagram; answer with ``datagram.reply(data)``."""
    layers: tuple[Layer, ...] = layers_field()
    """The layers around the handler, outermost first (see `layered`)."""

    def handle(self, request: Datagram, context: RequestContext) -> None:
        self.fn(request)


def datagram_handler(fn: Callable[[Datagram], object]) -> DatagramHandler:
    """A handler for datagram transports (UDP, unix datagram) that calls ``fn(datagram)``.

    Example::

        def echo(datagram: Datagram) -> None:
            datagram.reply(datagram.data)

        serve(udp(("127.0.0.1", 5353)), sync(), datagram_handler(echo))
    """
    return DatagramHandler(fn)
