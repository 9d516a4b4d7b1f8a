"""Handlers: what a server does with each request."""

from ._async import AsyncStreamHandler, async_stream_handler
from ._classic import (
    ClassicDatagramHandler,
    ClassicServer,
    ClassicStreamHandler,
    request_handler,
)
from ._datagram import DatagramHandler, datagram_handler
from ._message import (
    DatagramMessageHandler,
    MessageHandler,
    StreamMessageHandler,
    message_handler,
)
from ._stream import StreamHandler, stream_handler

__all__ = [
    "AsyncStreamHandler",
    "ClassicDatagramHandler",
    "ClassicServer",
    "ClassicStreamHandler",
    "DatagramHandler",
    "DatagramMessageHandler",
    "MessageHandler",
    "StreamHandler",
    "StreamMessageHandler",
    "async_stream_handler",
    "datagram_handler",
    "message_handler",
    "request_handler",
    "stream_handler",
]
