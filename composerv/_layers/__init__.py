"""Layers: concerns wrapped around a handler (see `composerv.layers`)."""

from ._access import ACCESS_LOGGER, AccessLog, access_log
from ._custom import ConnectionLayer, MessageLayer, connection_layer, message_layer
from ._guards import InFlightLimit, OnError, max_in_flight, on_error
from ._network import AddressFilter, allow_from, deny_from
from ._rate import RateLimit, rate_limit

__all__ = [
    "ACCESS_LOGGER",
    "AccessLog",
    "AddressFilter",
    "ConnectionLayer",
    "InFlightLimit",
    "MessageLayer",
    "OnError",
    "RateLimit",
    "access_log",
    "allow_from",
    "connection_layer",
    "deny_from",
    "max_in_flight",
    "message_layer",
    "on_error",
    "rate_limit",
]
