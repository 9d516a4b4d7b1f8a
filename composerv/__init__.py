"""composerv: network servers composed from small, immutable, typed values.

A server is a transport, a concurrency and a handler, put together by `serve`::

    from composerv import serve, stream_handler, tcp, threaded

    def echo(conn):
        while data := conn.recv():
            conn.send_all(data)

    with serve(tcp(("127.0.0.1", 8000)), threaded(), stream_handler(echo)) as server:
        server.serve_forever()

This module holds what servers are built with. Layers are in `composerv.layers`,
a session's actions in `composerv.sessions`, test helpers in `composerv.testing`.
The classes of the values the factories return are in `composerv.types`; the
interfaces for writing a new transport, concurrency, handler or layer are in
`composerv.abc`.
"""

from ._addresses import Address, HostPort, InetAddress
from ._concurrency import asyncio_loop, evented, forking, pooled, sync, threaded, workers
from ._connection import Connection
from ._context import RequestContext
from ._datagram import Datagram
from ._errors import (
    ComposervError,
    ConfigurationError,
    ConfigurationTypeError,
    DatagramTooLargeError,
    HandlerMismatchError,
    MessageTooLargeError,
    PoolFullError,
    SocketPathInUseError,
    TruncatedMessageError,
    UnaddressablePeerError,
)
from ._framing import datagrams, length_prefixed, lines
from ._handlers import (
    async_stream_handler,
    datagram_handler,
    datagram_session_handler,
    layered,
    message_handler,
    request_handler,
    session_handler,
    stream_handler,
)
from ._limits import DrainReport, Limits, limits
from ._metrics import metrics_handler
from ._serve import serve
from ._server import Server
from ._stats import ServerStats
from ._transports import (
    inherited,
    proxy_protocol,
    systemd_sockets,
    tcp,
    tls,
    udp,
    unix_datagram,
    unix_stream,
)
from ._url import transport_from_url

__all__ = [
    "Address",
    "ComposervError",
    "ConfigurationError",
    "ConfigurationTypeError",
    "Connection",
    "Datagram",
    "DatagramTooLargeError",
    "DrainReport",
    "HandlerMismatchError",
    "HostPort",
    "InetAddress",
    "Limits",
    "MessageTooLargeError",
    "PoolFullError",
    "RequestContext",
    "Server",
    "ServerStats",
    "SocketPathInUseError",
    "TruncatedMessageError",
    "UnaddressablePeerError",
    "async_stream_handler",
    "asyncio_loop",
    "datagram_handler",
    "datagram_session_handler",
    "datagrams",
    "evented",
    "forking",
    "inherited",
    "layered",
    "length_prefixed",
    "limits",
    "lines",
    "message_handler",
    "metrics_handler",
    "pooled",
    "proxy_protocol",
    "request_handler",
    "serve",
    "session_handler",
    "stream_handler",
    "sync",
    "systemd_sockets",
    "tcp",
    "threaded",
    "tls",
    "transport_from_url",
    "udp",
    "unix_datagram",
    "unix_stream",
    "workers",
]

__version__ = "0.1.0"
