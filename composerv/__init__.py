"""composerv: network servers composed from small, immutable, typed values.

A server is a transport, a concurrency and a handler, put together by `serve`::

    from composerv import serve, stream_handler, tcp, threaded

    def echo(conn):
        while data := conn.recv():
            conn.send_all(data)

    with serve(tcp(("127.0.0.1", 8000)), threaded(), stream_handler(echo)) as server:
        server.serve_forever()
"""

from ._addresses import Address, InetAddress
from ._concurrency import (
    AsyncioLoop,
    BlockingConcurrency,
    Concurrency,
    Evented,
    EventLoop,
    EventLoopConcurrency,
    Forking,
    Pooled,
    PoolFullError,
    Scheduler,
    Sync,
    Threaded,
    asyncio_loop,
    evented,
    forking,
    pooled,
    sync,
    threaded,
)
from ._connection import Connection
from ._datagram import Datagram
from ._errors import (
    ComposervError,
    ConfigurationError,
    HandlerMismatchError,
    MessageTooLargeError,
    SocketPathInUseError,
    TruncatedMessageError,
)
from ._framing import (
    Datagrams,
    Decoder,
    Framing,
    LengthPrefixed,
    Lines,
    StreamFraming,
    datagrams,
    length_prefixed,
    lines,
)
from ._handlers import (
    AsyncStreamHandler,
    DatagramHandler,
    DatagramMessageHandler,
    Handler,
    MessageFn,
    MessageHandler,
    StreamHandler,
    StreamMessageHandler,
    async_stream_handler,
    datagram_handler,
    message_handler,
    stream_handler,
)
from ._server import Server, serve
from ._transports import (
    TCP,
    UDP,
    DatagramTooLargeError,
    DatagramTransport,
    StreamTransport,
    Transport,
    UnixDatagram,
    UnixStream,
    tcp,
    udp,
    unix_datagram,
    unix_stream,
)

__all__ = [  # noqa: RUF022  # plain sorted order, as tests/test_exports.py checks
    "Address",
    "AsyncStreamHandler",
    "AsyncioLoop",
    "BlockingConcurrency",
    "ComposervError",
    "Concurrency",
    "ConfigurationError",
    "Connection",
    "Datagram",
    "DatagramHandler",
    "DatagramMessageHandler",
    "DatagramTooLargeError",
    "DatagramTransport",
    "Datagrams",
    "Decoder",
    "EventLoop",
    "EventLoopConcurrency",
    "Evented",
    "Forking",
    "Framing",
    "Handler",
    "HandlerMismatchError",
    "InetAddress",
    "LengthPrefixed",
    "Lines",
    "MessageFn",
    "MessageHandler",
    "MessageTooLargeError",
    "PoolFullError",
    "Pooled",
    "Scheduler",
    "Server",
    "SocketPathInUseError",
    "StreamFraming",
    "StreamHandler",
    "StreamMessageHandler",
    "StreamTransport",
    "Sync",
    "TCP",
    "Threaded",
    "Transport",
    "TruncatedMessageError",
    "UDP",
    "UnixDatagram",
    "UnixStream",
    "async_stream_handler",
    "asyncio_loop",
    "datagram_handler",
    "datagrams",
    "evented",
    "forking",
    "length_prefixed",
    "lines",
    "message_handler",
    "pooled",
    "serve",
    "stream_handler",
    "sync",
    "tcp",
    "threaded",
    "udp",
    "unix_datagram",
    "unix_stream",
]

__version__ = "0.1.0"
