"""Layers: cross-cutting concerns wrapped around a handler with `composerv.layered`.

A layered handler keeps its kind (a layered stream handler still serves stream
transports, a layered message handler still runs on `evented()`)::

    from composerv import layered, message_handler
    from composerv.layers import access_log, allow_from, rate_limit

    handler = layered(
        message_handler(answer), allow_from("10.0.0.0/8"), rate_limit(50), access_log()
    )

Each layer `admit`s connections (and datagrams), may `wrap` the function that
answers a connection's messages, and hears when a request `finish`es; write your
own by subclassing `composerv.abc.Layer`, or from a plain function with
`message_layer` or `connection_layer`.
"""

from ._errors import RefusedError
from ._layers import (
    ACCESS_LOGGER,
    AccessLog,
    AddressFilter,
    ConnectionLayer,
    InFlightLimit,
    MessageLayer,
    OnError,
    RateLimit,
    access_log,
    allow_from,
    connection_layer,
    deny_from,
    max_in_flight,
    message_layer,
    on_error,
    rate_limit,
)

__all__ = [
    "ACCESS_LOGGER",
    "AccessLog",
    "AddressFilter",
    "ConnectionLayer",
    "InFlightLimit",
    "MessageLayer",
    "OnError",
    "RateLimit",
    "RefusedError",
    "access_log",
    "allow_from",
    "connection_layer",
    "deny_from",
    "max_in_flight",
    "message_layer",
    "on_error",
    "rate_limit",
]
