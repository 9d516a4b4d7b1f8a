"""Handlers: what a server does with each request."""

from ._async import AsyncStreamHandler, async_stream_handler
from ._classic import (
    ClassicDatagramHandler,
    ClassicServer,
    ClassicStreamHandler,
    request_handler,
)
from ._datagram import DatagramHandler, datagram_handler
from ._layering import layered
from ._message import (
    DatagramMessageHandler,
    MessageHandler,
    StreamMessageHandler,
    message_handler,
)
from ._session import (
    DatagramSessionHandler,
    SessionHandler,
    datagram_session_handler,
    session_handler,
)
from ._stream import StreamHandler, stream_handler

__all__ = [
    "AsyncStreamHandler",
    "ClassicDatagramHandler",
    "ClassicServer",
    "ClassicStreamHandler",
    "DatagramHandler",
    "DatagramMessageHandler",
    "DatagramSessionHandler",
    "MessageHandler",
    "SessionHandler",
    "StreamHandler",
    "StreamMessageHandler",
    "async_stream_handler",
    "datagram_handler",
    "datagram_session_handler",
    "layered",
    "message_handler",
    "request_handler",
    "session_handler",
    "stream_handler",
]
