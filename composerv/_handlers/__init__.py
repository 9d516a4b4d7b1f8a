"""Handlers: what a server does with each request."""

from ._base import Handler
from ._classic import (
    ClassicDatagramHandler,
    ClassicServer,
    ClassicStreamHandler,
    request_handler,
)
from ._datagram import DatagramHandler, datagram_handler
from ._stream import StreamHandler, stream_handler

__all__ = [
    "ClassicDatagramHandler",
    "ClassicServer",
    "ClassicStreamHandler",
    "DatagramHandler",
    "Handler",
    "StreamHandler",
    "datagram_handler",
    "request_handler",
    "stream_handler",
]
